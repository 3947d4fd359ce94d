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

/** Collects diagnostics in the order they are found. */
export class Diagnostics {
  readonly items: Diagnostic[] = [];

  error(pos: SourcePos, message: string, expected?: string, fatal = false): void {
    this.items.push({ severity: "error", pos, message, expected, fatal: fatal || undefined });
  }
  warning(pos: SourcePos, message: string, expected?: string, code?: string): void {
    this.items.push({ severity: "warning", pos, message, expected, code });
  }
  info(pos: SourcePos, message: string): void {
    this.items.push({ severity: "info", pos, message });
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
