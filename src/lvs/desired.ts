/**
 * The desired IPVS configuration from the config model: every virtual_server (address,
 * fwmark or virtual_server_group, the group expanded into one service per address or mark,
 * or with nftables_ipvs one automatic fwmark service)
 * with its scheduler, flags and persistence, and every real and sorry server with its
 * forwarding method, weight and thresholds. Pure: keepalived's check_data.c/check_parser.c
 * rules (defaults, port corrections, inheritance VS → RS) applied to the model.
 */
import type { Model, RealServerModel, VirtualServerModel } from "../config/model.ts";
import type { Doc, Rec, ScriptRef } from "../config/schema/kinds.ts";
import type { VirtualServerId } from "../daemon/fifo.ts";
import { formatRealServer, formatVirtualServer } from "../daemon/fifo.ts";
import { canonicalIp, compareAddr, formatIp, maskToPrefixLen, parseIp, parseIPv4, type IpFamily } from "../net/addr.ts";
import {
  IP_VS_SVC_F_PERSISTENT, IPVS_SVC_FLAG_KEYWORDS, type IpvsDestination, type IpvsProtocol, type IpvsService,
  type IpvsTimeouts, type IpvsTunnel,
} from "./ipvs-types.ts";
import { type AutoFwmarks, FwmarkAllocator, type NftIpvsRuleset, addNftIpvsElement, nftIpvsConfig } from "./nft-ipvs.ts";

/** keepalived's IPVS_SVC_PERSISTENT_TIMEOUT: a bare `persistence_timeout`. */
export const DEFAULT_PERSISTENCE_TIMEOUT = 360;
/** Upper bound on the services one virtual_server_group may expand into. */
export const MAX_GROUP_SERVICES = 65536;
/** IPVS weights are signed 32-bit in the kernel; keepalived clamps to 0..INT32_MAX. */
export const IPVS_WEIGHT_MAX = 2147483647;

/** One health checker of a real server, as the lifecycle needs to know it. */
export interface CheckerSpec {
  /** Position in the real server's checker list (the runner reports by this index). */
  index: number;
  type: string;
  /** Starts DOWN until its first success. FILE_CHECK never (its state is known at once). */
  alpha: boolean;
}

/** A real server (or the sorry server) of one virtual server. */
export interface RealServerSpec {
  /** "198.51.100.1:80" / "[2001:db8::1]:80": unique within the virtual server. */
  key: string;
  ip: string;
  /** Configured port after keepalived's corrections (0: none, as for DR/TUN fwmark services). */
  port: number;
  family: IpFamily;
  fwdMethod: "NAT" | "DR" | "TUN";
  tunnel?: IpvsTunnel;
  /** Configured (initial) weight: keepalived's iweight. */
  weight: number;
  uThreshold: number;
  lThreshold: number;
  /** inhibit_on_failure (sorry_server_inhibit for the sorry server): weight 0 instead of removal. */
  inhibit: boolean;
  alpha: boolean;
  notifyUp?: ScriptRef;
  notifyDown?: ScriptRef;
  /** Own smtp_alert, if set. */
  smtpAlert?: boolean;
  checkers: CheckerSpec[];
}

/** One configured virtual_server and everything the lifecycle and reconciler need about it. */
export interface VirtualServerSpec {
  /** Unique key: the config id plus the protocol ("192.0.2.1 80/TCP", "fwmark 5", "group G/TCP"). */
  key: string;
  /** For FIFO lines, emails and logs. */
  id: VirtualServerId;
  /** keepalived's FMT_VS text: "[192.0.2.1]:tcp:80", "FWM 5", "[G]:0". */
  label: string;
  /** The kernel services this virtual server programs (one, or one per group member). */
  services: IpvsService[];
  realServers: RealServerSpec[];
  sorry?: RealServerSpec;
  quorum: number;
  hysteresis: number;
  quorumUp?: ScriptRef;
  quorumDown?: ScriptRef;
  omega: boolean;
  haSuspend: boolean;
  smtpAlert?: boolean;
  /** The service addresses (not fwmarks), for ha_suspend's "is the VIP local" test. */
  addresses: string[];
}

