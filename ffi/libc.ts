/**
 * libc through bun:ffi: the raw syscalls vipd needs, errno handling (SysError), Linux
 * constants, and encoders for the socket structs (sockaddr_in/in6/ll/nl, msghdr, cmsg).
 *
 * Struct layouts are those of 64-bit little-endian Linux (x86_64 and aarch64 agree on all
 * of them; epoll_event, which differs, is deliberately not used).
 */
import { dlopen, FFIType as T, ptr, read, type Pointer } from "bun:ffi";

// "libc.so.6" also resolves on musl: its loader maps every "libc.*" name to itself.
const LIBC = "libc.so.6";

const lib = dlopen(LIBC, {
  socket: { args: [T.i32, T.i32, T.i32], returns: T.i32 },
  setsockopt: { args: [T.i32, T.i32, T.i32, T.ptr, T.u32], returns: T.i32 },
  getsockopt: { args: [T.i32, T.i32, T.i32, T.ptr, T.ptr], returns: T.i32 },
  bind: { args: [T.i32, T.ptr, T.u32], returns: T.i32 },
  connect: { args: [T.i32, T.ptr, T.u32], returns: T.i32 },
  send: { args: [T.i32, T.ptr, T.u64, T.i32], returns: T.i64_fast },
  recv: { args: [T.i32, T.ptr, T.u64, T.i32], returns: T.i64_fast },
  getsockname: { args: [T.i32, T.ptr, T.ptr], returns: T.i32 },
  sendto: { args: [T.i32, T.ptr, T.u64, T.i32, T.ptr, T.u32], returns: T.i64_fast },
  sendmsg: { args: [T.i32, T.ptr, T.i32], returns: T.i64_fast },
  recvmsg: { args: [T.i32, T.ptr, T.i32], returns: T.i64_fast },
  recvfrom: { args: [T.i32, T.ptr, T.u64, T.i32, T.ptr, T.ptr], returns: T.i64_fast },
  read: { args: [T.i32, T.ptr, T.u64], returns: T.i64_fast },
  write: { args: [T.i32, T.ptr, T.u64], returns: T.i64_fast },
  close: { args: [T.i32], returns: T.i32 },
  open: { args: [T.ptr, T.i32], returns: T.i32 },
  ioctl: { args: [T.i32, T.u64, T.ptr], returns: T.i32 },
  if_nametoindex: { args: [T.ptr], returns: T.u32 },
  if_indextoname: { args: [T.u32, T.ptr], returns: T.ptr },
  setns: { args: [T.i32, T.i32], returns: T.i32 },
  gettid: { args: [], returns: T.i32 },
  eventfd: { args: [T.u32, T.i32], returns: T.i32 },
  poll: { args: [T.ptr, T.u64, T.i32], returns: T.i32 },
  __errno_location: { args: [], returns: T.ptr },
}).symbols;

// fcntl is variadic; the third argument is an int for F_SETFL and a pointer for
// F_SETOWN_EX. Both calling conventions pass it in a register on x86_64 and aarch64,
// so two bindings of the same symbol are safe.
const fcntlIntLib = dlopen(LIBC, { fcntl: { args: [T.i32, T.i32, T.i32], returns: T.i32 } }).symbols;
const fcntlPtrLib = dlopen(LIBC, { fcntl: { args: [T.i32, T.i32, T.ptr], returns: T.i32 } }).symbols;

/**
 * The bare symbols, returning -1 and leaving errno set, for callers that treat a failure as a
 * result rather than an error (a refused checker connect); everyone else uses the wrappers below.
 */
export const raw = {
  socket: lib.socket, setsockopt: lib.setsockopt, getsockopt: lib.getsockopt, bind: lib.bind, connect: lib.connect,
  send: lib.send, recv: lib.recv, close: lib.close, fcntlInt: fcntlIntLib.fcntl, fcntlPtr: fcntlPtrLib.fcntl,
};

// ---------------------------------------------------------------------------------------
// Constants (asm-generic values, identical on x86_64 and aarch64)

