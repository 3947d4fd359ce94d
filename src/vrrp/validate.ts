/**
 * Receive validation of VRRP adverts in keepalived's order (reference §2.6), as pure
 * functions: parseReceived finds the headers and the VRID (for demux), validateAdvert
 * applies one instance's rules. Every drop names the VrrpStats counter it increments;
 * malformed input of any kind yields a drop, never an exception.
 */

import { timingSafeEqual } from "node:crypto";
import { addrEqual, formatIPv4, isMulticast, parseIp, parseIPv4 } from "../net/addr.ts";
import { AH_HEADER_LEN, decodeAhHeader, verifyAh } from "./ah.ts";
import type { AhHeader } from "./ah.ts";
import { IPPROTO_AH, IPPROTO_VRRP, vrrpChecksumOk } from "./checksum.ts";
import type { VrrpChecksumContext } from "./checksum.ts";
import {
  decodeIpv4Header, decodePdu, pduLength, VRRP_AUTH_LEN, VRRP_HEADER_LEN, VRRP_MCAST_V4, VRRP_TTL, VRRP_TYPE_ADVERT,
} from "./codec.ts";
import type { Ipv4Header } from "./codec.ts";
import { AUTH_AH, AUTH_NONE, AUTH_PASS } from "./types.ts";
import type { Advert, AuthType, Family, RxMeta, StatName, VrrpVersion } from "./types.ts";

/** Ethernet minimum frame payload (ETH_ZLEN − ETH_HLEN): shorter packets arrive padded. */
const MIN_ETH_PAYLOAD = 46;
const VLAN_TAG_SIZE = 4;

/** A received packet whose headers were located; the PDU is not yet checked. */
export interface ReceivedPacket {
  family: Family;
  /** The whole buffer as read: IPv4 header onwards for IPv4, the PDU for IPv6. */
  data: Uint8Array;
  /** The IPv4 header (null for IPv6). */
  ip: Ipv4Header | null;
  /** The AH header when the IPv4 protocol is 51. */
  ah: AhHeader | null;
  /** Offset of the VRRP PDU in `data`. */
  pduOffset: number;
  /** Header fields, read for demultiplexing. */
  vrid: number;
  version: number;
}

/** A dropped packet: the counter to increment and a log line in keepalived's wording. */
export interface Drop {
  ok: false;
  reason: StatName;
  message: string;
  /** Every counter to increment, `reason` included (keepalived counts advert_rcvd before the unicast-source check). */
  counters: StatName[];
  /** Set when AH verified before a later check failed: keepalived already recorded this seq. */
  ahSeq?: number;
}

/** An accepted advert. */
export interface Accepted {
  ok: true;
  advert: Advert;
  /** Logged but accepted (address list or v3 interval mismatch). */
  warnings: string[];
  /** Counters to increment: advert_rcvd, and addr_list_err / pri_zero_rcvd when they apply. */
  counters: StatName[];
  /** AH sequence number to record as the instance's last accepted one. */
  ahSeq?: number;
  /** True when the v3 checksum only verified in the pre-1.3.6 unicast form: switch to it for sending too. */
  oldUnicastChecksum?: boolean;
}

export type ParseResult = { ok: true; packet: ReceivedPacket } | Drop;
export type ValidateResult = Accepted | Drop;

/** A unicast peer as the receive path needs it. */
export interface RxPeer {
  address: string;
  /** Accepted TTL/hop-limit range (default 0..255). */
  minTtl?: number;
  maxTtl?: number;
}

/** What one instance knows to judge an advert. */
export interface RxConfig {
  /** Instance name for log lines ("VI_1"). */
  iname: string;
  family: Family;
  version: VrrpVersion;
  vrid: number;
  /** 0 none, 1 PASS, 2 AH (always 0 for v3). */
  authType: AuthType;
  /** 8-byte zero-padded auth_pass (passwordBytes); ignored for AUTH_NONE. */
  authKey: Uint8Array;
  /** Configured advert_int in centiseconds. */
  adverIntCs: number;
  /** Configured VIPs, in the instance's family. */
  vips: string[];
  /** True when the instance uses unicast peers. */
  unicast: boolean;
  peers: RxPeer[];
  /** check_unicast_src (instance) or vrrp_check_unicast_src (global). */
  checkUnicastSrc: boolean;
  v3ChecksumAsV2: boolean;
  ownerIgnoreAdverts: boolean;
  /** False when skip_check_adv_addr is set and the sender is the current master. */
  checkVipAddrs: boolean;
  /** Pre-1.3.6 unicast v3 checksum: "auto" detects it (keepalived's default), "on" uses it, "never" refuses it. */
  oldUnicastChecksum?: "auto" | "on" | "never";
  /** Also verify IPv6 checksums (the kernel already does with IPV6_CHECKSUM). Needs meta.src/dst. */
  verifyIpv6Checksum?: boolean;
}

