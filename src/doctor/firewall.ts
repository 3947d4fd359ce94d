/**
 * Firewall rules that would drop VRRP: the nftables ruleset (`nft -j list ruleset`) and the
 * iptables/ip6tables rules (`iptables-save`), walked in order for the packets this config
 * sends and receives (IP protocol 112 or 51, to 224.0.0.18 / ff02::12 or a unicast peer).
 * A rule that names VRRP (its protocol or group) and drops it is an error; an input policy
 * of drop with no rule accepting VRRP is an error too, or a warning when an earlier accept
 * rule has conditions we cannot judge (an interface, a source address).
 */
import type { Model } from "../config/model.ts";
import { inPrefix, parseIp, parsePrefix } from "../net/addr.ts";
import type { DoctorCheck, DoctorProbe, Finding } from "./types.ts";

/** A packet vipd must receive. */
export interface VrrpPacket {
  family: "inet" | "inet6";
  protocol: 112 | 51;
  /** The multicast group, or undefined for unicast (destination = one of ours). */
  daddr?: string;
  label: string;
}

/** true/false, or undefined when the condition looks at something the packet model does not have. */
type Tri = boolean | undefined;
interface Cond {
  test: (p: VrrpPacket) => Tri;
  /** Names VRRP specifically (protocol 112/51 or its group): a drop by it is deliberate. */
  specific: (p: VrrpPacket) => boolean;
}
type Verdict = "accept" | "drop" | "other";
export interface FwRule {
  where: string;
  conds: Cond[];
  verdict: Verdict;
}
export interface FwChain {
  where: string;
  /** Base chain policy (drop only matters). */
  policy: "accept" | "drop";
  families: Array<"inet" | "inet6">;
  rules: FwRule[];
}

/** The fate of one packet in one chain. */
export interface ChainVerdict {
  packet: VrrpPacket;
  chain: string;
  severity: "error" | "warning";
  reason: string;
}

const PROTO_NAMES: Record<string, number> = { vrrp: 112, ah: 51, "112": 112, "51": 51, tcp: 6, udp: 17, icmp: 1, "ipv6-icmp": 58, icmpv6: 58, esp: 50, gre: 47, sctp: 132 };

function protoNumber(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "string") return PROTO_NAMES[v.toLowerCase()] ?? (/^\d+$/.test(v) ? Number(v) : undefined);
  return undefined;
}

/** Does an address value (plain, prefix, range) contain `addr`? undefined when we cannot tell. */
function addrMatches(v: unknown, addr: string): Tri {
  const a = parseIp(addr);
  if (!a) return undefined;
  if (typeof v === "string") {
    const p = parsePrefix(v);
    if (!p) return undefined;
    return p.family === a.family && inPrefix(a.bytes, p.bytes, p.prefixLen);
  }
  if (v && typeof v === "object") {
    const o = v as { prefix?: { addr: string; len: number }; range?: [string, string] };
    if (o.prefix) {
      const p = parseIp(o.prefix.addr);
      return p ? p.family === a.family && inPrefix(a.bytes, p.bytes, o.prefix.len) : undefined;
    }
    if (o.range) {
      const lo = parseIp(o.range[0]);
      const hi = parseIp(o.range[1]);
      if (!lo || !hi || lo.family !== a.family) return lo && lo.family !== a.family ? false : undefined;
      const cmp = (x: Uint8Array, y: Uint8Array) => Buffer.compare(Buffer.from(x), Buffer.from(y));
      return cmp(lo.bytes, a.bytes) <= 0 && cmp(a.bytes, hi.bytes) <= 0;
    }
  }
  return undefined;
}

/** A value, an anonymous set or a named set: any element matching. */
function anyOf(right: unknown, sets: ReadonlyMap<string, unknown[]>, one: (v: unknown) => Tri): Tri {
  let values: unknown[];
  if (typeof right === "string" && right.startsWith("@")) {
    const s = sets.get(right.slice(1));
    if (!s) return undefined;
    values = s;
  } else if (Array.isArray(right)) values = right;
  else if (right && typeof right === "object" && Array.isArray((right as { set?: unknown[] }).set)) values = (right as { set: unknown[] }).set;
  else values = [right];
  let unknown = false;
  for (const v of values) {
    const r = one(v);
    if (r === true) return true;
    if (r === undefined) unknown = true;
  }
  return unknown ? undefined : false;
}

const not = (t: Tri): Tri => (t === undefined ? undefined : !t);

// ---- nftables ---------------------------------------------------------------------------------

type NftObj = Record<string, Record<string, unknown>>;