export const AF_UNSPEC = 0, AF_INET = 2, AF_INET6 = 10, AF_NETLINK = 16, AF_PACKET = 17;
export const SOCK_DGRAM = 2, SOCK_RAW = 3, SOCK_NONBLOCK = 0x800, SOCK_CLOEXEC = 0x80000;
export const SOL_SOCKET = 1, SOL_PACKET = 263, SOL_NETLINK = 270;
export const SO_SNDBUF = 7, SO_RCVBUF = 8, SO_RCVTIMEO = 20, SO_BINDTODEVICE = 25, SO_ATTACH_FILTER = 26;
export const SO_RCVBUFFORCE = 33;
export const IPPROTO_IP = 0, IPPROTO_ICMPV6 = 58, IPPROTO_IPV6 = 41, IPPROTO_AH = 51, IPPROTO_VRRP = 112;
export const IPPROTO_RAW = 255;
export const IP_TTL = 2, IP_HDRINCL = 3, IP_PKTINFO = 8, IP_FREEBIND = 15, IP_MULTICAST_IF = 32;
export const IP_MULTICAST_TTL = 33, IP_MULTICAST_LOOP = 34, IP_ADD_MEMBERSHIP = 35;
export const IP_DROP_MEMBERSHIP = 36, IP_MULTICAST_ALL = 49;
export const IPV6_CHECKSUM = 7, IPV6_UNICAST_HOPS = 16, IPV6_MULTICAST_IF = 17, IPV6_MULTICAST_HOPS = 18;
export const IPV6_MULTICAST_LOOP = 19, IPV6_ADD_MEMBERSHIP = 20, IPV6_DROP_MEMBERSHIP = 21;
export const IPV6_V6ONLY = 26, IPV6_MULTICAST_ALL = 29, IPV6_RECVPKTINFO = 49, IPV6_PKTINFO = 50;
export const IPV6_RECVHOPLIMIT = 51, IPV6_HOPLIMIT = 52, IPV6_FREEBIND = 78;
export const MSG_PEEK = 0x2, MSG_DONTROUTE = 0x4, MSG_CTRUNC = 0x8, MSG_TRUNC = 0x20, MSG_DONTWAIT = 0x40;
export const F_GETFL = 3, F_SETFL = 4, F_SETOWN_EX = 15, F_GETOWN_EX = 16, F_OWNER_TID = 0;
export const O_RDONLY = 0, O_NONBLOCK = 0x800, O_ASYNC = 0x2000, O_CLOEXEC = 0x80000;
export const EFD_NONBLOCK = 0x800, EFD_CLOEXEC = 0x80000;
export const POLLIN = 0x1, POLLERR = 0x8, POLLHUP = 0x10, POLLNVAL = 0x20;
export const CLONE_NEWNET = 0x40000000;
export const SIOCGIFFLAGS = 0x8913, SIOCGIFHWADDR = 0x8927;
export const ETH_P_ALL = 0x0003, ETH_P_IP = 0x0800, ETH_P_ARP = 0x0806, ETH_P_IPV6 = 0x86dd;
export const IFNAMSIZ = 16;

// ---------------------------------------------------------------------------------------
// errno