/** The instance state the checks read. */
export interface RxState {
  effectivePriority: number;
  /** Last accepted AH sequence number (0 initially). */
  lastAhSeq: number;
}

function drop(reason: StatName, message: string, extra: Partial<Drop> = {}): Drop {
  return { ok: false, reason, message, counters: [...(extra.counters ?? []), reason], ...(extra.ahSeq !== undefined ? { ahSeq: extra.ahSeq } : {}) };
}

/**
 * Locates the IPv4 header, the AH header and the VRRP header (first step of keepalived's
 * receive path, before the VRID lookup). Too-short or non-IPv4 data drops as packet_len_err.
 */
export function parseReceived(data: Uint8Array, meta: RxMeta): ParseResult {
  if (meta.family === "inet6") {
    if (data.length < VRRP_HEADER_LEN) return drop("packet_len_err", `IPv6 VRRP packet too short - ${data.length} bytes`);
    return { ok: true, packet: { family: "inet6", data, ip: null, ah: null, pduOffset: 0, vrid: data[1]!, version: data[0]! >> 4 } };
  }
  const ip = decodeIpv4Header(data);
  if (!ip) {
    if (data.length >= 1 && data[0]! >> 4 !== 4) return drop("packet_len_err", `not an IPv4 packet (version ${data[0]! >> 4})`);
    return drop("packet_len_err", `IPv4 VRRP packet too short - ${data.length} bytes`);
  }
  if (data.length < ip.headerLen + VRRP_HEADER_LEN) return drop("packet_len_err", `IPv4 VRRP packet too short - ${data.length} bytes`);
  let ah: AhHeader | null = null;
  let pduOffset = ip.headerLen;
  if (ip.protocol === IPPROTO_AH) {
    if (data.length < ip.headerLen + AH_HEADER_LEN + VRRP_HEADER_LEN) {
      return drop("packet_len_err", `IPv4 VRRP packet with AH too short - ${data.length} bytes`);
    }
    ah = decodeAhHeader(data, ip.headerLen);
    pduOffset += AH_HEADER_LEN;
  }
  return { ok: true, packet: { family: "inet", data, ip, ah, pduOffset, vrid: data[pduOffset + 1]!, version: data[pduOffset]! >> 4 } };
}

/**
 * keepalived's Ethernet padding allowance: frames are padded to 60 bytes (46 after the
 * Ethernet header), VLAN tags make the amount checkable only modulo 4. `bound` is the
 * length that must be under the minimum (the expected length, or the received length
 * for the IPv4 tot_len check, where keepalived allows equality).
 */
function isPadding(expected: number, got: number, boundOk: boolean): boolean {
  const pad = got - expected;
  return boundOk && pad > 0 && pad % VLAN_TAG_SIZE === (VLAN_TAG_SIZE - (MIN_ETH_PAYLOAD % VLAN_TAG_SIZE)) % VLAN_TAG_SIZE;
}

function sameAddr(a: string, b: string): boolean {
  const x = parseIp(a);
  const y = parseIp(b);
  return x !== null && y !== null && addrEqual(x.bytes, y.bytes);
}

/**
 * Applies one instance's receive checks to a parsed packet, in keepalived's order
 * (reference §2.6). `meta` supplies what the socket learnt: the IPv6 source, hop limit and
 * destination (IPv4 takes them from the header).
 */
