/**
 * Netlink plumbing shared by rtnetlink and generic netlink (IPVS): a message builder and
 * attribute parser (pure, unit-tested from bytes), NLMSG_ERROR/extended-ack decoding, and
 * NetlinkSocket: synchronous request/dump on a blocking socket, or a non-blocking
 * multicast monitor socket drained through an FdWatcher.
 */
import {
  AF_NETLINK, EAGAIN, EINTR, ENOBUFS, ENOPROTOOPT, MSG_TRUNC, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_RAW,
  MSG_DONTWAIT, SOL_NETLINK, SOL_SOCKET, SO_RCVBUF, SO_RCVTIMEO, SysError, alloc, bind, close, getsockname,
  recvfromRaw, sendto, setsockoptBuf, setsockoptInt, sockaddrNl, socket, view,
} from "./libc.ts";

export const NETLINK_ROUTE = 0, NETLINK_GENERIC = 16;
export const NLMSG_NOOP = 1, NLMSG_ERROR = 2, NLMSG_DONE = 3, NLMSG_OVERRUN = 4;
export const NLM_F_REQUEST = 0x1, NLM_F_MULTI = 0x2, NLM_F_ACK = 0x4, NLM_F_ECHO = 0x8, NLM_F_DUMP_INTR = 0x10;
export const NLM_F_ROOT = 0x100, NLM_F_MATCH = 0x200, NLM_F_DUMP = 0x300;
export const NLM_F_REPLACE = 0x100, NLM_F_EXCL = 0x200, NLM_F_CREATE = 0x400, NLM_F_APPEND = 0x800;
/** Flags on NLMSG_ERROR acks: request payload omitted / extended-ack TLVs present. */
export const NLM_F_CAPPED = 0x100, NLM_F_ACK_TLVS = 0x200;
export const NLMSGERR_ATTR_MSG = 1, NLMSGERR_ATTR_OFFS = 2, NLMSGERR_ATTR_COOKIE = 3;
export const NETLINK_ADD_MEMBERSHIP = 1, NETLINK_CAP_ACK = 10, NETLINK_EXT_ACK = 11;
export const NLA_F_NESTED = 0x8000, NLA_F_NET_BYTEORDER = 0x4000, NLA_TYPE_MASK = 0x3fff;
export const NLMSG_HDRLEN = 16;
export const NLA_HDRLEN = 4;

/** NLMSG_ALIGN / NLA_ALIGN: 4-byte alignment. */
export function nlAlign(n: number): number {
  return (n + 3) & ~3;
}

// ---------------------------------------------------------------------------------------
// Building

/**
 * Builds one netlink message: header fields, a fixed family header (ifaddrmsg,
 * genlmsghdr, ...) and attributes, nested as needed. Sequence number and port id are
 * filled in by `finish`, so one builder can be sent by a socket that picks the seq.
 */
export class NlMsgBuilder {
  readonly type: number;
  flags: number;
  #chunks: number[] = [];
  #nests: number[] = [];

  constructor(type: number, flags: number) {
    this.type = type;
    this.flags = flags;
  }

  /** Appends raw bytes (a family header), padded to 4 bytes. */
  bytes(b: Uint8Array): this {
    for (const x of b) this.#chunks.push(x);
    this.#pad();
    return this;
  }

  /** Appends an attribute with a raw payload. */
  attr(type: number, data: Uint8Array): this {
    const len = NLA_HDRLEN + data.length;
    this.#chunks.push(len & 0xff, len >> 8, type & 0xff, (type >> 8) & 0xff);
    for (const x of data) this.#chunks.push(x);
    this.#pad();
    return this;
  }

  /** u8 attribute. */
  u8(type: number, v: number): this {
    return this.attr(type, Uint8Array.of(v));
  }

