/** The real Host: rtnetlink, raw VRRP sockets and AF_PACKET sockets on the one event loop. */
import type { Host, HostAddress, HostAddressSpec, HostLink, NetEvent, VrrpChannel, VrrpChannelOptions } from "../src/daemon/host.ts";
import type { RxMeta } from "../src/vrrp/types.ts";
import { createFdWatcher, type FdWatcher } from "./fdwatch.ts";
import { IFF_LOWER_UP, IFF_NOARP, IFF_RUNNING, IFF_UP, PacketSocket } from "./packet-socket.ts";
import { type AddressInfo, IFA_F_SECONDARY, type LinkInfo, RtMonitor, RtNetlink } from "./rtnetlink.ts";
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
  #packets = new Map<string, PacketSocket>();
  #listeners: Array<(ev: NetEvent) => void> = [];
  #sockets = new Set<VrrpSocket>();

  constructor(watcher: FdWatcher = createFdWatcher()) {
    this.#watcher = watcher;
  }

  now(): number {
    return performance.now();
  }
  wallNow(): number {
    return Date.now();
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
  onNetEvent(cb: (ev: NetEvent) => void): void {
    this.#listeners.push(cb);
    this.#monitor ??= new RtMonitor(this.#watcher, (ev) => {
      let out: NetEvent;
      if (ev.kind === "resync") out = { kind: "resync" };
      else if (ev.kind === "newlink" || ev.kind === "dellink") out = { kind: "link", link: toLink(ev.link), deleted: ev.kind === "dellink" };
      else out = { kind: "address", addr: toAddress(ev.addr), deleted: ev.kind === "deladdr" };
      for (const l of this.#listeners) l(out);
    });
  }
  close(): void {
    this.#monitor?.close();
    for (const s of this.#sockets) s.close();
    for (const p of this.#packets.values()) p.close();
    this.#nl.close();
    this.#watcher.close();
  }
}

