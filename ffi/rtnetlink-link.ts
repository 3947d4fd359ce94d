/**
 * Link changes over rtnetlink for VMACs: create a macvlan (private mode) on a parent with a
 * given MAC, delete it, set it up or down, change its MAC, turn off IPv6 address generation,
 * and look a link up by name in the socket's namespace. Encoders are pure (unit-tested byte
 * for byte); the request helpers run on an RtNetlink socket.
 */
import { AF_INET6, AF_UNSPEC, ENODEV, parseMac } from "./libc.ts";
import { NLM_F_CREATE, NLM_F_EXCL, NetlinkError, NlAttrs, NlMsgBuilder, type NlMsg } from "./netlink.ts";
import {
  IFLA_ADDRESS, IFLA_IFNAME, IFLA_INFO_DATA, IFLA_INFO_KIND, IFLA_LINK, IFLA_LINKINFO, RTM_DELLINK, RTM_GETLINK,
  RTM_NEWLINK, decodeLink, ifinfomsg, type LinkInfo, type RtNetlink,
} from "./rtnetlink.ts";

export const IFLA_AF_SPEC = 26;
export const IFLA_INET6_ADDR_GEN_MODE = 8;
export const IN6_ADDR_GEN_MODE_EUI64 = 0, IN6_ADDR_GEN_MODE_NONE = 1;
export const IFLA_MACVLAN_MODE = 1;
export const MACVLAN_MODE_PRIVATE = 1, MACVLAN_MODE_VEPA = 2, MACVLAN_MODE_BRIDGE = 4, MACVLAN_MODE_PASSTHRU = 8;
export const IFF_UP = 0x1;

/** A macvlan to create. */
export interface MacvlanSpec {
  name: string;
  parentIfindex: number;
  /** "00:00:5e:00:01:33" */
  mac: string;
  /** MACVLAN_MODE_* (default private, as keepalived's VMACs). */
  mode?: number;
}

/** A link with the details VMAC handling needs. */
export interface LinkDetails extends LinkInfo {
  /** IFLA_MACVLAN_MODE of a macvlan. */
  macvlanMode?: number;
  /** IFLA_INET6_ADDR_GEN_MODE, when the kernel reports IPv6 settings. */
  addrGenMode?: number;
}

/**
 * RTM_NEWLINK creating a macvlan, in keepalived's layout: IFLA_LINKINFO {KIND "macvlan",
 * DATA {MACVLAN_MODE}}, IFLA_LINK, IFLA_IFNAME, IFLA_ADDRESS. Nests are plain (no
 * NLA_F_NESTED) as iproute2 sends them.
 */
export function macvlanMessage(spec: MacvlanSpec): NlMsgBuilder {
  const kind = new TextEncoder().encode("macvlan"); // no NUL, as iproute2 and keepalived send it
  return new NlMsgBuilder(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL)
    .bytes(ifinfomsg(AF_UNSPEC))
    .nest(IFLA_LINKINFO, (b) => {
      b.attr(IFLA_INFO_KIND, kind);
      b.nest(IFLA_INFO_DATA, (d) => d.u32(IFLA_MACVLAN_MODE, spec.mode ?? MACVLAN_MODE_PRIVATE), true);
    }, true)
    .u32(IFLA_LINK, spec.parentIfindex)
    .str(IFLA_IFNAME, spec.name)
    .attr(IFLA_ADDRESS, parseMac(spec.mac));
}

/** RTM_NEWLINK setting or clearing IFF_UP only. */
export function linkUpMessage(ifindex: number, up: boolean): NlMsgBuilder {
  return new NlMsgBuilder(RTM_NEWLINK, 0).bytes(ifinfomsg(AF_UNSPEC, ifindex, up ? IFF_UP : 0, IFF_UP));
}

/** RTM_NEWLINK changing the hardware address. */
export function linkMacMessage(ifindex: number, mac: string): NlMsgBuilder {
  return new NlMsgBuilder(RTM_NEWLINK, 0).bytes(ifinfomsg(AF_UNSPEC, ifindex)).attr(IFLA_ADDRESS, parseMac(mac));
}

