/**
 * The OS as the daemon sees it: links, addresses, VRRP channels, raw frames, timers and the
 * clock. ffi/host.ts implements it for real; tests pass a fake. Core code never imports ffi/.
 */
import type { Family, RxMeta } from "../vrrp/types.ts";
import type { RouteSpec, RuleSpec } from "../vrrp/routes.ts";
import type { ConfSysctl } from "../vrrp/vmac.ts";

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

/** A deleted route, as much of it as identifies it (see kernelRouteKey). */
export interface HostRouteKey {
  family: Family;
  table: number;
  dst?: string;
  dstLen: number;
  tos: number;
  metric?: number;
}

/** A deleted rule, as much of it as identifies it (see ruleIdentity). */
export interface HostRuleKey {
  family: Family;
  priority: number;
  table: number;
  src?: string;
  srcLen: number;
  dst?: string;
  dstLen: number;
}

export type NetEvent =
  | { kind: "link"; link: HostLink; deleted: boolean }
  | { kind: "address"; addr: HostAddress; deleted: boolean }
  /** A route or rule with protocol keepalived was deleted (only with `{ routes: true }`). */
  | { kind: "route"; route: HostRouteKey }
  | { kind: "rule"; rule: HostRuleKey }
  /** Events were lost: re-read links and addresses. */
  | { kind: "resync" };

/** The outcome of one route or rule of a batch: present/absent mean the kernel already agreed. */
export interface HostBatchResult {
  outcome: "done" | "present" | "absent" | "failed";
  error?: string;
}

/** A macvlan (VMAC) to create in private mode. */
export interface HostMacvlanSpec {
  name: string;
  parent: string;
  mac: string;
}

/** The result of an nftables script: `missing` when there is no nft binary. */
export type HostNftResult = { ok: true } | { ok: false; missing: boolean; error: string };

export interface Host {
  /** Monotonic milliseconds (fractional). */
  now(): number;
  /** Wall clock, milliseconds since the epoch. */
  wallNow(): number;
  /** Seconds since the system booted (vrrp_delay_after_boot). */
  uptime(): number;
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
  /** Subscribes to link and address changes; `routes` adds deletions of protocol-keepalived routes and rules. */
  onNetEvent(cb: (ev: NetEvent) => void, opts?: { routes?: boolean }): void;
  /** Adds route and rule deletions to the events already subscribed (a reload that starts tracking routes). */
  watchRoutes?(): void;
  /** Adds or deletes routes, never stopping at one failure; one result per spec, in order. */
  applyRoutes(specs: readonly RouteSpec[], op: "add" | "delete"): HostBatchResult[];
  /** Like applyRoutes, for policy rules. */
  applyRules(specs: readonly RuleSpec[], op: "add" | "delete"): HostBatchResult[];
  /** Creates a macvlan (private mode, down) and returns its ifindex. */
  createMacvlan(spec: HostMacvlanSpec): number;
  /** Deletes a link by name; a link already gone is not an error. */
  deleteLink(name: string): void;
  setLinkUp(name: string, up: boolean): void;
  /** Turns off IPv6 automatic address generation (no EUI-64 link-local from the VRRP MAC). */
  setAddrGenModeNone(name: string): void;
  /** A net.ipv4/ipv6.conf value, or null if it does not exist. */
  readSysctl(c: Pick<ConfSysctl, "proto" | "ifname" | "key">): number | null;
  /** Sets a sysctl and journals the original so restoreSysctls can put it back; false if it does not exist. */
  setSysctl(c: ConfSysctl): boolean;
  /** Restores every sysctl set through setSysctl (newest first); returns the failures. */
  restoreSysctls(): string[];
  /** Applies an nftables script asynchronously, serialised with earlier ones. */
  nft(script: string, what: string): Promise<HostNftResult>;
  /** Applies an nftables script and waits for it (start and stop only). */
  nftBlocking(script: string, what: string): HostNftResult;
  close(): void;
}
