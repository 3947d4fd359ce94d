/**
 * Routes and policy rules over rtnetlink: RTM_NEWROUTE/DELROUTE/GETROUTE and
 * RTM_NEWRULE/DELRULE/GETRULE encoders and decoders (pure, unit-tested byte for byte) and
 * request helpers on an RtNetlink socket. Specs come from src/vrrp/routes.ts; messages are
 * laid out as keepalived's netlink_route / netlink_rule send them.
 */
import type { Family } from "../src/vrrp/types.ts";
import type { RouteSpec, RuleSpec } from "../src/vrrp/routes.ts";
import { AF_INET, AF_INET6, AF_UNSPEC, ENOENT, formatIP, parseIPv4, parseIPv6, view } from "./libc.ts";
import { NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NetlinkError, NlAttrs, NlMsgBuilder, type NlMsg } from "./netlink.ts";
import { RTM_DELROUTE, RTM_DELRULE, RTM_GETROUTE, RTM_GETRULE, RTM_NEWROUTE, RTM_NEWRULE, familyNumber, type RtNetlink } from "./rtnetlink.ts";
import { linkIndex } from "./rtnetlink-link.ts";

export const RTA_DST = 1, RTA_SRC = 2, RTA_IIF = 3, RTA_OIF = 4, RTA_GATEWAY = 5, RTA_PRIORITY = 6, RTA_PREFSRC = 7;
export const RTA_METRICS = 8, RTA_MULTIPATH = 9, RTA_FLOW = 11, RTA_TABLE = 15, RTA_PREF = 20, RTA_EXPIRES = 23;
export const RTAX_MTU = 2, RTAX_ADVMSS = 8, RTAX_HOPLIMIT = 10, RTAX_INITCWND = 11, RTAX_INITRWND = 14, RTAX_CC_ALGO = 16;
export const RTNH_F_ONLINK = 0x4;
export const RTM_F_CLONED = 0x200;
export const RT_TABLE_UNSPEC = 0, RT_TABLE_MAIN = 254;
export const RT_SCOPE_UNIVERSE = 0, RT_SCOPE_NOWHERE = 255;

export const FRA_DST = 1, FRA_SRC = 2, FRA_IIFNAME = 3, FRA_GOTO = 4, FRA_PRIORITY = 6, FRA_FWMARK = 10, FRA_FLOW = 11;
export const FRA_TUN_ID = 12, FRA_SUPPRESS_IFGROUP = 13, FRA_SUPPRESS_PREFIXLEN = 14, FRA_TABLE = 15, FRA_FWMASK = 16;
export const FRA_OIFNAME = 17, FRA_L3MDEV = 19, FRA_UID_RANGE = 20, FRA_PROTOCOL = 21, FRA_IP_PROTO = 22;
export const FRA_SPORT_RANGE = 23, FRA_DPORT_RANGE = 24;
export const FR_ACT_TO_TBL = 1, FR_ACT_GOTO = 2;
export const FIB_RULE_INVERT = 0x2;
/** Errno of deleting a route that is not there. */
export const ESRCH = 3;

function addr(family: Family, s: string): Uint8Array {
  return family === "inet" ? parseIPv4(s) : parseIPv6(s);
}

function familyOf(af: number): Family | null {
  return af === AF_INET ? "inet" : af === AF_INET6 ? "inet6" : null;
}

/** struct rtmsg {family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags} (12 bytes). */
export function rtmsg(f: { family: number; dstLen?: number; srcLen?: number; tos?: number; table?: number; protocol?: number; scope?: number; type?: number; flags?: number }): Uint8Array {
  const b = new Uint8Array(12);
  b.set([f.family, f.dstLen ?? 0, f.srcLen ?? 0, f.tos ?? 0, f.table ?? 0, f.protocol ?? 0, f.scope ?? 0, f.type ?? 0]);
  new DataView(b.buffer).setUint32(8, (f.flags ?? 0) >>> 0, true);
  return b;
}

/** struct fib_rule_hdr {family, dst_len, src_len, tos, table, res1, res2, action; u32 flags} (12 bytes). */
export function fibRuleHdr(f: { family: number; dstLen?: number; srcLen?: number; tos?: number; table?: number; action?: number; flags?: number }): Uint8Array {
  const b = new Uint8Array(12);
  b.set([f.family, f.dstLen ?? 0, f.srcLen ?? 0, f.tos ?? 0, f.table ?? 0, 0, 0, f.action ?? 0]);
  new DataView(b.buffer).setUint32(8, (f.flags ?? 0) >>> 0, true);
  return b;
}

