/**
 * IPVS over generic netlink: pure encoders for every IPVS command (byte-identical to
 * ipvsadm 1.31's, checked against captures in test/fixtures/ipvs), decoders for the
 * kernel's replies, and `Ipvs`, the IpvsApi implementation over a NetlinkSocket.
 * Constants are from the kernel UAPI include/uapi/linux/ip_vs.h.
 */
import { formatIp, maskToPrefixLen, parseIp, prefixMask } from "../src/net/addr.ts";
import type {
  IpFamily, IpvsApi, IpvsDaemonState, IpvsDestKey, IpvsDestination, IpvsDestinationEntry, IpvsFwdMethod, IpvsInfo,
  IpvsProtocol, IpvsService, IpvsServiceEntry, IpvsServiceKey, IpvsStats, IpvsSyncDaemon, IpvsTimeouts,
  IpvsTunnelCsum, IpvsTunnelType,
} from "../src/lvs/ipvs-types.ts";
import { serviceKeyString, destKeyString } from "../src/lvs/ipvs-types.ts";
import { AF_INET, AF_INET6, ENOENT, SysError } from "./libc.ts";
import {
  NETLINK_GENERIC, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkError, NetlinkSocket, NlAttrs, NlMsgBuilder,
  genlHeader, resolveGenlFamily,
} from "./netlink.ts";
import type { NlMsg } from "./netlink.ts";

export const IPVS_GENL_NAME = "IPVS";
export const IPVS_GENL_VERSION = 1;

// IPVS_CMD_*
export const IPVS_CMD_NEW_SERVICE = 1, IPVS_CMD_SET_SERVICE = 2, IPVS_CMD_DEL_SERVICE = 3, IPVS_CMD_GET_SERVICE = 4;
export const IPVS_CMD_NEW_DEST = 5, IPVS_CMD_SET_DEST = 6, IPVS_CMD_DEL_DEST = 7, IPVS_CMD_GET_DEST = 8;
export const IPVS_CMD_NEW_DAEMON = 9, IPVS_CMD_DEL_DAEMON = 10, IPVS_CMD_GET_DAEMON = 11;
export const IPVS_CMD_SET_CONFIG = 12, IPVS_CMD_GET_CONFIG = 13, IPVS_CMD_SET_INFO = 14, IPVS_CMD_GET_INFO = 15;
export const IPVS_CMD_ZERO = 16, IPVS_CMD_FLUSH = 17;

// IPVS_CMD_ATTR_*
export const IPVS_CMD_ATTR_SERVICE = 1, IPVS_CMD_ATTR_DEST = 2, IPVS_CMD_ATTR_DAEMON = 3;
export const IPVS_CMD_ATTR_TIMEOUT_TCP = 4, IPVS_CMD_ATTR_TIMEOUT_TCP_FIN = 5, IPVS_CMD_ATTR_TIMEOUT_UDP = 6;

// IPVS_SVC_ATTR_*
export const IPVS_SVC_ATTR_AF = 1, IPVS_SVC_ATTR_PROTOCOL = 2, IPVS_SVC_ATTR_ADDR = 3, IPVS_SVC_ATTR_PORT = 4;
export const IPVS_SVC_ATTR_FWMARK = 5, IPVS_SVC_ATTR_SCHED_NAME = 6, IPVS_SVC_ATTR_FLAGS = 7;
export const IPVS_SVC_ATTR_TIMEOUT = 8, IPVS_SVC_ATTR_NETMASK = 9, IPVS_SVC_ATTR_STATS = 10;
export const IPVS_SVC_ATTR_PE_NAME = 11, IPVS_SVC_ATTR_STATS64 = 12;

// IPVS_DEST_ATTR_*
export const IPVS_DEST_ATTR_ADDR = 1, IPVS_DEST_ATTR_PORT = 2, IPVS_DEST_ATTR_FWD_METHOD = 3;
export const IPVS_DEST_ATTR_WEIGHT = 4, IPVS_DEST_ATTR_U_THRESH = 5, IPVS_DEST_ATTR_L_THRESH = 6;
export const IPVS_DEST_ATTR_ACTIVE_CONNS = 7, IPVS_DEST_ATTR_INACT_CONNS = 8, IPVS_DEST_ATTR_PERSIST_CONNS = 9;
export const IPVS_DEST_ATTR_STATS = 10, IPVS_DEST_ATTR_ADDR_FAMILY = 11, IPVS_DEST_ATTR_STATS64 = 12;
export const IPVS_DEST_ATTR_TUN_TYPE = 13, IPVS_DEST_ATTR_TUN_PORT = 14, IPVS_DEST_ATTR_TUN_FLAGS = 15;

