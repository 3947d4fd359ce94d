/**
 * The daemon's log: keepalived-style messages to syslog (facility daemon by default), to the
 * console with --log-console, as text or one JSON object per line (--log-format json).
 * Logging never throws and never blocks: a syslog that is missing or refuses sends the line
 * to stderr instead.
 */

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** Only shown with --log-detail. */
  debug(msg: string): void;
  /** Releases sockets (optional: test loggers need not have it). */
  close?(): void;
}

/** syslog severities vipd uses (RFC 5424 numbers). */
export const SEVERITY = { error: 3, warning: 4, info: 6, debug: 7 } as const;
export type Level = keyof typeof SEVERITY;

/** What the logger needs from a syslog client (ffi/syslog.ts provides it). */
export interface SyslogTransport {
  /** true when the message was handed to syslog. */
  send(severity: number, msg: string, at: Date): boolean;
  close?(): void;
}

export type LogFormat = "text" | "json";

export interface LoggerOptions {
  /** Show debug messages (--log-detail). */
  detail: boolean;
  /** Also write every message to the console (--log-console). */
  console: boolean;
  format: LogFormat;
  /** Syslog client, or undefined for none (-G/--no-syslog, or console-only tests). */
  syslog?: SyslogTransport;
  /** Where console (and fallback) lines go (default stderr). */
  write?: (line: string) => void;
  /** Wall clock (tests pass a fixed one). */
  now?: () => Date;
  /** Program name (default "vipd"). */
  ident?: string;
}

export interface ConsoleLoggerOptions {
  detail: boolean;
  /** Where lines go (default stderr). */
  write?: (line: string) => void;
  /** Wall clock for the timestamp (tests pass a fixed one). */
  now?: () => Date;
}

const LEVEL_PREFIX: Record<Level, string> = { error: "ERROR: ", warning: "WARNING: ", info: "", debug: "" };

/** The text console line: `2026-11-22T03:04:05.678Z vipd[123]: (VI_1) Entering MASTER STATE`. */
export function textLine(level: Level, msg: string, at: Date, ident = "vipd", pid = process.pid): string {
  return `${at.toISOString()} ${ident}[${pid}]: ${LEVEL_PREFIX[level]}${msg}\n`;
}

/**
 * One structured record: `{"time","level","ident","pid","msg"}`, plus `instance` when the
 * message starts with keepalived's `(NAME) ` prefix, so log shippers can filter per instance.
 */
export function jsonRecord(level: Level, msg: string, at: Date, ident = "vipd", pid = process.pid): string {
  const rec: Record<string, unknown> = { time: at.toISOString(), level, ident, pid };
  const m = /^\(([^()\s]+)\) /.exec(msg);
  if (m) rec.instance = m[1];
  rec.msg = msg;
  return JSON.stringify(rec);
}

/** A logger over syslog and/or the console; see LoggerOptions. */
export function createLogger(o: LoggerOptions): Logger {
  const write = o.write ?? ((line: string) => void process.stderr.write(line));
  const now = o.now ?? (() => new Date());
  const ident = o.ident ?? "vipd";
  const emit = (level: Level, msg: string) => {
    try {
      const at = now();
      const body = o.format === "json" ? jsonRecord(level, msg, at, ident) : `${LEVEL_PREFIX[level]}${msg}`;
      const sent = o.syslog ? o.syslog.send(SEVERITY[level], body, at) : false;
      // The console shows everything with --log-console; otherwise only what syslog lost.
      if (o.console || (o.syslog && !sent) || (!o.syslog && !o.console)) {
        write(o.format === "json" ? `${body}\n` : textLine(level, msg, at, ident));
      }
    } catch {
      // logging must never take the daemon down
    }
  };
  return {
    info: (m) => emit("info", m),
    warn: (m) => emit("warning", m),
    error: (m) => emit("error", m),
    debug: (m) => (o.detail ? emit("debug", m) : undefined),
    close: () => {
      try {
        o.syslog?.close?.();
      } catch {
        // nothing to do
      }
    },
  };
}

/** Console-only text logger (what tests and one-shot commands use). */
export function consoleLogger(o: ConsoleLoggerOptions): Logger {
  return createLogger({ detail: o.detail, console: true, format: "text", write: o.write, now: o.now });
}

/** syslog facility numbers by name (LOG_USER = 1, LOG_DAEMON = 3, LOG_LOCAL0..7 = 16..23). */
const FACILITIES: Record<string, number> = { user: 1, daemon: 3 };
for (let i = 0; i <= 7; i++) FACILITIES[`local${i}`] = 16 + i;

/**
 * keepalived's -S/--log-facility value: `0`..`7` (meaning LOCAL0..7, as keepalived reads them),
 * `local0`..`local7`, `user` or `daemon`. Returns the facility number, or undefined if invalid.
 */
export function parseFacility(s: string): number | undefined {
  const v = s.trim().toLowerCase();
  if (/^[0-7]$/.test(v)) return 16 + Number(v);
  return Object.hasOwn(FACILITIES, v) ? FACILITIES[v] : undefined;
}
