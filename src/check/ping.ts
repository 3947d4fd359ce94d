/**
 * PING_CHECK: one ICMP/ICMPv6 echo per check; the reply must come within connect_timeout.
 * The socket work is behind PingTransport (ffi/ping-socket.ts: unprivileged ping socket, raw
 * socket as root), handed in by the daemon.
 */
import type { Checker, CheckOutcome, ConnectTarget } from "./checker.ts";

/** What PING_CHECK needs from the OS edge (ffi/ping-socket.ts implements it). */
export interface PingTransport {
  echo(r: { host: string; timeoutMs: number; bindto?: string; bindIf?: string }): Promise<{ ok: boolean; detail: string }>;
}

/** keepalived's PING_CHECK (check_ping.c). */
export class PingChecker implements Checker {
  readonly type = "PING_CHECK";

  constructor(readonly target: ConnectTarget, private readonly transport: PingTransport | undefined) {}

  /** One echo request. */
  async run(): Promise<CheckOutcome> {
    if (!this.transport) return { ok: false, detail: "PING_CHECK unavailable: no ICMP transport" };
    const r: { host: string; timeoutMs: number; bindto?: string; bindIf?: string } = { host: this.target.host, timeoutMs: this.target.timeoutMs };
    if (this.target.bindto) r.bindto = this.target.bindto;
    if (this.target.bindIf) r.bindIf = this.target.bindIf;
    return this.transport.echo(r);
  }

  /** Nothing to release: an echo ends by itself within connect_timeout. */
  close(): void {}
}
