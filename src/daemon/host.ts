/**
 * The OS as the daemon sees it: links, addresses, VRRP channels, raw frames, timers and the
 * clock. ffi/host.ts implements it for real; tests pass a fake. Core code never imports ffi/.
 */
import type { Family, RxMeta } from "../vrrp/types.ts";

export interface HostLink {
  ifindex: number;
  name: string;
  /** Administratively up and the carrier is present (IFF_UP and IFF_RUNNING/LOWER_UP). */
  up: boolean;
  /** IFF_NOARP: no GARPs on this link. */
  noarp: boolean;
  mac?: string;
}

export interface HostAddress {
  ifindex: number;
  family: Family;
  address: string;
  prefixlen: number;
  /** IFA_F_SECONDARY etc. */
  secondary: boolean;
  scope: number;
  label?: string;
}

/** An address to add or delete (what keepalived's virtual_ipaddress lines become). */
export interface HostAddressSpec {
  ifindex: number;
  family: Family;
  address: string;
  prefixlen: number;
  broadcast?: string;
  label?: string;
  scope?: number;
  preferredLft?: number;
  noDad?: boolean;
  noPrefixRoute?: boolean;
  home?: boolean;
}

export interface VrrpChannelOptions {
  family: Family;
  ifname: string;
  /** 112 (VRRP) or 51 (AH). */
  protocol: number;
  /** The multicast group to join (multicast channels). */
  group: string;
  /** Unicast channel: no group join; the receive socket is bound to `bindAddress`. */
  unicast?: boolean;
  bindAddress?: string;
  /** IPv6 unicast hop limit (keepalived's unicast_ttl). */
  unicastHops?: number;
}

/** One raw socket (pair) per interface, family, protocol and group, shared by instances. */
export interface VrrpChannel {
  /** IPv4: a whole packet with its IP header; IPv6: the PDU, sent from `src`. */
  send(packet: Uint8Array, dst: string, src?: string): void;
  close(): void;
}

export type NetEvent =
  | { kind: "link"; link: HostLink; deleted: boolean }
  | { kind: "address"; addr: HostAddress; deleted: boolean }
  /** Events were lost: re-read links and addresses. */
  | { kind: "resync" };

export interface Host {
  /** Monotonic milliseconds (fractional). */
  now(): number;
  /** Wall clock, milliseconds since the epoch. */
  wallNow(): number;
  setTimer(ms: number, fn: () => void): unknown;
  clearTimer(handle: unknown): void;
  links(): HostLink[];
  addresses(): HostAddress[];
  /** Throws an Error whose `code` is the errno name (EEXIST, EADDRNOTAVAIL, ...). */
  addAddress(spec: HostAddressSpec): void;
  deleteAddress(spec: HostAddressSpec): void;
  openVrrp(opts: VrrpChannelOptions, onPacket: (data: Uint8Array, meta: RxMeta) => void): VrrpChannel;
  /** Sends a complete Ethernet frame on an interface (GARP, unsolicited NA). */
  sendFrame(ifname: string, frame: Uint8Array): void;
  /** The interface's hardware address. */
  mac(ifname: string): Uint8Array;
  /** Link and address changes. */
  onNetEvent(cb: (ev: NetEvent) => void): void;
  close(): void;
}