export function validateAdvert(pkt: ReceivedPacket, meta: RxMeta, rx: RxConfig, state: RxState): ValidateResult {
  const name = rx.iname;
  const data = pkt.data;
  const ip = pkt.ip;
  const from = ip ? formatIPv4(ip.src) : meta.src;

  if (pkt.family !== rx.family) return drop("packet_len_err", `(${name}) ${pkt.family} packet on an ${rx.family} instance from ${from}`);
  if (pkt.vrid !== rx.vrid) return drop("vrid_err", `(${name}) VRID ${pkt.vrid} received from ${from}, expecting ${rx.vrid}`);

  if (!ip && rx.authType !== AUTH_NONE) {
    return drop("authtype_mismatch", `(${name}) authentication is not supported over IPv6`);
  }

  // AH present exactly when configured
  if (ip && (ip.protocol === IPPROTO_AH) !== (rx.authType === AUTH_AH)) {
    return drop("authtype_mismatch", ip.protocol === IPPROTO_AH
      ? `(${name}) Received AH header but auth type not AH from ${from}`
      : `(${name}) No AH header but auth type is AH from ${from}`);
  }

  // 1. length: headers + N addresses (+ auth bytes), Ethernet padding tolerated
  const pduLen = pduLength(pkt.family, pkt.version, data[pkt.pduOffset + 3]!);
  const expected = pkt.pduOffset + pduLen;
  if (data.length !== expected && !isPadding(expected, data.length, expected < MIN_ETH_PAYLOAD)) {
    return drop("packet_len_err", `(${name}) vrrp packet from ${from} too ${data.length > expected ? "long" : "short"}, length ${data.length} and expect ${expected}`);
  }
  const pdu = data.subarray(pkt.pduOffset, expected);

  // 2. TTL / hop limit 255, multicast only (-1 = not received)
  const ttl = ip ? ip.ttl : meta.ttl;
  if (!rx.unicast && ttl >= 0 && ttl !== VRRP_TTL) {
    return drop("ip_ttl_err", `(${name}) invalid TTL/HL from ${from}. Received ${ttl} and expect ${VRRP_TTL}`);
  }

  // 3. version
  if (pkt.version !== rx.version) {
    return drop("version_err", `(${name}) wrong VRRP version from ${from}. Received ${pkt.version} and expect ${rx.version}`);
  }

  // 5. v2 authentication and interval
  let ahSeq: number | undefined;
  if (rx.version === 2) {
    const authType = pdu[4]!;
    if (authType !== AUTH_NONE && authType !== AUTH_PASS && authType !== AUTH_AH) {
      return drop("invalid_authtype", `(${name}) Invalid auth type from ${from}: ${authType}`);
    }
    if (authType !== rx.authType) {
      return drop("authtype_mismatch", `(${name}) received a ${authType} auth from ${from}, expecting ${rx.authType}!`);
    }
    if (rx.authType === AUTH_PASS) {
      const pw = pdu.subarray(pdu.length - VRRP_AUTH_LEN);
      const key = new Uint8Array(VRRP_AUTH_LEN);
      key.set(rx.authKey.subarray(0, VRRP_AUTH_LEN));
      if (pw.length !== VRRP_AUTH_LEN || !timingSafeEqual(pw, key)) {
        return drop("auth_failure", `(${name}) received an invalid passwd from ${from}!`);
      }
    } else if (rx.authType === AUTH_AH && ip && pkt.ah) {
      if (pkt.ah.nextHeader !== IPPROTO_VRRP) {
        return drop("ah_next_header_err", `(${name}) AH header for protocol ${pkt.ah.nextHeader} from ${from} ignored`);
      }
      const check = verifyAh(data.subarray(0, expected), ip.headerLen, rx.authKey, rx.unicast, state.lastAhSeq, name);
      if (!check.ok) return drop(check.failure === "seq" ? "ah_seq_err" : "auth_failure", check.message);
      ahSeq = check.seq;
    }
    const advInt = pdu[5]!;
    if (rx.adverIntCs !== advInt * 100) {
      return drop("advert_interval_err", `(${name}) advertisement interval mismatch with ${from} mine=${Math.floor(rx.adverIntCs / 100)} sec rcv'd=${advInt} sec`, { ahSeq });
    }
  }

  // 6. type
  const type = pdu[0]! & 0x0f;
  if (type !== VRRP_TYPE_ADVERT) {
    return drop("invalid_type_rcvd", `(${name}) Invalid packet type from ${from}. ${type} and expect ${VRRP_TYPE_ADVERT}`, { ahSeq });
  }

  // 7. IPv4 total length against what was received
  if (ip && ip.totalLength !== data.length && !isPadding(ip.totalLength, data.length, data.length <= MIN_ETH_PAYLOAD)) {
    return drop("packet_len_err", `(${name}) ip_tot_len mismatch against received length from ${from}. ${ip.totalLength} and received ${data.length}`, { ahSeq });
  }

  const warnings: string[] = [];
  // 8. v3 interval mismatch: logged only
  if (rx.version === 3) {
    const advIntCs = ((pdu[4]! << 8) | pdu[5]!) & 0x0fff;
    if (advIntCs !== rx.adverIntCs) {
      warnings.push(`(${name}) advertisement interval mismatch ours = ${rx.adverIntCs} centi-sec rcv'd=${advIntCs} centi-sec`);
    }
  }

  // 9. checksum (IPv4; IPv6 is the kernel's job unless asked)
  let oldUnicastChecksum = false;
  const v6Check = !ip && rx.verifyIpv6Checksum;
  if (ip || v6Check) {
    const src = ip ? ip.src : parseIp(meta.src)?.bytes;
    const dst = ip ? ip.dst : parseIp(meta.dst)?.bytes;
    let ok = false;
    if (src && dst && src.length === dst.length) {
      const ctx: VrrpChecksumContext = { version: rx.version, family: pkt.family, src, dst, v3ChecksumAsV2: rx.v3ChecksumAsV2 };
      const mcastCtx = { ...ctx, dst: parseIPv4(VRRP_MCAST_V4)! };
      const oldMode = rx.oldUnicastChecksum ?? "auto";
      if (ip && rx.version === 3 && rx.unicast && oldMode === "on") ok = vrrpChecksumOk(pdu, mcastCtx);
      else ok = vrrpChecksumOk(pdu, ctx);
      // v3_checksum_as_v2 peers may send either form; accept both
      if (!ok && ip && rx.version === 3 && rx.v3ChecksumAsV2) ok = vrrpChecksumOk(pdu, { ...ctx, v3ChecksumAsV2: false });
      if (!ok && ip && rx.version === 3 && rx.unicast && oldMode === "auto" && !rx.v3ChecksumAsV2 && !isMulticast(dst)) {
        ok = oldUnicastChecksum = vrrpChecksumOk(pdu, mcastCtx);
        if (ok) warnings.push(`(${name}) Setting unicast VRRPv3 checksum to old version`);
      }
    }
    if (!ok) return drop("checksum_err", `(${name}) Invalid VRRPv${rx.version} checksum from ${from}`, { ahSeq });
  }

  // 10. multicast-ness must match the instance's mode
  const dstBytes = ip ? ip.dst : parseIp(meta.dst)?.bytes;
  const multicast = dstBytes ? isMulticast(dstBytes) : false;
  if (multicast === rx.unicast) {
    return drop("mcast_mode_err", `(${name}) Expected ${rx.unicast ? "un" : "mult"}icast packet but received ${rx.unicast ? "mult" : "un"}icast packet from ${from}`, { ahSeq });
  }

  // 11. address owner ignoring adverts
  if (rx.ownerIgnoreAdverts && state.effectivePriority === 255) {
    return drop("owner_ignored", `(${name}) Dropping packet(s) from ${from} since we are address owner`, { ahSeq });
  }

  // 12. a real advert from here on
  const decoded = decodePdu(pdu, pkt.family);
  if (!decoded.ok) return drop("packet_len_err", `(${name}) ${decoded.error}`, { ahSeq });
  const advert = decoded.value;
  const counters: StatName[] = ["advert_rcvd"];
  if (advert.count !== rx.vips.length) {
    warnings.push(`(${name}) expected ${rx.vips.length} VIPs but received ${advert.count}`);
    counters.push("addr_list_err");
  } else if (rx.checkVipAddrs) {
    const missing = rx.vips.find((v) => !advert.addresses.some((a) => sameAddr(a, v)));
    if (missing !== undefined) {
      warnings.push(`(${name}) ip address associated with VRID ${rx.vrid} not present in advert from ${from}: ${missing}`);
      counters.push("addr_list_err");
    }
  }

  // 13. unicast source must be a peer (and its TTL within range)
  const ttlLimited = rx.peers.some((p) => p.minTtl !== undefined || p.maxTtl !== undefined);
  if (rx.unicast && (rx.checkUnicastSrc || ttlLimited)) {
    const peer = rx.peers.find((p) => sameAddr(p.address, from));
    if (!peer) return drop("unicast_src_err", `(${name}) unicast source address ${from} not a unicast peer`, { ahSeq, counters });
    const min = peer.minTtl ?? 0;
    const max = peer.maxTtl ?? 255;
    if (ttl >= 0 && (ttl < min || ttl > max)) {
      return drop("ip_ttl_err", `(${name}) TTL/HL ${ttl} from ${from} not in range [${min}, ${max}]`, { ahSeq, counters });
    }
  }

  if (advert.priority === 0) counters.push("pri_zero_rcvd");
  const result: Accepted = { ok: true, advert, warnings, counters };
  if (ahSeq !== undefined) result.ahSeq = ahSeq;
  if (oldUnicastChecksum) result.oldUnicastChecksum = true;
  return result;
}