// IPVS_DAEMON_ATTR_*
export const IPVS_DAEMON_ATTR_STATE = 1, IPVS_DAEMON_ATTR_MCAST_IFN = 2, IPVS_DAEMON_ATTR_SYNC_ID = 3;
export const IPVS_DAEMON_ATTR_SYNC_MAXLEN = 4, IPVS_DAEMON_ATTR_MCAST_GROUP = 5, IPVS_DAEMON_ATTR_MCAST_GROUP6 = 6;
export const IPVS_DAEMON_ATTR_MCAST_PORT = 7, IPVS_DAEMON_ATTR_MCAST_TTL = 8;

// IPVS_STATS_ATTR_* and IPVS_INFO_ATTR_*
export const IPVS_STATS_ATTR_CONNS = 1, IPVS_STATS_ATTR_INPKTS = 2, IPVS_STATS_ATTR_OUTPKTS = 3;
export const IPVS_STATS_ATTR_INBYTES = 4, IPVS_STATS_ATTR_OUTBYTES = 5, IPVS_STATS_ATTR_CPS = 6;
export const IPVS_STATS_ATTR_INPPS = 7, IPVS_STATS_ATTR_OUTPPS = 8, IPVS_STATS_ATTR_INBPS = 9, IPVS_STATS_ATTR_OUTBPS = 10;
export const IPVS_INFO_ATTR_VERSION = 1, IPVS_INFO_ATTR_CONN_TAB_SIZE = 2;

// Forwarding methods (IP_VS_CONN_F_*), tunnel types and encapsulation flags, daemon states.
export const IP_VS_CONN_F_MASQ = 0, IP_VS_CONN_F_LOCALNODE = 1, IP_VS_CONN_F_TUNNEL = 2;
export const IP_VS_CONN_F_DROUTE = 3, IP_VS_CONN_F_BYPASS = 4, IP_VS_CONN_F_FWD_MASK = 7;
export const IP_VS_CONN_F_TUNNEL_TYPE_IPIP = 0, IP_VS_CONN_F_TUNNEL_TYPE_GUE = 1, IP_VS_CONN_F_TUNNEL_TYPE_GRE = 2;
export const IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM = 0, IP_VS_TUNNEL_ENCAP_FLAG_CSUM = 1, IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM = 2;
export const IP_VS_STATE_MASTER = 1, IP_VS_STATE_BACKUP = 2;

const IPPROTO: Record<IpvsProtocol, number> = { tcp: 6, udp: 17, sctp: 132 };
const FWD: Record<IpvsFwdMethod, number> = {
  NAT: IP_VS_CONN_F_MASQ, LOCAL: IP_VS_CONN_F_LOCALNODE, TUN: IP_VS_CONN_F_TUNNEL, DR: IP_VS_CONN_F_DROUTE,
  BYPASS: IP_VS_CONN_F_BYPASS,
};
const TUN_TYPE: Record<IpvsTunnelType, number> = { ipip: 0, gue: 1, gre: 2 };
const TUN_CSUM: Record<IpvsTunnelCsum, number> = { nocsum: 0, csum: 1, remcsum: 2 };

const afOf = (f: IpFamily): number => (f === "inet6" ? AF_INET6 : AF_INET);
const familyOf = (af: number | undefined): IpFamily => (af === AF_INET6 ? "inet6" : "inet");
const keyOf = <T extends number | string>(m: Record<string, T>, v: T): string | undefined =>
  Object.keys(m).find((k) => m[k] === v);

/** 16-byte union nf_inet_addr of an address (IPv4 in the first 4 bytes, as ipvsadm sends it). */
function inetAddr(address: string): Uint8Array {
  const a = parseIp(address);
  if (!a) throw new Error(`IPVS: invalid address "${address}"`);
  const out = new Uint8Array(16);
  out.set(a.bytes);
  return out;
}

/** The text of an nf_inet_addr attribute of the given family. */
function addrText(b: Uint8Array | undefined, family: IpFamily): string {
  if (!b) return family === "inet6" ? "::" : "0.0.0.0";
  return formatIp(b.subarray(0, family === "inet6" ? 16 : 4));
}

/** Full-length netmask of a family: all ones (inet) or prefix 128 (inet6), ipvsadm's default. */
function fullNetmask(family: IpFamily): number {
  return family === "inet6" ? 128 : 32;
}

/** A new IPVS request message. Requests carry NLM_F_ACK; dumps NLM_F_DUMP too, as ipvsadm's do. */
function msg(familyId: number, cmd: number, dump = false): NlMsgBuilder {
  const flags = NLM_F_REQUEST | NLM_F_ACK | (dump ? NLM_F_DUMP : 0);
  return new NlMsgBuilder(familyId, flags).bytes(genlHeader(cmd, IPVS_GENL_VERSION));
}

