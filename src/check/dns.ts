/**
 * DNS_CHECK: one UDP query (RD set, class IN) per check; it passes on a reply with our ID, QR
 * set and RCODE 0 (the answer's content is not checked, as keepalived). Replies with another ID
 * or without QR are ignored while waiting; no reply within connect_timeout fails.
 */
import type { Checker, CheckOutcome, ConnectTarget } from "./checker.ts";
import { udpExchange } from "./udp-socket.ts";

/** The query types keepalived accepts, with their codes. */
export const DNS_TYPES: Readonly<Record<string, number>> = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28, RRSIG: 46, DNSKEY: 48 };

/** Builds the query as dns_make_query: header (ID, RD, QDCOUNT 1), QNAME, QTYPE, QCLASS IN. */
export function buildDnsQuery(id: number, name: string, type: string): Uint8Array {
  const labels = name === "." || name === "" ? [] : name.replace(/\.$/, "").split(".");
  const out: number[] = [(id >> 8) & 255, id & 255, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
  for (const l of labels) {
    const b = Buffer.from(l, "latin1");
    out.push(Math.min(63, b.length), ...b.subarray(0, 63));
  }
  out.push(0);
  const qtype = DNS_TYPES[type] ?? DNS_TYPES.SOA!;
  out.push(qtype >> 8, qtype & 255, 0, 1);
  return new Uint8Array(out);
}

/** Judges a datagram: "ignore" (too short, other ID, not a response), or the check's outcome. */
export function judgeDnsReply(id: number, reply: Uint8Array): "ignore" | CheckOutcome {
  if (reply.length < 12) return "ignore";
  if (((reply[0]! << 8) | reply[1]!) !== id) return "ignore";
  const flags = (reply[2]! << 8) | reply[3]!;
  if (!(flags & 0x8000)) return "ignore";
  const rcode = flags & 0x0f;
  if (rcode !== 0) return { ok: false, detail: `read error occurred. (rcode = ${rcode})` };
  return { ok: true, detail: "DNS reply" };
}

/** keepalived's DNS_CHECK (check_dns.c). */
export class DnsChecker implements Checker {
  readonly type = "DNS_CHECK";
  #abort: (() => void) | undefined;

  constructor(readonly target: ConnectTarget, readonly name = ".", readonly qtype = "SOA", private readonly rng: () => number = Math.random) {}

  /** Sends one query and waits for the matching reply. */
  async run(): Promise<CheckOutcome> {
    const id = Math.floor(this.rng() * 65536) & 0xffff;
    const r = await udpExchange(this.target, buildDnsQuery(id, this.name, this.qtype), (d) => judgeDnsReply(id, d), (a) => (this.#abort = a));
    this.#abort = undefined;
    if (r.kind === "reply") return r.outcome;
    if (r.kind === "timeout") return { ok: false, detail: "read timeout from socket" };
    return { ok: false, detail: r.detail };
  }

  close(): void {
    this.#abort?.();
  }
}