/** The LVS keywords of global_defs. */
export interface LvsGlobals {
  /** lvs_flush: flush the whole IPVS table at start. */
  flush: boolean;
  /** lvs_flush_on_stop: "none" (remove our entries one by one), "full" (flush all), "vs" (delete our services whole). */
  flushOnStop: "none" | "full" | "vs";
  /** lvs_timeouts, when any is set (0 = leave unchanged). */
  timeouts?: IpvsTimeouts;
}

/** The whole desired LVS configuration. */
export interface DesiredLvs {
  virtualServers: VirtualServerSpec[];
  globals: LvsGlobals;
  /** What keepalived would warn about or correct (one line each). */
  warnings: string[];
  /** nftables_ipvs in effect: the marking ruleset and the automatic fwmarks handed out. */
  nftIpvs?: { ruleset: NftIpvsRuleset; fwmarks: AutoFwmarks };
}

/** Options of desiredFromModel. */
export interface DesiredOptions {
  /** false: ignore nftables_ipvs (no nft here), programming groups per address as without it. */
  nftIpvs?: boolean;
  /** The automatic fwmarks of the previous desired state (reload keeps them). */
  previousFwmarks?: AutoFwmarks;
}

const bool = (v: unknown): boolean => v === true;
const optBool = (v: unknown): boolean | undefined => (typeof v === "boolean" ? v : undefined);
const fullNetmask = (f: IpFamily): number => (f === "inet" ? 32 : 128);

