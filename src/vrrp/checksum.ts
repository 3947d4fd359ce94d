/** The Internet checksum (RFC 1071) and the IPv4/IPv6 pseudo-headers used by VRRP, ICMPv6 and the IPv4 header. */

import type { Family, VrrpVersion } from "./types.ts";

export const IPPROTO_VRRP = 112;
export const IPPROTO_AH = 51;
export const IPPROTO_ICMPV6 = 58;

/**
 * One's-complement sum of `parts` treated as one concatenated byte string (odd-length
 * parts are handled across boundaries), folded to 16 bits and complemented.
 */
export function internetChecksum(...parts: Uint8Array[]): number {
  let sum = 0;
  let odd = false; // true when the previous part ended in the middle of a 16-bit word
  for (const p of parts) {
    let i = 0;
    if (odd && p.length > 0) {
      sum += p[0]!;
      i = 1;
      odd = false;
    }
    for (; i + 1 < p.length; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
    if (i < p.length) {
      sum += p[i]! << 8;
      odd = true;
    }
    // fold now and then so the sum stays an exact small integer
    if (sum > 0x7fffffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** The IPv4 pseudo-header {src, dst, 0, proto, length} (12 bytes). */
export function ipv4PseudoHeader(src: Uint8Array, dst: Uint8Array, proto: number, length: number): Uint8Array {
  const ph = new Uint8Array(12);
  ph.set(src.subarray(0, 4), 0);
  ph.set(dst.subarray(0, 4), 4);
  ph[9] = proto;
  ph[10] = (length >> 8) & 0xff;
  ph[11] = length & 0xff;
  return ph;
}

/** The IPv6 pseudo-header {src, dst, 32-bit length, 3 zero bytes, next header} (40 bytes, RFC 8200 §8.1). */
export function ipv6PseudoHeader(src: Uint8Array, dst: Uint8Array, nextHeader: number, length: number): Uint8Array {
  const ph = new Uint8Array(40);
  ph.set(src.subarray(0, 16), 0);
  ph.set(dst.subarray(0, 16), 16);
  new DataView(ph.buffer).setUint32(32, length >>> 0);
  ph[39] = nextHeader;
  return ph;
}

/** Which checksum a VRRP PDU carries: decided by version, family and `v3_checksum_as_v2`. */
export interface VrrpChecksumContext {
  version: VrrpVersion;
  family: Family;
  /** IP source and destination as bytes (the actual header addresses); unused for v2 over IPv4. */
  src: Uint8Array;
  dst: Uint8Array;
  /** v3 over IPv4 without the pseudo-header (RFC 9568 reading, keepalived's `v3_checksum_as_v2`). */
  v3ChecksumAsV2?: boolean;
}

/** The pseudo-header to prepend for this PDU, or null when the checksum covers the message only. */
function vrrpPseudoHeader(pduLength: number, ctx: VrrpChecksumContext): Uint8Array | null {
  if (ctx.family === "inet6") return ipv6PseudoHeader(ctx.src, ctx.dst, IPPROTO_VRRP, pduLength);
  if (ctx.version === 3 && !ctx.v3ChecksumAsV2) return ipv4PseudoHeader(ctx.src, ctx.dst, IPPROTO_VRRP, pduLength);
  return null;
}

/**
 * The checksum a VRRP PDU should carry (the PDU's own checksum field, bytes 6–7, is read
 * as zero). v2/IPv4: message only; v3/IPv4: IPv4 pseudo-header unless v3ChecksumAsV2;
 * IPv6 (either version): IPv6 pseudo-header, as the kernel computes with IPV6_CHECKSUM.
 */
export function vrrpChecksum(pdu: Uint8Array, ctx: VrrpChecksumContext): number {
  const zeroed = pdu.slice();
  if (zeroed.length >= 8) zeroed[6] = zeroed[7] = 0;
  const ph = vrrpPseudoHeader(pdu.length, ctx);
  return ph ? internetChecksum(ph, zeroed) : internetChecksum(zeroed);
}

/** True when the PDU's checksum field verifies under `ctx` (the whole PDU sums to 0xffff). */
export function vrrpChecksumOk(pdu: Uint8Array, ctx: VrrpChecksumContext): boolean {
  if (pdu.length < 8) return false;
  const ph = vrrpPseudoHeader(pdu.length, ctx);
  return (ph ? internetChecksum(ph, pdu) : internetChecksum(pdu)) === 0;
}

/** The IPv4 header checksum of a header whose checksum field (bytes 10–11) is read as zero. */
export function ipv4HeaderChecksum(header: Uint8Array): number {
  const h = header.slice();
  h[10] = h[11] = 0;
  return internetChecksum(h);
}