// ---------------------------------------------------------------------------------------
// Routes

/**
 * Builds RTM_NEWROUTE / RTM_DELROUTE for a spec. `oif` is the resolved index of spec.dev
 * (0 for none). Add uses scope universe unless given and NLM_F_CREATE (prepend, keepalived's
 * default); delete uses scope nowhere (any) and carries no metrics. Attribute order:
 * TABLE (≥256), DST, PREFSRC, GATEWAY, OIF, PRIORITY, FLOW, EXPIRES, PREF, METRICS.
 */
export function routeMessage(type: typeof RTM_NEWROUTE | typeof RTM_DELROUTE, spec: RouteSpec, oif: number, nlFlags = 0): NlMsgBuilder {
  const del = type === RTM_DELROUTE;
  const hdr = rtmsg({
    family: familyNumber(spec.family),
    dstLen: spec.dstLen,
    tos: spec.tos,
    table: spec.table < 256 ? spec.table : RT_TABLE_UNSPEC,
    protocol: spec.protocol,
    scope: spec.scope ?? (del ? RT_SCOPE_NOWHERE : RT_SCOPE_UNIVERSE),
    // keepalived leaves the type out of a delete unless one was configured.
    type: del && spec.type === 1 ? 0 : spec.type,
    flags: spec.onlink ? RTNH_F_ONLINK : 0,
  });
  const b = new NlMsgBuilder(type, (del ? 0 : NLM_F_CREATE) | nlFlags).bytes(hdr);
  if (spec.table >= 256) b.u32(RTA_TABLE, spec.table);
  if (spec.dst !== undefined) b.attr(RTA_DST, addr(spec.family, spec.dst));
  if (spec.prefsrc !== undefined) b.attr(RTA_PREFSRC, addr(spec.family, spec.prefsrc));
  if (spec.gateway !== undefined) b.attr(RTA_GATEWAY, addr(spec.family, spec.gateway));
  if (oif) b.u32(RTA_OIF, oif);
  if (spec.metric !== undefined) b.u32(RTA_PRIORITY, spec.metric);
  if (spec.realms !== undefined) b.u32(RTA_FLOW, spec.realms);
  if (del) return b;
  if (spec.expires !== undefined) b.u32(RTA_EXPIRES, spec.expires);
  if (spec.pref !== undefined) b.u8(RTA_PREF, spec.pref);
  const metrics: [number, number][] = [];
  if (spec.mtu !== undefined) metrics.push([RTAX_MTU, spec.mtu]);
  if (spec.advmss !== undefined) metrics.push([RTAX_ADVMSS, spec.advmss]);
  if (spec.hoplimit !== undefined) metrics.push([RTAX_HOPLIMIT, spec.hoplimit]);
  if (spec.initcwnd !== undefined) metrics.push([RTAX_INITCWND, spec.initcwnd]);
  if (spec.initrwnd !== undefined) metrics.push([RTAX_INITRWND, spec.initrwnd]);
  if (metrics.length || spec.congctl !== undefined) {
    b.nest(RTA_METRICS, (m) => {
      if (spec.congctl !== undefined) m.attr(RTAX_CC_ALGO, new TextEncoder().encode(spec.congctl));
      for (const [t, v] of metrics) m.u32(t, v);
    }, true);
  }
  return b;
}

/** A route as the kernel reports it. */
export interface RouteInfo {
  family: Family;
  type: number;
  dst?: string;
  dstLen: number;
  srcLen: number;
  tos: number;
  table: number;
  protocol: number;
  scope: number;
  /** rtm_flags (RTNH_F_ONLINK, RTM_F_CLONED, ...). */
  flags: number;
  gateway?: string;
  oif?: number;
  prefsrc?: string;
  metric?: number;
  mtu?: number;
  advmss?: number;
  hoplimit?: number;
  initcwnd?: number;
  initrwnd?: number;
  realms?: number;
  pref?: number;
}

