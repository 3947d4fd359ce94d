/**
 * VRRP v2/v3 PDU encode/decode (RFC 3768 §5, RFC 5798 §5) and the complete IPv4 packet our
 * IP_HDRINCL send socket transmits (IPv4 header [+ AH] + PDU). IPv6 sends the PDU alone.
 */

import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "../net/addr.ts";
import { AH_HEADER_LEN, decodeAhHeader, encodeAhHeader, signAh } from "./ah.ts";
import type { AhHeader } from "./ah.ts";
import { IPPROTO_AH, IPPROTO_VRRP, ipv4HeaderChecksum, vrrpChecksum } from "./checksum.ts";
import type { VrrpChecksumContext } from "./checksum.ts";
import { AUTH_AH, AUTH_NONE } from "./types.ts";
import type { Advert, Family, VrrpVersion } from "./types.ts";

export const VRRP_TYPE_ADVERT = 1;
export const VRRP_HEADER_LEN = 8;
export const VRRP_AUTH_LEN = 8;
export const IPV4_HEADER_LEN = 20;
/** TTL / hop limit every multicast advert carries and receivers require. */
export const VRRP_TTL = 255;
/** IPv4 TOS "internetwork control" keepalived sets on adverts. */
export const VRRP_TOS = 0xc0;
export const VRRP_MCAST_V4 = "224.0.0.18";
export const VRRP_MCAST_V6 = "ff02::12";

/** What an advert says; the codec fills in count, checksum and (for v3) zero auth fields. */
export interface AdvertFields {
  version: VrrpVersion;
  vrid: number;
  priority: number;
  /** Interval in centiseconds; v2 sends whole seconds (cs / 100, truncated, as keepalived does). */
  adverIntCs: number;
  /** VIPs in config order, as text of the PDU's family. */
  addresses: string[];
  /** v2 only: 0 none, 1 PASS, 2 AH. */
  authType?: number;
  /** v2 with PASS: the 8-byte zero-padded password (see passwordBytes). */
  authData?: Uint8Array;
  /** Defaults to 1 (ADVERTISEMENT); other values only for tests. */
  type?: number;
}