/** Writes the identifying attributes of a service: AF, then PROTOCOL/ADDR/PORT or FWMARK. */
function putServiceKey(b: NlMsgBuilder, k: IpvsServiceKey): void {
  b.u16(IPVS_SVC_ATTR_AF, afOf(k.family));
  if (k.fwmark !== undefined) {
    b.u32(IPVS_SVC_ATTR_FWMARK, k.fwmark);
  } else {
    b.u16(IPVS_SVC_ATTR_PROTOCOL, IPPROTO[k.protocol]);
    b.attr(IPVS_SVC_ATTR_ADDR, inetAddr(k.address));
    b.be16(IPVS_SVC_ATTR_PORT, k.port);
  }
}

/** The nested service attribute with every field, in ipvsadm's order. */
function putService(b: NlMsgBuilder, s: IpvsService): void {
  b.nest(IPVS_CMD_ATTR_SERVICE, () => {
    putServiceKey(b, s);
    b.str(IPVS_SVC_ATTR_SCHED_NAME, s.scheduler);
    if (s.peName) b.str(IPVS_SVC_ATTR_PE_NAME, s.peName);
    const flags = new Uint8Array(8);
    const v = new DataView(flags.buffer);
    v.setUint32(0, s.flags >>> 0, true);
    v.setUint32(4, 0xffffffff, true); // mask: every flag is as given
    b.attr(IPVS_SVC_ATTR_FLAGS, flags);
    b.u32(IPVS_SVC_ATTR_TIMEOUT, s.timeout);
    // IPv4: the mask itself (network order); IPv6: the prefix length.
    if (s.family === "inet6") b.u32(IPVS_SVC_ATTR_NETMASK, s.netmask);
    else b.attr(IPVS_SVC_ATTR_NETMASK, prefixMask(4, s.netmask));
  });
}

/** A service key with the empty defaults ipvsadm sends when only the key matters. */
function bareService(k: IpvsServiceKey, netmask?: number): IpvsService {
  return { ...k, scheduler: "", flags: 0, timeout: 0, netmask: netmask ?? fullNetmask(k.family) };
}

/** The nested destination attribute, in ipvsadm's order (tunnel attributes always present). */
function putDest(b: NlMsgBuilder, d: IpvsDestination): void {
  b.nest(IPVS_CMD_ATTR_DEST, () => {
    b.u16(IPVS_DEST_ATTR_ADDR_FAMILY, afOf(d.family));
    b.attr(IPVS_DEST_ATTR_ADDR, inetAddr(d.address));
    b.be16(IPVS_DEST_ATTR_PORT, d.port);
    b.u32(IPVS_DEST_ATTR_FWD_METHOD, FWD[d.fwdMethod]);
    b.u32(IPVS_DEST_ATTR_WEIGHT, d.weight);
    const t = d.fwdMethod === "TUN" ? d.tunnel : undefined;
    b.u8(IPVS_DEST_ATTR_TUN_TYPE, t ? TUN_TYPE[t.type] : 0);
    b.be16(IPVS_DEST_ATTR_TUN_PORT, t ? t.port : 0);
    b.u16(IPVS_DEST_ATTR_TUN_FLAGS, t ? TUN_CSUM[t.csum] : 0);
    b.u32(IPVS_DEST_ATTR_U_THRESH, d.uThreshold);
    b.u32(IPVS_DEST_ATTR_L_THRESH, d.lThreshold);
  });
}

// ---------------------------------------------------------------------------------------
// Encoders: one per command. `familyId` is the resolved id of the "IPVS" genl family.

/** IPVS_CMD_NEW_SERVICE (`ipvsadm -A`). */
export function encodeNewService(familyId: number, s: IpvsService): NlMsgBuilder {
  const b = msg(familyId, IPVS_CMD_NEW_SERVICE);
  putService(b, s);
  return b;
}

/** IPVS_CMD_SET_SERVICE (`ipvsadm -E`): replaces scheduler, flags, timeout, netmask, engine. */
export function encodeSetService(familyId: number, s: IpvsService): NlMsgBuilder {
  const b = msg(familyId, IPVS_CMD_SET_SERVICE);
  putService(b, s);
  return b;
}

/** IPVS_CMD_DEL_SERVICE (`ipvsadm -D`). */
export function encodeDelService(familyId: number, k: IpvsServiceKey): NlMsgBuilder {
  const b = msg(familyId, IPVS_CMD_DEL_SERVICE);
  putService(b, bareService(k));
  return b;
}

/** IPVS_CMD_GET_SERVICE for one service (`ipvsadm -L -t ...`). */
export function encodeGetService(familyId: number, k: IpvsServiceKey): NlMsgBuilder {
  const b = msg(familyId, IPVS_CMD_GET_SERVICE);
  putService(b, bareService(k, 0));
  return b;
}

/** IPVS_CMD_GET_SERVICE dump: every service. */
export function encodeGetServices(familyId: number): NlMsgBuilder {
  return msg(familyId, IPVS_CMD_GET_SERVICE, true);
}

