/**
 * VMAC decisions without I/O: the interface name and MAC keepalived would give a VRRP
 * instance's macvlan, the sysctls to set on it and on its parent (vrrp_if_config.c), the
 * all.rp_filter adjustment that lets the VMAC run with rp_filter 0, and the IPv6 link-local
 * the VMAC sends from. The edge applies these with ffi/rtnetlink-link.ts and ffi/sysctl.ts.
 */
import type { Family } from "./types.ts";
import { formatIPv6, formatMac, parseIPv6, parseMac } from "../net/addr.ts";

/** IFNAMSIZ - 1: the longest interface name. */
export const IFNAME_MAX = 15;

/**
 * The VRRP virtual MAC: 00:00:5e:00:01:VRID (IPv4) or 00:00:5e:00:02:VRID (IPv6), or the
 * configured one; a configured MAC of 5 octets gets the VRID appended, as keepalived does.
 */
export function vmacAddress(family: Family, vrid: number, configured?: string): string {
  if (configured) {
    const parts = configured.split(":");
    if (parts.length === 5) return formatMac(parseMac([...parts, vrid.toString(16).padStart(2, "0")].join(":"))!);
    const mac = parseMac(configured);
    if (!mac) throw new Error(`invalid VMAC address '${configured}'`);
    return formatMac(mac);
  }
  const b = Uint8Array.of(0x00, 0x00, 0x5e, 0x00, family === "inet" ? 0x01 : 0x02, vrid & 0xff);
  return formatMac(b);
}

function fit(prefix: string, tail: string): string {
  // Shorten the prefix, not the VRID, when the name is too long (keepalived truncates the same way).
  const room = IFNAME_MAX - tail.length;
  return prefix.slice(0, Math.max(0, room)) + tail;
}

/**
 * keepalived's automatic VMAC name: `<prefix>.<vrid>`, then for IPv6 `<prefix>6.<vrid>`,
 * then `<prefix>1.<vrid>`, `<prefix>2.<vrid>`, ... (6 skipped for IPv6), skipping names
 * `taken` reports (used by another instance or an existing non-VMAC interface).
 */
export function vmacName(vrid: number, family: Family, taken: (name: string) => boolean, prefix = "vrrp"): string {
  let name = fit(prefix, `.${vrid}`);
  let num = 0;
  for (let i = 0; i < 1000; i++) {
    if (!taken(name)) return name;
    if (family === "inet6") {
      if (num === 0) num = 6;
      else if (num === 6) num = 1;
      else if (++num === 6) num++;
    } else num++;
    name = fit(prefix, `${num}.${vrid}`);
  }
  throw new Error(`no free VMAC name for VRID ${vrid}`);
}

/** One sysctl change: net.<ipv4|ipv6>.conf.<ifname>.<key> = value. */
export interface ConfSysctl {
  proto: "ipv4" | "ipv6";
  /** net.PROTO.conf.IFNAME.KEY; omitted: the protocol-wide net.PROTO.KEY (e.g. igmp_link_local_mcast_reports). */
  ifname?: string;
  key: string;
  value: number;
}

/**
 * The sysctls a VMAC needs (keepalived's vmac_sysctl / vmac_sysctl_6 and parent_sysctl):
 * IPv4 VMAC arp_ignore=1, accept_local=1, rp_filter=0, promote_secondaries=1 and parent
 * arp_ignore=1, arp_filter=1 (so only the VMAC answers ARP for the VIPs), and IPv6 off on
 * the VMAC unless `ipv6OnIpv4Vmac`; an IPv6 VMAC only arp_ignore=1, parent left alone.
 */
export function vmacSysctls(vmac: string, parent: string, family: Family, o: { ipv6OnIpv4Vmac?: boolean } = {}): ConfSysctl[] {
  const c = (ifname: string, key: string, value: number): ConfSysctl => ({ proto: "ipv4", ifname, key, value });
  if (family === "inet6") return [c(vmac, "arp_ignore", 1)];
  const out = [
    c(vmac, "arp_ignore", 1), c(vmac, "accept_local", 1), c(vmac, "rp_filter", 0), c(vmac, "promote_secondaries", 1),
    c(parent, "arp_ignore", 1), c(parent, "arp_filter", 1),
  ];
  // keepalived turns IPv6 off on an IPv4 VMAC unless IPv6 excluded VIPs live on it.
  if (!o.ipv6OnIpv4Vmac) out.push({ proto: "ipv6", ifname: vmac, key: "disable_ipv6", value: 1 });
  return out;
}

/**
 * keepalived's clear_rp_filter: an IPv4 VMAC can only run with rp_filter 0 when
 * all.rp_filter is 0 (the kernel uses the max of all and the interface). If all.rp_filter
 * is non-zero, raise every interface below it, then default, to that value, so no
 * interface loses filtering, then set all to 0. Returns the changes in order; none when
 * all.rp_filter is already 0.
 */
export function rpFilterPlan(all: number, dflt: number, interfaces: ReadonlyMap<string, number>): ConfSysctl[] {
  if (all === 0) return [];
  const out: ConfSysctl[] = [];
  // Interfaces before default: writing default copies the value into every interface that
  // never had rp_filter written, which would hide their original values from the journal.
  for (const [ifname, v] of interfaces) {
    if (ifname === "all" || ifname === "default") continue;
    if (v < all) out.push({ proto: "ipv4", ifname, key: "rp_filter", value: all });
  }
  if (dflt < all) out.push({ proto: "ipv4", ifname: "default", key: "rp_filter", value: all });
  out.push({ proto: "ipv4", ifname: "all", key: "rp_filter", value: 0 });
  return out;
}

/**
 * The link-local address an IPv6 VMAC sends adverts from: the configured source, else the
 * parent's link-local, else fe80:: + EUI-64 of the parent's MAC (never the VMAC's MAC,
 * which would make a VIP-like address that moves; keepalived issue #2296).
 */
export function vmacLinkLocal(o: { configured?: string; parentLinkLocal?: string; parentMac?: string }): string {
  if (o.configured) return o.configured;
  if (o.parentLinkLocal) return o.parentLinkLocal;
  const mac = o.parentMac ? parseMac(o.parentMac) : null;
  if (!mac) throw new Error("IPv6 VMAC needs a source: no parent link-local and no parent MAC");
  const b = parseIPv6("fe80::")!;
  b.set([mac[0]! ^ 0x02, mac[1]!, mac[2]!, 0xff, 0xfe, mac[3]!, mac[4]!, mac[5]!], 8);
  return formatIPv6(b);
}