/** Parses `nft -j list ruleset` into base input chains (ip, ip6, inet tables; input and prerouting hooks). */
export function parseNftRuleset(json: string): FwChain[] {
  const items = ((JSON.parse(json) as { nftables?: NftObj[] }).nftables ?? []);
  const sets = new Map<string, unknown[]>();
  for (const o of items) {
    const s = o.set;
    if (s) sets.set(`${s.family} ${s.table} ${s.name}`, (s.elem as unknown[] | undefined) ?? []);
  }
  const chains = new Map<string, FwChain>();
  for (const o of items) {
    const c = o.chain;
    if (!c || (c.hook !== "input" && c.hook !== "prerouting")) continue;
    const fam = c.family as string;
    const families: Array<"inet" | "inet6"> = fam === "ip" ? ["inet"] : fam === "ip6" ? ["inet6"] : fam === "inet" ? ["inet", "inet6"] : [];
    if (!families.length) continue;
    chains.set(`${fam} ${c.table} ${c.name}`, {
      where: `nft ${fam} ${c.table} ${c.name}`, policy: c.policy === "drop" ? "drop" : "accept", families, rules: [],
    });
  }
  for (const o of items) {
    const r = o.rule;
    if (!r) continue;
    const chain = chains.get(`${r.family} ${r.table} ${r.chain}`);
    if (!chain) continue;
    const tableSets = new Map([...sets].filter(([k]) => k.startsWith(`${r.family} ${r.table} `)).map(([k, v]) => [k.split(" ")[2]!, v]));
    chain.rules.push(nftRule(`${chain.where} handle ${r.handle ?? "?"}`, (r.expr as Record<string, unknown>[] | undefined) ?? [], tableSets));
  }
  return [...chains.values()];
}

function nftRule(where: string, exprs: Record<string, unknown>[], sets: ReadonlyMap<string, unknown[]>): FwRule {
  const conds: Cond[] = [];
  let verdict: Verdict = "other";
  let final = false;
  for (const e of exprs) {
    const [kind, body] = Object.entries(e)[0] ?? [];
    if (kind === "accept") (verdict = "accept"), (final = true);
    else if (kind === "drop" || kind === "reject") (verdict = "drop"), (final = true);
    else if (kind === "jump" || kind === "goto" || kind === "return" || kind === "queue") (verdict = "other"), (final = true);
    else if (kind === "match") conds.push(nftMatch(body as { op?: string; left?: Record<string, Record<string, string>>; right?: unknown }, sets));
    // counter, log, limit (limit is a condition, but a limited drop still drops): no effect here
    if (final) break;
  }
  return { where, conds, verdict };
}

function nftMatch(m: { op?: string; left?: Record<string, Record<string, string>>; right?: unknown }, sets: ReadonlyMap<string, unknown[]>): Cond {
  const neg = m.op === "!=";
  const wrap = (t: (p: VrrpPacket) => Tri, specific: (p: VrrpPacket) => boolean): Cond => ({
    test: (p) => (neg ? not(t(p)) : t(p)),
    specific: (p) => !neg && specific(p),
  });
  const payload = m.left?.payload;
  const meta = m.left?.meta;
  const proto = (p: VrrpPacket) => anyOf(m.right, sets, (v) => protoNumber(v) === undefined ? undefined : protoNumber(v) === p.protocol);
  const daddr = (p: VrrpPacket) => (p.daddr === undefined ? undefined : anyOf(m.right, sets, (v) => addrMatches(v, p.daddr!)));
  if (payload?.protocol === "ip" && payload.field === "protocol") {
    return wrap((p) => (p.family === "inet" ? proto(p) : false), (p) => p.family === "inet" && proto(p) === true);
  }
  if (payload?.protocol === "ip6" && payload.field === "nexthdr") {
    return wrap((p) => (p.family === "inet6" ? proto(p) : false), (p) => p.family === "inet6" && proto(p) === true);
  }
  if (meta?.key === "l4proto") return wrap(proto, (p) => proto(p) === true);
  if (meta?.key === "nfproto") {
    return wrap((p) => anyOf(m.right, sets, (v) => (v === "ipv4" ? p.family === "inet" : v === "ipv6" ? p.family === "inet6" : undefined)), () => false);
  }
  if ((payload?.protocol === "ip" || payload?.protocol === "ip6") && payload.field === "daddr") {
    const fam = payload.protocol === "ip" ? "inet" : "inet6";
    return wrap((p) => (p.family === fam ? daddr(p) : false), (p) => p.family === fam && p.daddr !== undefined && daddr(p) === true);
  }
  // a transport header match (tcp dport 22, udp, icmp type ...) implies that protocol: never VRRP or AH
  if (payload && TRANSPORT_HEADERS.has(payload.protocol!)) return { test: () => false, specific: () => false };
  return { test: () => undefined, specific: () => false };
}

