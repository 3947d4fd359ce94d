/**
 * BFD UDP sockets as keepalived opens them (bfd_scheduler.c): one listening socket per port
 * (3784 single hop, 4784 multihop) on [::] taking IPv4 too, reporting each datagram's TTL /
 * hop limit and destination address through recvmsg control messages; and one send socket
 * per session, bound to a source port in 49152–65535 and sending with the configured TTL.
 */
import { readFileSync } from "node:fs";
import type { FdWatcher } from "./fdwatch.ts";
import {
  AF_INET, AF_INET6, EAGAIN, EINTR, IPPROTO_IP, IPPROTO_IPV6, IPV6_HOPLIMIT, IPV6_PKTINFO, IPV6_RECVHOPLIMIT,
  IPV6_RECVPKTINFO, IPV6_UNICAST_HOPS, IPV6_V6ONLY, IP_PKTINFO, IP_TTL, IOVEC_SIZE, MSGHDR, MSGHDR_SIZE,
  MSG_TRUNC, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, SysError, alloc, attachDropAllFilter, bind, close, decodeSockaddrIP,
  formatIPv4, formatIPv6, parseCmsgs, recvmsgRaw, sendto, setIovec, setMsghdr, setsockoptInt, sockaddrIn, sockaddrIn6, socket, view,
} from "./libc.ts";

const IP_RECVTTL = 12;
const EAFNOSUPPORT = 97;
const EADDRINUSE = 98;
const IPPROTO_UDP = 17;
const RX_NAME_SIZE = 28;
const RX_CONTROL_SIZE = 128;

/** What the socket layer knows about one received datagram. */
export interface BfdRxMeta {
  /** Source address (IPv4-mapped addresses given as IPv4) and port. */
  src: string;
  srcPort: number;
  /** Destination address from IP_PKTINFO / IPV6_PKTINFO ("" if none). */
  dst: string;
  /** Received TTL / hop limit; 0 when the kernel gave none. */
  ttl: number;
  /** Longer than the receive buffer. */
  truncated: boolean;
}

export type BfdRxHandler = (data: Uint8Array, meta: BfdRxMeta) => void;

/** "::ffff:a.b.c.d" (as 16 bytes at `off`) → "a.b.c.d"; anything else as IPv6 text. */
function formatMaybeMapped(b: Uint8Array, off: number): string {
  let mapped = b[off + 10] === 0xff && b[off + 11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) if (b[off + i] !== 0) mapped = false;
  return mapped ? formatIPv4(b, off + 12) : formatIPv6(b, off);
}

/** The listening socket of one BFD port (both families when IPv6 is available). */
export class BfdListenSocket {
  #buf = alloc(512);
  #name = alloc(RX_NAME_SIZE);
  #control = alloc(RX_CONTROL_SIZE);
  #iov = alloc(IOVEC_SIZE);
  #msg = alloc(MSGHDR_SIZE);
  #watcher: FdWatcher | undefined;
  #handler: BfdRxHandler | undefined;
  #closed = false;

