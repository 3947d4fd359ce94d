/**
 * UDP_CHECK: send `payload` (32 random bytes if none) on a connected socket. Without
 * require_reply, silence until connect_timeout passes and only an ICMP error fails; with
 * require_reply a reply must arrive, and when a pattern is given its length must lie in
 * [min_reply_length, max_reply_length] and its first bytes match the pattern (X = any nibble).
 */
import type { Checker, CheckOutcome, ConnectTarget } from "./checker.ts";
import { udpExchange } from "./udp-socket.ts";

/** A hex pattern with per-nibble wildcards. */
export interface HexPattern {
  data: Uint8Array;
  /** Bits set = wildcard. */
  mask: Uint8Array;
}

/** Parses hex as keepalived's read_hex_str: pairs of digits, spaces between bytes, X/x wildcards when allowed; undefined if invalid or empty. */
export function parseHex(text: string, allowWildcard: boolean): HexPattern | undefined {
  const nib = (c: string): number | "x" | undefined => {
    if (/^[0-9a-fA-F]$/.test(c)) return parseInt(c, 16);
    if (allowWildcard && (c === "x" || c === "X")) return "x";
    return undefined;
  };
  const data: number[] = [];
  const mask: number[] = [];
  let i = 0;
  while (i < text.length) {
    while (text[i] === " " || text[i] === "\t") i++;
    if (i >= text.length) break;
    const a = nib(text[i++]!);
    if (a === undefined) return undefined;
    let val = a === "x" ? 0 : a;
    let m = a === "x" ? 0x0f : 0;
    if (i < text.length && text[i] !== " " && text[i] !== "\t") {
      const b = nib(text[i++]!);
      if (b === undefined) return undefined;
      val = (val << 4) | (b === "x" ? 0 : b);
      m = (m << 4) | (b === "x" ? 0x0f : 0);
    }
    data.push(val);
    mask.push(m);
  }
  return data.length ? { data: new Uint8Array(data), mask: new Uint8Array(mask) } : undefined;
}

/** keepalived's check_udp_reply: true when the reply is acceptable. */
export function udpReplyMatches(reply: Uint8Array, pattern: HexPattern, minLen: number, maxLen: number): boolean {
  if (reply.length < minLen || reply.length > maxLen) return false;
  const n = Math.min(reply.length, pattern.data.length);
  for (let i = 0; i < n; i++) if ((reply[i]! ^ pattern.data[i]!) & ~pattern.mask[i]! & 0xff) return false;
  return true;
}

/** UDP_CHECK settings. */
export interface UdpCheckSpec {
  payload?: Uint8Array;
  requireReply: boolean;
  pattern?: HexPattern;
  minReplyLength: number;
  maxReplyLength: number;
}

/** keepalived's UDP_CHECK (check_udp.c). */
export class UdpChecker implements Checker {
  readonly type = "UDP_CHECK";
  #abort: (() => void) | undefined;

  constructor(readonly target: ConnectTarget, readonly spec: UdpCheckSpec) {}

  /** Sends the payload and judges the reply (or the silence). */
  async run(): Promise<CheckOutcome> {
    const s = this.spec;
    const payload = s.payload ?? crypto.getRandomValues(new Uint8Array(32));
    const r = await udpExchange(this.target, payload, (d) => {
      if (!s.requireReply || !s.pattern) return { ok: true, detail: `UDP reply (${d.length} bytes)` };
      return udpReplyMatches(d, s.pattern, s.minReplyLength, s.maxReplyLength)
        ? { ok: true, detail: `UDP reply matches (${d.length} bytes)` }
        : { ok: false, detail: `UDP check reply data mismatch (${d.length} bytes)` };
    }, (a) => (this.#abort = a));
    this.#abort = undefined;
    if (r.kind === "reply") return r.outcome;
    if (r.kind === "timeout") return s.requireReply ? { ok: false, detail: "UDP no reply (timeout)" } : { ok: true, detail: "UDP no error before timeout" };
    return { ok: false, detail: r.detail };
  }

  close(): void {
    this.#abort?.();
  }
}
