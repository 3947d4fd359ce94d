/**
 * rtnetlink over NetlinkSocket: link and address dumps, address add/delete, and RtMonitor
 * for link/address notifications. Message encoders and decoders are pure functions
 * (unit-tested byte for byte); RtNetlink and RtMonitor only add the sockets.
 */
import type { Family } from "../src/vrrp/types.ts";
import type { FdWatcher } from "./fdwatch.ts";
import { AF_INET, AF_INET6, AF_UNSPEC, formatIP, formatMac, parseIPv4, parseIPv6, view } from "./libc.ts";
import {
  NETLINK_ROUTE, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NetlinkSocket, NlAttrs, NlMsgBuilder, type NlMsg,
} from "./netlink.ts";

export const RTM_NEWLINK = 16, RTM_DELLINK = 17, RTM_GETLINK = 18;
export const RTM_NEWADDR = 20, RTM_DELADDR = 21, RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24, RTM_DELROUTE = 25, RTM_GETROUTE = 26;
export const RTM_NEWRULE = 32, RTM_DELRULE = 33, RTM_GETRULE = 34;
export const RTMGRP_LINK = 0x1, RTMGRP_IPV4_IFADDR = 0x10, RTMGRP_IPV4_ROUTE = 0x40;
export const RTMGRP_IPV6_IFADDR = 0x100, RTMGRP_IPV6_ROUTE = 0x400;
/** Group numbers (NETLINK_ADD_MEMBERSHIP) and their legacy bind bitmask bits (1 << (group - 1)). */
export const RTNLGRP_IPV4_ROUTE = 7, RTNLGRP_IPV4_RULE = 8, RTNLGRP_IPV6_ROUTE = 11, RTNLGRP_IPV6_RULE = 19;
export const RTMGRP_IPV4_RULE = 1 << (RTNLGRP_IPV4_RULE - 1), RTMGRP_IPV6_RULE = 1 << (RTNLGRP_IPV6_RULE - 1);

export const IFLA_ADDRESS = 1, IFLA_BROADCAST = 2, IFLA_IFNAME = 3, IFLA_MTU = 4, IFLA_LINK = 5;
export const IFLA_MASTER = 10, IFLA_OPERSTATE = 16, IFLA_LINKINFO = 18;
export const IFLA_INFO_KIND = 1, IFLA_INFO_DATA = 2;

export const IFA_ADDRESS = 1, IFA_LOCAL = 2, IFA_LABEL = 3, IFA_BROADCAST = 4, IFA_ANYCAST = 5;
export const IFA_CACHEINFO = 6, IFA_FLAGS = 8;
export const IFA_F_SECONDARY = 0x1, IFA_F_NODAD = 0x2, IFA_F_OPTIMISTIC = 0x4, IFA_F_DADFAILED = 0x8;
export const IFA_F_HOMEADDRESS = 0x10, IFA_F_DEPRECATED = 0x20, IFA_F_TENTATIVE = 0x40, IFA_F_PERMANENT = 0x80;
export const IFA_F_MANAGETEMPADDR = 0x100, IFA_F_NOPREFIXROUTE = 0x200;
/** Address lifetime meaning "forever". */
export const INFINITY_LIFE_TIME = 0xffffffff;

export const RT_SCOPE_UNIVERSE = 0, RT_SCOPE_SITE = 200, RT_SCOPE_LINK = 253, RT_SCOPE_HOST = 254;
export const RT_SCOPE_NOWHERE = 255;

/** IF_OPER_* values of IFLA_OPERSTATE, by number. */
export const OPERSTATE_NAMES = ["unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up"] as const;

/** AF_* number of a Family. */
export function familyNumber(f: Family): number {
  return f === "inet" ? AF_INET : AF_INET6;
}

function familyName(af: number): Family | null {
  return af === AF_INET ? "inet" : af === AF_INET6 ? "inet6" : null;
}

// ---------------------------------------------------------------------------------------
// Links