/** errno number → [name, strerror text] for the values vipd meets (Linux generic numbering). */
const ERRNO: Record<number, [string, string]> = {
  1: ["EPERM", "Operation not permitted"],
  2: ["ENOENT", "No such file or directory"],
  3: ["ESRCH", "No such process"],
  4: ["EINTR", "Interrupted system call"],
  5: ["EIO", "Input/output error"],
  6: ["ENXIO", "No such device or address"],
  7: ["E2BIG", "Argument list too long"],
  9: ["EBADF", "Bad file descriptor"],
  11: ["EAGAIN", "Resource temporarily unavailable"],
  12: ["ENOMEM", "Cannot allocate memory"],
  13: ["EACCES", "Permission denied"],
  14: ["EFAULT", "Bad address"],
  16: ["EBUSY", "Device or resource busy"],
  17: ["EEXIST", "File exists"],
  19: ["ENODEV", "No such device"],
  20: ["ENOTDIR", "Not a directory"],
  22: ["EINVAL", "Invalid argument"],
  23: ["ENFILE", "Too many open files in system"],
  24: ["EMFILE", "Too many open files"],
  28: ["ENOSPC", "No space left on device"],
  34: ["ERANGE", "Numerical result out of range"],
  36: ["ENAMETOOLONG", "File name too long"],
  38: ["ENOSYS", "Function not implemented"],
  61: ["ENODATA", "No data available"],
  71: ["EPROTO", "Protocol error"],
  75: ["EOVERFLOW", "Value too large for defined data type"],
  88: ["ENOTSOCK", "Socket operation on non-socket"],
  89: ["EDESTADDRREQ", "Destination address required"],
  90: ["EMSGSIZE", "Message too long"],
  91: ["EPROTOTYPE", "Protocol wrong type for socket"],
  92: ["ENOPROTOOPT", "Protocol not available"],
  93: ["EPROTONOSUPPORT", "Protocol not supported"],
  94: ["ESOCKTNOSUPPORT", "Socket type not supported"],
  95: ["EOPNOTSUPP", "Operation not supported"],
  96: ["EPFNOSUPPORT", "Protocol family not supported"],
  97: ["EAFNOSUPPORT", "Address family not supported by protocol"],
  98: ["EADDRINUSE", "Address already in use"],
  99: ["EADDRNOTAVAIL", "Cannot assign requested address"],
  100: ["ENETDOWN", "Network is down"],
  101: ["ENETUNREACH", "Network is unreachable"],
  103: ["ECONNABORTED", "Software caused connection abort"],
  104: ["ECONNRESET", "Connection reset by peer"],
  105: ["ENOBUFS", "No buffer space available"],
  106: ["EISCONN", "Transport endpoint is already connected"],
  107: ["ENOTCONN", "Transport endpoint is not connected"],
  110: ["ETIMEDOUT", "Connection timed out"],
  111: ["ECONNREFUSED", "Connection refused"],
  112: ["EHOSTDOWN", "Host is down"],
  113: ["EHOSTUNREACH", "No route to host"],
  114: ["EALREADY", "Operation already in progress"],
  115: ["EINPROGRESS", "Operation now in progress"],
  125: ["ECANCELED", "Operation canceled"],
};

export const EPERM = 1, ENOENT = 2, EINTR = 4, EAGAIN = 11, EEXIST = 17, ENODEV = 19, EINVAL = 22;
export const ENOPROTOOPT = 92, EOPNOTSUPP = 95, EADDRNOTAVAIL = 99, ENETDOWN = 100, ENOBUFS = 105;

/** The symbolic name of an errno value ("EEXIST"), or "E<n>" when unknown. */
export function errnoName(errno: number): string {
  return ERRNO[errno]?.[0] ?? `E${errno}`;
}

/** The strerror() text of an errno value. */
export function errnoText(errno: number): string {
  return ERRNO[errno]?.[1] ?? `Unknown error ${errno}`;
}

/** The calling thread's errno; read it straight after the failing call. */
export function errno(): number {
  return read.i32(lib.__errno_location() as Pointer, 0);
}

/** A failed system call: `setsockopt(IP_ADD_MEMBERSHIP): ENODEV (No such device)`. */
export class SysError extends Error {
  readonly errno: number;
  /** Symbolic errno name, e.g. "EEXIST". */
  readonly code: string;
  /** The call that failed, with the option or message name in parentheses. */
  readonly syscall: string;
  constructor(syscall: string, errnoValue: number, detail?: string) {
    const code = errnoName(errnoValue);
    super(`${syscall}: ${code} (${errnoText(errnoValue)})${detail ? `: ${detail}` : ""}`);
    this.name = "SysError";
    this.errno = errnoValue;
    this.code = code;
    this.syscall = syscall;
  }
}

/** Throws a SysError carrying the current errno when `ret` is negative; returns `ret` otherwise. */
export function check(ret: number | bigint, syscall: string): number {
  const n = Number(ret);
  if (n < 0) throw new SysError(syscall, errno());
  return n;
}

// ---------------------------------------------------------------------------------------
// Buffers

/**
 * A zeroed byte buffer on its own ArrayBuffer, whose address stays put (JSC may move the
 * storage of small typed arrays that own no ArrayBuffer; pointers into them must not move).
 */
export function alloc(size: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(size));
}

/** The address of a buffer, for storing inside structs (iovec, msghdr, sock_fprog). */
export function addressOf(buf: Uint8Array): number {
  return ptr(buf);
}

/** A NUL-terminated UTF-8 copy of `s`. */
export function cstr(s: string): Uint8Array {
  const enc = new TextEncoder().encode(s);
  const out = alloc(enc.length + 1);
  out.set(enc);
  return out;
}