/** Decodes RTM_NEWROUTE/DELROUTE; null for other families or short input. */
export function decodeRoute(m: NlMsg): RouteInfo | null {
  const p = m.payload;
  if (p.length < 12) return null;
  const family = familyOf(p[0]!);
  if (!family) return null;
  const a = NlAttrs.parse(p, 12);
  const r: RouteInfo = {
    family, dstLen: p[1]!, srcLen: p[2]!, tos: p[3]!, table: a.u32(RTA_TABLE) ?? p[4]!, protocol: p[5]!, scope: p[6]!,
    type: p[7]!, flags: view(p).getUint32(8, true),
  };
  const ip = (t: number) => { const d = a.get(t); return d ? formatIP(d) : undefined; };
  const dst = ip(RTA_DST); if (dst !== undefined) r.dst = dst;
  const gw = ip(RTA_GATEWAY); if (gw !== undefined) r.gateway = gw;
  const ps = ip(RTA_PREFSRC); if (ps !== undefined) r.prefsrc = ps;
  const oif = a.u32(RTA_OIF); if (oif !== undefined) r.oif = oif;
  const prio = a.u32(RTA_PRIORITY); if (prio !== undefined) r.metric = prio;
  const flow = a.u32(RTA_FLOW); if (flow !== undefined) r.realms = flow;
  const pref = a.u8(RTA_PREF); if (pref !== undefined) r.pref = pref;
  const mx = a.nested(RTA_METRICS);
  if (mx) {
    const set = (k: "mtu" | "advmss" | "hoplimit" | "initcwnd" | "initrwnd", t: number) => { const v = mx.u32(t); if (v !== undefined) r[k] = v; };
    set("mtu", RTAX_MTU); set("advmss", RTAX_ADVMSS); set("hoplimit", RTAX_HOPLIMIT);
    set("initcwnd", RTAX_INITCWND); set("initrwnd", RTAX_INITRWND);
  }
  return r;
}

// ---------------------------------------------------------------------------------------
// Rules

/**
 * Builds RTM_NEWRULE / RTM_DELRULE for a spec, as keepalived does: a table below 256 in the
 * header (main for 0), larger ones in FRA_TABLE; NLM_F_CREATE|NLM_F_EXCL on add.
 */
export function ruleMessage(type: typeof RTM_NEWRULE | typeof RTM_DELRULE, spec: RuleSpec, nlFlags = 0): NlMsgBuilder {
  const toTable = spec.action === FR_ACT_TO_TBL && !spec.l3mdev;
  const hdr = fibRuleHdr({
    family: familyNumber(spec.family),
    dstLen: spec.dst !== undefined ? spec.dstLen : 0,
    srcLen: spec.src !== undefined ? spec.srcLen : 0,
    tos: spec.tos,
    table: toTable && spec.table < 256 ? (spec.table || RT_TABLE_MAIN) : RT_TABLE_UNSPEC,
    action: spec.action,
    flags: spec.invert ? FIB_RULE_INVERT : 0,
  });
  const b = new NlMsgBuilder(type, (type === RTM_NEWRULE ? NLM_F_CREATE | NLM_F_EXCL : 0) | nlFlags).bytes(hdr);
  if (toTable && spec.table >= 256) b.u32(FRA_TABLE, spec.table);
  if (spec.src !== undefined) b.attr(FRA_SRC, addr(spec.family, spec.src));
  if (spec.dst !== undefined) b.attr(FRA_DST, addr(spec.family, spec.dst));
  b.u32(FRA_PRIORITY, spec.priority);
  if (spec.fwmark !== undefined) b.u32(FRA_FWMARK, spec.fwmark);
  if (spec.fwmask !== undefined) b.u32(FRA_FWMASK, spec.fwmask);
  if (spec.realms !== undefined) b.u32(FRA_FLOW, spec.realms);
  if (spec.suppressPrefixlen !== undefined) b.u32(FRA_SUPPRESS_PREFIXLEN, spec.suppressPrefixlen);
  if (spec.suppressIfgroup !== undefined) b.u32(FRA_SUPPRESS_IFGROUP, spec.suppressIfgroup);
  if (spec.iif !== undefined) b.str(FRA_IIFNAME, spec.iif);
  if (spec.oif !== undefined) b.str(FRA_OIFNAME, spec.oif);
  if (spec.tunnelId !== undefined) {
    const t = new Uint8Array(8);
    new DataView(t.buffer).setBigUint64(0, BigInt(spec.tunnelId), false); // __be64
    b.attr(FRA_TUN_ID, t);
  }
  if (spec.uidRange) {
    const u = new Uint8Array(8);
    new DataView(u.buffer).setUint32(0, spec.uidRange[0], true);
    new DataView(u.buffer).setUint32(4, spec.uidRange[1], true);
    b.attr(FRA_UID_RANGE, u);
  }
  if (spec.l3mdev) b.u8(FRA_L3MDEV, 1);
  if (spec.protocol !== undefined) b.u8(FRA_PROTOCOL, spec.protocol);
  if (spec.ipProto !== undefined) b.u8(FRA_IP_PROTO, spec.ipProto);
  for (const [t, r] of [[FRA_SPORT_RANGE, spec.sport], [FRA_DPORT_RANGE, spec.dport]] as const) {
    if (!r) continue;
    const d = new Uint8Array(4);
    new DataView(d.buffer).setUint16(0, r[0], true);
    new DataView(d.buffer).setUint16(2, r[1], true);
    b.attr(t, d);
  }
  if (spec.goto !== undefined) b.u32(FRA_GOTO, spec.goto);
  return b;
}

