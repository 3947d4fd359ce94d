/**
 * syslog over /dev/log without libc's syslog(3): RFC 3164 lines
 * (`<PRI>Mmm dd hh:mm:ss vipd[pid]: msg`) sent as AF_UNIX datagrams, never blocking, never
 * throwing. When the socket is missing or refuses, `send` reports failure (the logger then
 * writes to stderr) and retries only after a backoff that doubles up to 30 s, so a dead
 * syslogd costs one failed syscall per backoff period, not one per line.
 */
import { UnixDgramSender } from "./unix-dgram.ts";

/** Where syslog listens on Linux. */
export const DEV_LOG = "/dev/log";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 30_000;
/** Longest message body sent (syslogd implementations truncate around 8 KiB anyway). */
const MAX_BODY = 8000;

/** The RFC 3164 line for one message, timestamp in local time (`Nov  2 03:04:05`). */
export function rfc3164Line(pri: number, at: Date, ident: string, pid: number, msg: string): string {
  const two = (n: number) => String(n).padStart(2, "0");
  const stamp = `${MONTHS[at.getMonth()]} ${String(at.getDate()).padStart(2, " ")} ${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}`;
  const body = msg.length > MAX_BODY ? msg.slice(0, MAX_BODY) : msg;
  return `<${pri}>${stamp} ${ident}[${pid}]: ${body}`;
}

export interface SyslogOptions {
  /** Socket path (default /dev/log); tests point it at their own socket. */
  path?: string;
  /** syslog facility number (3 = daemon). */
  facility: number;
  /** Program name in each line (default "vipd"). */
  ident?: string;
  /** Monotonic clock in ms for the backoff (tests pass their own). */
  nowMs?: () => number;
}

/** A syslog client: `send(severity, msg)` is true when the datagram left. */
export class SyslogClient {
  readonly path: string;
  readonly facility: number;
  readonly ident: string;
  #sender: UnixDgramSender;
  #nowMs: () => number;
  #retryAt = 0;
  #backoff = BACKOFF_MIN_MS;
  #enc = new TextEncoder();
  /** errno of the last failure (0 when the last send worked). */
  lastError = 0;

  constructor(o: SyslogOptions) {
    this.path = o.path ?? DEV_LOG;
    this.facility = o.facility;
    this.ident = o.ident ?? "vipd";
    this.#sender = new UnixDgramSender(this.path);
    this.#nowMs = o.nowMs ?? (() => performance.now());
  }

  /** Sends one message at `severity` (0 emerg … 7 debug); false when syslog is unavailable now. */
  send(severity: number, msg: string, at: Date = new Date()): boolean {
    const now = this.#nowMs();
    if (now < this.#retryAt) return false;
    const line = rfc3164Line(this.facility * 8 + severity, at, this.ident, process.pid, msg);
    const err = this.#sender.send(this.#enc.encode(line));
    this.lastError = err;
    if (err === 0) {
      this.#backoff = BACKOFF_MIN_MS;
      this.#retryAt = 0;
      return true;
    }
    // EAGAIN: syslogd is alive but behind; lose nothing (stderr gets the line), no backoff.
    if (err !== 11) {
      this.#retryAt = now + this.#backoff;
      this.#backoff = Math.min(this.#backoff * 2, BACKOFF_MAX_MS);
    }
    return false;
  }

  /** Closes the socket. */
  close(): void {
    this.#sender.close();
  }
}
