/** TCP_CHECK: the check passes when a TCP connection opens within connect_timeout (then it is closed). */
import type { Checker, CheckOutcome, ConnectTarget } from "./checker.ts";
import { openConnection } from "./connect.ts";

/** keepalived's TCP_CHECK (check_tcp.c). */
export class TcpChecker implements Checker {
  readonly type = "TCP_CHECK";

  constructor(readonly target: ConnectTarget) {}

  /** Connects, closes at once; refused/unreachable/timeout fail. */
  async run(): Promise<CheckOutcome> {
    const c = await openConnection(this.target);
    if (!c.ok) return { ok: false, detail: c.detail === "Timeout connecting" ? "TCP connection timeout" : c.detail };
    c.socket.destroy();
    return { ok: true, detail: "TCP connection success" };
  }

  /** Nothing to release: a pending connect ends by itself within connect_timeout. */
  close(): void {}
}
