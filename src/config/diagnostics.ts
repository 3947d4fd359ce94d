/** Diagnostics: every message a config front-end or validator produces, with its source position. */

export type Severity = "error" | "warning" | "info";

/** A position in a config file; line and col are 1-based. */
export interface SourcePos {
  file: string;
  line: number;
  col: number;
}

export interface Diagnostic {
  severity: Severity;
  pos: SourcePos;
  message: string;
  /** What would have been valid here, when that can be said ("an integer 1..255"). */
  expected?: string;
  /**
   * Error class, used by `vipd check` to pick keepalived's -t exit code:
   * "fatal" means the config cannot run (exit 3); other errors mean it would run (exit 4).
   */
  fatal?: boolean;
  /** A stable identifier for diagnostics that tools act on (e.g. "unknown-keyword"). */
  code?: string;
}

/** At most this many diagnostics are kept: garbage input must not cost unbounded time or memory. */
export const MAX_DIAGNOSTICS = 1000;
/** Quoted text in messages is cut to this many characters. */
const MAX_MESSAGE = 300;

/** Collects diagnostics in the order they are found (capped at MAX_DIAGNOSTICS). */
export class Diagnostics {
  readonly items: Diagnostic[] = [];
  /** Diagnostics dropped after the cap. */
  dropped = 0;

  error(pos: SourcePos, message: string, expected?: string, fatal = false): void {
    this.#add({ severity: "error", pos, message, expected, fatal: fatal || undefined });
  }
  warning(pos: SourcePos, message: string, expected?: string, code?: string): void {
    this.#add({ severity: "warning", pos, message, expected, code });
  }
  info(pos: SourcePos, message: string): void {
    this.#add({ severity: "info", pos, message });
  }
  /** Adds diagnostics found elsewhere (another reader's list), under the same cap. */
  addAll(list: readonly Diagnostic[]): void {
    for (const d of list) this.#add(d);
  }
  #add(d: Diagnostic): void {
    if (this.items.length >= MAX_DIAGNOSTICS) {
      // a fatal error still counts for the exit code: keep the first one past the cap
      if (d.fatal && !this.items.some((x) => x.fatal)) this.items.push(d);
      else this.dropped++;
      if (this.dropped === 1)
        this.items.push({ severity: "error", pos: d.pos, message: `too many problems; only the first ${MAX_DIAGNOSTICS} are shown` });
      return;
    }
    if (d.message.length > MAX_MESSAGE) d = { ...d, message: `${d.message.slice(0, MAX_MESSAGE)}…` };
    this.items.push(d);
  }
  get errors(): Diagnostic[] {
    return this.items.filter((d) => d.severity === "error");
  }
  get warnings(): Diagnostic[] {
    return this.items.filter((d) => d.severity === "warning");
  }
}

/** `file:line:col: severity: message (expected …)` — the one format every command prints. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = `${d.pos.file}:${d.pos.line}:${d.pos.col}`;
  const exp = d.expected ? ` (expected ${d.expected})` : "";
  return `${where}: ${d.severity}: ${d.message}${exp}`;
}
