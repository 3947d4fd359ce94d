/** The real Host: rtnetlink, raw VRRP sockets and AF_PACKET sockets on the one event loop. */
import { uptime as osUptime } from "node:os";
import type {
  Host, HostAddress, HostAddressSpec, HostBatchResult, HostLink, HostMacvlanSpec, HostNftResult, NetEvent, VrrpChannel,
  VrrpChannelOptions,
} from "../src/daemon/host.ts";
import { RTPROT_KEEPALIVED, type RouteSpec, type RuleSpec } from "../src/vrrp/routes.ts";
import type { ConfSysctl } from "../src/vrrp/vmac.ts";
import type { RxMeta } from "../src/vrrp/types.ts";
import { NFT_MISSING_MESSAGE, Nft } from "./nft.ts";
import { IN6_ADDR_GEN_MODE_NONE, createMacvlan, deleteLink, getLink, linkIndex, setAddrGenMode, setLinkUp } from "./rtnetlink-link.ts";
import { type BatchResult, applyRoutes, applyRules, decodeRoute, decodeRule } from "./rtnetlink-route.ts";
import { SysctlJournal, netSysctlPath, readSysctl } from "./sysctl.ts";
import { createFdWatcher, type FdWatcher } from "./fdwatch.ts";
import { IFF_LOWER_UP, IFF_NOARP, IFF_RUNNING, IFF_UP, PacketSocket } from "./packet-socket.ts";
import {
  type AddressInfo, IFA_F_SECONDARY, type LinkInfo, RTM_DELROUTE, RTM_DELRULE, RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV4_RULE,
  RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE, RTMGRP_IPV6_RULE, RTMGRP_LINK, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV4_RULE, RTNLGRP_IPV6_ROUTE,
  RTNLGRP_IPV6_RULE, RtMonitor, RtNetlink,
} from "./rtnetlink.ts";
import { NETLINK_ADD_MEMBERSHIP } from "./netlink.ts";
import { SOL_NETLINK, setsockoptInt } from "./libc.ts";
import { VrrpSocket } from "./vrrp-socket.ts";

const IFA_F_NOPREFIXROUTE = 0x200;
const IFA_F_HOMEADDRESS = 0x10;

function toLink(l: LinkInfo): HostLink {
  return {
    ifindex: l.ifindex,
    name: l.name,
    up: (l.flags & IFF_UP) !== 0 && (l.flags & (IFF_RUNNING | IFF_LOWER_UP)) !== 0,
    noarp: (l.flags & IFF_NOARP) !== 0,
    mac: l.mac,
  };
}

function toAddress(a: AddressInfo): HostAddress {
  return {
    ifindex: a.ifindex, family: a.family, address: a.address, prefixlen: a.prefixlen,
    secondary: (a.flags & IFA_F_SECONDARY) !== 0, scope: a.scope, label: a.label,
  };
}

export class RealHost implements Host {
  #watcher: FdWatcher;
  #nl = new RtNetlink();
  #monitor: RtMonitor | undefined;
  #routesWatched = false;
  #packets = new Map<string, PacketSocket>();
  #listeners: Array<(ev: NetEvent) => void> = [];
  #sockets = new Set<VrrpSocket>();
  #sysctls = new SysctlJournal();
  // The daemon logs nft's absence itself (once, through its logger).
  #nft = new Nft({ warn: () => {} });

  // The backstop drain only covers coalesced SIGIOs; 1 s halves idle wake-ups (platform.md §1).
  constructor(watcher: FdWatcher = createFdWatcher({ backstopMs: 1000 })) {
    this.#watcher = watcher;
  }

