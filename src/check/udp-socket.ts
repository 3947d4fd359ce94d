/**
 * One UDP request/response exchange on a connected socket, for UDP_CHECK and DNS_CHECK: send a
 * datagram, then wait for a reply the caller accepts, an ICMP error (reported by the kernel as
 * ECONNREFUSED and friends on a connected socket with IP_RECVERR) or the timeout. The socket is
 * opened through libc (ffi/tcp-socket.ts udpConnect) so fwmark, bind_if, bindto and bind_port
 * apply as in keepalived's udp_bind_connect.
 */
import { lookup } from "node:dns/promises";
import net from "node:net";
import { udpConnect, type SocketTarget, type UdpSocket } from "../../ffi/tcp-socket.ts";
import type { CheckOutcome, ConnectTarget } from "./checker.ts";

export type UdpExchangeResult = { kind: "reply"; outcome: CheckOutcome } | { kind: "timeout" } | { kind: "error"; detail: string };

/** keepalived's words for a failed set-up step. */
function stepDetail(t: ConnectTarget, step: string, code: string): string {
  if (step === "fwmark") return `Error setting fwmark ${t.fwmark} to socket: ${code}`;
  if (step === "bind_if") return `Checker can't bind to device ${t.bindIf}: ${code}`;
  if (step === "bind") return `Checker bind failed: ${code}`;
  return `UDP connection failed: ${code}`;
}

/** Sends `payload` to the target and resolves with the first reply `judge` does not ignore; never rejects. */
export async function udpExchange(
  t: ConnectTarget,
  payload: Uint8Array,
  judge: (data: Uint8Array) => "ignore" | CheckOutcome,
  onAbort?: (abort: () => void) => void,
): Promise<UdpExchangeResult> {
  let settle!: (r: UdpExchangeResult) => void;
  const result = new Promise<UdpExchangeResult>((resolve) => (settle = resolve));
  let done = false;
  let sock: UdpSocket | undefined;
  const finish = (r: UdpExchangeResult) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    sock?.close();
    settle(r);
  };
  const timer = setTimeout(() => finish({ kind: "timeout" }), Math.max(1, Math.ceil(t.timeoutMs)));
  onAbort?.(() => finish({ kind: "error", detail: "aborted" }));
  const s: SocketTarget = { host: t.host, port: t.port };
  if (t.bindto) s.bindto = t.bindto;
  if (t.bindPort) s.bindPort = t.bindPort;
  if (t.bindIf) s.bindIf = t.bindIf;
  if (t.fwmark) s.fwmark = t.fwmark;
  if (net.isIP(t.host.replace(/%.*$/, "")) === 0) {
    try {
      s.host = (await lookup(t.host)).address;
    } catch {
      finish({ kind: "error", detail: `UDP connection failed: cannot resolve ${t.host}` });
      return result;
    }
  }
  if (done) return result;
  const opened = udpConnect(
    s,
    (d) => {
      const v = judge(d);
      if (v !== "ignore") finish({ kind: "reply", outcome: v });
    },
    (f) => finish({ kind: "error", detail: `UDP connection failed: ${f.code}` }),
  );
  if (!("send" in opened)) {
    finish({ kind: "error", detail: stepDetail(t, opened.step, opened.code) });
    return result;
  }
  sock = opened;
  if (!sock.send(payload)) finish({ kind: "error", detail: "UDP send error" });
  return result;
}