/** IPVS_CMD_NEW_DEST (`ipvsadm -a`). */
export function encodeNewDest(familyId: number, k: IpvsServiceKey, d: IpvsDestination): NlMsgBuilder {
  const b = msg(familyId, IPVS_CMD_NEW_DEST);
  putService(b, bareService(k));
  putDest(b, d);
  return b;
}

/** IPVS_CMD_SET_DEST (`ipvsadm -e`). */
export function encodeSetDest(familyId: number, k: IpvsServiceKey, d: IpvsDestination): NlMsgBuilder {
  const b = msg(familyId, IPVS_CMD_SET_DEST);
  putService(b, bareService(k));
  putDest(b, d);
  return b;
}

/** IPVS_CMD_DEL_DEST (`ipvsadm -d`); the non-key fields carry ipvsadm's defaults (DR, weight 1). */
export function encodeDelDest(familyId: number, k: IpvsServiceKey, d: IpvsDestKey & { family?: IpFamily }): NlMsgBuilder {
  const b = msg(familyId, IPVS_CMD_DEL_DEST);
  putService(b, bareService(k));
  const family = d.family ?? parseIp(d.address)?.family ?? k.family;
  putDest(b, { family, address: d.address, port: d.port, fwdMethod: "DR", weight: 1, uThreshold: 0, lThreshold: 0 });
  return b;
}

/** IPVS_CMD_GET_DEST dump: the destinations of one service. */
export function encodeGetDests(familyId: number, k: IpvsServiceKey): NlMsgBuilder {
  const b = msg(familyId, IPVS_CMD_GET_DEST, true);
  b.nest(IPVS_CMD_ATTR_SERVICE, () => putServiceKey(b, k));
  return b;
}

/** IPVS_CMD_FLUSH (`ipvsadm -C`). */
export function encodeFlush(familyId: number): NlMsgBuilder {
  return msg(familyId, IPVS_CMD_FLUSH);
}

/** IPVS_CMD_ZERO (`ipvsadm -Z`): all counters, or one service's. */
export function encodeZero(familyId: number, k?: IpvsServiceKey): NlMsgBuilder {
  const b = msg(familyId, IPVS_CMD_ZERO);
  if (k) putService(b, bareService(k));
  return b;
}

/** IPVS_CMD_GET_INFO: version and connection table size. */
export function encodeGetInfo(familyId: number): NlMsgBuilder {
  return msg(familyId, IPVS_CMD_GET_INFO);
}

/** IPVS_CMD_GET_CONFIG: the tcp / tcpfin / udp timeouts. */
export function encodeGetConfig(familyId: number): NlMsgBuilder {
  return msg(familyId, IPVS_CMD_GET_CONFIG);
}

/** IPVS_CMD_SET_CONFIG (`ipvsadm --set tcp tcpfin udp`); a 0 or missing value is left unchanged. */
export function encodeSetConfig(familyId: number, t: Partial<IpvsTimeouts>): NlMsgBuilder {
  return msg(familyId, IPVS_CMD_SET_CONFIG)
    .u32(IPVS_CMD_ATTR_TIMEOUT_TCP, t.tcp ?? 0)
    .u32(IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, t.tcpFin ?? 0)
    .u32(IPVS_CMD_ATTR_TIMEOUT_UDP, t.udp ?? 0);
}

/** IPVS_CMD_NEW_DAEMON (`ipvsadm --start-daemon`); optional fields are sent only when set. */
export function encodeNewDaemon(familyId: number, d: IpvsSyncDaemon): NlMsgBuilder {
  const b = msg(familyId, IPVS_CMD_NEW_DAEMON);
  b.nest(IPVS_CMD_ATTR_DAEMON, () => {
    b.u32(IPVS_DAEMON_ATTR_STATE, d.state === "master" ? IP_VS_STATE_MASTER : IP_VS_STATE_BACKUP);
    b.str(IPVS_DAEMON_ATTR_MCAST_IFN, d.mcastIfn);
    b.u32(IPVS_DAEMON_ATTR_SYNC_ID, d.syncId);
    if (d.syncMaxLen) b.u16(IPVS_DAEMON_ATTR_SYNC_MAXLEN, d.syncMaxLen);
    if (d.mcastPort) b.u16(IPVS_DAEMON_ATTR_MCAST_PORT, d.mcastPort);
    if (d.mcastTtl) b.u8(IPVS_DAEMON_ATTR_MCAST_TTL, d.mcastTtl);
    if (d.mcastGroup) {
      const g = parseIp(d.mcastGroup);
      if (!g) throw new Error(`IPVS: invalid sync daemon group "${d.mcastGroup}"`);
      b.attr(g.family === "inet6" ? IPVS_DAEMON_ATTR_MCAST_GROUP6 : IPVS_DAEMON_ATTR_MCAST_GROUP, g.bytes);
    }
  });
  return b;
}