  /** u16 attribute in host (little-endian) order. */
  u16(type: number, v: number): this {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, v, true);
    return this.attr(type, b);
  }

  /** u16 attribute in network order (ports). */
  be16(type: number, v: number): this {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, v, false);
    return this.attr(type, b);
  }

  /** u32 attribute in host order. */
  u32(type: number, v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    return this.attr(type, b);
  }

  /** u64 attribute in host order. */
  u64(type: number, v: bigint): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    return this.attr(type, b);
  }

  /** NUL-terminated string attribute. */
  str(type: number, s: string): this {
    const enc = new TextEncoder().encode(s);
    const b = new Uint8Array(enc.length + 1);
    b.set(enc);
    return this.attr(type, b);
  }

  /** Zero-length flag attribute. */
  flag(type: number): this {
    return this.attr(type, new Uint8Array(0));
  }

  /** Nested attribute: `fill` adds the inner attributes. NLA_F_NESTED is set unless `plain`. */
  nest(type: number, fill: (b: this) => void, plain = false): this {
    const start = this.#chunks.length;
    const t = plain ? type : type | NLA_F_NESTED;
    this.#chunks.push(0, 0, t & 0xff, (t >> 8) & 0xff);
    this.#nests.push(start);
    fill(this);
    this.#nests.pop();
    const len = this.#chunks.length - start;
    this.#chunks[start] = len & 0xff;
    this.#chunks[start + 1] = len >> 8;
    return this;
  }

  /** The finished message bytes (header included). */
  finish(seq: number, pid = 0): Uint8Array {
    const len = NLMSG_HDRLEN + this.#chunks.length;
    const out = alloc(len);
    const v = view(out);
    v.setUint32(0, len, true);
    v.setUint16(4, this.type, true);
    v.setUint16(6, this.flags, true);
    v.setUint32(8, seq >>> 0, true);
    v.setUint32(12, pid >>> 0, true);
    out.set(this.#chunks, NLMSG_HDRLEN);
    return out;
  }

  #pad(): void {
    while (this.#chunks.length % 4) this.#chunks.push(0);
  }
}

/** genlmsghdr {u8 cmd, u8 version, u16 reserved}: the family header of generic netlink. */
export function genlHeader(cmd: number, version: number): Uint8Array {
  return Uint8Array.of(cmd, version, 0, 0);
}

// ---------------------------------------------------------------------------------------
// Parsing

/** One received netlink message; `payload` is everything after the 16-byte header. */
export interface NlMsg {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  payload: Uint8Array;
}

/** Splits a datagram into messages; stops at a malformed length instead of throwing. */
export function parseMessages(buf: Uint8Array, len = buf.length): NlMsg[] {
  const out: NlMsg[] = [];
  const v = view(buf);
  let off = 0;
  while (off + NLMSG_HDRLEN <= len) {
    const mlen = v.getUint32(off, true);
    if (mlen < NLMSG_HDRLEN || off + mlen > len) break;
    out.push({
      type: v.getUint16(off + 4, true),
      flags: v.getUint16(off + 6, true),
      seq: v.getUint32(off + 8, true),
      pid: v.getUint32(off + 12, true),
      payload: buf.slice(off + NLMSG_HDRLEN, off + mlen),
    });
    off += nlAlign(mlen);
  }
  return out;
}

/** A parsed attribute list; later duplicates of a type are kept in `all`. */
export class NlAttrs {
  readonly #map = new Map<number, Uint8Array>();
  readonly #list: { type: number; data: Uint8Array }[] = [];