const TRANSPORT_HEADERS = new Set(["tcp", "udp", "udplite", "sctp", "dccp", "icmp", "icmpv6", "th", "esp", "comp"]);

// ---- iptables-save --------------------------------------------------------------------------

/** Parses `iptables-save` / `ip6tables-save` output: INPUT (filter, mangle) and PREROUTING (raw, mangle). */
export function parseIptablesSave(text: string, family: "inet" | "inet6"): FwChain[] {
  const tool = family === "inet" ? "iptables" : "ip6tables";
  const chains = new Map<string, FwChain>();
  let table = "";
  const wanted = (t: string, c: string) => (c === "INPUT" && (t === "filter" || t === "mangle")) || (c === "PREROUTING" && (t === "raw" || t === "mangle"));
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("*")) table = line.slice(1);
    else if (line.startsWith(":")) {
      const [name, policy] = line.slice(1).split(/\s+/);
      if (name && wanted(table, name)) chains.set(`${table} ${name}`, { where: `${tool} -t ${table} ${name}`, policy: policy === "DROP" ? "drop" : "accept", families: [family], rules: [] });
    } else if (line.startsWith("-A ")) {
      const words = line.match(/"[^"]*"|\S+/g) ?? [];
      const chain = chains.get(`${table} ${words[1]}`);
      if (chain) chain.rules.push(iptablesRule(`${chain.where}: ${line}`, words.slice(2)));
    }
  }
  return [...chains.values()];
}

function iptablesRule(where: string, words: string[]): FwRule {
  const conds: Cond[] = [];
  let verdict: Verdict = "other";
  for (let i = 0; i < words.length; i++) {
    let w = words[i]!;
    let neg = false;
    if (w === "!") {
      neg = true;
      w = words[++i] ?? "";
    }
    const value = words[i + 1];
    const cond = (test: (p: VrrpPacket) => Tri, specific: (p: VrrpPacket) => boolean): Cond =>
      ({ test: (p) => (neg ? not(test(p)) : test(p)), specific: (p) => !neg && specific(p) });
    if (w === "-p" || w === "--protocol") {
      const n = protoNumber(value);
      conds.push(cond((p) => (n === undefined ? (value === "all" ? true : undefined) : n === p.protocol), (p) => n === p.protocol));
      i++;
    } else if (w === "-d" || w === "--destination") {
      conds.push(cond((p) => (p.daddr === undefined ? undefined : anyOf((value ?? "").split(","), new Map(), (v) => addrMatches(v, p.daddr!))), (p) => p.daddr !== undefined && anyOf((value ?? "").split(","), new Map(), (v) => addrMatches(v, p.daddr!)) === true));
      i++;
    } else if (w === "-j" || w === "-g") {
      verdict = value === "ACCEPT" ? "accept" : value === "DROP" || value === "REJECT" ? "drop" : "other";
      i++;
    } else if (w === "-m" && value === "comment") {
      i++;
    } else if (w === "--comment") {
      i++;
    } else if (w.startsWith("-")) {
      // any other match (-i, -s, -m state ...): a condition we cannot judge
      conds.push({ test: () => undefined, specific: () => false });
      if (value !== undefined && !value.startsWith("-")) i++;
    }
  }
  return { where, conds, verdict };
}

// ---- evaluation ------------------------------------------------------------------------------

/** Walks each chain for each packet; returns the packets a chain drops (or may drop). */
export function evaluateChains(chains: readonly FwChain[], packets: readonly VrrpPacket[]): ChainVerdict[] {
  const out: ChainVerdict[] = [];
  for (const chain of chains) {
    for (const p of packets) {
      if (!chain.families.includes(p.family)) continue;
      let doubtfulAccept: string | undefined;
      let decided = false;
      for (const r of chain.rules) {
        if (r.verdict === "other") continue;
        const results = r.conds.map((c) => c.test(p));
        if (results.some((x) => x === false)) continue;
        const allTrue = results.every((x) => x === true);
        const specific = r.conds.some((c) => c.specific(p));
        if (r.verdict === "accept") {
          if (allTrue || specific) {
            decided = true;
            break;
          }
          doubtfulAccept ??= r.where;
          continue;
        }
        if (allTrue || specific) {
          out.push({ packet: p, chain: chain.where, severity: allTrue || !doubtfulAccept ? "error" : "warning", reason: `rule drops it: ${r.where}` });
          decided = true;
          break;
        }
      }
      if (!decided && chain.policy === "drop") {
        out.push(doubtfulAccept
          ? { packet: p, chain: chain.where, severity: "warning", reason: `policy drop; only a rule with conditions vipd cannot judge might accept it (${doubtfulAccept})` }
          : { packet: p, chain: chain.where, severity: "error", reason: "policy drop and no rule accepts it" });
      }
    }
  }
  return out;
}

