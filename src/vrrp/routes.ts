/**
 * Route and rule lines of the config (`virtual_routes`, `static_rules`, ...) turned into
 * numeric specs the rtnetlink encoder sends as they are. Pure: table, protocol and scope
 * names come from maps the caller builds (parseRtNames over /etc/iproute2 files).
 * Defaults follow keepalived's vrrp_iproute.c / vrrp_iprule.c: table main, type unicast,
 * protocol keepalived (18) for tracked entries, and rules without a preference numbered
 * downwards from 16384 per family.
 */
import type { Family } from "./types.ts";
import { canonicalIp, parseIp } from "../net/addr.ts";

// Kernel numbers (linux/rtnetlink.h, linux/fib_rules.h). Duplicated here because core code
// never imports ffi/; the encoder copies them into the message unchanged.
export const RT_TABLE_UNSPEC = 0, RT_TABLE_DEFAULT = 253, RT_TABLE_MAIN = 254, RT_TABLE_LOCAL = 255;
export const RTN_UNICAST = 1, RTN_LOCAL = 2, RTN_BROADCAST = 3, RTN_ANYCAST = 4, RTN_MULTICAST = 5;
export const RTN_BLACKHOLE = 6, RTN_UNREACHABLE = 7, RTN_PROHIBIT = 8, RTN_THROW = 9, RTN_NAT = 10;
export const RTPROT_BOOT = 3, RTPROT_STATIC = 4, RTPROT_KEEPALIVED = 18;
export const RT_SCOPE_UNIVERSE = 0, RT_SCOPE_SITE = 200, RT_SCOPE_LINK = 253, RT_SCOPE_HOST = 254, RT_SCOPE_NOWHERE = 255;
export const FR_ACT_TO_TBL = 1, FR_ACT_GOTO = 2, FR_ACT_NOP = 3, FR_ACT_BLACKHOLE = 6, FR_ACT_UNREACHABLE = 7, FR_ACT_PROHIBIT = 8;
/** ICMPV6_ROUTER_PREF_* values of RTA_PREF. */
export const ROUTER_PREF = { low: 3, medium: 0, high: 1 } as const;
/** keepalived's first automatic rule preference (counted down per family). */
export const RULE_START_PRIORITY = 16384;

const ROUTE_TYPES: Record<string, number> = {
  unicast: RTN_UNICAST, local: RTN_LOCAL, broadcast: RTN_BROADCAST, anycast: RTN_ANYCAST, multicast: RTN_MULTICAST,
  blackhole: RTN_BLACKHOLE, unreachable: RTN_UNREACHABLE, prohibit: RTN_PROHIBIT, throw: RTN_THROW, nat: RTN_NAT,
};
const RULE_ACTIONS: Record<string, number> = {
  blackhole: FR_ACT_BLACKHOLE, unreachable: FR_ACT_UNREACHABLE, prohibit: FR_ACT_PROHIBIT, nop: FR_ACT_NOP,
};
const IP_PROTOS: Record<string, number> = { icmp: 1, igmp: 2, tcp: 6, udp: 17, gre: 47, esp: 50, ah: 51, ipv6_icmp: 58, icmpv6: 58, sctp: 132 };

/** iproute2's built-in names, used when the files are missing (as iproute2 does). */
export const DEFAULT_TABLES: ReadonlyMap<string, number> = new Map([
  ["unspec", 0], ["default", 253], ["main", 254], ["local", 255],
]);
export const DEFAULT_PROTOCOLS: ReadonlyMap<string, number> = new Map([
  ["unspec", 0], ["redirect", 1], ["kernel", 2], ["boot", 3], ["static", 4], ["gated", 8], ["ra", 9], ["mrt", 10],
  ["zebra", 11], ["bird", 12], ["dnrouted", 13], ["xorp", 14], ["ntk", 15], ["dhcp", 16], ["keepalived", 18],
  ["babel", 42], ["openr", 99], ["bgp", 186], ["isis", 187], ["ospf", 188], ["rip", 189], ["eigrp", 192],
]);
export const DEFAULT_SCOPES: ReadonlyMap<string, number> = new Map([
  ["global", 0], ["universe", 0], ["site", 200], ["link", 253], ["host", 254], ["nowhere", 255],
]);

