/**
 * keepalived's `nftables_ipvs` fwmark helper (check_nftables.c), as pure values: the global
 * keywords, the automatic fwmark of each virtual_server_group (one per group and protocol,
 * counted up from `nftables_ipvs_start_fwmark`, kept across reloads), and the nftables text
 * that marks a group's packets so a single IPVS fwmark service covers every address.
 *
 * As keepalived: a table of the configured name (default keepalived_ipvs) in the `ip` and/or
 * `ip6` family (only the families in use), a chain `in` hooked on input at the configured
 * priority (default -1, before IPVS), and one interval map per protocol in use (`tcp_map`,
 * `udp_map`, `sctp_map`: daddr . dport → mark) with its rule
 * `meta l4proto P meta mark set ip daddr . P dport map @P_map counter return`.
 * vipd replaces its own table atomically in one `nft -f` transaction instead of adding and
 * deleting elements one at a time; nothing else in the ruleset is touched.
 * One deliberate difference: a group entry without a port matches every destination port
 * (keepalived writes port 0, which no packet carries).
 */
import { compareAddr, type IpFamily, parseIp } from "../net/addr.ts";
import type { IpvsProtocol } from "./ipvs-types.ts";

/** global_defs `nftables_ipvs [TABLE]`, `nftables_ipvs_priority`, `nftables_ipvs_start_fwmark`, `nftables_counters`. */
export interface NftIpvsConfig {
  table: string;
  priority: number;
  startFwmark: number;
  /** nftables_counters: a counter on every map element (the rule always counts, as keepalived's). */
  counters: boolean;
}

/** keepalived's DEFAULT_NFTABLES_IPVS_TABLE. */
export const DEFAULT_NFT_IPVS_TABLE = "keepalived_ipvs";
/** keepalived's DEFAULT_IPVS_NF_START_FWMARK. */
export const DEFAULT_NFT_IPVS_START_FWMARK = 1000;
/** keepalived's default chain priority for the ipvs table. */
export const DEFAULT_NFT_IPVS_PRIORITY = -1;

/** The fwmark helper's settings from global_defs; undefined when `nftables_ipvs` is not set. */
export function nftIpvsConfig(g: Record<string, unknown>): NftIpvsConfig | undefined {
  const kw = g.nftables_ipvs as { table?: string } | true | undefined;
  if (kw === undefined || (kw as unknown) === false) return undefined;
  return {
    table: typeof kw === "object" && kw.table ? kw.table : DEFAULT_NFT_IPVS_TABLE,
    priority: (g.nftables_ipvs_priority as number | undefined) ?? DEFAULT_NFT_IPVS_PRIORITY,
    startFwmark: (g.nftables_ipvs_start_fwmark as number | undefined) ?? DEFAULT_NFT_IPVS_START_FWMARK,
    counters: g.nftables_counters === true,
  };
}

/** Automatic fwmarks handed out so far: "group/tcp" → mark, and the next free one. */
export interface AutoFwmarks {
  marks: Record<string, number>;
  next: number;
}

/**
 * Hands out keepalived's auto fwmarks: a group keeps the mark it had (in `previous`), a new
 * one takes the next number. Like keepalived's static counter, numbering carries on across
 * reloads and is not reused.
 */
export class FwmarkAllocator {
  readonly #marks: Record<string, number> = {};
  readonly #previous: Record<string, number>;
  #next: number;

  constructor(startFwmark: number, previous?: AutoFwmarks) {
    this.#previous = previous?.marks ?? {};
    this.#next = previous?.next ?? startFwmark;
  }