/** IPVS_CMD_DEL_DAEMON (`ipvsadm --stop-daemon master|backup`). */
export function encodeDelDaemon(familyId: number, state: IpvsDaemonState): NlMsgBuilder {
  const b = msg(familyId, IPVS_CMD_DEL_DAEMON);
  b.nest(IPVS_CMD_ATTR_DAEMON, () => {
    b.u32(IPVS_DAEMON_ATTR_STATE, state === "master" ? IP_VS_STATE_MASTER : IP_VS_STATE_BACKUP);
    b.str(IPVS_DAEMON_ATTR_MCAST_IFN, "");
    b.u32(IPVS_DAEMON_ATTR_SYNC_ID, 0);
  });
  return b;
}

/** IPVS_CMD_GET_DAEMON dump: the running sync daemons. */
export function encodeGetDaemons(familyId: number): NlMsgBuilder {
  return msg(familyId, IPVS_CMD_GET_DAEMON, true);
}

// ---------------------------------------------------------------------------------------
// Decoders. Each takes one reply message (genlmsghdr + attributes).

/** A decoding failure of a kernel reply. */
export class IpvsDecodeError extends Error {
  constructor(what: string) {
    super(`IPVS: malformed reply: ${what}`);
    this.name = "IpvsDecodeError";
  }
}

/** The genl command and top-level attributes of a reply. */
export function genlAttrs(m: NlMsg): { cmd: number; attrs: NlAttrs } {
  if (m.payload.length < 4) throw new IpvsDecodeError("short generic netlink header");
  return { cmd: m.payload[0]!, attrs: NlAttrs.parse(m.payload, 4) };
}

function u64num(a: NlAttrs, t: number): number {
  const v = a.u64(t);
  return v === undefined ? 0 : Number(v);
}

/** Counters from a STATS64 (all u64) or legacy STATS (u32, bytes u64) nest. */
export function decodeStats(s: NlAttrs, is64: boolean): IpvsStats {
  const n = (t: number) => (is64 ? u64num(s, t) : s.u32(t) ?? 0);
  return {
    conns: n(IPVS_STATS_ATTR_CONNS),
    inPkts: n(IPVS_STATS_ATTR_INPKTS),
    outPkts: n(IPVS_STATS_ATTR_OUTPKTS),
    inBytes: u64num(s, IPVS_STATS_ATTR_INBYTES),
    outBytes: u64num(s, IPVS_STATS_ATTR_OUTBYTES),
    cps: n(IPVS_STATS_ATTR_CPS),
    inPps: n(IPVS_STATS_ATTR_INPPS),
    outPps: n(IPVS_STATS_ATTR_OUTPPS),
    inBps: n(IPVS_STATS_ATTR_INBPS),
    outBps: n(IPVS_STATS_ATTR_OUTBPS),
  };
}

function statsOf(a: NlAttrs, t32: number, t64: number): IpvsStats | undefined {
  const s64 = a.nested(t64);
  if (s64) return decodeStats(s64, true);
  const s32 = a.nested(t32);
  return s32 ? decodeStats(s32, false) : undefined;
}

/** The service described by the attributes of an IPVS_CMD_ATTR_SERVICE nest. */
export function decodeServiceAttrs(a: NlAttrs): IpvsServiceEntry {
  const af = a.u16(IPVS_SVC_ATTR_AF);
  if (af === undefined) throw new IpvsDecodeError("service without IPVS_SVC_ATTR_AF");
  const family = familyOf(af);
  const fwmark = a.u32(IPVS_SVC_ATTR_FWMARK);
  let key: IpvsServiceKey;
  if (fwmark) {
    key = { family, fwmark };
  } else {
    const protoNum = a.u16(IPVS_SVC_ATTR_PROTOCOL) ?? 0;
    const protocol = keyOf(IPPROTO, protoNum) as IpvsProtocol | undefined;
    if (!protocol) throw new IpvsDecodeError(`service protocol ${protoNum}`);
    const port = a.get(IPVS_SVC_ATTR_PORT);
    key = {
      family, protocol, address: addrText(a.get(IPVS_SVC_ATTR_ADDR), family),
      port: port && port.length >= 2 ? (port[0]! << 8) | port[1]! : 0,
    };
  }
  const flags = a.get(IPVS_SVC_ATTR_FLAGS);
  const nm = a.get(IPVS_SVC_ATTR_NETMASK);
  let netmask = fullNetmask(family);
  if (nm && nm.length >= 4) {
    // A non-contiguous IPv4 mask (only other tools can set one) reads as its leading ones.
    netmask = family === "inet6" ? a.u32(IPVS_SVC_ATTR_NETMASK)! : maskToPrefixLen(nm.subarray(0, 4)) ?? leadingOnes(nm);
  }
  const entry: IpvsServiceEntry = {
    ...key,
    scheduler: a.str(IPVS_SVC_ATTR_SCHED_NAME) ?? "",
    flags: flags && flags.length >= 4 ? new DataView(flags.buffer, flags.byteOffset, 4).getUint32(0, true) : 0,
    timeout: a.u32(IPVS_SVC_ATTR_TIMEOUT) ?? 0,
    netmask,
  };
  const pe = a.str(IPVS_SVC_ATTR_PE_NAME);
  if (pe) entry.peName = pe;
  const stats = statsOf(a, IPVS_SVC_ATTR_STATS, IPVS_SVC_ATTR_STATS64);
  if (stats) entry.stats = stats;
  return entry;
}