  /** Parses attributes from `buf[offset..]`; a truncated tail is ignored. */
  static parse(buf: Uint8Array, offset = 0): NlAttrs {
    const a = new NlAttrs();
    const v = view(buf);
    let off = offset;
    while (off + NLA_HDRLEN <= buf.length) {
      const len = v.getUint16(off, true);
      const type = v.getUint16(off + 2, true) & NLA_TYPE_MASK;
      if (len < NLA_HDRLEN || off + len > buf.length) break;
      const data = buf.subarray(off + NLA_HDRLEN, off + len);
      if (!a.#map.has(type)) a.#map.set(type, data);
      a.#list.push({ type, data });
      off += nlAlign(len);
    }
    return a;
  }

  has(type: number): boolean {
    return this.#map.has(type);
  }
  /** Raw payload of the first attribute of `type`. */
  get(type: number): Uint8Array | undefined {
    return this.#map.get(type);
  }
  /** Every attribute of `type`, in order. */
  all(type: number): Uint8Array[] {
    return this.#list.filter((x) => x.type === type).map((x) => x.data);
  }
  /** Every attribute, in order. */
  list(): { type: number; data: Uint8Array }[] {
    return [...this.#list];
  }
  u8(type: number): number | undefined {
    const d = this.get(type);
    return d && d.length >= 1 ? d[0] : undefined;
  }
  u16(type: number): number | undefined {
    const d = this.get(type);
    return d && d.length >= 2 ? view(d).getUint16(0, true) : undefined;
  }
  u32(type: number): number | undefined {
    const d = this.get(type);
    return d && d.length >= 4 ? view(d).getUint32(0, true) : undefined;
  }
  u64(type: number): bigint | undefined {
    const d = this.get(type);
    return d && d.length >= 8 ? view(d).getBigUint64(0, true) : undefined;
  }
  /** String payload without its terminating NUL. */
  str(type: number): string | undefined {
    const d = this.get(type);
    if (!d) return undefined;
    const end = d.indexOf(0);
    return new TextDecoder().decode(end < 0 ? d : d.subarray(0, end));
  }
  /** The attributes nested inside attribute `type`. */
  nested(type: number): NlAttrs | undefined {
    const d = this.get(type);
    return d ? NlAttrs.parse(d) : undefined;
  }
}

/** Decoded NLMSG_ERROR (an ack when errno is 0). */
export interface NlErrorInfo {
  /** Positive errno; 0 for a plain ack. */
  errno: number;
  /** Type and seq of the request this answers. */
  requestType: number;
  requestSeq: number;
  /** NLMSGERR_ATTR_MSG: the kernel's human-readable reason. */
  extAckMsg?: string;
  /** NLMSGERR_ATTR_OFFS: byte offset of the offending attribute in the request. */
  extAckOffset?: number;
}

/** Decodes the payload of an NLMSG_ERROR message (with or without NLM_F_CAPPED / ack TLVs). */
export function parseNlError(msg: NlMsg): NlErrorInfo {
  const p = msg.payload;
  if (p.length < 4) return { errno: 0, requestType: 0, requestSeq: 0 };
  const v = view(p);
  const err = v.getInt32(0, true);
  const info: NlErrorInfo = { errno: err === 0 ? 0 : -err, requestType: 0, requestSeq: 0 };
  if (p.length < 4 + NLMSG_HDRLEN) return info;
  const reqLen = v.getUint32(4, true);
  info.requestType = v.getUint16(8, true);
  info.requestSeq = v.getUint32(12, true);
  if (msg.flags & NLM_F_ACK_TLVS) {
    const tlvOff = 4 + ((msg.flags & NLM_F_CAPPED) ? NLMSG_HDRLEN : nlAlign(reqLen));
    const attrs = NlAttrs.parse(p, tlvOff);
    info.extAckMsg = attrs.str(NLMSGERR_ATTR_MSG);
    info.extAckOffset = attrs.u32(NLMSGERR_ATTR_OFFS);
  }
  return info;
}

/** The error int (and ext-ack text) of an NLMSG_DONE that ends a dump. */
export function parseNlDone(msg: NlMsg): NlErrorInfo {
  const p = msg.payload;
  const err = p.length >= 4 ? view(p).getInt32(0, true) : 0;
  const info: NlErrorInfo = { errno: err === 0 ? 0 : -err, requestType: 0, requestSeq: msg.seq };
  if (msg.flags & NLM_F_ACK_TLVS) info.extAckMsg = NlAttrs.parse(p, 4).str(NLMSGERR_ATTR_MSG);
  return info;
}

/** A netlink request refused by the kernel: `RTM_NEWADDR: EEXIST (File exists)`, plus ext-ack text. */
export class NetlinkError extends SysError {
  /** The kernel's extended-ack message, if it sent one. */
  readonly extAck: string | undefined;
  constructor(request: string, errnoValue: number, extAck?: string) {
    super(request, errnoValue, extAck);
    this.name = "NetlinkError";
    this.extAck = extAck;
  }
}

// ---------------------------------------------------------------------------------------
// Sockets

export interface NetlinkSocketOptions {
  /** Multicast groups bitmask to bind to (monitor sockets). */
  groups?: number;
  /** Extra groups above 32 (joined with NETLINK_ADD_MEMBERSHIP). */
  memberships?: number[];
  /** Non-blocking (monitor) socket; request sockets stay blocking. */
  nonblocking?: boolean;
  /** SO_RCVBUF in bytes. */
  rcvbuf?: number;
  /** Blocking receive timeout for requests (default 5000 ms): a hung kernel reply becomes ETIMEDOUT-like EAGAIN. */
  timeoutMs?: number;
}

const RECV_BUF = 64 * 1024;

/** One netlink socket. Errors are thrown as SysError / NetlinkError. */
export class NetlinkSocket {
  readonly fd: number;
  readonly protocol: number;
  /** The port id the kernel assigned at bind. */
  readonly portId: number;
  #seq: number;
  #buf = alloc(RECV_BUF);
  #from = alloc(12);
  #fromLen = alloc(4);
  #closed = false;

  constructor(protocol: number, o: NetlinkSocketOptions = {}) {
    this.protocol = protocol;
    this.fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | (o.nonblocking ? SOCK_NONBLOCK : 0), protocol);
    try {
      // Readable error text and no echo of our whole request in each error; both optional.
      for (const [opt, name] of [[NETLINK_EXT_ACK, "NETLINK_EXT_ACK"], [NETLINK_CAP_ACK, "NETLINK_CAP_ACK"]] as const) {
        try {
          setsockoptInt(this.fd, SOL_NETLINK, opt, 1, name);
        } catch (e) {
          if (!(e instanceof SysError && e.errno === ENOPROTOOPT)) throw e;
        }
      }
      if (o.rcvbuf) setsockoptInt(this.fd, SOL_SOCKET, SO_RCVBUF, o.rcvbuf, "SO_RCVBUF");
      if (!o.nonblocking) {
        const tv = alloc(16); // struct timeval {i64 sec; i64 usec}
        const ms = o.timeoutMs ?? 5000;
        view(tv).setBigInt64(0, BigInt(Math.floor(ms / 1000)), true);
        view(tv).setBigInt64(8, BigInt((ms % 1000) * 1000), true);
        setsockoptBuf(this.fd, SOL_SOCKET, SO_RCVTIMEO, tv, "SO_RCVTIMEO");
      }
      bind(this.fd, sockaddrNl(0, o.groups ?? 0));
      for (const g of o.memberships ?? []) setsockoptInt(this.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, g, "NETLINK_ADD_MEMBERSHIP");
      this.portId = view(getsockname(this.fd)).getUint32(4, true);
    } catch (err) {
      close(this.fd);
      throw err;
    }
    // Start from a time-derived seq so replies to an earlier process's requests never match.
    this.#seq = (Math.floor(Date.now() / 1000) & 0x7fffffff) >>> 0;
  }

  /** Sends a request with NLM_F_ACK and waits for the ack; returns other replies (NLM_F_ECHO). */
  request(b: NlMsgBuilder, name: string): NlMsg[] {
    b.flags |= NLM_F_REQUEST | NLM_F_ACK;
    const seq = this.#send(b, name);
    const replies: NlMsg[] = [];
    for (let rounds = 0; rounds < 10000; rounds++) {
      for (const m of this.#recvBatch(name)) {
        if (m.seq !== seq || m.pid !== this.portId) continue; // stale reply to an abandoned request
        if (m.type === NLMSG_ERROR) {
          const e = parseNlError(m);
          if (e.errno !== 0) throw new NetlinkError(name, e.errno, e.extAckMsg);
          return replies;
        }
        replies.push(m);
      }
    }
    throw new NetlinkError(name, EAGAIN, "no acknowledgement");
  }

  /**
   * Sends a dump request (NLM_F_DUMP) and collects the parts until NLMSG_DONE. An
   * interrupted dump (NLM_F_DUMP_INTR: the table changed meanwhile) is retried.
   */
  dump(b: NlMsgBuilder, name: string, retries = 3): NlMsg[] {
    b.flags |= NLM_F_REQUEST | NLM_F_DUMP;
    for (let attempt = 0; ; attempt++) {
      const seq = this.#send(b, name);
      const parts: NlMsg[] = [];
      let interrupted = false;
      let done = false;
      for (let rounds = 0; !done && rounds < 100000; rounds++) {
        for (const m of this.#recvBatch(name)) {
          if (m.seq !== seq || m.pid !== this.portId) continue;
          if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
          if (m.type === NLMSG_DONE) {
            const e = parseNlDone(m);
            if (e.errno !== 0) throw new NetlinkError(name, e.errno, e.extAckMsg);
            done = true;
            break;
          }
          if (m.type === NLMSG_ERROR) {
            const e = parseNlError(m);
            if (e.errno !== 0) throw new NetlinkError(name, e.errno, e.extAckMsg);
            continue;
          }
          if (m.type === NLMSG_NOOP || m.type === NLMSG_OVERRUN) continue;
          parts.push(m);
        }
      }
      if (!done) throw new NetlinkError(name, EAGAIN, "dump did not finish");
      if (!interrupted || attempt >= retries) return parts;
    }
  }

  /**
   * Non-blocking read of everything queued (monitor sockets), at most `cap` datagrams.
   * Returns the messages and whether the kernel dropped notifications (ENOBUFS), after
   * which the owner must resynchronise with a dump.
   */
  drain(cap = 256): { messages: NlMsg[]; overrun: boolean } {
    const messages: NlMsg[] = [];
    let overrun = false;
    for (let i = 0; i < cap && !this.#closed; i++) {
      const n = this.#recvRaw(true);
      if (n === -EINTR) continue;
      if (n === -EAGAIN) break;
      if (n === -ENOBUFS) { overrun = true; continue; }
      if (n < 0) throw new SysError("recvfrom(netlink)", -n);
      if (!this.#fromKernel()) continue;
      for (const m of parseMessages(this.#buf, Math.min(n, RECV_BUF))) {
        if (m.type === NLMSG_OVERRUN) overrun = true;
        else messages.push(m);
      }
    }
    return { messages, overrun };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    close(this.fd);
  }

  #send(b: NlMsgBuilder, name: string): number {
    if (this.#closed) throw new Error("NetlinkSocket is closed");
    this.#seq = (this.#seq + 1) >>> 0 || 1;
    const bytes = b.finish(this.#seq, this.portId);
    sendto(this.fd, bytes, 0, sockaddrNl(0, 0), `sendto(${name})`);
    return this.#seq;
  }

  /** One blocking datagram from the kernel, split into messages. */
  #recvBatch(name: string): NlMsg[] {
    for (;;) {
      const n = this.#recvRaw(false);
      if (n === -EINTR) continue;
      // ENOBUFS on a request socket means our own replies overflowed: the request failed.
      if (n < 0) throw new NetlinkError(name, -n, -n === EAGAIN ? "timed out waiting for the kernel" : undefined);
      if (n > RECV_BUF) throw new NetlinkError(name, ENOBUFS, `reply of ${n} bytes exceeds the ${RECV_BUF}-byte buffer`);
      if (!this.#fromKernel()) continue;
      return parseMessages(this.#buf, n);
    }
  }

  #recvRaw(dontwait: boolean): number {
    view(this.#fromLen).setUint32(0, 12, true);
    return recvfromRaw(this.fd, this.#buf, MSG_TRUNC | (dontwait ? MSG_DONTWAIT : 0), this.#from, this.#fromLen);
  }

  /** Only the kernel (port 0) may talk to us; anything else is spoofing or noise. */
  #fromKernel(): boolean {
    return view(this.#from).getUint32(4, true) === 0;
  }
}

// ---------------------------------------------------------------------------------------
// Generic netlink family resolution (nlctrl)

export const GENL_ID_CTRL = 16;
export const CTRL_CMD_GETFAMILY = 3;
export const CTRL_ATTR_FAMILY_ID = 1, CTRL_ATTR_FAMILY_NAME = 2, CTRL_ATTR_VERSION = 3;

/** Looks up a generic netlink family ("IPVS") by name; NetlinkError ENOENT when absent. */
export function resolveGenlFamily(sock: NetlinkSocket, name: string): { id: number; version: number } {
  const b = new NlMsgBuilder(GENL_ID_CTRL, 0).bytes(genlHeader(CTRL_CMD_GETFAMILY, 1)).str(CTRL_ATTR_FAMILY_NAME, name);
  // The answer (CTRL_CMD_NEWFAMILY) arrives before the ack; request() returns it.
  const replies = sock.request(b, `CTRL_CMD_GETFAMILY(${name})`);
  for (const m of replies) {
    const attrs = NlAttrs.parse(m.payload, 4);
    const id = attrs.u16(CTRL_ATTR_FAMILY_ID);
    if (id !== undefined) return { id, version: attrs.u32(CTRL_ATTR_VERSION) ?? 0 };
  }
  throw new NetlinkError(`CTRL_CMD_GETFAMILY(${name})`, 2, "no family id in reply");
}