/** Little-endian DataView over a Uint8Array. */
export function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

// ---------------------------------------------------------------------------------------
// Syscall wrappers: each throws SysError on failure.

/** socket(2). */
export function socket(domain: number, type: number, protocol: number): number {
  return check(lib.socket(domain, type, protocol), "socket");
}

/** setsockopt(2) with a raw option value; `name` labels errors, e.g. "IP_ADD_MEMBERSHIP". */
export function setsockoptBuf(fd: number, level: number, opt: number, value: Uint8Array, name: string): void {
  check(lib.setsockopt(fd, level, opt, value, value.byteLength), `setsockopt(${name})`);
}

/** setsockopt(2) with an int value. */
export function setsockoptInt(fd: number, level: number, opt: number, value: number, name: string): void {
  const b = alloc(4);
  view(b).setInt32(0, value, true);
  setsockoptBuf(fd, level, opt, b, name);
}

/** getsockopt(2) of an int value. */
export function getsockoptInt(fd: number, level: number, opt: number, name: string): number {
  const b = alloc(4);
  const len = alloc(4);
  view(len).setUint32(0, 4, true);
  check(lib.getsockopt(fd, level, opt, b, len), `getsockopt(${name})`);
  return view(b).getInt32(0, true);
}

/** bind(2) to an encoded sockaddr. */
export function bind(fd: number, addr: Uint8Array): void {
  check(lib.bind(fd, addr, addr.byteLength), "bind");
}

/** getsockname(2): the socket's own address as raw sockaddr bytes. */
export function getsockname(fd: number): Uint8Array {
  const b = alloc(128);
  const len = alloc(4);
  view(len).setUint32(0, 128, true);
  check(lib.getsockname(fd, b, len), "getsockname");
  return b.slice(0, view(len).getUint32(0, true));
}

/** sendto(2); `addr` null for connected/netlink-to-kernel sends. Returns bytes sent. */
export function sendto(fd: number, data: Uint8Array, flags: number, addr: Uint8Array | null, what = "sendto"): number {
  return check(lib.sendto(fd, data, data.byteLength, flags, addr, addr ? addr.byteLength : 0), what);
}

/** sendmsg(2) with a prepared msghdr. Returns bytes sent. */
export function sendmsg(fd: number, msghdr: Uint8Array, flags: number, what = "sendmsg"): number {
  return check(lib.sendmsg(fd, msghdr, flags), what);
}

/** recvmsg(2) without throwing: the byte count, or −errno. */
export function recvmsgRaw(fd: number, msghdr: Uint8Array, flags: number): number {
  const n = Number(lib.recvmsg(fd, msghdr, flags));
  return n < 0 ? -errno() : n;
}

/** recvfrom(2) without throwing: the byte count (full datagram length with MSG_TRUNC), or −errno. */
export function recvfromRaw(fd: number, buf: Uint8Array, flags: number, addr: Uint8Array | null,
  addrLen: Uint8Array | null): number {
  const n = Number(lib.recvfrom(fd, buf, buf.byteLength, flags, addr, addrLen));
  return n < 0 ? -errno() : n;
}

/** read(2) without throwing: bytes read or −errno. */
export function readRaw(fd: number, buf: Uint8Array): number {
  const n = Number(lib.read(fd, buf, buf.byteLength));
  return n < 0 ? -errno() : n;
}

/** write(2) without throwing: bytes written or −errno. */
export function writeRaw(fd: number, buf: Uint8Array): number {
  const n = Number(lib.write(fd, buf, buf.byteLength));
  return n < 0 ? -errno() : n;
}

/** close(2); errors are ignored (the fd is gone either way on Linux). */
export function close(fd: number): void {
  if (fd >= 0) lib.close(fd);
}

/** open(2) read-only with O_CLOEXEC (namespace files). */
export function openReadOnly(path: string): number {
  return check(lib.open(cstr(path), O_RDONLY | O_CLOEXEC), `open(${path})`);
}

/** fcntl(2) with an int argument. */
export function fcntlInt(fd: number, cmd: number, arg: number, what = "fcntl"): number {
  return check(fcntlIntLib.fcntl(fd, cmd, arg), what);
}