/** A decoded IPv4 header. */
export interface Ipv4Header {
  version: number;
  /** Header length in bytes (IHL × 4). */
  headerLen: number;
  tos: number;
  totalLength: number;
  id: number;
  /** Flags and fragment offset as one 16-bit field. */
  fragOff: number;
  ttl: number;
  protocol: number;
  checksum: number;
  src: Uint8Array;
  dst: Uint8Array;
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** keepalived's auth key: the password's bytes, truncated / zero-padded to 8 (used for PASS and AH). */
export function passwordBytes(password: string): Uint8Array {
  const out = new Uint8Array(VRRP_AUTH_LEN);
  out.set(new TextEncoder().encode(password).subarray(0, VRRP_AUTH_LEN));
  return out;
}

/** Bytes per address of a family. */
export function addrLen(family: Family): number {
  return family === "inet" ? 4 : 16;
}

/** The PDU length for `count` addresses: header + addresses (+ 8 auth bytes for v2 over IPv4). */
export function pduLength(family: Family, version: number, count: number): number {
  return VRRP_HEADER_LEN + count * addrLen(family) + (family === "inet" && version === 2 ? VRRP_AUTH_LEN : 0);
}

function addrBytes(text: string, family: Family): Uint8Array {
  const b = family === "inet" ? parseIPv4(text) : parseIPv6(text);
  if (!b) throw new RangeError(`not an ${family === "inet" ? "IPv4" : "IPv6"} address: ${text}`);
  return b;
}

/** Encodes a PDU with its checksum field zero. Throws RangeError on fields that cannot be encoded. */
export function encodePdu(a: AdvertFields, family: Family): Uint8Array {
  if (a.addresses.length > 255) throw new RangeError("at most 255 addresses fit in an advert");
  if (!(a.vrid >= 0 && a.vrid <= 255 && a.priority >= 0 && a.priority <= 255)) throw new RangeError("vrid/priority out of range");
  const pdu = new Uint8Array(pduLength(family, a.version, a.addresses.length));
  pdu[0] = (a.version << 4) | ((a.type ?? VRRP_TYPE_ADVERT) & 0x0f);
  pdu[1] = a.vrid;
  pdu[2] = a.priority;
  pdu[3] = a.addresses.length;
  if (a.version === 2) {
    pdu[4] = a.authType ?? AUTH_NONE;
    pdu[5] = Math.floor(a.adverIntCs / 100) & 0xff;
  } else {
    const cs = a.adverIntCs & 0x0fff; // reserved high bits stay zero
    pdu[4] = cs >> 8;
    pdu[5] = cs & 0xff;
  }
  const alen = addrLen(family);
  a.addresses.forEach((text, i) => pdu.set(addrBytes(text, family), VRRP_HEADER_LEN + i * alen));
  if (family === "inet" && a.version === 2 && a.authData) {
    pdu.set(a.authData.subarray(0, VRRP_AUTH_LEN), pdu.length - VRRP_AUTH_LEN);
  }
  return pdu;
}

/** Encodes a PDU and fills in the checksum the context calls for (see vrrpChecksum). */
export function encodeAdvert(a: AdvertFields, ctx: VrrpChecksumContext): Uint8Array {
  const pdu = encodePdu(a, ctx.family);
  setChecksum(pdu, vrrpChecksum(pdu, ctx));
  return pdu;
}

function setChecksum(pdu: Uint8Array, sum: number): void {
  pdu[6] = sum >> 8;
  pdu[7] = sum & 0xff;
}

/**
 * Decodes a PDU at the start of `bytes` (trailing bytes such as padding are ignored).
 * Fails, never throws, when the bytes are too short for the header or for Count addresses.
 */
export function decodePdu(bytes: Uint8Array, fam: Family): DecodeResult<Advert> {
  if (bytes.length < VRRP_HEADER_LEN) return { ok: false, error: `VRRP header needs 8 bytes, have ${bytes.length}` };
  const version = bytes[0]! >> 4;
  const count = bytes[3]!;
  const need = pduLength(fam, version, count);
  if (bytes.length < need) return { ok: false, error: `VRRP packet with ${count} addresses needs ${need} bytes, have ${bytes.length}` };
  const alen = addrLen(fam);
  const addresses: string[] = [];
  for (let i = 0; i < count; i++) {
    const off = VRRP_HEADER_LEN + i * alen;
    addresses.push(fam === "inet" ? formatIPv4(bytes, off) : formatIPv6(bytes, off));
  }
  const v2 = version === 2;
  const hasAuth = fam === "inet" && v2;
  return {
    ok: true,
    value: {
      version: version as VrrpVersion,
      type: bytes[0]! & 0x0f,
      vrid: bytes[1]!,
      priority: bytes[2]!,
      count,
      authType: v2 ? bytes[4]! : 0,
      adverIntCs: v2 ? bytes[5]! * 100 : ((bytes[4]! << 8) | bytes[5]!) & 0x0fff,
      checksum: (bytes[6]! << 8) | bytes[7]!,
      addresses,
      authData: hasAuth ? bytes.slice(need - VRRP_AUTH_LEN, need) : new Uint8Array(0),
    },
  };
}

/** Encodes a 20-byte IPv4 header (no options) with its header checksum filled in. */
export function encodeIpv4Header(h: {
  tos?: number; totalLength: number; id: number; fragOff?: number; ttl: number; protocol: number; src: Uint8Array; dst: Uint8Array;
}): Uint8Array {
  const b = new Uint8Array(IPV4_HEADER_LEN);
  const dv = new DataView(b.buffer);
  b[0] = 0x45;
  b[1] = h.tos ?? VRRP_TOS;
  dv.setUint16(2, h.totalLength);
  dv.setUint16(4, h.id & 0xffff);
  dv.setUint16(6, h.fragOff ?? 0);
  b[8] = h.ttl;
  b[9] = h.protocol;
  b.set(h.src.subarray(0, 4), 12);
  b.set(h.dst.subarray(0, 4), 16);
  dv.setUint16(10, ipv4HeaderChecksum(b));
  return b;
}

/** Decodes the IPv4 header at the start of `data`; null if too short, not version 4, or IHL < 5. */
export function decodeIpv4Header(data: Uint8Array): Ipv4Header | null {
  if (data.length < IPV4_HEADER_LEN) return null;
  const version = data[0]! >> 4;
  const headerLen = (data[0]! & 0x0f) * 4;
  if (version !== 4 || headerLen < IPV4_HEADER_LEN || data.length < headerLen) return null;
  const be16 = (o: number): number => (data[o]! << 8) | data[o + 1]!;
  return {
    version, headerLen, tos: data[1]!, totalLength: be16(2), id: be16(4), fragOff: be16(6), ttl: data[8]!,
    protocol: data[9]!, checksum: be16(10), src: data.slice(12, 16), dst: data.slice(16, 20),
  };
}

/** The next IPv4 id for an instance: increments and skips 0 (the kernel would fill in a 0 id itself). */
export function nextIpId(id: number): number {
  const n = (id + 1) & 0xffff;
  return n === 0 ? 1 : n;
}

/** Per-packet IPv4 fields of an advert. */
export interface Ipv4AdvertOptions {
  src: string;
  /** 224.0.0.18 or one unicast peer (one packet per peer). */
  dst: string;
  /** This advert's IP id (see nextIpId). */
  id: number;
  /** 255 unless unicast_ttl is configured. */
  ttl?: number;
  v3ChecksumAsV2?: boolean;
  /** AH (VRRPv2 auth_type AH): key from passwordBytes, this advert's sequence number, unicast zeroes TTL in the ICV. */
  ah?: { key: Uint8Array; seq: number; unicast: boolean };
}

/**
 * Builds the complete IPv4 packet for the raw IP_HDRINCL socket: header (TOS 0xC0, DF=0,
 * TTL 255, proto 112 or 51, header checksum), the AH header when `opts.ah` is set, and the PDU.
 */
export function buildIpv4Advert(a: AdvertFields, opts: Ipv4AdvertOptions): Uint8Array {
  const src = addrBytes(opts.src, "inet");
  const dst = addrBytes(opts.dst, "inet");
  const fields: AdvertFields = opts.ah ? { ...a, authType: AUTH_AH, authData: undefined } : a;
  const pdu = encodeAdvert(fields, { version: a.version, family: "inet", src, dst, v3ChecksumAsV2: opts.v3ChecksumAsV2 });
  const ahLen = opts.ah ? AH_HEADER_LEN : 0;
  const ip = encodeIpv4Header({
    totalLength: IPV4_HEADER_LEN + ahLen + pdu.length, id: opts.id, ttl: opts.ttl ?? VRRP_TTL,
    protocol: opts.ah ? IPPROTO_AH : IPPROTO_VRRP, src, dst,
  });
  const packet = new Uint8Array(ip.length + ahLen + pdu.length);
  packet.set(ip, 0);
  if (opts.ah) {
    const spi = new DataView(src.buffer, src.byteOffset).getUint32(0);
    packet.set(encodeAhHeader(IPPROTO_VRRP, spi, opts.ah.seq), ip.length);
  }
  packet.set(pdu, ip.length + ahLen);
  if (opts.ah) signAh(packet, IPV4_HEADER_LEN, opts.ah.key, opts.ah.unicast);
  return packet;
}

/** The PDU our IPv6 socket sends: checksum zero, the kernel fills it in (IPV6_CHECKSUM offset 6). */
export function buildIpv6Advert(a: AdvertFields): Uint8Array {
  return encodePdu(a, "inet6");
}

/** A complete IPv4 advert split into its parts. */
export interface Ipv4Advert {
  ip: Ipv4Header;
  ah: AhHeader | null;
  advert: Advert;
  /** The PDU bytes (exactly the advert's length). */
  pdu: Uint8Array;
}

/**
 * Splits a complete IPv4 packet (header [+ AH] + PDU) without judging it: no checksum,
 * TTL or auth checks (see validate.ts for those). Fails, never throws, on short input.
 */
export function decodeIpv4Advert(packet: Uint8Array): DecodeResult<Ipv4Advert> {
  const ip = decodeIpv4Header(packet);
  if (!ip) return { ok: false, error: "not a complete IPv4 header" };
  const ah = ip.protocol === IPPROTO_AH ? decodeAhHeader(packet, ip.headerLen) : null;
  if (ip.protocol === IPPROTO_AH && !ah) return { ok: false, error: "truncated AH header" };
  const off = ip.headerLen + (ah ? AH_HEADER_LEN : 0);
  const d = decodePdu(packet.subarray(off), "inet");
  if (!d.ok) return d;
  const pdu = packet.slice(off, off + pduLength("inet", d.value.version, d.value.count));
  return { ok: true, value: { ip, ah, advert: d.value, pdu } };
}
