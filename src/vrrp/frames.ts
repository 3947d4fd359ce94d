/**
 * Gratuitous ARP and unsolicited Neighbour Advertisement frames announcing a VIP, as
 * keepalived sends them (reference §2.7), plus decoders for tests and diagnostics.
 */

import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "../net/addr.ts";
import { IPPROTO_ICMPV6, internetChecksum, ipv6PseudoHeader } from "./checksum.ts";

export const ETH_HLEN = 14;
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_IPV6 = 0x86dd;
export const ARP_BODY_LEN = 28;
export const ARPHRD_ETHER = 1;
export const ARPOP_REQUEST = 1;
export const ICMPV6_NA = 136;
/** ICMPv6 NA (24 bytes) + Target Link-Layer Address option (8 bytes). */
export const NA_BODY_LEN = 32;
export const NA_FLAG_ROUTER = 0x80;
export const NA_FLAG_SOLICITED = 0x40;
export const NA_FLAG_OVERRIDE = 0x20;

const BROADCAST_MAC = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
/** ff02::1 (all nodes) and its Ethernet group address 33:33:00:00:00:01. */
const ALL_NODES = parseIPv6("ff02::1")!;
const ALL_NODES_MAC = new Uint8Array([0x33, 0x33, 0, 0, 0, 1]);

function v4(text: string): Uint8Array {
  const b = parseIPv4(text);
  if (!b) throw new RangeError(`not an IPv4 address: ${text}`);
  return b;
}

function v6(text: string): Uint8Array {
  const b = parseIPv6(text);
  if (!b) throw new RangeError(`not an IPv6 address: ${text}`);
  return b;
}

function checkMac(mac: Uint8Array): void {
  if (mac.length !== 6) throw new RangeError("a MAC address has 6 bytes");
}

/** An Ethernet II frame: dst, src, ethertype, payload. */
export function ethernetFrame(dst: Uint8Array, src: Uint8Array, etherType: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(ETH_HLEN + payload.length);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = etherType >> 8;
  f[13] = etherType & 0xff;
  f.set(payload, ETH_HLEN);
  return f;
}

/**
 * The 28-byte gratuitous ARP body for `vip` (what an AF_PACKET SOCK_DGRAM socket sends):
 * request, sender = (mac, vip), target = (ff:ff:ff:ff:ff:ff, vip). `hwType` is the interface's ARPHRD.
 */
export function garpBody(mac: Uint8Array, vip: string, hwType = ARPHRD_ETHER): Uint8Array {
  checkMac(mac);
  const ip = v4(vip);
  const b = new Uint8Array(ARP_BODY_LEN);
  b[0] = hwType >> 8;
  b[1] = hwType & 0xff;
  b[2] = ETH_P_IP >> 8;
  b[3] = ETH_P_IP & 0xff;
  b[4] = 6;
  b[5] = 4;
  b[7] = ARPOP_REQUEST;
  b.set(mac, 8);
  b.set(ip, 14);
  b.set(BROADCAST_MAC, 18);
  b.set(ip, 24);
  return b;
}

/** The whole GARP Ethernet frame: broadcast destination, source `mac`, ethertype ARP. */
export function garpFrame(mac: Uint8Array, vip: string): Uint8Array {
  return ethernetFrame(BROADCAST_MAC, mac, ETH_P_ARP, garpBody(mac, vip));
}

/**
 * The 32-byte ICMPv6 unsolicited NA for `vip` from `vip` to ff02::1: Override flag (+ Router
 * when `router`), target = vip, TLLA option = mac, checksum over the IPv6 pseudo-header.
 */