  private constructor(readonly fd: number, readonly port: number) {
    setIovec(this.#iov, 0, this.#buf);
    setMsghdr(this.#msg, this.#name, RX_NAME_SIZE, this.#iov, 1, this.#control, RX_CONTROL_SIZE);
  }

  /** Opens and binds *:port (IPv6 dual-stack, or IPv4 when the kernel has no IPv6). Throws SysError. */
  static open(port: number): BfdListenSocket {
    let fd: number;
    let v6 = true;
    try {
      fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    } catch (e) {
      if (!(e instanceof SysError) || e.errno !== EAFNOSUPPORT) throw e;
      fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
      v6 = false;
    }
    try {
      setsockoptInt(fd, IPPROTO_IP, IP_RECVTTL, 1, "IP_RECVTTL");
      if (v6) {
        setsockoptInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0, "IPV6_V6ONLY");
        setsockoptInt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1, "IPV6_RECVHOPLIMIT");
        setsockoptInt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO");
        bind(fd, sockaddrIn6("::", port));
      } else {
        setsockoptInt(fd, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO");
        bind(fd, sockaddrIn("0.0.0.0", port));
      }
    } catch (e) {
      close(fd);
      throw e;
    }
    return new BfdListenSocket(fd, port);
  }

  /** Delivers every received datagram to `handler`. */
  start(watcher: FdWatcher, handler: BfdRxHandler): void {
    this.#watcher = watcher;
    this.#handler = handler;
    watcher.watch(this.fd, () => this.drain());
  }

  /** Reads until EAGAIN (at most `cap` datagrams); returns how many were read. */
  drain(cap = 256): number {
    let count = 0;
    while (!this.#closed && this.#handler && count < cap) {
      const mv = view(this.#msg);
      mv.setBigUint64(MSGHDR.nameLen, BigInt(RX_NAME_SIZE), true);
      mv.setBigUint64(MSGHDR.controlLen, BigInt(RX_CONTROL_SIZE), true);
      mv.setInt32(MSGHDR.flags, 0, true);
      const n = recvmsgRaw(this.fd, this.#msg, 0);
      if (n === -EINTR) continue;
      if (n === -EAGAIN) return count;
      if (n < 0) throw new SysError("recvmsg", -n);
      count++;
      this.#handler(this.#buf.slice(0, Math.min(n, this.#buf.length)), this.#meta());
    }
    return count;
  }

  #meta(): BfdRxMeta {
    const mv = view(this.#msg);
    const flags = mv.getInt32(MSGHDR.flags, true);
    const nameLen = Number(mv.getBigUint64(MSGHDR.nameLen, true) & 0xffffffffn);
    const from = decodeSockaddrIP(this.#name, nameLen);
    const meta: BfdRxMeta = { src: "", srcPort: from?.port ?? 0, dst: "", ttl: 0, truncated: (flags & MSG_TRUNC) !== 0 };
    if (from?.family === AF_INET6) meta.src = formatMaybeMapped(this.#name, 8);
    else if (from) meta.src = from.addr;
    const controlLen = Math.min(Number(mv.getBigUint64(MSGHDR.controlLen, true)), RX_CONTROL_SIZE);
    for (const c of parseCmsgs(this.#control, controlLen)) {
      if ((c.level === IPPROTO_IP && c.type === IP_TTL) || (c.level === IPPROTO_IPV6 && c.type === IPV6_HOPLIMIT)) {
        if (c.data.length >= 4) meta.ttl = view(c.data).getInt32(0, true);
      } else if (c.level === IPPROTO_IPV6 && c.type === IPV6_PKTINFO && c.data.length >= 16) {
        meta.dst = formatMaybeMapped(c.data, 0);
      } else if (c.level === IPPROTO_IP && c.type === IP_PKTINFO && c.data.length >= 12) {
        meta.dst = formatIPv4(c.data, 8);
      }
    }
    return meta;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher?.unwatch(this.fd);
    close(this.fd);
  }
}

/** The kernel's ephemeral range clipped to RFC 5881's 49152–65535 (keepalived's rule). */
function sourcePortRange(): [number, number] {
  let lo = 49152, hi = 60999;
  try {
    const m = /^(\d+)\s+(\d+)/.exec(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8"));
    if (m) [lo, hi] = [Number(m[1]), Number(m[2])];
  } catch { /* keep the defaults */ }
  lo = Math.max(lo, 49152);
  hi = Math.min(hi, 65535);
  return lo + 1023 > hi ? [49152, 65535] : [lo, hi];
}

/** One session's send socket. */
export class BfdSendSocket {
  private constructor(readonly fd: number, readonly family: "inet" | "inet6", readonly localPort: number) {}

  /**
   * Opens a UDP socket bound to `source` (or the wildcard) on a free random port in the BFD
   * source range, sending with TTL / hop limit `ttl`. Throws SysError.
   */
  static open(family: "inet" | "inet6", source: string | undefined, ttl: number, random: () => number = Math.random): BfdSendSocket {
    const fd = socket(family === "inet" ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    try {
      attachDropAllFilter(fd); // send-only: nothing should queue here
      const [lo, hi] = sourcePortRange();
      const first = lo + Math.floor(random() * (hi - lo + 1));
      let port = first;
      for (;;) {
        try {
          bind(fd, family === "inet" ? sockaddrIn(source ?? "0.0.0.0", port) : sockaddrIn6(source ?? "::", port));
          break;
        } catch (e) {
          if (!(e instanceof SysError) || e.errno !== EADDRINUSE) throw e;
          port = port >= hi ? lo : port + 1;
          if (port === first) throw e;
        }
      }
      if (family === "inet") setsockoptInt(fd, IPPROTO_IP, IP_TTL, ttl, "IP_TTL");
      else setsockoptInt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, ttl, "IPV6_UNICAST_HOPS");
      return new BfdSendSocket(fd, family, port);
    } catch (e) {
      close(fd);
      throw e;
    }
  }

  /** Sends one packet to `dst`:`port`. Throws SysError (e.g. ENETUNREACH). */
  send(data: Uint8Array, dst: string, port: number): void {
    sendto(this.fd, data, 0, this.family === "inet" ? sockaddrIn(dst, port) : sockaddrIn6(dst, port), `sendto(${dst})`);
  }

  close(): void {
    close(this.fd);
  }
}

/** The real sockets for src/daemon/bfd-runtime.ts (its BfdNet interface), read through `watcher`. */
export function createBfdNet(watcher: FdWatcher): {
  listen(port: number, onPacket: BfdRxHandler): { close(): void };
  sender(family: "inet" | "inet6", source: string | undefined, ttl: number): BfdSendSocket;
} {
  return {
    listen(port, onPacket) {
      const s = BfdListenSocket.open(port);
      s.start(watcher, onPacket);
      return s;
    },
    sender: (family, source, ttl) => BfdSendSocket.open(family, source, ttl),
  };
}