/** Files iproute2 reads for names, relative to its etc directory (default /etc/iproute2). */
export const RT_NAME_FILES = { tables: "rt_tables", protocols: "rt_protos", scopes: "rt_scopes", realms: "rt_realms" } as const;

/**
 * Parses an iproute2 name file ("254 main" lines, '#' comments, hex or decimal numbers)
 * into `base` extended by the file's names.
 */
export function parseRtNames(text: string, base: ReadonlyMap<string, number> = new Map()): Map<string, number> {
  const out = new Map(base);
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    const m = /^(0x[0-9a-fA-F]+|\d+)\s+([^\s]+)/.exec(line);
    if (m) out.set(m[2]!, Number(m[1]));
  }
  return out;
}

/** Name tables and rule numbering shared by every route/rule line of one config. */
export interface RouteContext {
  tables: ReadonlyMap<string, number>;
  protocols: ReadonlyMap<string, number>;
  scopes: ReadonlyMap<string, number>;
  realms: ReadonlyMap<string, number>;
  /** Next automatic rule preference per family; decremented as rules without one are seen. */
  nextRulePriority: Record<Family, number>;
}

/** A RouteContext with iproute2's built-in names; pass file texts to add the system's. */
export function routeContext(files: { tables?: string; protocols?: string; scopes?: string; realms?: string } = {}): RouteContext {
  return {
    tables: parseRtNames(files.tables ?? "", DEFAULT_TABLES),
    protocols: parseRtNames(files.protocols ?? "", DEFAULT_PROTOCOLS),
    scopes: parseRtNames(files.scopes ?? "", DEFAULT_SCOPES),
    realms: parseRtNames(files.realms ?? "", new Map([["unknown", 0]])),
    nextRulePriority: { inet: RULE_START_PRIORITY, inet6: RULE_START_PRIORITY },
  };
}

/** A route as rtnetlink needs it; numbers are the kernel's. */
export interface RouteSpec {
  family: Family;
  /** RTN_* */
  type: number;
  /** Destination network (canonical text); absent for `default`. */
  dst?: string;
  dstLen: number;
  table: number;
  /** RTPROT_* */
  protocol: number;
  /** RT_SCOPE_*; absent = universe on add, nowhere (any) on delete, as keepalived does. */
  scope?: number;
  tos: number;
  gateway?: string;
  /** Output interface by name; the edge resolves it to an index. */
  dev?: string;
  /** Preferred source (`src`). */
  prefsrc?: string;
  /** RTA_PRIORITY (`metric`). */
  metric?: number;
  /** RTNH_F_ONLINK: the gateway is on the link even without a matching prefix. */
  onlink: boolean;
  /** RTA_METRICS members (RTAX_*). */
  mtu?: number;
  advmss?: number;
  hoplimit?: number;
  initcwnd?: number;
  initrwnd?: number;
  congctl?: string;
  /** RTA_FLOW: (from realm << 16) | to realm. */
  realms?: number;
  /** RTA_PREF (IPv6 router preference). */
  pref?: number;
  /** RTA_EXPIRES seconds (IPv6). */
  expires?: number;
  /** The line's `no_track`: vipd does not re-add it if someone deletes it. */
  noTrack: boolean;
}

/** A policy rule as rtnetlink needs it. */
export interface RuleSpec {
  family: Family;
  /** FR_ACT_* */
  action: number;
  /** Table for FR_ACT_TO_TBL (0 otherwise). */
  table: number;
  /** FRA_PRIORITY (always set: assigned when the line has none). */
  priority: number;
  src?: string;
  srcLen: number;
  dst?: string;
  dstLen: number;
  tos: number;
  iif?: string;
  oif?: string;
  fwmark?: number;
  fwmask?: number;
  /** FIB_RULE_INVERT (`not`). */
  invert: boolean;
  /** FRA_GOTO target preference. */
  goto?: number;
  realms?: number;
  suppressPrefixlen?: number;
  suppressIfgroup?: number;
  tunnelId?: number;
  uidRange?: [number, number];
  /** FRA_PROTOCOL: RTPROT_KEEPALIVED for tracked rules, as keepalived sets it. */
  protocol?: number;
  ipProto?: number;
  sport?: [number, number];
  dport?: [number, number];
  l3mdev: boolean;
  noTrack: boolean;
}