/** The VRRP packets this config exchanges (IPv4 VRRP to 224.0.0.18 without a config). */
export function vrrpPackets(model: Model | undefined): VrrpPacket[] {
  const out = new Map<string, VrrpPacket>();
  const instances = model?.vrrp_instance ?? [];
  for (const m of instances) {
    const protocol = m.auth_type === "AH" ? 51 : 112;
    const name = protocol === 51 ? "AH (IP protocol 51)" : "VRRP (IP protocol 112)";
    const daddr = m.unicast_peer.length ? undefined : m.mcast_dst_ip;
    const label = `${m.family === "inet" ? "IPv4" : "IPv6"} ${name} ${daddr ? `to ${daddr}` : "unicast"}`;
    out.set(label, { family: m.family, protocol, ...(daddr ? { daddr } : {}), label });
  }
  if (!instances.length && !model?.virtual_server.length) out.set("v4", { family: "inet", protocol: 112, daddr: "224.0.0.18", label: "IPv4 VRRP (IP protocol 112) to 224.0.0.18" });
  return [...out.values()];
}

/** The check: nft and iptables rulesets against the config's VRRP packets. */
export const firewallCheck: DoctorCheck = ({ model, probe }) => {
  const packets = vrrpPackets(model);
  if (!packets.length) return [];
  const chains: FwChain[] = [];
  const read: string[] = [];
  const problems: Finding[] = [];
  const nft = probe.run(["nft", "-j", "list", "ruleset"]);
  if (nft && nft.code === 0) {
    try {
      chains.push(...parseNftRuleset(nft.stdout));
      read.push("nftables");
    } catch (e) {
      problems.push({ check: "firewall", severity: "warning", message: `cannot parse nft -j list ruleset: ${(e as Error).message}`, fix: "check the ruleset by hand for rules dropping IP protocol 112/51" });
    }
  } else if (nft) {
    problems.push({ check: "firewall", severity: "warning", message: `nft list ruleset failed: ${nft.stderr.trim() || `exit ${nft.code}`}`, fix: "run vipd doctor as root (CAP_NET_ADMIN is needed to read the ruleset)" });
  }
  for (const [tool, family] of [["iptables-save", "inet"], ["ip6tables-save", "inet6"]] as const) {
    if (!packets.some((p) => p.family === family)) continue;
    const r = readIptables(probe, tool);
    if (r === undefined) continue;
    chains.push(...parseIptablesSave(r, family));
    read.push(tool);
  }
  const verdicts = evaluateChains(chains, packets);
  const findings: Finding[] = [...problems];
  for (const v of verdicts) {
    findings.push({
      check: "firewall", severity: v.severity,
      message: `${v.chain} drops ${v.packet.label}: ${v.reason}`,
      fix: fixFor(v),
    });
  }
  if (!verdicts.length && read.length) findings.push({ check: "firewall", severity: "ok", message: `${read.join(", ")}: nothing drops ${packets.map((p) => p.label).join(", ")}` });
  if (!read.length && !problems.length) findings.push({ check: "firewall", severity: "info", message: "no nft or iptables-save found; firewall not checked" });
  return findings;
};

/** iptables-save output, trying the legacy and nft variants; undefined when none is installed. */
function readIptables(probe: DoctorProbe, tool: string): string | undefined {
  const r = probe.run([tool]);
  return r && r.code === 0 ? r.stdout : undefined;
}

function fixFor(v: ChainVerdict): string {
  const p = v.packet;
  if (v.chain.startsWith("nft")) {
    const [, fam, table, chain] = v.chain.split(" ");
    const match = p.family === "inet"
      ? `ip protocol ${p.protocol === 51 ? "ah" : "vrrp"}${p.daddr ? ` ip daddr ${p.daddr}` : ""}`
      : `ip6 nexthdr ${p.protocol === 51 ? "ah" : "vrrp"}${p.daddr ? ` ip6 daddr ${p.daddr}` : ""}`;
    return `accept it before the drop: nft insert rule ${fam} ${table} ${chain} ${match} accept (and persist it in your nftables config)`;
  }
  const tool = p.family === "inet" ? "iptables" : "ip6tables";
  const table = / -t (\S+) /.exec(v.chain)?.[1] ?? "filter";
  const chain = v.chain.split(" ").at(-1)?.replace(/:$/, "") ?? "INPUT";
  return `accept it first: ${tool} -t ${table} -I ${chain} -p ${p.protocol === 51 ? "ah" : "vrrp"}${p.daddr ? ` -d ${p.daddr}` : ""} -j ACCEPT (and save it)`;
}