/** One interface as RTM_NEWLINK describes it. */
export interface LinkInfo {
  ifindex: number;
  name: string;
  /** IFF_* flags (IFF_UP, IFF_NOARP, IFF_LOWER_UP, ...). */
  flags: number;
  /** IF_OPER_* number; see OPERSTATE_NAMES. */
  operstate: number;
  /** Hardware address as "aa:bb:..", absent for interfaces without one. */
  mac?: string;
  mtu?: number;
  /** IFLA_INFO_KIND ("veth", "bridge", "macvlan", ...), absent for plain devices. */
  kind?: string;
  /** Master device index (bridge, bond, VRF). */
  master?: number;
  /** Underlying device index (IFLA_LINK: the parent of a macvlan/VLAN). */
  link?: number;
}

/** struct ifinfomsg {u8 family, pad, u16 type, i32 index, u32 flags, u32 change} (16 bytes). */
export function ifinfomsg(family: number, ifindex = 0, flags = 0, change = 0): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  b[0] = family;
  v.setInt32(4, ifindex, true);
  v.setUint32(8, flags >>> 0, true);
  v.setUint32(12, change >>> 0, true);
  return b;
}

/** Decodes an RTM_NEWLINK/DELLINK message; null if it is too short. */
export function decodeLink(m: NlMsg): LinkInfo | null {
  if (m.payload.length < 16) return null;
  const v = view(m.payload);
  const a = NlAttrs.parse(m.payload, 16);
  const link: LinkInfo = {
    ifindex: v.getInt32(4, true),
    name: a.str(IFLA_IFNAME) ?? "",
    flags: v.getUint32(8, true),
    operstate: a.u8(IFLA_OPERSTATE) ?? 0,
  };
  const mac = a.get(IFLA_ADDRESS);
  if (mac && mac.length > 0) link.mac = formatMac(mac);
  const mtu = a.u32(IFLA_MTU);
  if (mtu !== undefined) link.mtu = mtu;
  const kind = a.nested(IFLA_LINKINFO)?.str(IFLA_INFO_KIND);
  if (kind !== undefined) link.kind = kind;
  const master = a.u32(IFLA_MASTER);
  if (master !== undefined) link.master = master;
  const parent = a.u32(IFLA_LINK);
  if (parent !== undefined) link.link = parent;
  return link;
}

// ---------------------------------------------------------------------------------------
// Addresses

/** An address to add or delete. */
export interface AddressSpec {
  ifindex: number;
  family: Family;
  /** The address without prefix length. */
  address: string;
  prefixlen: number;
  /** IPv4 broadcast address. */
  broadcast?: string;
  /** IPv4 label ("eth0:vip"); must start with the interface name. */
  label?: string;
  /** RT_SCOPE_* (default universe). */
  scope?: number;
  /** Preferred lifetime in seconds (0 = deprecated at once, keepalived's preferred_lft 0). */
  preferredLft?: number;
  /** Valid lifetime in seconds (default forever when preferredLft is set). */
  validLft?: number;
  /** IPv6: skip duplicate address detection (IFA_F_NODAD). */
  noDad?: boolean;
  /** Extra IFA_F_* flags. */
  flags?: number;
}

/** One address as RTM_NEWADDR describes it. */
export interface AddressInfo {
  family: Family;
  ifindex: number;
  address: string;
  prefixlen: number;
  /** IFA_F_* (from IFA_FLAGS when present, which carries the bits above 0xff). */
  flags: number;
  scope: number;
  /** IFA_ADDRESS when it differs from IFA_LOCAL (point-to-point peer). */
  peer?: string;
  broadcast?: string;
  label?: string;
  preferredLft?: number;
  validLft?: number;
}

/** struct ifaddrmsg {u8 family, u8 prefixlen, u8 flags, u8 scope, u32 index} (8 bytes). */
export function ifaddrmsg(family: number, prefixlen: number, flags: number, scope: number, ifindex: number): Uint8Array {
  const b = new Uint8Array(8);
  b[0] = family;
  b[1] = prefixlen;
  b[2] = flags & 0xff;
  b[3] = scope;
  new DataView(b.buffer).setUint32(4, ifindex >>> 0, true);
  return b;
}