export type Mapped<T> = { ok: true; value: T; warnings: string[] } | { ok: false; error: string };

type Rec = Record<string, unknown>;
const str = (r: Rec, k: string): string | undefined => (typeof r[k] === "string" ? (r[k] as string) : undefined);
const num = (r: Rec, k: string): number | undefined => (typeof r[k] === "number" ? (r[k] as number) : undefined);

/** A number word ("0x10", "16") or undefined. */
function parseNumber(s: string): number | undefined {
  return /^(0x[0-9a-fA-F]+|\d+)$/.test(s) ? Number(s) : undefined;
}

/** Resolves a name from `names` or a plain number within [0, max]. */
function lookup(names: ReadonlyMap<string, number>, word: string, max: number): number | undefined {
  const n = names.get(word) ?? parseNumber(word);
  return n !== undefined && n >= 0 && n <= max ? n : undefined;
}

class Fail extends Error {}

/** Tracks the family a line's addresses imply; mixing families is an error, as in keepalived. */
class FamilyOf {
  value: Family | undefined;
  constructor(inet6: boolean) {
    if (inet6) this.value = "inet6";
  }
  see(addr: string, what: string): void {
    const f = parseIp(addr)?.family;
    if (!f) throw new Fail(`invalid ${what} address '${addr}'`);
    if (this.value && this.value !== f) throw new Fail(`cannot mix IPv4 and IPv6 addresses (${what} ${addr})`);
    this.value = f;
  }
}

/** Splits "ADDR/LEN", "default" or "all" into canonical address and length; `all`/`default` → none. */
function prefixOf(word: string, fam: FamilyOf, what: string): { addr?: string; len: number } {
  if (word === "default" || word === "all" || word === "any") return { len: 0 };
  const [a, l] = word.split("/") as [string, string | undefined];
  fam.see(a, what);
  const max = fam.value === "inet" ? 32 : 128;
  const len = l === undefined ? max : Number(l);
  if (!Number.isInteger(len) || len < 0 || len > max) throw new Fail(`invalid prefix length in '${word}'`);
  return { addr: canonicalIp(a) ?? a, len };
}

function realmsOf(word: string, ctx: RouteContext): number {
  const [a, b] = word.split("/") as [string, string | undefined];
  const from = b === undefined ? 0 : lookup(ctx.realms, a, 0xffff);
  const to = lookup(ctx.realms, b ?? a, 0xffff);
  if (from === undefined || to === undefined) throw new Fail(`unknown realm in '${word}'`);
  return ((from << 16) | to) >>> 0;
}

function tableOf(word: string, ctx: RouteContext): number {
  const t = lookup(ctx.tables, word, 0xffffffff);
  if (t === undefined) throw new Fail(`routing table '${word}' not found`);
  return t;
}

function range(word: string, what: string): [number, number] {
  const [a, b] = word.split("-");
  const lo = Number(a), hi = b === undefined ? lo : Number(b);
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo > hi) throw new Fail(`invalid ${what} range '${word}'`);
  return [lo, hi];
}

function wrap<T>(fn: (warnings: string[]) => T): Mapped<T> {
  const warnings: string[] = [];
  try {
    return { ok: true, value: fn(warnings), warnings };
  } catch (e) {
    if (e instanceof Fail) return { ok: false, error: e.message };
    throw e;
  }
}