function leadingOnes(b: Uint8Array): number {
  let n = 0;
  for (const x of b.subarray(0, 4)) {
    for (let bit = 7; bit >= 0; bit--) {
      if (!((x >> bit) & 1)) return n;
      n++;
    }
  }
  return n;
}

/** A service from an IPVS_CMD_NEW_SERVICE message (dump part, GET_SERVICE reply or a request). */
export function decodeServiceMsg(m: NlMsg): IpvsServiceEntry {
  const svc = genlAttrs(m).attrs.nested(IPVS_CMD_ATTR_SERVICE);
  if (!svc) throw new IpvsDecodeError("no IPVS_CMD_ATTR_SERVICE");
  return decodeServiceAttrs(svc);
}

/** The destination described by an IPVS_CMD_ATTR_DEST nest; `svcFamily` when it has no ADDR_FAMILY (old kernels). */
export function decodeDestAttrs(a: NlAttrs, svcFamily: IpFamily = "inet"): IpvsDestinationEntry {
  const family = a.has(IPVS_DEST_ATTR_ADDR_FAMILY) ? familyOf(a.u16(IPVS_DEST_ATTR_ADDR_FAMILY)) : svcFamily;
  const port = a.get(IPVS_DEST_ATTR_PORT);
  const fwdNum = (a.u32(IPVS_DEST_ATTR_FWD_METHOD) ?? 0) & IP_VS_CONN_F_FWD_MASK;
  const fwdMethod = keyOf(FWD, fwdNum) as IpvsFwdMethod | undefined;
  if (!fwdMethod) throw new IpvsDecodeError(`forwarding method ${fwdNum}`);
  const d: IpvsDestinationEntry = {
    family,
    address: addrText(a.get(IPVS_DEST_ATTR_ADDR), family),
    port: port && port.length >= 2 ? (port[0]! << 8) | port[1]! : 0,
    fwdMethod,
    weight: a.u32(IPVS_DEST_ATTR_WEIGHT) ?? 0,
    uThreshold: a.u32(IPVS_DEST_ATTR_U_THRESH) ?? 0,
    lThreshold: a.u32(IPVS_DEST_ATTR_L_THRESH) ?? 0,
    activeConns: a.u32(IPVS_DEST_ATTR_ACTIVE_CONNS) ?? 0,
    inactConns: a.u32(IPVS_DEST_ATTR_INACT_CONNS) ?? 0,
    persistConns: a.u32(IPVS_DEST_ATTR_PERSIST_CONNS) ?? 0,
  };
  if (fwdMethod === "TUN") {
    const tport = a.get(IPVS_DEST_ATTR_TUN_PORT);
    const tflags = a.u16(IPVS_DEST_ATTR_TUN_FLAGS) ?? 0;
    d.tunnel = {
      type: (keyOf(TUN_TYPE, a.u8(IPVS_DEST_ATTR_TUN_TYPE) ?? 0) ?? "ipip") as IpvsTunnelType,
      port: tport && tport.length >= 2 ? (tport[0]! << 8) | tport[1]! : 0,
      csum: tflags & IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM ? "remcsum" : tflags & IP_VS_TUNNEL_ENCAP_FLAG_CSUM ? "csum" : "nocsum",
    };
  }
  const stats = statsOf(a, IPVS_DEST_ATTR_STATS, IPVS_DEST_ATTR_STATS64);
  if (stats) d.stats = stats;
  return d;
}

/** A destination from an IPVS_CMD_NEW_DEST message (a GET_DEST dump part or a request). */
export function decodeDestMsg(m: NlMsg, svcFamily: IpFamily = "inet"): IpvsDestinationEntry {
  const dest = genlAttrs(m).attrs.nested(IPVS_CMD_ATTR_DEST);
  if (!dest) throw new IpvsDecodeError("no IPVS_CMD_ATTR_DEST");
  return decodeDestAttrs(dest, svcFamily);
}

