/** The netlink form of a virtual_ipaddress / static_ipaddress line, with keepalived's defaults. */
import type { AddressEntry } from "../config/model.ts";
import { broadcastOf, formatIPv4, parseIp } from "../net/addr.ts";
import type { HostAddressSpec } from "./host.ts";

const SCOPES: Record<string, number> = { global: 0, site: 200, link: 253, host: 254, nowhere: 255 };

/** The HostAddressSpec of one address line on interface `ifindex`. */
export function addressSpec(v: AddressEntry, ifindex: number): HostAddressSpec {
  const spec: HostAddressSpec = { ifindex, family: v.family, address: v.address, prefixlen: v.prefixlen };
  if (v.family === "inet") {
    if (v.brd === "+") spec.broadcast = formatIPv4(broadcastOf(parseIp(v.address)!.bytes, v.prefixlen));
    else if (v.brd && v.brd !== "-") spec.broadcast = v.brd;
    if (v.label) spec.label = v.label;
    if (v.scope) spec.scope = SCOPES[v.scope];
  } else {
    // keepalived adds IPv6 VIPs without DAD; a /128 VIP is deprecated (preferred_lft 0) unless told otherwise
    spec.noDad = true;
    if (v.preferred_lft === "forever") spec.preferredLft = undefined;
    else if (v.preferred_lft !== undefined) spec.preferredLft = Number(v.preferred_lft);
    else if (v.prefixlen === 128) spec.preferredLft = 0;
  }
  if (v.noprefixroute) spec.noPrefixRoute = true;
  if (v.home) spec.home = true;
  return spec;
}