/** Maps one parsed `ip route` line (routeFields record) to a RouteSpec. */
export function routeSpec(rec: Rec, ctx: RouteContext): Mapped<RouteSpec> {
  return wrap((warnings) => {
    const fam = new FamilyOf(rec.inet6 === true);
    const typeWord = str(rec, "type");
    const type = typeWord ? ROUTE_TYPES[typeWord] : RTN_UNICAST;
    if (type === undefined) throw new Fail(`unknown route type '${typeWord}'`);
    const to = str(rec, "to");
    if (!to) throw new Fail("route must have a destination");
    const dst = prefixOf(to, fam, "destination");
    const via = str(rec, "via");
    if (via) fam.see(via, "via");
    const src = str(rec, "src");
    if (src) fam.see(src, "src");
    const family = fam.value ?? "inet";
    const noTrack = rec.no_track === true;
    let protocol = RTPROT_KEEPALIVED;
    const protoWord = str(rec, "protocol");
    if (protoWord !== undefined) {
      const p = lookup(ctx.protocols, protoWord, 255);
      if (p === undefined) throw new Fail(`unknown route protocol '${protoWord}'`);
      // keepalived recognises its own routes by protocol, so tracked ones keep 18.
      if (noTrack) protocol = p;
      else if (p !== RTPROT_KEEPALIVED) warnings.push(`route protocol '${protoWord}' ignored: tracked routes use protocol keepalived (18); add no_track to keep it`);
    }
    const spec: RouteSpec = {
      family, type, dstLen: dst.len, table: RT_TABLE_MAIN, protocol, tos: 0, onlink: rec.onlink === true, noTrack,
    };
    if (dst.addr) spec.dst = dst.addr;
    if (via) spec.gateway = canonicalIp(via) ?? via;
    if (src) spec.prefsrc = canonicalIp(src) ?? src;
    const dev = str(rec, "dev");
    if (dev) spec.dev = dev;
    const table = str(rec, "table");
    if (table !== undefined) spec.table = tableOf(table, ctx);
    const scope = str(rec, "scope");
    if (scope !== undefined) {
      const s = lookup(ctx.scopes, scope, 255);
      if (s === undefined) throw new Fail(`unknown route scope '${scope}'`);
      spec.scope = s;
    }
    const tos = str(rec, "tos");
    if (tos !== undefined) {
      const t = lookup(new Map(), tos, 255);
      if (t === undefined) throw new Fail(`invalid tos '${tos}'`);
      spec.tos = t;
    }
    for (const k of ["metric", "mtu", "advmss", "hoplimit", "initcwnd", "initrwnd", "expires"] as const) {
      const v = num(rec, k);
      if (v !== undefined) spec[k] = v;
    }
    const realms = str(rec, "realms");
    if (realms !== undefined) spec.realms = realmsOf(realms, ctx);
    const pref = str(rec, "pref") as keyof typeof ROUTER_PREF | undefined;
    if (pref !== undefined) spec.pref = ROUTER_PREF[pref];
    const congctl = str(rec, "congctl");
    if (congctl !== undefined) spec.congctl = congctl;
    if (str(rec, "vrf") !== undefined) warnings.push("route vrf is not supported; use 'table' with the VRF's table");
    if (spec.onlink && !spec.gateway) throw new Fail("onlink needs a gateway (via)");
    const reject = type === RTN_BLACKHOLE || type === RTN_UNREACHABLE || type === RTN_PROHIBIT || type === RTN_THROW;
    if (reject && spec.gateway) throw new Fail(`a ${typeWord} route cannot have a gateway`);
    return spec;
  });
}