/** The reply to IPVS_CMD_GET_INFO. */
export function decodeInfoMsg(m: NlMsg): IpvsInfo {
  const { attrs } = genlAttrs(m);
  const v = attrs.u32(IPVS_INFO_ATTR_VERSION);
  if (v === undefined) throw new IpvsDecodeError("no IPVS_INFO_ATTR_VERSION");
  return {
    version: `${(v >> 16) & 0xff}.${(v >> 8) & 0xff}.${v & 0xff}`,
    versionCode: v,
    connTableSize: attrs.u32(IPVS_INFO_ATTR_CONN_TAB_SIZE) ?? 0,
  };
}

/** The reply to IPVS_CMD_GET_CONFIG (also decodes a SET_CONFIG request). */
export function decodeConfigMsg(m: NlMsg): IpvsTimeouts {
  const { attrs } = genlAttrs(m);
  return {
    tcp: attrs.u32(IPVS_CMD_ATTR_TIMEOUT_TCP) ?? 0,
    tcpFin: attrs.u32(IPVS_CMD_ATTR_TIMEOUT_TCP_FIN) ?? 0,
    udp: attrs.u32(IPVS_CMD_ATTR_TIMEOUT_UDP) ?? 0,
  };
}

/** A sync daemon from an IPVS_CMD_NEW_DAEMON message (GET_DAEMON dump part or a request). */
export function decodeDaemonMsg(m: NlMsg): IpvsSyncDaemon {
  const a = genlAttrs(m).attrs.nested(IPVS_CMD_ATTR_DAEMON);
  if (!a) throw new IpvsDecodeError("no IPVS_CMD_ATTR_DAEMON");
  const state = a.u32(IPVS_DAEMON_ATTR_STATE);
  if (state !== IP_VS_STATE_MASTER && state !== IP_VS_STATE_BACKUP) throw new IpvsDecodeError(`daemon state ${state}`);
  const d: IpvsSyncDaemon = {
    state: state === IP_VS_STATE_MASTER ? "master" : "backup",
    mcastIfn: a.str(IPVS_DAEMON_ATTR_MCAST_IFN) ?? "",
    syncId: a.u32(IPVS_DAEMON_ATTR_SYNC_ID) ?? 0,
  };
  const maxlen = a.u16(IPVS_DAEMON_ATTR_SYNC_MAXLEN);
  if (maxlen !== undefined) d.syncMaxLen = maxlen;
  const port = a.u16(IPVS_DAEMON_ATTR_MCAST_PORT);
  if (port !== undefined) d.mcastPort = port;
  const ttl = a.u8(IPVS_DAEMON_ATTR_MCAST_TTL);
  if (ttl !== undefined) d.mcastTtl = ttl;
  const g6 = a.get(IPVS_DAEMON_ATTR_MCAST_GROUP6);
  const g4 = a.get(IPVS_DAEMON_ATTR_MCAST_GROUP);
  if (g6 && g6.length >= 16) d.mcastGroup = formatIp(g6.subarray(0, 16));
  else if (g4 && g4.length >= 4) d.mcastGroup = formatIp(g4.subarray(0, 4));
  return d;
}

// ---------------------------------------------------------------------------------------
// The socket-backed implementation

/** Why IPVS cannot be used: "unavailable" (no IPVS family in this kernel) or another "error". */
export type IpvsOpenFailure = { ok: false; reason: "unavailable" | "error"; message: string; error?: unknown };
export type IpvsOpenResult = { ok: true; ipvs: Ipvs } | IpvsOpenFailure;

/** The one log line for a kernel without IPVS. */
export const IPVS_UNAVAILABLE_MESSAGE =
  'IPVS unavailable: the kernel has no generic netlink family "IPVS" (CONFIG_IP_VS unset or module ip_vs not loadable); LVS is disabled';

/** IpvsApi over a blocking generic netlink socket in the caller's network namespace. */
export class Ipvs implements IpvsApi {
  readonly familyId: number;
  /** The family's genl version (1 on every kernel so far). */
  readonly genlVersion: number;
  readonly #sock: NetlinkSocket;

  private constructor(sock: NetlinkSocket, familyId: number, genlVersion: number) {
    this.#sock = sock;
    this.familyId = familyId;
    this.genlVersion = genlVersion;
  }

  /** Opens a socket and resolves the "IPVS" family. Never throws: a missing family is `unavailable`. */
  static open(o: { timeoutMs?: number } = {}): IpvsOpenResult {
    let sock: NetlinkSocket;
    try {
      sock = new NetlinkSocket(NETLINK_GENERIC, { timeoutMs: o.timeoutMs ?? 5000 });
    } catch (error) {
      return { ok: false, reason: "error", message: `IPVS: cannot open a generic netlink socket: ${(error as Error).message}`, error };
    }
    try {
      const fam = resolveGenlFamily(sock, IPVS_GENL_NAME);
      return { ok: true, ipvs: new Ipvs(sock, fam.id, fam.version) };
    } catch (error) {
      sock.close();
      if (error instanceof SysError && error.errno === ENOENT) {
        return { ok: false, reason: "unavailable", message: IPVS_UNAVAILABLE_MESSAGE, error };
      }
      return { ok: false, reason: "error", message: `IPVS: family lookup failed: ${(error as Error).message}`, error };
    }
  }