/** A policy rule as the kernel reports it. */
export interface RuleInfo {
  family: Family;
  action: number;
  table: number;
  priority: number;
  src?: string;
  srcLen: number;
  dst?: string;
  dstLen: number;
  tos: number;
  flags: number;
  iif?: string;
  oif?: string;
  fwmark?: number;
  fwmask?: number;
  goto?: number;
  protocol?: number;
  suppressPrefixlen?: number;
}

/** Decodes RTM_NEWRULE/DELRULE; null for other families or short input. */
export function decodeRule(m: NlMsg): RuleInfo | null {
  const p = m.payload;
  if (p.length < 12) return null;
  const family = familyOf(p[0]!);
  if (!family) return null;
  const a = NlAttrs.parse(p, 12);
  const r: RuleInfo = {
    family, dstLen: p[1]!, srcLen: p[2]!, tos: p[3]!, table: a.u32(FRA_TABLE) ?? p[4]!, action: p[7]!,
    flags: view(p).getUint32(8, true), priority: a.u32(FRA_PRIORITY) ?? 0,
  };
  const src = a.get(FRA_SRC); if (src) r.src = formatIP(src);
  const dst = a.get(FRA_DST); if (dst) r.dst = formatIP(dst);
  const iif = a.str(FRA_IIFNAME); if (iif !== undefined) r.iif = iif;
  const oif = a.str(FRA_OIFNAME); if (oif !== undefined) r.oif = oif;
  const mark = a.u32(FRA_FWMARK); if (mark !== undefined) r.fwmark = mark;
  const mask = a.u32(FRA_FWMASK); if (mask !== undefined) r.fwmask = mask;
  const gt = a.u32(FRA_GOTO); if (gt !== undefined) r.goto = gt;
  const proto = a.u8(FRA_PROTOCOL); if (proto !== undefined) r.protocol = proto;
  const spl = a.u32(FRA_SUPPRESS_PREFIXLEN); if (spl !== undefined) r.suppressPrefixlen = spl;
  return r;
}

// ---------------------------------------------------------------------------------------
// Requests

export interface RouteAddOptions {
  /** NLM_F_REPLACE: overwrite a route with the same key (used when re-asserting). */
  replace?: boolean;
  /** NLM_F_EXCL: fail with EEXIST if present (iproute2's `add`). Default: prepend. */
  exclusive?: boolean;
}

function oifOf(rt: RtNetlink, spec: RouteSpec): number {
  return spec.dev ? linkIndex(rt, spec.dev) : 0;
}

function routeName(verb: string, spec: RouteSpec): string {
  return `${verb}(${spec.dst ?? "default"}/${spec.dstLen}${spec.table !== RT_TABLE_MAIN ? ` table ${spec.table}` : ""})`;
}

/** Adds a route (dev resolved in the socket's namespace); NetlinkError with the kernel's reason on refusal. */
export function addRoute(rt: RtNetlink, spec: RouteSpec, o: RouteAddOptions = {}): void {
  const flags = o.replace ? NLM_F_REPLACE : o.exclusive ? NLM_F_EXCL : 0;
  rt.sock.request(routeMessage(RTM_NEWROUTE, spec, oifOf(rt, spec), flags), routeName("RTM_NEWROUTE", spec));
}

