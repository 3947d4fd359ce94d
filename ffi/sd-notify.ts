/**
 * sd_notify(3) without libsystemd: state strings sent as one datagram to $NOTIFY_SOCKET
 * (a path, or an abstract socket written "@name"). Without the variable every call is a no-op,
 * so the daemon calls these unconditionally; failures are reported, never thrown.
 */
import { dlopen, FFIType as T } from "bun:ffi";
import { UnixDgramSender } from "./unix-dgram.ts";

const clock = dlopen("libc.so.6", { clock_gettime: { args: [T.i32, T.ptr], returns: T.i32 } }).symbols;
const CLOCK_MONOTONIC = 1;

/** CLOCK_MONOTONIC in µs, the clock systemd compares MONOTONIC_USEC with (not process-relative). */
export function monotonicUsec(): bigint {
  const ts = new BigInt64Array(2);
  clock.clock_gettime(CLOCK_MONOTONIC, ts);
  return ts[0]! * 1_000_000n + ts[1]! / 1000n;
}

/** A notifier bound to one socket; `fromEnv` takes it from $NOTIFY_SOCKET. */
export class SdNotifier {
  readonly socket: string | undefined;
  #sender: UnixDgramSender | undefined;

  constructor(socket: string | undefined) {
    this.socket = socket || undefined;
    this.#sender = this.socket ? new UnixDgramSender(this.socket) : undefined;
  }

  /**
   * The notifier for $NOTIFY_SOCKET. The variable is removed from the environment so scripts
   * vipd runs cannot notify systemd in its name (sd_notify's unset_environment).
   */
  static fromEnv(env: Record<string, string | undefined> = process.env): SdNotifier {
    const s = env.NOTIFY_SOCKET;
    delete env.NOTIFY_SOCKET;
    return new SdNotifier(s);
  }

  /** Whether systemd is listening (the service has Type=notify). */
  get enabled(): boolean {
    return this.#sender !== undefined;
  }

  /** Sends raw `KEY=VALUE` lines; 0 on success (or when disabled), else an errno. */
  notify(state: string): number {
    if (!this.#sender) return 0;
    return this.#sender.send(new TextEncoder().encode(state));
  }

  /** Startup finished: READY=1 with a STATUS line. */
  ready(status: string): number {
    return this.notify(`READY=1\nSTATUS=${oneLine(status)}\nMAINPID=${process.pid}`);
  }

  /** A reload began (send `ready` when it ends); MONOTONIC_USEC as Type=notify-reload wants. */
  reloading(status = "Reloading configuration"): number {
    return this.notify(`RELOADING=1\nMONOTONIC_USEC=${monotonicUsec()}\nSTATUS=${oneLine(status)}`);
  }

  /** Shutdown began. */
  stopping(status = "Stopping"): number {
    return this.notify(`STOPPING=1\nSTATUS=${oneLine(status)}`);
  }

  /** Free-form status text shown by `systemctl status`. */
  status(text: string): number {
    return this.notify(`STATUS=${oneLine(text)}`);
  }

  /** Closes the socket. */
  close(): void {
    this.#sender?.close();
  }
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, " ");
}