  info(): IpvsInfo {
    const r = this.#sock.request(encodeGetInfo(this.familyId), "IPVS_CMD_GET_INFO");
    const m = r.find((x) => x.type === this.familyId);
    if (!m) throw new IpvsDecodeError("no reply to IPVS_CMD_GET_INFO");
    return decodeInfoMsg(m);
  }

  services(): IpvsServiceEntry[] {
    return this.#sock.dump(encodeGetServices(this.familyId), "IPVS_CMD_GET_SERVICE").map(decodeServiceMsg);
  }

  getService(key: IpvsServiceKey): IpvsServiceEntry | undefined {
    try {
      const r = this.#sock.request(encodeGetService(this.familyId, key), `IPVS_CMD_GET_SERVICE(${serviceKeyString(key)})`);
      const m = r.find((x) => x.type === this.familyId);
      return m ? decodeServiceMsg(m) : undefined;
    } catch (e) {
      if (e instanceof NetlinkError && e.code === "ESRCH") return undefined;
      throw e;
    }
  }

  addService(s: IpvsService): void {
    this.#sock.request(encodeNewService(this.familyId, s), `IPVS_CMD_NEW_SERVICE(${serviceKeyString(s)})`);
  }

  editService(s: IpvsService): void {
    this.#sock.request(encodeSetService(this.familyId, s), `IPVS_CMD_SET_SERVICE(${serviceKeyString(s)})`);
  }

  deleteService(key: IpvsServiceKey): void {
    this.#sock.request(encodeDelService(this.familyId, key), `IPVS_CMD_DEL_SERVICE(${serviceKeyString(key)})`);
  }

  destinations(key: IpvsServiceKey): IpvsDestinationEntry[] {
    const parts = this.#sock.dump(encodeGetDests(this.familyId, key), `IPVS_CMD_GET_DEST(${serviceKeyString(key)})`);
    return parts.map((m) => decodeDestMsg(m, key.family));
  }

  addDestination(key: IpvsServiceKey, d: IpvsDestination): void {
    this.#sock.request(encodeNewDest(this.familyId, key, d), `IPVS_CMD_NEW_DEST(${serviceKeyString(key)} -> ${destKeyString(d)})`);
  }

  editDestination(key: IpvsServiceKey, d: IpvsDestination): void {
    this.#sock.request(encodeSetDest(this.familyId, key, d), `IPVS_CMD_SET_DEST(${serviceKeyString(key)} -> ${destKeyString(d)})`);
  }

  deleteDestination(key: IpvsServiceKey, d: IpvsDestKey): void {
    this.#sock.request(encodeDelDest(this.familyId, key, d), `IPVS_CMD_DEL_DEST(${serviceKeyString(key)} -> ${destKeyString(d)})`);
  }

  flush(): void {
    this.#sock.request(encodeFlush(this.familyId), "IPVS_CMD_FLUSH");
  }

  zero(key?: IpvsServiceKey): void {
    this.#sock.request(encodeZero(this.familyId, key), key ? `IPVS_CMD_ZERO(${serviceKeyString(key)})` : "IPVS_CMD_ZERO");
  }

  timeouts(): IpvsTimeouts {
    const r = this.#sock.request(encodeGetConfig(this.familyId), "IPVS_CMD_GET_CONFIG");
    const m = r.find((x) => x.type === this.familyId);
    if (!m) throw new IpvsDecodeError("no reply to IPVS_CMD_GET_CONFIG");
    return decodeConfigMsg(m);
  }

  setTimeouts(t: Partial<IpvsTimeouts>): void {
    this.#sock.request(encodeSetConfig(this.familyId, t), "IPVS_CMD_SET_CONFIG");
  }

  daemons(): IpvsSyncDaemon[] {
    return this.#sock.dump(encodeGetDaemons(this.familyId), "IPVS_CMD_GET_DAEMON").map(decodeDaemonMsg);
  }

  startDaemon(d: IpvsSyncDaemon): void {
    this.#sock.request(encodeNewDaemon(this.familyId, d), `IPVS_CMD_NEW_DAEMON(${d.state} ${d.mcastIfn} syncid ${d.syncId})`);
  }

  stopDaemon(state: IpvsDaemonState): void {
    this.#sock.request(encodeDelDaemon(this.familyId, state), `IPVS_CMD_DEL_DAEMON(${state})`);
  }

  close(): void {
    this.#sock.close();
  }
}