/** Maps one parsed `ip rule` line (ruleFields record) to a RuleSpec, numbering it if it has no preference. */
export function ruleSpec(rec: Rec, ctx: RouteContext): Mapped<RuleSpec> {
  return wrap((warnings) => {
    const fam = new FamilyOf(rec.inet6 === true);
    const from = str(rec, "from");
    const to = str(rec, "to");
    const src = from !== undefined ? prefixOf(from, fam, "from") : undefined;
    const dst = to !== undefined ? prefixOf(to, fam, "to") : undefined;
    const family = fam.value ?? "inet";
    const actionWord = str(rec, "action");
    const tableWord = str(rec, "table");
    const gotoTarget = num(rec, "goto");
    let action = 0;
    if (actionWord) action = RULE_ACTIONS[actionWord] ?? 0;
    if (gotoTarget !== undefined) {
      if (action) throw new Fail("a rule has only one action (goto given with " + actionWord + ")");
      action = FR_ACT_GOTO;
    }
    if (tableWord !== undefined) {
      if (action) throw new Fail(`a rule with '${actionWord ?? "goto"}' cannot also have a table`);
      action = FR_ACT_TO_TBL;
    }
    const l3mdev = rec.l3mdev === true;
    if (!action && l3mdev) action = FR_ACT_TO_TBL;
    if (!action) throw new Fail("no action specified for rule (table, goto, blackhole, unreachable, prohibit or nop)");
    const noTrack = rec.no_track === true;
    const spec: RuleSpec = {
      family, action, table: 0, priority: 0, srcLen: src?.len ?? 0, dstLen: dst?.len ?? 0, tos: 0,
      invert: rec.not === true, l3mdev, noTrack,
    };
    if (src?.addr) spec.src = src.addr;
    if (dst?.addr) spec.dst = dst.addr;
    if (tableWord !== undefined) spec.table = tableOf(tableWord, ctx);
    if (l3mdev && spec.table) throw new Fail("table cannot be specified for l3mdev rules");
    const prio = num(rec, "priority");
    if (prio !== undefined) spec.priority = prio;
    else {
      spec.priority = ctx.nextRulePriority[family]--;
      warnings.push(`rule has no preference: using ${spec.priority}`);
    }
    if (gotoTarget !== undefined) {
      if (prio === undefined) throw new Fail("a goto rule needs a preference");
      if (prio >= gotoTarget) throw new Fail(`preference ${prio} must be below the goto target ${gotoTarget}`);
      spec.goto = gotoTarget;
    }
    const tos = str(rec, "tos");
    if (tos !== undefined) {
      const t = lookup(new Map(), tos, 255);
      if (t === undefined) throw new Fail(`invalid tos '${tos}'`);
      spec.tos = t;
    }
    const iif = str(rec, "iif");
    if (iif) spec.iif = iif;
    const oif = str(rec, "oif");
    if (oif) spec.oif = oif;
    const fwmark = str(rec, "fwmark");
    if (fwmark !== undefined) {
      const [m, mask] = fwmark.split("/") as [string, string | undefined];
      spec.fwmark = parseNumber(m)! >>> 0;
      if (mask !== undefined) spec.fwmask = parseNumber(mask)! >>> 0;
    }
    const realms = str(rec, "realms");
    if (realms !== undefined) spec.realms = realmsOf(realms, ctx);
    const spl = num(rec, "suppress_prefixlength");
    if (spl !== undefined) spec.suppressPrefixlen = spl;
    const sig = str(rec, "suppress_ifgroup");
    if (sig !== undefined) {
      const g = parseNumber(sig);
      if (g === undefined) throw new Fail(`interface group '${sig}' must be a number`);
      spec.suppressIfgroup = g;
    }
    if ((spl !== undefined || sig !== undefined || realms !== undefined) && action !== FR_ACT_TO_TBL) {
      throw new Fail("suppress_prefixlength, suppress_ifgroup and realms need a table action");
    }
    const tun = num(rec, "tunnel_id");
    if (tun !== undefined) spec.tunnelId = tun;
    const uid = str(rec, "uidrange");
    if (uid !== undefined) spec.uidRange = range(uid, "uid");
    const ipProto = str(rec, "ip_proto");
    if (ipProto !== undefined) {
      const p = lookup(new Map(Object.entries(IP_PROTOS)), ipProto, 255);
      if (p === undefined) throw new Fail(`unknown ip_proto '${ipProto}'`);
      spec.ipProto = p;
    }
    const sport = str(rec, "sport");
    if (sport !== undefined) spec.sport = range(sport, "port");
    const dport = str(rec, "dport");
    if (dport !== undefined) spec.dport = range(dport, "port");
    const protoWord = str(rec, "protocol");
    if (protoWord !== undefined) {
      const p = lookup(ctx.protocols, protoWord, 255);
      if (p === undefined) throw new Fail(`unknown rule protocol '${protoWord}'`);
      if (noTrack) spec.protocol = p;
      else if (p !== RTPROT_KEEPALIVED) warnings.push(`rule protocol '${protoWord}' ignored: tracked rules use protocol keepalived (18); add no_track to keep it`);
    }
    if (!noTrack) spec.protocol = RTPROT_KEEPALIVED;
    return spec;
  });
}

/** Maps every line; errors carry the line's index so the caller can point at it. */
export function routeSpecs(recs: readonly Rec[], ctx: RouteContext): { specs: RouteSpec[]; errors: { index: number; error: string }[]; warnings: { index: number; warning: string }[] } {
  return mapAll(recs, (r) => routeSpec(r, ctx));
}

