/**
 * Checker sockets opened through libc, so they carry what Bun's node:net and Bun.udpSocket
 * cannot set: SO_MARK (fwmark) and SO_BINDTODEVICE (bind_if), besides bind and a non-blocking
 * connect — keepalived's socket_bind_connect/udp_bind_connect.
 *
 * Readiness (TCP connect completion, UDP datagrams and ICMP errors) comes from SIGIO: the socket
 * is O_ASYNC with the JS thread as owner, set before connect(), and the kernel signals POLL_OUT
 * when the handshake completes, POLL_ERR on an RST/ICMP error and POLL_IN on a datagram. One
 * poll() over every waiting fd then says which are ready. Bun cannot adopt a connecting fd (its
 * `open` fires at once, whatever the connect's fate — measured), and `new net.Socket({ fd })`
 * never reads (ERR_SOCKET_CLOSED), so a connected fd is handed to `Bun.connect({ fd })` instead.
 */
import {
  AF_INET, AF_INET6, F_OWNER_TID, F_SETFL, F_SETOWN_EX, O_ASYNC, O_NONBLOCK, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK, SOL_SOCKET,
  SO_BINDTODEVICE, alloc, cstr, errno, errnoName, gettid, ifNameToIndex, pollRaw, raw, sockaddrIn, sockaddrIn6, view,
} from "./libc.ts";

const lib = raw;
const { fcntlInt, fcntlPtr } = raw;

const SOCK_STREAM = 1, SO_ERROR = 4, SO_MARK = 36, IPPROTO_TCP = 6, IPPROTO_UDP = 17;
const SOL_IP = 0, SOL_IPV6 = 41, IP_RECVERR = 11, IPV6_RECVERR = 25;
const EINPROGRESS = 115, EAGAIN = 11, POLLIN = 0x1, POLLOUT = 0x4, POLLERR = 0x8, POLLHUP = 0x10, MSG_DONTWAIT = 0x40;

/** Where and how a checker socket connects; `host` is an IP literal (IPv6 may carry %zone). */
export interface SocketTarget {
  host: string;
  port: number;
  bindto?: string;
  bindPort?: number;
  bindIf?: string;
  fwmark?: number;
}

/** A failed system call while opening a checker socket, with keepalived's words for the step. */
export interface SocketFailure {
  /** errno name: ECONNREFUSED, EPERM… */
  code: string;
  errno: number;
  /** The step: "connect", "bind", "fwmark", "bind_if", "socket". */
  step: string;
}

// ---------------------------------------------------------------------------------------
// SIGIO readiness

type Waiter = { events: number; onReady: (revents: number) => void };
const waiters = new Map<number, Waiter>();
let sigioInstalled = false;
let owner: Uint8Array | undefined;
let pollBuf = alloc(8 * 64);

/** Registers the SIGIO listener once (SIGIO's default action kills the process) and the owner struct. */
function ensureSigio(): Uint8Array {
  if (!sigioInstalled) {
    process.on("SIGIO", scanWaiters);
    sigioInstalled = true;
  }
  if (!owner) {
    owner = alloc(8);
    view(owner).setInt32(0, F_OWNER_TID, true);
    view(owner).setInt32(4, gettid(), true);
  }
  return owner;
}

/** One poll() over every waiting fd; runs the callbacks of those that are ready. */
function scanWaiters(): void {
  const n = waiters.size;
  if (!n) return;
  if (pollBuf.length < n * 8) pollBuf = alloc(Math.max(n, pollBuf.length / 4) * 8);
  const v = view(pollBuf);
  const fds: number[] = [];
  let i = 0;
  for (const [fd, w] of waiters) {
    v.setInt32(i * 8, fd, true);
    v.setInt16(i * 8 + 4, w.events, true);
    v.setInt16(i * 8 + 6, 0, true);
    fds.push(fd);
    i++;
  }
  if (pollRaw(pollBuf, n, 0) <= 0) return;
  for (let k = 0; k < n; k++) {
    const revents = v.getInt16(k * 8 + 6, true);
    if (!revents) continue;
    const w = waiters.get(fds[k]!);
    if (w) w.onReady(revents);
  }
}

