/**
 * One UDP request/response exchange on a connected Bun UDP socket, for UDP_CHECK and DNS_CHECK:
 * send a datagram, then wait for a reply the caller accepts, an ICMP error (reported by the
 * kernel as ECONNREFUSED and friends on a connected socket) or the timeout.
 */
import type { CheckOutcome, ConnectTarget } from "./checker.ts";

export type UdpExchangeResult = { kind: "reply"; outcome: CheckOutcome } | { kind: "timeout" } | { kind: "error"; detail: string };

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
  let sock: { close(): void; send(d: Uint8Array): boolean } | undefined;
  const finish = (r: UdpExchangeResult) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    try {
      sock?.close();
    } catch {
      /* already closed */
    }
    settle(r);
  };
  const timer = setTimeout(() => finish({ kind: "timeout" }), Math.max(1, Math.ceil(t.timeoutMs)));
  onAbort?.(() => finish({ kind: "error", detail: "aborted" }));
  try {
    const opts: Record<string, unknown> = {
      connect: { hostname: t.host, port: t.port },
      socket: {
        data(_s: unknown, buf: Uint8Array) {
          const v = judge(new Uint8Array(buf));
          if (v !== "ignore") finish({ kind: "reply", outcome: v });
        },
        error(err: Error & { code?: string }) {
          finish({ kind: "error", detail: `UDP connection failed: ${err?.code ?? String(err?.message ?? err).split(":")[0]}` });
        },
      },
    };
    if (t.bindto) opts.hostname = t.bindto;
    if (t.bindPort) opts.port = t.bindPort;
    sock = await Bun.udpSocket(opts as unknown as Parameters<typeof Bun.udpSocket>[0]) as unknown as typeof sock;
    if (done) sock?.close();
    else if (!sock!.send(payload)) finish({ kind: "error", detail: "UDP send error" });
  } catch (e) {
    finish({ kind: "error", detail: `UDP connection failed: ${(e as Error).message}` });
  }
  return result;
}