/** Like routeSpecs, for rule lines. */
export function ruleSpecs(recs: readonly Rec[], ctx: RouteContext): { specs: RuleSpec[]; errors: { index: number; error: string }[]; warnings: { index: number; warning: string }[] } {
  return mapAll(recs, (r) => ruleSpec(r, ctx));
}

function mapAll<T>(recs: readonly Rec[], fn: (r: Rec) => Mapped<T>) {
  const specs: T[] = [];
  const errors: { index: number; error: string }[] = [];
  const warnings: { index: number; warning: string }[] = [];
  recs.forEach((r, index) => {
    const m = fn(r);
    if (m.ok) {
      specs.push(m.value);
      for (const w of m.warnings) warnings.push({ index, warning: w });
    } else errors.push({ index, error: m.error });
  });
  return { specs, errors, warnings };
}

/**
 * A stable identity of a route: what the kernel uses to tell routes apart (family, table,
 * destination, tos, metric), for reconciling desired and present sets.
 */
export function routeKey(r: Pick<RouteSpec, "family" | "table" | "dst" | "dstLen" | "tos" | "metric">): string {
  return `${r.family} ${r.table} ${r.dst ?? "default"}/${r.dstLen} tos ${r.tos} metric ${r.metric ?? 0}`;
}

/** routeKey() of a spec as the kernel reports the route (IPv6 routes without a metric get 1024). */
export function kernelRouteKey(s: Pick<RouteSpec, "family" | "table" | "dst" | "dstLen" | "tos" | "metric">): string {
  return routeKey({ ...s, metric: s.metric ?? (s.family === "inet6" ? 1024 : 0) });
}

/** What identifies a rule to the kernel, comparable between a RuleSpec and a dumped rule. */
export function ruleIdentity(r: { family: string; priority: number; table: number; src?: string; srcLen: number; dst?: string; dstLen: number }): string {
  return `${r.family} pref ${r.priority} table ${r.table} from ${r.src ?? "all"}/${r.srcLen} to ${r.dst ?? "all"}/${r.dstLen}`;
}

/** A stable identity of a rule, for reconciling desired and present sets. */
export function ruleKey(r: RuleSpec): string {
  return JSON.stringify([r.family, r.priority, r.action, r.table, r.src, r.srcLen, r.dst, r.dstLen, r.tos, r.iif, r.oif,
    r.fwmark, r.fwmask, r.invert, r.goto]);
}

/** ip-route-like text of a spec, for logs ("192.0.2.0/24 via 198.51.100.1 dev eth0 table 100"). */
export function describeRoute(r: RouteSpec): string {
  const type = Object.entries(ROUTE_TYPES).find(([, v]) => v === r.type)?.[0] ?? String(r.type);
  const parts = [type === "unicast" ? "" : type, r.dst ? `${r.dst}/${r.dstLen}` : "default"];
  if (r.gateway) parts.push(`via ${r.gateway}`);
  if (r.dev) parts.push(`dev ${r.dev}`);
  if (r.prefsrc) parts.push(`src ${r.prefsrc}`);
  if (r.table !== RT_TABLE_MAIN) parts.push(`table ${r.table}`);
  if (r.metric !== undefined) parts.push(`metric ${r.metric}`);
  if (r.onlink) parts.push("onlink");
  return parts.filter(Boolean).join(" ");
}

/** ip-rule-like text of a spec, for logs. */
export function describeRule(r: RuleSpec): string {
  const parts = [`${r.priority}:`];
  if (r.invert) parts.push("not");
  parts.push(`from ${r.src ? `${r.src}/${r.srcLen}` : "all"}`);
  if (r.dst) parts.push(`to ${r.dst}/${r.dstLen}`);
  if (r.fwmark !== undefined) parts.push(`fwmark 0x${r.fwmark.toString(16)}${r.fwmask !== undefined ? `/0x${r.fwmask.toString(16)}` : ""}`);
  if (r.iif) parts.push(`iif ${r.iif}`);
  if (r.oif) parts.push(`oif ${r.oif}`);
  const act = Object.entries(RULE_ACTIONS).find(([, v]) => v === r.action)?.[0];
  if (r.action === FR_ACT_TO_TBL) parts.push(`lookup ${r.table}`);
  else if (r.action === FR_ACT_GOTO) parts.push(`goto ${r.goto}`);
  else if (act) parts.push(act);
  return parts.join(" ");
}