/** "198.51.100.1:80" or "[2001:db8::1]:80". */
export function rsKeyOf(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

interface Method {
  method: "NAT" | "DR" | "TUN";
  tunnel?: IpvsTunnel;
}

/** `lvs_method NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]` → method and tunnel. */
export function methodFromDoc(rec: Rec | undefined, fallback: Method, where: string, warn: (m: string) => void): Method {
  if (!rec || rec.method === undefined) return fallback;
  const method = String(rec.method).toUpperCase() as Method["method"];
  if (method !== "TUN") return { method };
  const type = (rec.type as IpvsTunnel["type"] | undefined) ?? "ipip";
  let csum: IpvsTunnel["csum"] = rec.remcsum ? "remcsum" : rec.csum ? "csum" : "nocsum";
  let port = typeof rec.port === "number" ? rec.port : 0;
  if (type === "gue" && !port) warn(`${where}: TUN type gue needs a port`);
  if (type !== "gue") port = 0;
  if (type === "ipip" && csum !== "nocsum") {
    warn(`${where}: checksum options are not valid for ipip tunnels; ignored`);
    csum = "nocsum";
  }
  if (type === "gre" && csum === "remcsum") {
    warn(`${where}: remcsum is not valid for gre tunnels; ignored`);
    csum = "nocsum";
  }
  if (type === "ipip" && csum === "nocsum" && !rec.type) return { method };
  return { method, tunnel: { type, port, csum } };
}

/**
 * `persistence_granularity MASK|PREFIXLEN` → prefix length for the family: a dotted IPv4
 * netmask (must be contiguous here: the netlink encoding carries a prefix length) or an IPv6
 * prefix length 1..128.
 */
export function granularityToPrefixLen(text: string, family: IpFamily): number | { error: string } {
  if (family === "inet6" || !text.includes(".")) {
    const n = Number(text);
    const max = family === "inet6" ? 128 : 32;
    if (!/^\d+$/.test(text) || n < 1 || n > max) return { error: `invalid persistence_granularity ${text} for ${family === "inet6" ? "IPv6" : "IPv4"}` };
    return n;
  }
  const bytes = parseIPv4(text);
  if (!bytes) return { error: `invalid IPv4 persistence_granularity ${text}` };
  const len = maskToPrefixLen(bytes);
  if (len === null) return { error: `persistence_granularity ${text} is not a contiguous netmask` };
  return len;
}

/** The IP_VS_SVC_F_* bits from the scheduler-flag keywords of a virtual_server document. */
export function serviceFlags(doc: Doc, scheduler: string, protocol: IpvsProtocol | undefined, where: string, warn: (m: string) => void): number {
  let flags = 0;
  for (const [kw, bit] of Object.entries(IPVS_SVC_FLAG_KEYWORDS)) {
    if (!bool(doc[kw])) continue;
    if ((kw.startsWith("sh-") && scheduler !== "sh") || (kw.startsWith("mh-") && scheduler !== "mh")) {
      warn(`${where}: ${kw} only applies to lvs_sched ${kw.slice(0, 2)}; ignored`);
      continue;
    }
    if (kw === "ops" && protocol !== undefined && protocol !== "udp") {
      warn(`${where}: ops (one-packet scheduling) only applies to UDP; ignored`);
      continue;
    }
    flags |= bit;
  }
  return flags;
}

/** Addresses of an address range or prefix, first to last inclusive, at most `max` (null: too many). */
function expandAddresses(first: Uint8Array, last: Uint8Array, max: number): string[] | null {
  const toBig = (b: Uint8Array) => b.reduce((acc, x) => (acc << 8n) | BigInt(x), 0n);
  const a = toBig(first);
  const z = toBig(last);
  if (z < a) return [];
  if (z - a + 1n > BigInt(max)) return null;
  const out: string[] = [];
  for (let v = a; v <= z; v++) {
    const bytes = new Uint8Array(first.length);
    let x = v;
    for (let i = bytes.length - 1; i >= 0; i--) {
      bytes[i] = Number(x & 0xffn);
      x >>= 8n;
    }
    out.push(formatIp(bytes));
  }
  return out;
}

/** A virtual_server_group line: `IP`, `A.B.C.D-E`, `A.B.C.D-E.F.G.H`, `x::a-ff`, `PREFIX/LEN` → first and last address. */
export function groupAddressRange(text: string): { first: Uint8Array; last: Uint8Array; family: IpFamily } | { error: string } {
  const slash = text.indexOf("/");
  if (slash >= 0) {
    const base = parseIp(text.slice(0, slash));
    const len = Number(text.slice(slash + 1));
    if (!base) return { error: `invalid address ${text}` };
    const bits = base.bytes.length * 8;
    if (!Number.isInteger(len) || len < 1 || len > bits) return { error: `invalid netmask - ${text}` };
    const last = base.bytes.slice();
    for (let bit = len; bit < bits; bit++) {
      const byte = bit >> 3;
      const mask = 0x80 >> (bit & 7);
      if (base.bytes[byte]! & mask) return { error: `address mask bits not empty - ${text}` };
      last[byte]! |= mask;
    }
    return { first: base.bytes, last, family: base.family };
  }
  const dash = text.indexOf("-");
  if (dash < 0) {
    const a = parseIp(text);
    return a ? { first: a.bytes, last: a.bytes, family: a.family } : { error: `invalid address ${text}` };
  }
  const first = parseIp(text.slice(0, dash));
  const endText = text.slice(dash + 1);
  if (!first) return { error: `invalid address ${text}` };
  let last: Uint8Array | null = null;
  const full = first.family === "inet" ? endText.includes(".") : endText.includes(":");
  if (full) last = parseIp(endText)?.bytes ?? null;
  else {
    // Only the last octet (IPv4, decimal) or the last 16-bit group (IPv6, hex) is given.
    last = first.bytes.slice();
    const n = first.family === "inet" ? (/^\d{1,3}$/.test(endText) ? Number(endText) : NaN) : (/^[0-9a-fA-F]{1,4}$/.test(endText) ? parseInt(endText, 16) : NaN);
    if (Number.isNaN(n) || n > (first.family === "inet" ? 255 : 0xffff)) return { error: `invalid range end ${text}` };
    if (first.family === "inet") last[3] = n;
    else {
      last[14] = n >> 8;
      last[15] = n & 0xff;
    }
  }
  if (!last || last.length !== first.bytes.length) return { error: `invalid range end ${text}` };
  if (compareAddr(last, first.bytes) < 0) return { error: `range ${text} ends before it starts` };
  return { first: first.bytes, last, family: first.family };
}

/** A virtual_server_group line: `IP`, `A.B.C.D-E`, `A.B.C.D-E.F.G.H`, `x::a-ff`, `PREFIX/LEN` → addresses. */
export function expandGroupAddress(text: string, max = MAX_GROUP_SERVICES): { addresses: string[]; family: IpFamily } | { error: string } {
  const r = groupAddressRange(text);
  if ("error" in r) return r;
  const addresses = expandAddresses(r.first, r.last, max);
  return addresses ? { addresses, family: r.family } : { error: `${text} has more than ${max} addresses` };
}

/** The kernel destination for real server `rs` in `service` at `weight` (keepalived's port rules). */
export function destinationFor(service: IpvsService, rs: RealServerSpec, weight: number): IpvsDestination {
  // NAT keeps the real server's own port; DR/TUN use the service's (0 for a fwmark service).
  const port = rs.fwdMethod === "NAT" ? rs.port || (service.port ?? 0) : service.fwmark !== undefined ? 0 : service.port!;
  const d: IpvsDestination = {
    address: rs.ip, port, family: rs.family, fwdMethod: rs.fwdMethod, weight: Math.max(0, Math.min(IPVS_WEIGHT_MAX, weight)),
    uThreshold: rs.uThreshold, lThreshold: rs.lThreshold,
  };
  if (rs.tunnel) d.tunnel = rs.tunnel;
  return d;
}

interface Ctx {
  warn: (m: string) => void;
  /** nftables_ipvs in effect: groups of addresses get one automatic fwmark service. */
  nft?: { alloc: FwmarkAllocator; ruleset: NftIpvsRuleset };
}

function realServerSpec(rsm: RealServerModel, vsDoc: Doc, vsMethod: Method, vs: { fwmark: boolean; auto?: boolean; port?: number; label: string }, ctx: Ctx): RealServerSpec {
  const d = rsm.doc;
  const ip = canonicalIp(rsm.ip) ?? rsm.ip;
  const family = parseIp(ip)?.family ?? "inet";
  const where = `real server ${rsKeyOf(ip, rsm.port ?? 0)} of VS ${vs.label}`;
  const m = methodFromDoc(d.lvs_method as Rec | undefined, vsMethod, where, ctx.warn);
  let port = rsm.port ?? 0;
  if (m.method === "NAT") {
    if (!port && !vs.fwmark && vs.port !== undefined) port = vs.port;
  } else if (vs.fwmark) {
    // An automatic (nftables_ipvs) fwmark service takes the group's ports: DR/TUN need none.
    if (port && !vs.auto) ctx.warn(`${where}: fwmark virtual server, real server port ${port} ignored`);
    port = 0;
  } else if (vs.port !== undefined) {
    if (port && port !== vs.port) ctx.warn(`${where}: ports don't match - resetting to ${vs.port}`);
    port = vs.port;
  }
  const alpha = optBool(d.alpha) ?? bool(vsDoc.alpha);
  const checkers: CheckerSpec[] = rsm.checkers.map((c, index) => ({
    index,
    type: c.type,
    alpha: c.type === "FILE_CHECK" ? false : (optBool(c.doc.alpha) ?? alpha),
  }));
  const spec: RealServerSpec = {
    key: rsKeyOf(ip, port), ip, port, family, fwdMethod: m.method,
    weight: typeof d.weight === "number" ? d.weight : typeof vsDoc.weight === "number" ? (vsDoc.weight as number) : rsm.weight,
    uThreshold: (d.uthreshold as number | undefined) ?? 0,
    lThreshold: (d.lthreshold as number | undefined) ?? 0,
    inhibit: optBool(d.inhibit_on_failure) ?? bool(vsDoc.inhibit_on_failure),
    alpha, checkers,
  };
  if (m.tunnel) spec.tunnel = m.tunnel;
  if (d.notify_up) spec.notifyUp = d.notify_up as ScriptRef;
  if (d.notify_down) spec.notifyDown = d.notify_down as ScriptRef;
  const smtp = optBool(d.smtp_alert);
  if (smtp !== undefined) spec.smtpAlert = smtp;
  return spec;
}

function sorrySpec(vsDoc: Doc, vsMethod: Method, vs: { fwmark: boolean; port?: number; label: string }, ctx: Ctx): RealServerSpec | undefined {
  const s = vsDoc.sorry_server as Rec | undefined;
  if (!s) return undefined;
  const ip = canonicalIp(String(s.ip)) ?? String(s.ip);
  const where = `sorry server of VS ${vs.label}`;
  const m = methodFromDoc(vsDoc.sorry_server_lvs_method as Rec | undefined, vsMethod, where, ctx.warn);
  let port = typeof s.port === "number" ? s.port : 0;
  if (m.method !== "NAT") port = vs.fwmark ? 0 : (vs.port ?? port);
  else if (!port && !vs.fwmark && vs.port !== undefined) port = vs.port;
  const spec: RealServerSpec = {
    key: rsKeyOf(ip, port), ip, port, family: parseIp(ip)?.family ?? "inet", fwdMethod: m.method,
    weight: 1, uThreshold: 0, lThreshold: 0, inhibit: bool(vsDoc.sorry_server_inhibit), alpha: false, checkers: [],
  };
  if (m.tunnel) spec.tunnel = m.tunnel;
  return spec;
}

const protoOf = (p: VirtualServerModel["protocol"]): IpvsProtocol => p.toLowerCase() as IpvsProtocol;

/** Builds one VirtualServerSpec from a model virtual_server; undefined (with a warning) when it programs nothing. */
export function virtualServerSpec(vs: VirtualServerModel, groups: Model["virtual_server_group"], ctx: Ctx): VirtualServerSpec | undefined {
  const d = vs.doc;
  const protocol = protoOf(vs.protocol);
  const id: VirtualServerId = vs.group !== undefined
    ? { group: vs.group, port: vs.port ?? 0, protocol: vs.protocol }
    : vs.fwmark !== undefined ? { fwmark: vs.fwmark, protocol: "NONE" } : { ip: canonicalIp(vs.ip!) ?? vs.ip!, port: vs.port ?? 0, protocol: vs.protocol };
  const label = formatVirtualServer(id);
  const key = vs.fwmark !== undefined ? vs.id : `${vs.id}/${vs.protocol}`;
  const scheduler = vs.lvs_sched;

  // Persistence: a bare keyword is 360 s; a granularity alone makes the service persistent.
  const pt = d.persistence_timeout as Rec | undefined;
  let timeout = pt ? ((pt.timeout as number | undefined) ?? DEFAULT_PERSISTENCE_TIMEOUT) : 0;
  const gran = d.persistence_granularity as string | undefined;
  if (!timeout && gran !== undefined) timeout = DEFAULT_PERSISTENCE_TIMEOUT;
  if (!timeout && vs.ip !== undefined && vs.port === undefined) timeout = DEFAULT_PERSISTENCE_TIMEOUT;
  const peName = d.persistence_engine as string | undefined;

  const vsMethod: Method = methodFromDoc(d.lvs_method as Rec | undefined, { method: "NAT" }, `VS ${label}`, ctx.warn);

  // Members: [family, address?, port?, fwmark?]
  type Member = { family: IpFamily; address?: string; port?: number; fwmark?: number; auto?: string[] };
  const members: Member[] = [];
  const rsFamily = (): IpFamily => (vs.real_servers[0] ? (parseIp(vs.real_servers[0].ip)?.family ?? "inet") : "inet");
  const ipFamilyKw = d.ip_family as IpFamily | undefined;
  let auto = false;
  if (vs.group !== undefined && ctx.nft && (groups[vs.group] ?? []).every((e) => e.fwmark === undefined)) {
    // keepalived's VSG_USES_AUTO_FWMARK: nftables_ipvs and no fwmark entries in the group.
    const { alloc, ruleset } = ctx.nft;
    const families = new Set<IpFamily>();
    const addresses: string[] = [];
    let mark: number | undefined;
    // A second virtual server of the same protocol on the group shares the mark and its elements (keepalived's auto_fwmark[proto]).
    const marked = alloc.has(vs.group, protocol);
    for (const e of groups[vs.group] ?? []) {
      const r = groupAddressRange(String(e.address));
      if ("error" in r) {
        ctx.warn(`virtual_server_group ${vs.group}: ${r.error} - skipping`);
        continue;
      }
      mark ??= alloc.mark(vs.group, protocol);
      families.add(r.family);
      const port = (e.port as number | undefined) ?? 0;
      const clash = marked ? undefined : addNftIpvsElement(ruleset, r.family, protocol, { first: formatIp(r.first), last: formatIp(r.last), port, fwmark: mark });
      if (clash) ctx.warn(`virtual_server_group ${vs.group}: ${e.address} ${port} overlaps an entry already marked ${clash.fwmark} for ${protocol.toUpperCase()} - not marked again`);
      // ha_suspend looks for these locally; a huge range is not listed (its fwmark still covers it).
      const listed = expandAddresses(r.first, r.last, Math.max(0, MAX_GROUP_SERVICES - addresses.length));
      if (listed) addresses.push(...listed);
    }
    if (mark !== undefined) {
      auto = true;
      for (const f of ["inet", "inet6"] as const) if (families.has(f)) members.push({ family: f, fwmark: mark, auto: addresses });
    }
  } else if (vs.group !== undefined) {
    const entries = groups[vs.group] ?? [];
    let count = 0;
    for (const e of entries) {
      if (e.fwmark !== undefined) {
        members.push({ family: (e.family as IpFamily | undefined) ?? ipFamilyKw ?? rsFamily(), fwmark: e.fwmark as number });
        count++;
        continue;
      }
      const r = expandGroupAddress(String(e.address), MAX_GROUP_SERVICES - count);
      if ("error" in r) {
        ctx.warn(`virtual_server_group ${vs.group}: ${r.error} - skipping`);
        continue;
      }
      for (const a of r.addresses) members.push({ family: r.family, address: a, port: (e.port as number | undefined) ?? 0 });
      count += r.addresses.length;
    }
  } else if (vs.fwmark !== undefined) {
    members.push({ family: ipFamilyKw ?? rsFamily(), fwmark: vs.fwmark });
  } else {
    const a = parseIp(vs.ip!);
    members.push({ family: a?.family ?? "inet", address: canonicalIp(vs.ip!) ?? vs.ip!, port: vs.port ?? 0 });
  }
  if (!members.length) {
    ctx.warn(`VS ${label}: no addresses or marks to program`);
    return undefined;
  }

  const services: IpvsService[] = [];
  for (const m of members) {
    const flags = serviceFlags(d, scheduler, m.fwmark !== undefined && !m.auto ? undefined : protocol, `VS ${label}`, services.length ? () => {} : ctx.warn);
    let netmask = fullNetmask(m.family);
    if (gran !== undefined) {
      const g = granularityToPrefixLen(gran, m.family);
      if (typeof g === "number") netmask = g;
      else if (!services.length) ctx.warn(`VS ${label}: ${g.error}`);
    }
    const params = { scheduler, flags: flags | (timeout ? IP_VS_SVC_F_PERSISTENT : 0), timeout, netmask, ...(timeout && peName ? { peName } : {}) };
    services.push(m.fwmark !== undefined
      ? { family: m.family, fwmark: m.fwmark, ...params }
      : { family: m.family, protocol, address: m.address!, port: m.port!, ...params });
  }

  const vsShape = { fwmark: vs.fwmark !== undefined || (vs.group !== undefined && members.every((m) => m.fwmark !== undefined)), auto, port: vs.group !== undefined ? undefined : vs.port, label };
  const seen = new Set<string>();
  const realServers: RealServerSpec[] = [];
  for (const rsm of vs.real_servers) {
    const rs = realServerSpec(rsm, d, vsMethod, vsShape, ctx);
    if (seen.has(rs.key)) {
      ctx.warn(`VS ${label}: duplicate real server ${rs.key} removed`);
      continue;
    }
    seen.add(rs.key);
    realServers.push(rs);
  }
  const sorry = sorrySpec(d, vsMethod, vsShape, ctx);

  // keepalived: quorum above the total weight is reduced; hysteresis ≥ quorum becomes quorum − 1.
  let quorum = (d.quorum as number | undefined) ?? 1;
  let hysteresis = (d.hysteresis as number | undefined) ?? 0;
  const total = realServers.reduce((s, r) => s + r.weight, 0);
  if (quorum > total) {
    ctx.warn(`quorum ${quorum} for ${label} exceeds total weight of real servers ${total}, reducing quorum to ${total}`);
    quorum = total;
  }
  if (hysteresis >= quorum && (hysteresis > 0 || quorum > 0)) {
    const h = Math.max(0, quorum - 1);
    if (h !== hysteresis) ctx.warn(`VS ${label}: hysteresis ${hysteresis} >= quorum ${quorum}; setting hysteresis to ${h}`);
    hysteresis = h;
  }

  const spec: VirtualServerSpec = {
    key, id, label, services, realServers, quorum, hysteresis,
    omega: bool(d.omega), haSuspend: bool(d.ha_suspend),
    addresses: [...new Set(members.flatMap((m) => (m.address ? [m.address] : (m.auto ?? []))))],
  };
  if (sorry) spec.sorry = sorry;
  if (d.quorum_up) spec.quorumUp = d.quorum_up as ScriptRef;
  if (d.quorum_down) spec.quorumDown = d.quorum_down as ScriptRef;
  const smtp = optBool(d.smtp_alert);
  if (smtp !== undefined) spec.smtpAlert = smtp;
  return spec;
}

/** lvs_flush, lvs_flush_on_stop and lvs_timeouts from global_defs. */
export function lvsGlobals(g: Doc): LvsGlobals {
  const fos = g.lvs_flush_on_stop as Rec | undefined;
  const out: LvsGlobals = { flush: bool(g.lvs_flush), flushOnStop: fos ? (fos.mode === "VS" ? "vs" : "full") : "none" };
  const t = g.lvs_timeouts as Rec | undefined;
  if (t && (t.tcp || t.tcpfin || t.udp)) out.timeouts = { tcp: (t.tcp as number) ?? 0, tcpFin: (t.tcpfin as number) ?? 0, udp: (t.udp as number) ?? 0 };
  return out;
}

/**
 * The desired LVS state of a model. Two virtual servers programming the same kernel service
 * would fight over it: the later one's duplicate services are dropped with a warning. With
 * nftables_ipvs, a group of addresses becomes one automatic fwmark service (see nft-ipvs.ts).
 */
export function desiredFromModel(model: Pick<Model, "virtual_server" | "virtual_server_group" | "global">, opts: DesiredOptions = {}): DesiredLvs {
  const warnings: string[] = [];
  const ctx: Ctx = { warn: (m) => warnings.push(m) };
  const nftConfig = opts.nftIpvs === false ? undefined : nftIpvsConfig(model.global.doc);
  if (nftConfig) ctx.nft = { alloc: new FwmarkAllocator(nftConfig.startFwmark, opts.previousFwmarks), ruleset: { config: nftConfig, maps: [] } };
  const virtualServers: VirtualServerSpec[] = [];
  const owner = new Map<string, string>();
  const keys = new Set<string>();
  for (const vsm of model.virtual_server) {
    const spec = virtualServerSpec(vsm, model.virtual_server_group, ctx);
    if (!spec) continue;
    if (keys.has(spec.key)) {
      warnings.push(`VS ${spec.label}: configured twice; the second is ignored`);
      continue;
    }
    keys.add(spec.key);
    spec.services = spec.services.filter((s) => {
      const k = serviceId(s);
      const prev = owner.get(k);
      if (prev !== undefined) {
        warnings.push(`VS ${spec.label}: service ${k} is already programmed by VS ${prev}; not added again`);
        return false;
      }
      owner.set(k, spec.label);
      return true;
    });
    virtualServers.push(spec);
  }
  const out: DesiredLvs = { virtualServers, globals: lvsGlobals(model.global.doc), warnings };
  if (ctx.nft) out.nftIpvs = { ruleset: ctx.nft.ruleset, fwmarks: ctx.nft.alloc.state() };
  return out;
}

/** A stable text key of a service: "inet|tcp|192.0.2.1|80" or "inet6|fwm|5". */
export function serviceId(s: { family: IpFamily; fwmark?: number; protocol?: string; address?: string; port?: number }): string {
  if (s.fwmark !== undefined) return `${s.family}|fwm|${s.fwmark}`;
  return `${s.family}|${s.protocol}|${canonicalIp(s.address!) ?? s.address}|${s.port}`;
}

/** keepalived's FMT_RS text for a real server of a virtual server: "[198.51.100.1]:tcp:80". */
export function realServerLabel(rs: RealServerSpec, vs: VirtualServerSpec): string {
  return formatRealServer({ ip: rs.ip, port: rs.port }, vs.id);
}
