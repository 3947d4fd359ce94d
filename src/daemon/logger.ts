/** The daemon's log: keepalived-style lines to the console (syslog arrives with issue 6). */

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** Only shown with --log-detail. */
  debug(msg: string): void;
}

export interface ConsoleLoggerOptions {
  detail: boolean;
  /** Where lines go (default stderr). */
  write?: (line: string) => void;
  /** Wall clock for the timestamp (tests pass a fixed one). */
  now?: () => Date;
}

/** `2026-11-22T03:04:05.678Z vipd[123]: (VI_1) Entering MASTER STATE` */
export function consoleLogger(o: ConsoleLoggerOptions): Logger {
  const write = o.write ?? ((line: string) => void process.stderr.write(line));
  const now = o.now ?? (() => new Date());
  const line = (level: string, msg: string) => {
    try {
      write(`${now().toISOString()} vipd[${process.pid}]: ${level}${msg}\n`);
    } catch {
      // logging must never take the daemon down
    }
  };
  return {
    info: (m) => line("", m),
    warn: (m) => line("WARNING: ", m),
    error: (m) => line("ERROR: ", m),
    debug: (m) => (o.detail ? line("", m) : undefined),
  };
}