/** RTM_NEWLINK with IFLA_AF_SPEC {AF_INET6 {IFLA_INET6_ADDR_GEN_MODE mode}}. */
export function addrGenModeMessage(ifindex: number, mode: number): NlMsgBuilder {
  return new NlMsgBuilder(RTM_NEWLINK, 0).bytes(ifinfomsg(AF_UNSPEC, ifindex))
    .nest(IFLA_AF_SPEC, (b) => b.nest(AF_INET6, (c) => c.u8(IFLA_INET6_ADDR_GEN_MODE, mode), true), true);
}

/** RTM_DELLINK by index. */
export function deleteLinkMessage(ifindex: number): NlMsgBuilder {
  return new NlMsgBuilder(RTM_DELLINK, 0).bytes(ifinfomsg(AF_UNSPEC, ifindex));
}

/** RTM_GETLINK for one link by name. */
export function getLinkMessage(name: string): NlMsgBuilder {
  return new NlMsgBuilder(RTM_GETLINK, 0).bytes(ifinfomsg(AF_UNSPEC)).str(IFLA_IFNAME, name);
}

/** Decodes RTM_NEWLINK with macvlan mode and IPv6 address generation mode. */
export function decodeLinkDetails(m: NlMsg): LinkDetails | null {
  const base = decodeLink(m);
  if (!base) return null;
  const out: LinkDetails = { ...base };
  const a = NlAttrs.parse(m.payload, 16);
  const info = a.nested(IFLA_LINKINFO);
  if (info?.str(IFLA_INFO_KIND) === "macvlan") {
    const mode = info.nested(IFLA_INFO_DATA)?.u32(IFLA_MACVLAN_MODE);
    if (mode !== undefined) out.macvlanMode = mode;
  }
  const gen = a.nested(IFLA_AF_SPEC)?.nested(AF_INET6)?.u8(IFLA_INET6_ADDR_GEN_MODE);
  if (gen !== undefined) out.addrGenMode = gen;
  return out;
}

// ---------------------------------------------------------------------------------------
// Requests

/** The link called `name` in the socket's namespace, or null if there is none. */
export function getLink(rt: RtNetlink, name: string): LinkDetails | null {
  try {
    const replies = rt.sock.request(getLinkMessage(name), `RTM_GETLINK(${name})`);
    for (const m of replies) if (m.type === RTM_NEWLINK) return decodeLinkDetails(m);
    return null;
  } catch (e) {
    if (e instanceof NetlinkError && e.errno === ENODEV) return null;
    throw e;
  }
}

/** The index of link `name` in the socket's namespace; NetlinkError ENODEV if absent. */
export function linkIndex(rt: RtNetlink, name: string): number {
  const l = getLink(rt, name);
  if (!l) throw new NetlinkError(`RTM_GETLINK(${name})`, ENODEV, "no such interface");
  return l.ifindex;
}

/**
 * Creates a macvlan and returns its index. It stays down: set addr_gen_mode (IPv6) before
 * bringing it up so the kernel never generates an EUI-64 link-local with the VRRP MAC.
 */
export function createMacvlan(rt: RtNetlink, spec: MacvlanSpec): number {
  rt.sock.request(macvlanMessage(spec), `RTM_NEWLINK(macvlan ${spec.name})`);
  return linkIndex(rt, spec.name);
}

/** Deletes a link; with `ignoreMissing`, a link already gone is not an error. */
export function deleteLink(rt: RtNetlink, ifindex: number, ignoreMissing = false): void {
  try {
    rt.sock.request(deleteLinkMessage(ifindex), `RTM_DELLINK(${ifindex})`);
  } catch (e) {
    if (!(ignoreMissing && e instanceof NetlinkError && e.errno === ENODEV)) throw e;
  }
}

/** Sets a link administratively up or down. */
export function setLinkUp(rt: RtNetlink, ifindex: number, up: boolean): void {
  rt.sock.request(linkUpMessage(ifindex, up), `RTM_NEWLINK(${ifindex} ${up ? "up" : "down"})`);
}

/** Changes a link's MAC address. */
export function setLinkMac(rt: RtNetlink, ifindex: number, mac: string): void {
  rt.sock.request(linkMacMessage(ifindex, mac), `RTM_NEWLINK(${ifindex} address ${mac})`);
}

/** Sets IPv6 address generation (IN6_ADDR_GEN_MODE_NONE: no automatic link-local). */
export function setAddrGenMode(rt: RtNetlink, ifindex: number, mode: number): void {
  rt.sock.request(addrGenModeMessage(ifindex, mode), `RTM_NEWLINK(${ifindex} addrgenmode ${mode})`);
}