/** fcntl(2) with a pointer argument (F_SETOWN_EX). */
export function fcntlPtr(fd: number, cmd: number, arg: Uint8Array, what = "fcntl"): number {
  return check(fcntlPtrLib.fcntl(fd, cmd, arg), what);
}

/** ioctl(2) with a pointer argument (struct ifreq etc.). */
export function ioctl(fd: number, request: number, arg: Uint8Array, what = "ioctl"): number {
  return check(lib.ioctl(fd, request, arg), what);
}

/** if_nametoindex(3); throws SysError(ENODEV) for an unknown interface. */
export function ifNameToIndex(name: string): number {
  const idx = lib.if_nametoindex(cstr(name));
  if (idx === 0) throw new SysError(`if_nametoindex(${name})`, errno() || 19);
  return idx;
}

/** if_indextoname(3); null when there is no such interface. */
export function ifIndexToName(ifindex: number): string | null {
  const b = alloc(IFNAMSIZ);
  if (!lib.if_indextoname(ifindex, b)) return null;
  const end = b.indexOf(0);
  return new TextDecoder().decode(b.subarray(0, end < 0 ? b.length : end));
}

/** setns(2). */
export function setns(fd: number, nstype: number): void {
  check(lib.setns(fd, nstype), "setns");
}

/** gettid(2) of the calling thread. */
export function gettid(): number {
  return lib.gettid();
}

/** eventfd(2). */
export function eventfd(initval: number, flags: number): number {
  return check(lib.eventfd(initval, flags), "eventfd");
}

/** poll(2) on an array of 8-byte pollfd structs; returns the ready count or −errno. */
export function pollRaw(fds: Uint8Array, nfds: number, timeoutMs: number): number {
  const n = lib.poll(fds, nfds, timeoutMs);
  return n < 0 ? -errno() : n;
}

// ---------------------------------------------------------------------------------------
// Addresses

/** Parses dotted-quad IPv4 text into 4 bytes; throws on malformed input. */
export function parseIPv4(s: string): Uint8Array {
  const parts = s.split(".");
  if (parts.length !== 4) throw new Error(`invalid IPv4 address: ${s}`);
  const out = new Uint8Array(4);
  parts.forEach((p, i) => {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw new Error(`invalid IPv4 address: ${s}`);
    out[i] = Number(p);
  });
  return out;
}

/** Parses IPv6 text (with "::" and an optional embedded IPv4 tail; "%zone" ignored) into 16 bytes. */
export function parseIPv6(s: string): Uint8Array {
  const bad = () => new Error(`invalid IPv6 address: ${s}`);
  let text = s.split("%")[0]!;
  const words: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let tail: number[] = [];
  if (v4) {
    const b = parseIPv4(v4[1]!);
    tail = [(b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!];
    text = text.slice(0, -v4[1]!.length);
    if (text.endsWith(":") && !text.endsWith("::")) text = text.slice(0, -1);
  }
  const halves = text.split("::");
  if (halves.length > 2) throw bad();
  const parse = (h: string) => (h === "" ? [] : h.split(":").map((w) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(w)) throw bad();
    return parseInt(w, 16);
  }));
  const head = parse(halves[0]!);
  if (halves.length === 2) {
    const back = [...parse(halves[1]!), ...tail];
    const fill = 8 - head.length - back.length;
    if (fill < 1) throw bad();
    words.push(...head, ...new Array<number>(fill).fill(0), ...back);
  } else {
    words.push(...head, ...tail);
  }
  if (words.length !== 8) throw bad();
  const out = new Uint8Array(16);
  words.forEach((w, i) => { out[2 * i] = w >> 8; out[2 * i + 1] = w & 0xff; });
  return out;
}

/** Parses IPv4 or IPv6 text by its shape. */
export function parseIP(s: string): Uint8Array {
  return s.includes(":") ? parseIPv6(s) : parseIPv4(s);
}

/** Formats 4 bytes as dotted quad. */
export function formatIPv4(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** Formats 16 bytes as RFC 5952 text (lower case, longest zero run ≥ 2 compressed). */
export function formatIPv6(b: Uint8Array, off = 0): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[off + 2 * i]! << 8) | b[off + 2 * i + 1]!);
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(":");
  if (bestLen < 2) return hex(w);
  return `${hex(w.slice(0, bestStart))}::${hex(w.slice(bestStart + bestLen))}`;
}

