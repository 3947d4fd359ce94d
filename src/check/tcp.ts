/**
 * TCP_CHECK: the check passes when a TCP connection opens within connect_timeout (then it is
 * closed). No stream is built: the libc socket is connected, its SO_ERROR read, and closed.
 */
import type { Checker, CheckOutcome, ConnectTarget } from "./checker.ts";
import { probeTcp } from "./connect.ts";

/** keepalived's TCP_CHECK (check_tcp.c). */
export class TcpChecker implements Checker {
  readonly type = "TCP_CHECK";

  constructor(readonly target: ConnectTarget) {}

  /** Connects, closes at once; refused/unreachable/timeout fail. */
  async run(): Promise<CheckOutcome> {
    const c = await probeTcp(this.target);
    if (!c.ok) return { ok: false, detail: c.timeout ? "TCP connection timeout" : c.detail };
    return { ok: true, detail: "TCP connection success" };
  }

  /** Nothing to release: a pending connect ends by itself within connect_timeout. */
  close(): void {}
}