  /** The fd watcher, for other OS readers (the proc connector). */
  get fdWatcher(): FdWatcher {
    return this.#watcher;
  }
  now(): number {
    return performance.now();
  }
  wallNow(): number {
    return Date.now();
  }
  uptime(): number {
    return osUptime();
  }
  setTimer(ms: number, fn: () => void): unknown {
    // Bun truncates fractional delays, which fires early (platform.md §7): round up.
    return setTimeout(fn, Math.max(0, Math.ceil(ms)));
  }
  clearTimer(handle: unknown): void {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  }
  links(): HostLink[] {
    return this.#nl.dumpLinks().map(toLink);
  }
  addresses(): HostAddress[] {
    return this.#nl.dumpAddresses().map(toAddress);
  }
  addAddress(spec: HostAddressSpec): void {
    this.#nl.addAddress(this.#spec(spec));
  }
  deleteAddress(spec: HostAddressSpec): void {
    this.#nl.deleteAddress(this.#spec(spec));
  }
  #spec(s: HostAddressSpec) {
    let flags = 0;
    if (s.noPrefixRoute) flags |= IFA_F_NOPREFIXROUTE;
    if (s.home) flags |= IFA_F_HOMEADDRESS;
    return {
      ifindex: s.ifindex, family: s.family, address: s.address, prefixlen: s.prefixlen,
      broadcast: s.broadcast, label: s.label, scope: s.scope, preferredLft: s.preferredLft,
      noDad: s.noDad, flags: flags || undefined,
    };
  }
  openVrrp(opts: VrrpChannelOptions, onPacket: (data: Uint8Array, meta: RxMeta) => void): VrrpChannel {
    const sock = VrrpSocket.open({
      family: opts.family, ifname: opts.ifname, protocol: opts.protocol, group: opts.group,
      unicast: opts.unicast, bindAddress: opts.bindAddress, unicastHops: opts.unicastHops,
    });
    this.#sockets.add(sock);
    sock.start(this.#watcher, onPacket);
    return {
      send: (packet, dst, src) => void sock.send(packet, dst, src),
      close: () => {
        this.#sockets.delete(sock);
        sock.close();
      },
    };
  }
  sendFrame(ifname: string, frame: Uint8Array): void {
    this.#packet(ifname).send(frame);
  }
  mac(ifname: string): Uint8Array {
    return this.#packet(ifname).mac;
  }
  #packet(ifname: string): PacketSocket {
    let p = this.#packets.get(ifname);
    if (!p) {
      p = PacketSocket.open(ifname);
      this.#packets.set(ifname, p);
    }
    return p;
  }
  onNetEvent(cb: (ev: NetEvent) => void, opts: { routes?: boolean } = {}): void {
    this.#listeners.push(cb);
    if (this.#monitor && opts.routes) this.watchRoutes();
    this.#routesWatched ||= opts.routes === true;
    const emit = (out: NetEvent) => {
      for (const l of this.#listeners) l(out);
    };
    // Route and rule groups only when asked: a router with a large, busy table would wake us for each change.
    const routeGroups = opts.routes ? RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE | RTMGRP_IPV4_RULE | RTMGRP_IPV6_RULE : 0;
    this.#monitor ??= new RtMonitor(this.#watcher, (ev) => {
      if (ev.kind === "resync") emit({ kind: "resync" });
      else if (ev.kind === "newlink" || ev.kind === "dellink") emit({ kind: "link", link: toLink(ev.link), deleted: ev.kind === "dellink" });
      else emit({ kind: "address", addr: toAddress(ev.addr), deleted: ev.kind === "deladdr" });
    }, {
      groups: RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | routeGroups,
      onOther: (m) => {
        if (m.type === RTM_DELROUTE) {
          const r = decodeRoute(m);
          if (r && r.protocol === RTPROT_KEEPALIVED) emit({ kind: "route", route: r });
        } else if (m.type === RTM_DELRULE) {
          const r = decodeRule(m);
          if (r && r.protocol === RTPROT_KEEPALIVED) emit({ kind: "rule", rule: r });
        }
      },
    });
  }
  watchRoutes(): void {
    if (this.#routesWatched || !this.#monitor) return;
    this.#routesWatched = true;
    for (const g of [RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, RTNLGRP_IPV4_RULE, RTNLGRP_IPV6_RULE])
      setsockoptInt(this.#monitor.sock.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, g, "NETLINK_ADD_MEMBERSHIP");
  }
  applyRoutes(specs: readonly RouteSpec[], op: "add" | "delete"): HostBatchResult[] {
    return applyRoutes(this.#nl, specs, op).map(batchResult);
  }
  applyRules(specs: readonly RuleSpec[], op: "add" | "delete"): HostBatchResult[] {
    return applyRules(this.#nl, specs, op).map(batchResult);
  }
  createMacvlan(spec: HostMacvlanSpec): number {
    return createMacvlan(this.#nl, { name: spec.name, parentIfindex: linkIndex(this.#nl, spec.parent), mac: spec.mac });
  }
  deleteLink(name: string): void {
    const l = getLink(this.#nl, name);
    if (l) deleteLink(this.#nl, l.ifindex, true);
  }
  setLinkUp(name: string, up: boolean): void {
    setLinkUp(this.#nl, linkIndex(this.#nl, name), up);
  }
  setAddrGenModeNone(name: string): void {
    setAddrGenMode(this.#nl, linkIndex(this.#nl, name), IN6_ADDR_GEN_MODE_NONE);
  }
  readSysctl(c: Pick<ConfSysctl, "proto" | "ifname" | "key">): number | null {
    const v = readSysctl(netSysctlPath(c));
    return v === null ? null : Number(v);
  }
  setSysctl(c: ConfSysctl): boolean {
    return this.#sysctls.set(netSysctlPath(c), c.value) !== null;
  }
  restoreSysctls(): string[] {
    return this.#sysctls.restoreAll().map((e) => `${e.path}: ${e.error}`);
  }
  nft(script: string, what: string): Promise<HostNftResult> {
    return this.#nft.apply(script, what);
  }
  nftBlocking(script: string, what: string): HostNftResult {
    const path = Bun.which("nft") ?? Bun.which("nft", { PATH: "/usr/sbin:/sbin:/usr/local/sbin" });
    if (!path) return { ok: false, missing: true, error: NFT_MISSING_MESSAGE };
    const r = Bun.spawnSync([path, "-f", "-"], { stdin: new TextEncoder().encode(script), stdout: "pipe", stderr: "pipe", timeout: 5000 });
    if (r.exitCode === 0) return { ok: true };
    const why = r.exitedDueToTimeout ? "nft did not finish in 5000 ms" : `nft exited ${r.exitCode ?? r.signalCode}: ${r.stderr.toString().trim().split("\n").slice(0, 6).join(" | ")}`;
    return { ok: false, missing: false, error: `nftables ${what}: ${why}` };
  }
  close(): void {
    this.#monitor?.close();
    for (const s of this.#sockets) s.close();
    for (const p of this.#packets.values()) p.close();
    this.#nl.close();
    this.#watcher.close();
  }
}

function batchResult(r: BatchResult<unknown>): HostBatchResult {
  return r.error ? { outcome: r.outcome, error: r.error.message } : { outcome: r.outcome };
}