/** Makes `fd` raise SIGIO at the JS thread. */
function setAsync(fd: number): number {
  if (fcntlPtr(fd, F_SETOWN_EX, ensureSigio()) < 0) return errno();
  if (fcntlInt(fd, F_SETFL, O_NONBLOCK | O_ASYNC) < 0) return errno();
  return 0;
}

/** Stops SIGIO for `fd` (before Bun takes it over, so its data raises no signals). */
function clearAsync(fd: number): void {
  fcntlInt(fd, F_SETFL, O_NONBLOCK);
}

/** The socket's pending error (SO_ERROR), 0 when none. */
function socketError(fd: number): number {
  const b = alloc(4);
  const len = alloc(4);
  view(len).setUint32(0, 4, true);
  if (lib.getsockopt(fd, SOL_SOCKET, SO_ERROR, b, len) < 0) return errno();
  return view(b).getInt32(0, true);
}

// ---------------------------------------------------------------------------------------
// Opening

/** The destination sockaddr for `host` (IPv6 %zone resolved to its ifindex). */
function destination(host: string, port: number): { family: number; addr: Uint8Array } {
  if (!host.includes(":")) return { family: AF_INET, addr: sockaddrIn(host, port) };
  const [ip, zone] = host.split("%");
  const scope = zone ? (/^\d+$/.test(zone) ? Number(zone) : ifNameToIndex(zone)) : 0;
  return { family: AF_INET6, addr: sockaddrIn6(ip!, port, scope) };
}

/** socket(), SO_MARK, SO_BINDTODEVICE, bind — in keepalived's order; returns the fd or a failure. */
function prepare(t: SocketTarget, type: number, proto: number): { fd: number; dst: Uint8Array; family: number } | SocketFailure {
  let dst: { family: number; addr: Uint8Array };
  try {
    dst = destination(t.host, t.port);
  } catch {
    return { code: "EINVAL", errno: 22, step: "address" };
  }
  const fd = lib.socket(dst.family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  if (fd < 0) return fail("socket", errno());
  const bad = (step: string) => {
    const e = errno();
    lib.close(fd);
    return fail(step, e);
  };
  if (t.fwmark) {
    const m = alloc(4);
    view(m).setUint32(0, t.fwmark >>> 0, true);
    if (lib.setsockopt(fd, SOL_SOCKET, SO_MARK, m, 4) < 0) return bad("fwmark");
  }
  if (t.bindIf) {
    const name = cstr(t.bindIf);
    if (lib.setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, name.length) < 0) return bad("bind_if");
  }
  if (t.bindto || t.bindPort) {
    if ((t.bindto?.includes(":") ?? dst.family === AF_INET6) !== (dst.family === AF_INET6)) {
      lib.close(fd);
      return { code: "EAFNOSUPPORT", errno: 97, step: "bind" };
    }
    let src: Uint8Array;
    try {
      src = dst.family === AF_INET ? sockaddrIn(t.bindto ?? "0.0.0.0", t.bindPort ?? 0) : sockaddrIn6((t.bindto ?? "::").split("%")[0]!, t.bindPort ?? 0);
    } catch {
      lib.close(fd);
      return { code: "EINVAL", errno: 22, step: "bind" };
    }
    if (lib.bind(fd, src, src.length) < 0) return bad("bind");
  }
  return { fd, dst: dst.addr, family: dst.family };
}

function fail(step: string, e: number): SocketFailure {
  return { code: errnoName(e), errno: e, step };
}

/** The outcome of a TCP connect: a connected fd (the caller owns it), a failure, or the timeout. */
export type TcpConnectResult = { ok: true; fd: number } | { ok: false; timeout: true } | ({ ok: false; timeout?: false } & SocketFailure);

/** A TCP connect in flight; `cancel` closes the socket and settles the promise as a timeout. */
export interface PendingConnect {
  result: Promise<TcpConnectResult>;
  cancel(): void;
}

/**
 * Opens a non-blocking TCP connection with the checker's socket options and resolves once
 * the handshake completes, fails, or `timeoutMs` passes (the socket is then closed). A
 * connected fd is blocking-free and no longer O_ASYNC; hand it to `Bun.connect({ fd })` or close it.
 */