export function naBody(mac: Uint8Array, vip: string, router: boolean): Uint8Array {
  checkMac(mac);
  const target = v6(vip);
  const b = new Uint8Array(NA_BODY_LEN);
  b[0] = ICMPV6_NA;
  b[4] = NA_FLAG_OVERRIDE | (router ? NA_FLAG_ROUTER : 0);
  b.set(target, 8);
  b[24] = 2; // option: Target Link-Layer Address
  b[25] = 1; // length in units of 8 bytes
  b.set(mac, 26);
  const sum = internetChecksum(ipv6PseudoHeader(target, ALL_NODES, IPPROTO_ICMPV6, b.length), b);
  b[2] = sum >> 8;
  b[3] = sum & 0xff;
  return b;
}

/** The whole NA Ethernet frame: 33:33:00:00:00:01 ← mac, IPv6 vip → ff02::1, hop limit 255. */
export function naFrame(mac: Uint8Array, vip: string, router: boolean): Uint8Array {
  const body = naBody(mac, vip, router);
  const ip6 = new Uint8Array(40 + body.length);
  ip6[0] = 0x60;
  ip6[4] = body.length >> 8;
  ip6[5] = body.length & 0xff;
  ip6[6] = IPPROTO_ICMPV6;
  ip6[7] = 255;
  ip6.set(v6(vip), 8);
  ip6.set(ALL_NODES, 24);
  ip6.set(body, 40);
  return ethernetFrame(ALL_NODES_MAC, mac, ETH_P_IPV6, ip6);
}

/** A decoded ARP body (Ethernet/IPv4 only). */
export interface ArpPacket {
  hwType: number;
  protoType: number;
  op: number;
  senderMac: Uint8Array;
  senderIp: string;
  targetMac: Uint8Array;
  targetIp: string;
}

/** Decodes a 28-byte Ethernet/IPv4 ARP body; null if it is not one. */
export function decodeArp(body: Uint8Array): ArpPacket | null {
  if (body.length < ARP_BODY_LEN || body[4] !== 6 || body[5] !== 4) return null;
  return {
    hwType: (body[0]! << 8) | body[1]!, protoType: (body[2]! << 8) | body[3]!, op: (body[6]! << 8) | body[7]!,
    senderMac: body.slice(8, 14), senderIp: formatIPv4(body, 14), targetMac: body.slice(18, 24), targetIp: formatIPv4(body, 24),
  };
}

/** A decoded unsolicited NA (IPv6 header + ICMPv6 body). */
export interface NaPacket {
  src: string;
  dst: string;
  hopLimit: number;
  flags: number;
  target: string;
  /** The Target Link-Layer Address option, if present. */
  tlla: Uint8Array | null;
  checksum: number;
  /** True when the ICMPv6 checksum verifies over the IPv6 pseudo-header. */
  checksumOk: boolean;
}

/** Decodes an IPv6 packet carrying an ICMPv6 NA; null if it is not one. */
export function decodeNa(ip6: Uint8Array): NaPacket | null {
  if (ip6.length < 40 + 24 || ip6[0]! >> 4 !== 6 || ip6[6] !== IPPROTO_ICMPV6) return null;
  const plen = (ip6[4]! << 8) | ip6[5]!;
  if (ip6.length < 40 + plen || plen < 24) return null;
  const body = ip6.subarray(40, 40 + plen);
  if (body[0] !== ICMPV6_NA) return null;
  let tlla: Uint8Array | null = null;
  for (let off = 24; off + 2 <= body.length; ) {
    const len = body[off + 1]! * 8;
    if (len === 0 || off + len > body.length) break;
    if (body[off] === 2 && len >= 8) tlla = body.slice(off + 2, off + 8);
    off += len;
  }
  const sum = internetChecksum(ipv6PseudoHeader(ip6.subarray(8, 24), ip6.subarray(24, 40), IPPROTO_ICMPV6, plen), body);
  return {
    src: formatIPv6(ip6, 8), dst: formatIPv6(ip6, 24), hopLimit: ip6[7]!, flags: body[4]!, target: formatIPv6(body, 8),
    tlla, checksum: (body[2]! << 8) | body[3]!, checksumOk: sum === 0,
  };
}
