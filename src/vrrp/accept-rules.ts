/**
 * nftables text for `no_accept` (RFC 5798 Accept_Mode false). As keepalived does
 * (vrrp_nftables.c, vrrp.c vrrp_handle_accept_mode), a MASTER that is not the address owner
 * and has no_accept puts its VIPs in a drop set when it takes them and removes them when
 * it leaves MASTER: the VIPs answer ARP/ND (so the router forwards for them) but packets
 * to or from them are dropped. One `inet` table holds two sets (vips4, vips6) and two
 * chains at priority -1 on input and output; neighbour solicitations and advertisements
 * to/from IPv6 VIPs pass so ND keeps working. Link-local IPv6 VIPs are matched on every
 * interface (keepalived matches them per interface; vipd keeps this minimal).
 *
 * The daemon keeps the desired set and hands the whole of it to `nftSyncScript` at every
 * change; nft applies a file atomically, so the set never passes through a partial state.
 */
import { type Family, VrrpState } from "./types.ts";

/** global_defs `nftables [TABLE]`, `nftables_priority`, `nftables_counters`. */
export interface NftOptions {
  /** Table name (keepalived's default is "keepalived"; vipd's is "vipd"). */
  table: string;
  /** Hook priority of both chains (keepalived's default -1: before the usual filter chains). */
  priority: number;
  /** Add `counter` to the drop rules. */
  counters: boolean;
}

export const DEFAULT_NFT_OPTIONS: NftOptions = { table: "vipd", priority: -1, counters: false };

const IDENT = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

function checkOptions(o: NftOptions): void {
  if (!IDENT.test(o.table)) throw new Error(`invalid nftables table name '${o.table}'`);
  if (!Number.isInteger(o.priority)) throw new Error(`invalid nftables priority ${o.priority}`);
}

const ND = "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert }";

/**
 * Creates (or re-creates, emptying any leftover from an earlier run) the table with its
 * sets and chains. Declaring the table before deleting it makes the delete safe when it
 * does not exist.
 */
export function nftSetupScript(o: NftOptions = DEFAULT_NFT_OPTIONS): string {
  checkOptions(o);
  const drop = o.counters ? "counter drop" : "drop";
  return [
    `table inet ${o.table}`,
    `delete table inet ${o.table}`,
    `table inet ${o.table} {`,
    `\tset vips4 { type ipv4_addr; }`,
    `\tset vips6 { type ipv6_addr; }`,
    `\tchain in {`,
    `\t\ttype filter hook input priority ${o.priority}; policy accept;`,
    `\t\tip daddr @vips4 ${drop}`,
    `\t\tip6 daddr @vips6 ${ND} accept`,
    `\t\tip6 daddr @vips6 ${drop}`,
    `\t}`,
    `\tchain out {`,
    `\t\ttype filter hook output priority ${o.priority}; policy accept;`,
    `\t\tip saddr @vips4 ${drop}`,
    `\t\tip6 saddr @vips6 ${ND} accept`,
    `\t\tip6 saddr @vips6 ${drop}`,
    `\t}`,
    `}`,
    "",
  ].join("\n");
}

/** Replaces the contents of both sets with exactly these addresses, in one transaction. */
export function nftSyncScript(o: NftOptions, vips4: readonly string[], vips6: readonly string[]): string {
  checkOptions(o);
  for (const a of vips4) if (!/^[0-9.]+$/.test(a)) throw new Error(`invalid IPv4 VIP '${a}'`);
  for (const a of vips6) if (!/^[0-9a-fA-F:.]+$/.test(a)) throw new Error(`invalid IPv6 VIP '${a}'`);
  const lines = [`flush set inet ${o.table} vips4`, `flush set inet ${o.table} vips6`];
  if (vips4.length) lines.push(`add element inet ${o.table} vips4 { ${vips4.join(", ")} }`);
  if (vips6.length) lines.push(`add element inet ${o.table} vips6 { ${vips6.join(", ")} }`);
  return lines.join("\n") + "\n";
}

/** Removes the table (at stop); safe when it does not exist. */
export function nftTeardownScript(o: NftOptions = DEFAULT_NFT_OPTIONS): string {
  checkOptions(o);
  return `table inet ${o.table}\ndelete table inet ${o.table}\n`;
}

/** What accept-rule selection needs to know about an instance. */
export interface AcceptModeInstance {
  state: VrrpState;
  /** Configured (base) priority: 255 is the address owner, never filtered. */
  priority: number;
  /** `accept` (true) or `no_accept` (false), after vrrp_strict defaults. */
  accept: boolean;
  /** The VIPs and excluded VIPs the instance installs as MASTER. */
  addresses: readonly { address: string; family: Family }[];
}

/**
 * The addresses to drop right now: every VIP of a MASTER that is neither the owner nor in
 * accept mode. Sorted and de-duplicated, so equal states give equal scripts.
 */
export function dropAddresses(instances: readonly AcceptModeInstance[]): { vips4: string[]; vips6: string[] } {
  const v4 = new Set<string>(), v6 = new Set<string>();
  for (const i of instances) {
    if (i.state !== VrrpState.MASTER || i.accept || i.priority === 255) continue;
    for (const a of i.addresses) (a.family === "inet" ? v4 : v6).add(a.address);
  }
  return { vips4: [...v4].sort(), vips6: [...v6].sort() };
}