function addrBytes(family: Family, s: string): Uint8Array {
  return family === "inet" ? parseIPv4(s) : parseIPv6(s);
}

/**
 * Builds RTM_NEWADDR or RTM_DELADDR as iproute2 does: ifaddrmsg, IFA_LOCAL, IFA_ADDRESS,
 * IFA_BROADCAST, IFA_LABEL, IFA_CACHEINFO, then IFA_FLAGS only for flags above 0xff.
 * `nlFlags` are extra NLM_F_* bits (the socket adds REQUEST|ACK).
 */
export function addressMessage(type: typeof RTM_NEWADDR | typeof RTM_DELADDR, spec: AddressSpec, nlFlags = 0): NlMsgBuilder {
  const flags = (spec.flags ?? 0) | (spec.noDad ? IFA_F_NODAD : 0);
  const b = new NlMsgBuilder(type, nlFlags)
    .bytes(ifaddrmsg(familyNumber(spec.family), spec.prefixlen, flags, spec.scope ?? RT_SCOPE_UNIVERSE, spec.ifindex));
  const addr = addrBytes(spec.family, spec.address);
  b.attr(IFA_LOCAL, addr).attr(IFA_ADDRESS, addr);
  if (spec.broadcast) b.attr(IFA_BROADCAST, addrBytes(spec.family, spec.broadcast));
  if (spec.label) b.str(IFA_LABEL, spec.label);
  if (type === RTM_NEWADDR && (spec.preferredLft !== undefined || spec.validLft !== undefined)) {
    const ci = new Uint8Array(16); // struct ifa_cacheinfo {prefered, valid, cstamp, tstamp}
    const v = new DataView(ci.buffer);
    v.setUint32(0, (spec.preferredLft ?? INFINITY_LIFE_TIME) >>> 0, true);
    v.setUint32(4, (spec.validLft ?? INFINITY_LIFE_TIME) >>> 0, true);
    b.attr(IFA_CACHEINFO, ci);
  }
  if (flags > 0xff) b.u32(IFA_FLAGS, flags);
  return b;
}

/** Decodes an RTM_NEWADDR/DELADDR message; null for other families or short input. */
export function decodeAddress(m: NlMsg): AddressInfo | null {
  const p = m.payload;
  if (p.length < 8) return null;
  const family = familyName(p[0]!);
  if (!family) return null;
  const a = NlAttrs.parse(p, 8);
  const local = a.get(IFA_LOCAL);
  const address = a.get(IFA_ADDRESS);
  const main = local ?? address;
  if (!main) return null;
  const info: AddressInfo = {
    family,
    ifindex: view(p).getUint32(4, true),
    address: formatIP(main),
    prefixlen: p[1]!,
    flags: a.u32(IFA_FLAGS) ?? p[2]!,
    scope: p[3]!,
  };
  if (local && address && formatIP(address) !== info.address) info.peer = formatIP(address);
  const brd = a.get(IFA_BROADCAST);
  if (brd) info.broadcast = formatIP(brd);
  const label = a.str(IFA_LABEL);
  if (label !== undefined) info.label = label;
  const ci = a.get(IFA_CACHEINFO);
  if (ci && ci.length >= 8) {
    info.preferredLft = view(ci).getUint32(0, true);
    info.validLft = view(ci).getUint32(4, true);
  }
  return info;
}

// ---------------------------------------------------------------------------------------
// Sockets

/** Synchronous rtnetlink requests on a blocking socket in the caller's network namespace. */
export class RtNetlink {
  readonly sock: NetlinkSocket;

  constructor() {
    this.sock = new NetlinkSocket(NETLINK_ROUTE);
  }

  /** Every interface. */
  dumpLinks(): LinkInfo[] {
    const parts = this.sock.dump(new NlMsgBuilder(RTM_GETLINK, 0).bytes(ifinfomsg(AF_UNSPEC)), "RTM_GETLINK");
    return parts.filter((m) => m.type === RTM_NEWLINK).map(decodeLink).filter((l): l is LinkInfo => l !== null);
  }