/** Formats a 4- or 16-byte address. */
export function formatIP(b: Uint8Array): string {
  return b.length === 4 ? formatIPv4(b) : formatIPv6(b);
}

/** Formats a MAC address as lower-case colon-separated hex. */
export function formatMac(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** Parses "aa:bb:cc:dd:ee:ff" into bytes. */
export function parseMac(s: string): Uint8Array {
  const parts = s.split(":");
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) throw new Error(`invalid MAC: ${s}`);
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

/** True for IPv4 224.0.0.0/4 or IPv6 ff00::/8 text. */
export function isMulticast(addr: string): boolean {
  const b = parseIP(addr);
  return b.length === 4 ? (b[0]! & 0xf0) === 0xe0 : b[0] === 0xff;
}

/** True for IPv6 addresses that need a scope id: link-local unicast fe80::/10 and link/interface-local multicast. */
export function needsScope(addr: string): boolean {
  const b = parseIP(addr);
  if (b.length !== 16) return false;
  return (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) || (b[0] === 0xff && ((b[1]! & 0x0f) <= 2));
}

// ---------------------------------------------------------------------------------------
// sockaddr encoders / decoders

/** struct sockaddr_in (16 bytes). */
export function sockaddrIn(addr: string, port = 0): Uint8Array {
  const b = alloc(16);
  const v = view(b);
  v.setUint16(0, AF_INET, true);
  v.setUint16(2, port, false);
  b.set(parseIPv4(addr), 4);
  return b;
}

/** struct sockaddr_in6 (28 bytes). */
export function sockaddrIn6(addr: string, port = 0, scopeId = 0): Uint8Array {
  const b = alloc(28);
  const v = view(b);
  v.setUint16(0, AF_INET6, true);
  v.setUint16(2, port, false);
  b.set(parseIPv6(addr), 8);
  v.setUint32(24, scopeId, true);
  return b;
}

/** struct sockaddr_ll (20 bytes); `protocol` is the host-order ethertype. */
export function sockaddrLl(o: { protocol: number; ifindex: number; hatype?: number; pkttype?: number; addr?: Uint8Array }): Uint8Array {
  const b = alloc(20);
  const v = view(b);
  v.setUint16(0, AF_PACKET, true);
  v.setUint16(2, o.protocol, false);
  v.setInt32(4, o.ifindex, true);
  v.setUint16(8, o.hatype ?? 0, true);
  b[10] = o.pkttype ?? 0;
  const a = o.addr ?? new Uint8Array(0);
  b[11] = a.length;
  b.set(a.subarray(0, 8), 12);
  return b;
}

/** Decoded struct sockaddr_ll. */
export interface SockaddrLl { protocol: number; ifindex: number; hatype: number; pkttype: number; addr: Uint8Array }

/** Decodes struct sockaddr_ll bytes. */
export function decodeSockaddrLl(b: Uint8Array): SockaddrLl {
  const v = view(b);
  const halen = Math.min(b[11] ?? 0, 8);
  return { protocol: v.getUint16(2, false), ifindex: v.getInt32(4, true), hatype: v.getUint16(8, true),
    pkttype: b[10]!, addr: b.slice(12, 12 + halen) };
}

/** struct sockaddr_nl (12 bytes). */
export function sockaddrNl(pid = 0, groups = 0): Uint8Array {
  const b = alloc(12);
  const v = view(b);
  v.setUint16(0, AF_NETLINK, true);
  v.setUint32(4, pid, true);
  v.setUint32(8, groups, true);
  return b;
}

/** Decodes the address of a sockaddr_in / sockaddr_in6; null for other families or short input. */
export function decodeSockaddrIP(b: Uint8Array, len = b.length): { family: number; addr: string; port: number; scopeId: number } | null {
  if (len < 2) return null;
  const v = view(b);
  const family = v.getUint16(0, true);
  if (family === AF_INET && len >= 8) return { family, addr: formatIPv4(b, 4), port: v.getUint16(2, false), scopeId: 0 };
  if (family === AF_INET6 && len >= 24) {
    return { family, addr: formatIPv6(b, 8), port: v.getUint16(2, false), scopeId: len >= 28 ? v.getUint32(24, true) : 0 };
  }
  return null;
}

// ---------------------------------------------------------------------------------------
// msghdr / iovec / cmsg

export const MSGHDR_SIZE = 56;
export const IOVEC_SIZE = 16;
export const CMSG_HDR_SIZE = 16;

/** CMSG_ALIGN: 8-byte alignment of control messages. */
export function cmsgAlign(n: number): number {
  return (n + 7) & ~7;
}

/** CMSG_SPACE(n). */
export function cmsgSpace(n: number): number {
  return CMSG_HDR_SIZE + cmsgAlign(n);
}

/** Writes an iovec {base, len} at `off` of `iov`. */
export function setIovec(iov: Uint8Array, off: number, base: Uint8Array, len = base.byteLength): void {
  const v = view(iov);
  // ptr() refuses empty arrays; a zero-length iovec may carry any base.
  v.setBigUint64(off, base.byteLength === 0 ? 0n : BigInt(addressOf(base)), true);
  v.setBigUint64(off + 8, BigInt(len), true);
}

/** Fills a msghdr; pass null for absent name/control. Lengths are written as u64 with zeroed padding. */
export function setMsghdr(m: Uint8Array, name: Uint8Array | null, nameLen: number, iov: Uint8Array, iovCount: number,
  control: Uint8Array | null, controlLen: number): void {
  const v = view(m);
  v.setBigUint64(0, name ? BigInt(addressOf(name)) : 0n, true);
  v.setBigUint64(8, BigInt(name ? nameLen : 0), true); // u32 namelen + 4 bytes padding
  v.setBigUint64(16, BigInt(addressOf(iov)), true);
  v.setBigUint64(24, BigInt(iovCount), true);
  v.setBigUint64(32, control ? BigInt(addressOf(control)) : 0n, true);
  v.setBigUint64(40, BigInt(control ? controlLen : 0), true);
  v.setBigUint64(48, 0n, true); // msg_flags + padding
}

/** msghdr field offsets, for resetting lengths before each recvmsg and reading results. */
export const MSGHDR = { nameLen: 8, controlLen: 40, flags: 48 } as const;

/** One control message: level, type and data bytes. */
export interface Cmsg { level: number; type: number; data: Uint8Array }

/** Walks the control buffer of a received msghdr. */
export function parseCmsgs(control: Uint8Array, controlLen: number): Cmsg[] {
  const out: Cmsg[] = [];
  const v = view(control);
  let off = 0;
  while (off + CMSG_HDR_SIZE <= controlLen) {
    const len = Number(v.getBigUint64(off, true));
    if (len < CMSG_HDR_SIZE || off + len > controlLen) break;
    out.push({ level: v.getInt32(off + 8, true), type: v.getInt32(off + 12, true),
      data: control.subarray(off + CMSG_HDR_SIZE, off + len) });
    off += cmsgAlign(len);
  }
  return out;
}

/** Encodes control messages into one buffer (CMSG_SPACE-aligned). */
export function buildCmsgs(msgs: Cmsg[]): Uint8Array {
  const total = msgs.reduce((s, m) => s + cmsgSpace(m.data.length), 0);
  const b = alloc(total);
  const v = view(b);
  let off = 0;
  for (const m of msgs) {
    v.setBigUint64(off, BigInt(CMSG_HDR_SIZE + m.data.length), true);
    v.setInt32(off + 8, m.level, true);
    v.setInt32(off + 12, m.type, true);
    b.set(m.data, off + CMSG_HDR_SIZE);
    off += cmsgSpace(m.data.length);
  }
  return b;
}

/** Classic BPF program `ret 0`: attached with SO_ATTACH_FILTER, the socket queues nothing. */
export function attachDropAllFilter(fd: number): void {
  const insn = alloc(8); // {u16 code = BPF_RET|BPF_K, u8 jt, u8 jf, u32 k = 0}
  view(insn).setUint16(0, 0x06, true);
  const prog = alloc(16); // struct sock_fprog {u16 len; pad; ptr filter}
  view(prog).setUint16(0, 1, true);
  view(prog).setBigUint64(8, BigInt(addressOf(insn)), true);
  setsockoptBuf(fd, SOL_SOCKET, SO_ATTACH_FILTER, prog, "SO_ATTACH_FILTER");
  // insn is copied by the kernel during setsockopt; keeping it alive until here suffices.
}