  /** The mark of group `group` for `protocol`, allocating one on first use. */
  mark(group: string, protocol: IpvsProtocol): number {
    const key = `${group}/${protocol}`;
    const have = this.#marks[key] ?? this.#previous[key];
    if (have !== undefined) return (this.#marks[key] = have);
    return (this.#marks[key] = this.#next++);
  }

  /** Whether group `group` already got its mark for `protocol` in this allocation. */
  has(group: string, protocol: IpvsProtocol): boolean {
    return this.#marks[`${group}/${protocol}`] !== undefined;
  }

  /** What was handed out (only the groups still in use) and the next free mark. */
  state(): AutoFwmarks {
    return { marks: { ...this.#marks }, next: this.#next };
  }
}

/** One map element: destination addresses first..last (inclusive), ports, the mark they get. */
export interface NftIpvsElement {
  first: string;
  last: string;
  /** Destination port; 0 matches every port. */
  port: number;
  fwmark: number;
}

/** One protocol map of one family. */
export interface NftIpvsMap {
  family: IpFamily;
  protocol: IpvsProtocol;
  elements: NftIpvsElement[];
}

/** Everything the helper needs in the kernel: its settings and the maps in first-use order. */
export interface NftIpvsRuleset {
  config: NftIpvsConfig;
  maps: NftIpvsMap[];
}

/** A table vipd created: `nft … table <family> <name>`. */
export interface NftIpvsTable {
  family: "ip" | "ip6";
  name: string;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
const nfFamily = (f: IpFamily): "ip" | "ip6" => (f === "inet" ? "ip" : "ip6");
const mapName = (p: IpvsProtocol): string => `${p}_map`;

/** Whether two elements' address ranges and ports intersect (port 0 is every port). */
function overlaps(a: NftIpvsElement, b: NftIpvsElement): boolean {
  if (a.port !== 0 && b.port !== 0 && a.port !== b.port) return false;
  const [af, al, bf, bl] = [a.first, a.last, b.first, b.last].map((t) => parseIp(t)?.bytes ?? new Uint8Array());
  return compareAddr(af!, bl!) <= 0 && compareAddr(bf!, al!) <= 0;
}

/**
 * Adds an element to the ruleset's map for (family, protocol), creating the map on first use.
 * An interval map cannot hold overlapping keys (nft would refuse the whole table): an element
 * overlapping one already there is not added, and that one is returned (the same element
 * again, from a second virtual server on the group, is silently skipped).
 */
export function addNftIpvsElement(rs: NftIpvsRuleset, family: IpFamily, protocol: IpvsProtocol, e: NftIpvsElement): NftIpvsElement | undefined {
  let m = rs.maps.find((x) => x.family === family && x.protocol === protocol);
  if (!m) rs.maps.push((m = { family, protocol, elements: [] }));
  if (m.elements.some((x) => x.first === e.first && x.last === e.last && x.port === e.port && x.fwmark === e.fwmark)) return undefined;
  const clash = m.elements.find((x) => overlaps(x, e));
  if (clash) return clash;
  m.elements.push(e);
  return undefined;
}

/** The tables a ruleset occupies (a family only when one of its maps has elements). */
export function nftIpvsTables(rs: NftIpvsRuleset | undefined): NftIpvsTable[] {
  if (!rs) return [];
  const out: NftIpvsTable[] = [];
  for (const f of ["inet", "inet6"] as const) {
    if (rs.maps.some((m) => m.family === f && m.elements.length)) out.push({ family: nfFamily(f), name: rs.config.table });
  }
  return out;
}

function checkConfig(c: NftIpvsConfig): void {
  if (!IDENT.test(c.table)) throw new Error(`invalid nftables_ipvs table name '${c.table}'`);
  if (!Number.isInteger(c.priority)) throw new Error(`invalid nftables_ipvs_priority ${c.priority}`);
}

function elementText(e: NftIpvsElement): string {
  const addr = e.first === e.last ? e.first : `${e.first}-${e.last}`;
  const port = e.port === 0 ? "0-65535" : String(e.port);
  return `${addr} . ${port} : ${e.fwmark}`;
}

/** The text of one family's table (atomic replace: declare, delete, define). */
function tableText(rs: NftIpvsRuleset, family: IpFamily): string[] {
  const c = rs.config;
  const fam = nfFamily(family);
  const daddr = family === "inet" ? "ip daddr" : "ip6 daddr";
  const maps = rs.maps.filter((m) => m.family === family && m.elements.length);
  const out = [`table ${fam} ${c.table}`, `delete table ${fam} ${c.table}`, `table ${fam} ${c.table} {`];
  for (const m of maps) {
    out.push(
      `\tmap ${mapName(m.protocol)} {`,
      `\t\ttype ${family === "inet" ? "ipv4_addr" : "ipv6_addr"} . inet_service : mark`,
      `\t\tflags interval`,
      ...(c.counters ? [`\t\tcounter`] : []),
      `\t\telements = { ${m.elements.map(elementText).join(", ")} }`,
      `\t}`,
    );
  }
  out.push(`\tchain in {`, `\t\ttype filter hook input priority ${c.priority}; policy accept;`);
  for (const m of maps) {
    out.push(`\t\tmeta l4proto ${m.protocol} meta mark set ${daddr} . ${m.protocol} dport map @${mapName(m.protocol)} counter return`);
  }
  out.push(`\t}`, `}`);
  return out;
}

const deleteText = (t: NftIpvsTable): string[] => [`table ${t.family} ${t.name}`, `delete table ${t.family} ${t.name}`];

/**
 * The `nft -f` script that makes the kernel hold exactly `rs` (undefined: nothing), given the
 * tables vipd created before (`previous`): those no longer wanted are deleted, the wanted ones
 * are replaced whole, all in one transaction. Empty string when there is nothing to do.
 */
export function nftIpvsScript(rs: NftIpvsRuleset | undefined, previous: readonly NftIpvsTable[] = []): string {
  if (rs) checkConfig(rs.config);
  const want = nftIpvsTables(rs);
  const lines: string[] = [];
  for (const t of previous) {
    if (!IDENT.test(t.name)) continue;
    if (!want.some((w) => w.family === t.family && w.name === t.name)) lines.push(...deleteText(t));
  }
  for (const t of want) lines.push(...tableText(rs!, t.family === "ip" ? "inet" : "inet6"));
  return lines.length ? lines.join("\n") + "\n" : "";
}

/** The script that removes vipd's tables (at stop); safe when they are already gone. */
export function nftIpvsTeardownScript(tables: readonly NftIpvsTable[]): string {
  const lines = tables.filter((t) => IDENT.test(t.name)).flatMap(deleteText);
  return lines.length ? lines.join("\n") + "\n" : "";
}
