/**
 * Raw VRRP sockets (IP protocol 112, or 51 for AH) for one (interface, family, protocol),
 * set up as keepalived does (reference §2.1), read with recvmsg through an FdWatcher.
 *
 * IPv4: a receive socket (bound to the device, joined to the group, IP_PKTINFO) and a send
 * socket with IP_HDRINCL: the caller passes a complete IPv4 packet, because the AH ICV
 * covers the IP header. IPv6: one socket; the kernel computes and verifies the checksum
 * (IPV6_CHECKSUM=6) and the caller passes only the VRRP payload.
 */
import type { Family, RxMeta } from "../src/vrrp/types.ts";
import type { FdWatcher } from "./fdwatch.ts";
import {
  AF_INET, AF_INET6, EAGAIN, EINTR, IPPROTO_IP, IPPROTO_IPV6, IPPROTO_VRRP, IPV6_ADD_MEMBERSHIP,
  IPV6_CHECKSUM, IPV6_HOPLIMIT, IPV6_MULTICAST_ALL, IPV6_MULTICAST_HOPS, IPV6_MULTICAST_IF, IPV6_MULTICAST_LOOP,
  IPV6_PKTINFO, IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO, IPV6_UNICAST_HOPS, IPV6_FREEBIND, IP_ADD_MEMBERSHIP,
  IP_FREEBIND, IP_HDRINCL, IP_MULTICAST_ALL, IP_MULTICAST_IF, IP_MULTICAST_LOOP, IP_MULTICAST_TTL,
  IP_PKTINFO, IOVEC_SIZE, MSGHDR, MSGHDR_SIZE, MSG_CTRUNC, MSG_DONTROUTE, MSG_TRUNC, SOCK_CLOEXEC,
  POLLIN, SOCK_NONBLOCK, SOCK_RAW, SOL_SOCKET, SO_BINDTODEVICE, SO_RCVBUF, SysError,
  alloc, attachDropAllFilter, bind, buildCmsgs, close, cmsgSpace, cstr, decodeSockaddrIP, formatIPv4,
  formatIPv6, ifNameToIndex, isMulticast, needsScope, parseCmsgs, parseIPv4, parseIPv6, pollRaw, recvmsgRaw,
  sendmsg, sendto, setIovec, setMsghdr, setsockoptBuf, setsockoptInt, sockaddrIn, sockaddrIn6, socket, view,
} from "./libc.ts";

export const VRRP_GROUP_V4 = "224.0.0.18";
export const VRRP_GROUP_V6 = "ff02::12";

/** RxMeta plus what the socket layer noticed about the datagram itself. */
export interface VrrpRxMeta extends RxMeta {
  /** The datagram was longer than the receive buffer (MSG_TRUNC): `data` holds only its start. */
  truncated: boolean;
  /** Length of the datagram on the wire (≥ data.length when truncated). */
  wireLength: number;
}

export type VrrpRxHandler = (data: Uint8Array, meta: VrrpRxMeta) => void;

export interface VrrpSocketOptions {
  family: Family;
  /** Interface name (SO_BINDTODEVICE). */
  ifname: string;
  /** Interface index; looked up from `ifname` when omitted. */
  ifindex?: number;
  /** 112 (VRRP, default) or 51 (AH). */
  protocol?: number;
  /** Multicast group (default 224.0.0.18 / ff02::12). */
  group?: string;
  /** Unicast mode: no group join, receive socket bound to `bindAddress` if given. */
  unicast?: boolean;
  /** Address to bind the receive socket to (IP_FREEBIND, as keepalived's unicast_src). */
  bindAddress?: string;
  /** IPv4: interface address for IP_MULTICAST_IF (ifindex alone is enough). */
  multicastSource?: string;
  /** IPv6: IPV6_UNICAST_HOPS for unicast sends (default: the kernel's; keepalived's unicast_ttl). */
  unicastHops?: number;
  /** SO_RCVBUF in bytes (default: the kernel's). */
  rcvbuf?: number;
  /** Datagrams read per wakeup before yielding to the loop (default 64). */
  burstCap?: number;
  /** Receive buffer size; longer datagrams are delivered truncated (default 2048). */
  maxPacket?: number;
}

const RX_NAME_SIZE = 128;
const RX_CONTROL_SIZE = 256;

/** A raw VRRP socket pair for one interface and family. Errors are thrown as SysError. */
export class VrrpSocket {
  readonly family: Family;
  readonly ifname: string;
  readonly ifindex: number;
  readonly protocol: number;
  readonly group: string;
  /** The receive fd (and, for IPv6, also the send fd). */
  readonly rxFd: number;
  /** The send fd (IPv4: separate IP_HDRINCL socket; IPv6: same as rxFd). */
  readonly txFd: number;