  /** Every address, optionally of one family. */
  dumpAddresses(family?: Family): AddressInfo[] {
    const af = family ? familyNumber(family) : AF_UNSPEC;
    const parts = this.sock.dump(new NlMsgBuilder(RTM_GETADDR, 0).bytes(ifaddrmsg(af, 0, 0, 0, 0)), "RTM_GETADDR");
    return parts.filter((m) => m.type === RTM_NEWADDR).map(decodeAddress)
      .filter((a): a is AddressInfo => a !== null && (!family || a.family === family));
  }

  /** Adds an address; NetlinkError EEXIST if present (unless `replace`). */
  addAddress(spec: AddressSpec, replace = false): void {
    const flags = NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL);
    this.sock.request(addressMessage(RTM_NEWADDR, spec, flags), `RTM_NEWADDR(${spec.address}/${spec.prefixlen})`);
  }

  /** Deletes an address; NetlinkError EADDRNOTAVAIL if absent. */
  deleteAddress(spec: AddressSpec): void {
    this.sock.request(addressMessage(RTM_DELADDR, spec), `RTM_DELADDR(${spec.address}/${spec.prefixlen})`);
  }

  close(): void {
    this.sock.close();
  }
}

/** A decoded rtnetlink notification, or "resync" after the kernel dropped some (ENOBUFS). */
export type RtEvent =
  | { kind: "newlink"; link: LinkInfo }
  | { kind: "dellink"; link: LinkInfo }
  | { kind: "newaddr"; addr: AddressInfo }
  | { kind: "deladdr"; addr: AddressInfo }
  | { kind: "resync" };

/** Decodes one notification into an RtEvent, or null for types RtMonitor does not report. */
export function decodeRtEvent(m: NlMsg): RtEvent | null {
  switch (m.type) {
    case RTM_NEWLINK:
    case RTM_DELLINK: {
      const link = decodeLink(m);
      return link ? { kind: m.type === RTM_NEWLINK ? "newlink" : "dellink", link } : null;
    }
    case RTM_NEWADDR:
    case RTM_DELADDR: {
      const addr = decodeAddress(m);
      return addr ? { kind: m.type === RTM_NEWADDR ? "newaddr" : "deladdr", addr } : null;
    }
    default:
      return null;
  }
}

export interface RtMonitorOptions {
  /** RTMGRP_* bitmask (default link + IPv4 and IPv6 addresses). */
  groups?: number;
  /** SO_RCVBUF (default 1 MiB, so bursts during mass address changes fit). */
  rcvbuf?: number;
  /** Gets the notifications decodeRtEvent does not report (routes, rules). */
  onOther?: (m: NlMsg) => void;
}

/**
 * Subscribes to rtnetlink groups on a non-blocking socket driven by `watcher`. On ENOBUFS
 * it emits `{kind:"resync"}`: notifications were lost and the owner must re-dump.
 * Create it inside withNetns() to monitor another namespace.
 */
export class RtMonitor {
  readonly sock: NetlinkSocket;
  #watcher: FdWatcher;
  #onEvent: (ev: RtEvent) => void;
  #onOther: ((m: NlMsg) => void) | undefined;

  constructor(watcher: FdWatcher, onEvent: (ev: RtEvent) => void, o: RtMonitorOptions = {}) {
    this.sock = new NetlinkSocket(NETLINK_ROUTE, {
      nonblocking: true,
      groups: o.groups ?? (RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR),
      rcvbuf: o.rcvbuf ?? 1 << 20,
    });
    this.#watcher = watcher;
    this.#onEvent = onEvent;
    this.#onOther = o.onOther;
    watcher.watch(this.sock.fd, () => this.poll());
  }

  /** Reads and dispatches everything queued; the watcher calls this, tests may too. */
  poll(): void {
    const { messages, overrun } = this.sock.drain();
    for (const m of messages) {
      const ev = decodeRtEvent(m);
      if (ev) this.#onEvent(ev);
      else this.#onOther?.(m);
    }
    if (overrun) this.#onEvent({ kind: "resync" });
  }

  close(): void {
    this.#watcher.unwatch(this.sock.fd);
    this.sock.close();
  }
}