/** Deletes a route; with `ignoreMissing`, a route (or its device) already gone is not an error. Returns whether one was deleted. */
export function deleteRoute(rt: RtNetlink, spec: RouteSpec, ignoreMissing = false): boolean {
  try {
    rt.sock.request(routeMessage(RTM_DELROUTE, spec, oifOf(rt, spec)), routeName("RTM_DELROUTE", spec));
    return true;
  } catch (e) {
    if (ignoreMissing && e instanceof NetlinkError && (e.errno === ESRCH || e.errno === 19 /* ENODEV */)) return false;
    throw e;
  }
}

/** Every route of a family (or both), optionally of one table; cloned cache entries are left out. */
export function dumpRoutes(rt: RtNetlink, family?: Family, table?: number): RouteInfo[] {
  const af = family ? familyNumber(family) : AF_UNSPEC;
  const parts = rt.sock.dump(new NlMsgBuilder(RTM_GETROUTE, 0).bytes(rtmsg({ family: af })), "RTM_GETROUTE");
  return parts.filter((m) => m.type === RTM_NEWROUTE).map(decodeRoute)
    .filter((r): r is RouteInfo => r !== null && !(r.flags & RTM_F_CLONED) && (table === undefined || r.table === table)
      && (!family || r.family === family));
}

/** Adds a rule; NetlinkError EEXIST if an identical one exists. */
export function addRule(rt: RtNetlink, spec: RuleSpec): void {
  rt.sock.request(ruleMessage(RTM_NEWRULE, spec), `RTM_NEWRULE(pref ${spec.priority})`);
}

/** Deletes a rule; with `ignoreMissing`, a rule already gone is not an error. Returns whether one was deleted. */
export function deleteRule(rt: RtNetlink, spec: RuleSpec, ignoreMissing = false): boolean {
  try {
    rt.sock.request(ruleMessage(RTM_DELRULE, spec), `RTM_DELRULE(pref ${spec.priority})`);
    return true;
  } catch (e) {
    if (ignoreMissing && e instanceof NetlinkError && e.errno === ENOENT) return false;
    throw e;
  }
}

/** Every policy rule of a family (or both). */
export function dumpRules(rt: RtNetlink, family?: Family): RuleInfo[] {
  const af = family ? familyNumber(family) : AF_UNSPEC;
  const parts = rt.sock.dump(new NlMsgBuilder(RTM_GETRULE, 0).bytes(fibRuleHdr({ family: af })), "RTM_GETRULE");
  return parts.filter((m) => m.type === RTM_NEWRULE).map(decodeRule)
    .filter((r): r is RuleInfo => r !== null && (!family || r.family === family));
}

// ---------------------------------------------------------------------------------------
// Batches (what the daemon calls on transitions)

/** The outcome of one entry of a batch. */
export interface BatchResult<T> {
  spec: T;
  /** "done", "present" (add found it there: EEXIST) or "absent" (delete found nothing). */
  outcome: "done" | "present" | "absent" | "failed";
  error?: NetlinkError | Error;
}

const EEXIST = 17;

/**
 * Adds or deletes every route, never stopping at a failure (one bad route must not keep
 * the others away). An add that finds the route already there, or a delete that finds it
 * gone, is not a failure: the desired state holds either way.
 */
export function applyRoutes(rt: RtNetlink, specs: readonly RouteSpec[], op: "add" | "delete"): BatchResult<RouteSpec>[] {
  return specs.map((spec) => {
    try {
      if (op === "add") addRoute(rt, spec);
      else if (!deleteRoute(rt, spec, true)) return { spec, outcome: "absent" };
      return { spec, outcome: "done" };
    } catch (e) {
      if (op === "add" && e instanceof NetlinkError && e.errno === EEXIST) return { spec, outcome: "present" };
      return { spec, outcome: "failed", error: e as Error };
    }
  });
}

/** Like applyRoutes, for rules. */
export function applyRules(rt: RtNetlink, specs: readonly RuleSpec[], op: "add" | "delete"): BatchResult<RuleSpec>[] {
  return specs.map((spec) => {
    try {
      if (op === "add") addRule(rt, spec);
      else if (!deleteRule(rt, spec, true)) return { spec, outcome: "absent" };
      return { spec, outcome: "done" };
    } catch (e) {
      if (op === "add" && e instanceof NetlinkError && e.errno === EEXIST) return { spec, outcome: "present" };
      return { spec, outcome: "failed", error: e as Error };
    }
  });
}