export function tcpConnect(t: SocketTarget, timeoutMs: number): PendingConnect {
  const p = prepare(t, SOCK_STREAM, IPPROTO_TCP);
  if (!("fd" in p)) return { result: Promise.resolve({ ok: false, ...p }), cancel() {} };
  const fd = p.fd;
  let settle!: (r: TcpConnectResult) => void;
  const result = new Promise<TcpConnectResult>((r) => (settle = r));
  let done = false;
  const finish = (r: TcpConnectResult) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    waiters.delete(fd);
    if (r.ok) clearAsync(fd);
    else lib.close(fd);
    settle(r);
  };
  const timer = setTimeout(() => finish({ ok: false, timeout: true }), Math.max(1, Math.ceil(timeoutMs)));
  const ae = setAsync(fd);
  if (ae) {
    finish({ ok: false, ...fail("fcntl", ae) });
    return { result, cancel() {} };
  }
  waiters.set(fd, {
    events: POLLOUT,
    onReady: (revents) => {
      const e = socketError(fd);
      if (e === EINPROGRESS || (e === 0 && !(revents & (POLLOUT | POLLERR | POLLHUP)))) return;
      finish(e === 0 && revents & POLLOUT ? { ok: true, fd } : { ok: false, ...fail("connect", e || 104) });
    },
  });
  if (lib.connect(fd, p.dst, p.dst.length) === 0) finish({ ok: true, fd });
  else {
    const e = errno();
    if (e !== EINPROGRESS) finish({ ok: false, ...fail("connect", e) });
  }
  return { result, cancel: () => finish({ ok: false, timeout: true }) };
}

/** Closes a file descriptor this module handed out. */
export function closeFd(fd: number): void {
  lib.close(fd);
}

// ---------------------------------------------------------------------------------------
// UDP

/** A connected UDP socket watched through SIGIO: datagrams and ICMP errors go to the callbacks. */
export interface UdpSocket {
  send(data: Uint8Array): boolean;
  close(): void;
}

/**
 * Opens a connected UDP socket as keepalived's udp_bind_connect (IP_RECVERR, fwmark, bind_if,
 * bind) and delivers each datagram to `onData` and a socket error (ICMP unreachable) to `onError`.
 */
export function udpConnect(t: SocketTarget, onData: (d: Uint8Array) => void, onError: (f: SocketFailure) => void): UdpSocket | SocketFailure {
  const p = prepare(t, SOCK_DGRAM, IPPROTO_UDP);
  if (!("fd" in p)) return p;
  const fd = p.fd;
  const on = alloc(4);
  view(on).setInt32(0, 1, true);
  // ICMP errors as socket errors even before the first reply (keepalived sets it too)
  if (p.family === AF_INET) lib.setsockopt(fd, SOL_IP, IP_RECVERR, on, 4);
  else lib.setsockopt(fd, SOL_IPV6, IPV6_RECVERR, on, 4);
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    waiters.delete(fd);
    lib.close(fd);
  };
  const ae = setAsync(fd);
  if (ae) {
    close();
    return fail("fcntl", ae);
  }
  if (lib.connect(fd, p.dst, p.dst.length) < 0) {
    const e = errno();
    close();
    return fail("connect", e);
  }
  const buf = alloc(65536);
  waiters.set(fd, {
    events: POLLIN,
    onReady: (revents) => {
      if (revents & POLLERR) {
        const e = socketError(fd);
        if (e) return onError(fail("connect", e));
      }
      for (let i = 0; i < 64 && !closed; i++) {
        const n = Number(lib.recv(fd, buf, buf.length, MSG_DONTWAIT));
        if (n < 0) {
          const e = errno();
          if (e !== EAGAIN) onError(fail("recv", e));
          return;
        }
        onData(buf.slice(0, n));
      }
    },
  });
  return {
    send(data: Uint8Array): boolean {
      if (closed) return false;
      return Number(lib.send(fd, data, data.length, 0)) === data.length;
    },
    close,
  };
}