  #burstCap: number;
  #watcher: FdWatcher | null = null;
  #handler: VrrpRxHandler | null = null;
  #drainScheduled = false;
  #closed = false;
  // Preallocated recvmsg state, reused for every datagram.
  #buf: Uint8Array;
  #name = alloc(RX_NAME_SIZE);
  #control = alloc(RX_CONTROL_SIZE);
  #iov = alloc(IOVEC_SIZE);
  #msg = alloc(MSGHDR_SIZE);
  #pollfd = alloc(8);
  // Preallocated sendmsg state (IPv6).
  #txIov = alloc(IOVEC_SIZE);
  #txMsg = alloc(MSGHDR_SIZE);

  private constructor(o: VrrpSocketOptions, ifindex: number, rxFd: number, txFd: number) {
    this.family = o.family;
    this.ifname = o.ifname;
    this.ifindex = ifindex;
    this.protocol = o.protocol ?? IPPROTO_VRRP;
    this.group = o.group ?? (o.family === "inet" ? VRRP_GROUP_V4 : VRRP_GROUP_V6);
    this.rxFd = rxFd;
    this.txFd = txFd;
    this.#burstCap = o.burstCap ?? 64;
    this.#buf = alloc(o.maxPacket ?? 2048);
    setIovec(this.#iov, 0, this.#buf);
    setMsghdr(this.#msg, this.#name, RX_NAME_SIZE, this.#iov, 1, this.#control, RX_CONTROL_SIZE);
  }

  /** Opens and configures the socket(s); closes everything again if any option fails. */
  static open(o: VrrpSocketOptions): VrrpSocket {
    const ifindex = o.ifindex ?? ifNameToIndex(o.ifname);
    const opened: number[] = [];
    try {
      if (o.family === "inet") {
        const rx = openV4Rx(o, ifindex, opened);
        const tx = openV4Tx(o, ifindex, opened);
        return new VrrpSocket(o, ifindex, rx, tx);
      }
      const fd = openV6(o, ifindex, opened);
      return new VrrpSocket(o, ifindex, fd, fd);
    } catch (err) {
      for (const fd of opened) close(fd);
      throw err;
    }
  }

  /** Starts delivering received datagrams to `handler` through `watcher`. */
  start(watcher: FdWatcher, handler: VrrpRxHandler): void {
    if (this.#closed) throw new Error("VrrpSocket is closed");
    this.#watcher = watcher;
    this.#handler = handler;
    watcher.watch(this.rxFd, () => this.drain());
  }

  /**
   * Sends one advert. IPv4: `packet` is the whole IPv4 packet (header included) and `dst`
   * its destination. IPv6: `packet` is the VRRP PDU; `src` (optional) selects the source
   * address through IPV6_PKTINFO. Multicast IPv4 goes out with MSG_DONTROUTE.
   */
  send(packet: Uint8Array, dst: string, src?: string): number {
    if (this.#closed) throw new Error("VrrpSocket is closed");
    if (this.family === "inet") {
      const flags = isMulticast(dst) ? MSG_DONTROUTE : 0;
      return sendto(this.txFd, packet, flags, sockaddrIn(dst), `sendto(${dst})`);
    }
    const name = sockaddrIn6(dst, 0, needsScope(dst) ? this.ifindex : 0);
    const pktinfo = alloc(20); // struct in6_pktinfo {in6_addr addr; u32 ifindex}
    if (src) pktinfo.set(parseIPv6(src), 0);
    view(pktinfo).setUint32(16, this.ifindex, true);
    const control = buildCmsgs([{ level: IPPROTO_IPV6, type: IPV6_PKTINFO, data: pktinfo }]);
    setIovec(this.#txIov, 0, packet);
    setMsghdr(this.#txMsg, name, name.byteLength, this.#txIov, 1, control, control.byteLength);
    return sendmsg(this.txFd, this.#txMsg, 0, `sendmsg(${dst})`);
  }

  /**
   * Reads queued datagrams until EAGAIN or the per-wakeup cap, delivering each to the
   * handler; returns how many were read. When the cap is hit the rest is read on the next
   * loop turn.
   */
  drain(): number {
    if (this.#closed || !this.#handler) return 0;
    let count = 0;
    for (; count < this.#burstCap; count++) {
      view(this.#msg).setBigUint64(MSGHDR.nameLen, BigInt(RX_NAME_SIZE), true);
      view(this.#msg).setBigUint64(MSGHDR.controlLen, BigInt(RX_CONTROL_SIZE), true);
      view(this.#msg).setBigUint64(MSGHDR.flags, 0n, true);
      const n = recvmsgRaw(this.rxFd, this.#msg, MSG_TRUNC);
      if (n === -EINTR) continue;
      if (n < 0) {
        // IPv6: a datagram failing the kernel's checksum check is dropped inside recvmsg,
        // which then reports EAGAIN even if good datagrams are queued behind it.
        if (n === -EAGAIN) {
          if (this.family === "inet6" && this.#queued()) continue;
          return count;
        }
        // ENETDOWN and friends: report and stop this round; the socket stays usable.
        throw new SysError("recvmsg", -n);
      }
      this.#deliver(n);
      if (this.#closed) return count + 1;
    }
    if (!this.#drainScheduled) {
      this.#drainScheduled = true;
      setImmediate(() => { this.#drainScheduled = false; this.drain(); });
    }
    return count;
  }

  /** Whether the receive queue is non-empty (poll with zero timeout). */
  #queued(): boolean {
    const v = view(this.#pollfd);
    v.setInt32(0, this.rxFd, true);
    v.setInt16(4, POLLIN, true);
    v.setInt16(6, 0, true);
    return pollRaw(this.#pollfd, 1, 0) > 0 && (v.getInt16(6, true) & POLLIN) !== 0;
  }

  #deliver(wireLength: number): void {
    const mv = view(this.#msg);
    const flags = mv.getInt32(MSGHDR.flags, true);
    const nameLen = Number(mv.getBigUint64(MSGHDR.nameLen, true) & 0xffffffffn);
    const controlLen = Number(mv.getBigUint64(MSGHDR.controlLen, true));
    const truncated = (flags & MSG_TRUNC) !== 0 || wireLength > this.#buf.length;
    const data = this.#buf.slice(0, Math.min(wireLength, this.#buf.length));
    const cmsgs = parseCmsgs(this.#control, (flags & MSG_CTRUNC) ? Math.min(controlLen, RX_CONTROL_SIZE) : controlLen);
    const meta: VrrpRxMeta = { family: this.family, src: "", dst: "", ifindex: this.ifindex, ttl: -1, truncated, wireLength };
    if (this.family === "inet") {
      // The IPv4 header is part of the data on raw sockets.
      if (data.length >= 20) {
        meta.ttl = data[8]!;
        meta.src = formatIPv4(data, 12);
        meta.dst = formatIPv4(data, 16);
      } else {
        const from = decodeSockaddrIP(this.#name, nameLen);
        meta.src = from?.addr ?? "0.0.0.0";
        meta.dst = "0.0.0.0";
      }
      for (const c of cmsgs) {
        // struct in_pktinfo {int ifindex; in_addr spec_dst; in_addr addr}
        if (c.level === IPPROTO_IP && c.type === IP_PKTINFO && c.data.length >= 12) {
          meta.ifindex = view(c.data).getInt32(0, true);
          if (data.length < 20) meta.dst = formatIPv4(c.data, 8);
        }
      }
    } else {
      const from = decodeSockaddrIP(this.#name, nameLen);
      meta.src = from?.addr ?? "::";
      meta.dst = "::";
      for (const c of cmsgs) {
        if (c.level !== IPPROTO_IPV6) continue;
        if (c.type === IPV6_PKTINFO && c.data.length >= 20) {
          meta.dst = formatIPv6(c.data, 0);
          meta.ifindex = view(c.data).getUint32(16, true);
        } else if (c.type === IPV6_HOPLIMIT && c.data.length >= 4) {
          meta.ttl = view(c.data).getInt32(0, true);
        }
      }
    }
    this.#handler!(data, meta);
  }

  /** Stops watching and closes the fds. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher?.unwatch(this.rxFd);
    close(this.rxFd);
    if (this.txFd !== this.rxFd) close(this.txFd);
  }
}

function bindToDevice(fd: number, ifname: string): void {
  setsockoptBuf(fd, SOL_SOCKET, SO_BINDTODEVICE, cstr(ifname), "SO_BINDTODEVICE");
}

/** struct ip_mreqn {group, local address, ifindex} (12 bytes). */
function ipMreqn(group: string, local: string | undefined, ifindex: number): Uint8Array {
  const b = alloc(12);
  b.set(parseIPv4(group), 0);
  if (local) b.set(parseIPv4(local), 4);
  view(b).setInt32(8, ifindex, true);
  return b;
}

/**
 * IP(V6)_MULTICAST_ALL 0: a hardening option (only groups joined on this socket are
 * received). Kernels before 2.6.31/4.20 and qemu-user emulation refuse it with ENOPROTOOPT;
 * the group bind and the advert checks filter the same packets then, so that one error is
 * not fatal.
 */
function multicastAllOff(fd: number, v6: boolean): void {
  try {
    if (v6) setsockoptInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0, "IPV6_MULTICAST_ALL");
    else setsockoptInt(fd, IPPROTO_IP, IP_MULTICAST_ALL, 0, "IP_MULTICAST_ALL");
  } catch (e) {
    if ((e as { code?: string }).code !== "ENOPROTOOPT") throw e;
  }
}

function openV4Rx(o: VrrpSocketOptions, ifindex: number, opened: number[]): number {
  const proto = o.protocol ?? IPPROTO_VRRP;
  const fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
  opened.push(fd);
  bindToDevice(fd, o.ifname);
  if (o.rcvbuf) setsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, o.rcvbuf, "SO_RCVBUF");
  setsockoptInt(fd, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO");
  // Only groups joined on this socket (none in unicast mode), not every group on the host.
  multicastAllOff(fd, false);
  if (!o.unicast) {
    const group = o.group ?? VRRP_GROUP_V4;
    setsockoptBuf(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, ipMreqn(group, undefined, ifindex), "IP_ADD_MEMBERSHIP");
    // keepalived binds the multicast socket to the group: unicast proto-112 packets stay out.
    bind(fd, sockaddrIn(group));
  } else if (o.bindAddress) {
    setsockoptInt(fd, IPPROTO_IP, IP_FREEBIND, 1, "IP_FREEBIND");
    bind(fd, sockaddrIn(o.bindAddress));
  }
  return fd;
}

function openV4Tx(o: VrrpSocketOptions, ifindex: number, opened: number[]): number {
  const proto = o.protocol ?? IPPROTO_VRRP;
  const fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
  opened.push(fd);
  // Send-only: a raw socket of this protocol would otherwise queue every matching packet.
  attachDropAllFilter(fd);
  setsockoptInt(fd, IPPROTO_IP, IP_HDRINCL, 1, "IP_HDRINCL");
  bindToDevice(fd, o.ifname);
  const group = o.group ?? VRRP_GROUP_V4;
  setsockoptBuf(fd, IPPROTO_IP, IP_MULTICAST_IF, ipMreqn(group, o.multicastSource, ifindex), "IP_MULTICAST_IF");
  setsockoptInt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP");
  multicastAllOff(fd, false);
  setsockoptInt(fd, IPPROTO_IP, IP_MULTICAST_TTL, 255, "IP_MULTICAST_TTL"); // ignored with HDRINCL; harmless
  return fd;
}

function openV6(o: VrrpSocketOptions, ifindex: number, opened: number[]): number {
  const proto = o.protocol ?? IPPROTO_VRRP;
  const fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
  opened.push(fd);
  bindToDevice(fd, o.ifname);
  if (o.rcvbuf) setsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, o.rcvbuf, "SO_RCVBUF");
  // The kernel fills in (and on receive verifies) the checksum at offset 6, pseudo-header included.
  setsockoptInt(fd, IPPROTO_IPV6, IPV6_CHECKSUM, 6, "IPV6_CHECKSUM");
  setsockoptInt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO");
  setsockoptInt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1, "IPV6_RECVHOPLIMIT");
  setsockoptInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, ifindex, "IPV6_MULTICAST_IF");
  setsockoptInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 255, "IPV6_MULTICAST_HOPS");
  setsockoptInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0, "IPV6_MULTICAST_LOOP");
  if (o.unicastHops !== undefined) setsockoptInt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, o.unicastHops, "IPV6_UNICAST_HOPS");
  // Only groups joined on this socket (none in unicast mode), not every group on the host.
  multicastAllOff(fd, true);
  if (!o.unicast) {
    const mreq = alloc(20); // struct ipv6_mreq {in6_addr group; int ifindex}
    mreq.set(parseIPv6(o.group ?? VRRP_GROUP_V6), 0);
    view(mreq).setInt32(16, ifindex, true);
    setsockoptBuf(fd, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, mreq, "IPV6_ADD_MEMBERSHIP");
  } else if (o.bindAddress) {
    setsockoptInt(fd, IPPROTO_IPV6, IPV6_FREEBIND, 1, "IPV6_FREEBIND");
    bind(fd, sockaddrIn6(o.bindAddress, 0, needsScope(o.bindAddress) ? ifindex : 0));
  }
  return fd;
}
