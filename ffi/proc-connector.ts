/**
 * The kernel's process events connector (NETLINK_CONNECTOR, group CN_IDX_PROC): after
 * PROC_CN_MCAST_LISTEN the kernel multicasts one datagram per fork, exec, comm change and
 * exit of every process on the host. The socket is drained through an FdWatcher; events
 * are decoded into plain objects (`decodeProcEvent` is pure and tested from bytes).
 *
 * Availability: the connector lives in the initial network namespace only, needs
 * CONFIG_PROC_EVENTS, and (kernel ≥ 6.6) CAP_NET_ADMIN in the initial user namespace.
 * `ProcConnector.open` waits for the kernel's PROC_EVENT_NONE acknowledgement and rejects
 * with a `ProcConnectorUnavailable` that says which of these failed.
 *
 * Datagram layout: nlmsghdr (16) | cn_msg {u32 idx, u32 val, u32 seq, u32 ack, u16 len,
 * u16 flags} (20) | proc_event {u32 what, u32 cpu, u64 timestamp_ns, event_data} — the
 * kernel never chains two events in one datagram.
 */
import type { FdWatcher } from "./fdwatch.ts";
import {
  SOL_SOCKET, SO_RCVBUF, SO_RCVBUFFORCE, SysError, alloc, errnoName, sendto, setsockoptInt, sockaddrNl, view,
} from "./libc.ts";
import { NLMSG_DONE, NLMSG_HDRLEN, NetlinkSocket, type NlMsg } from "./netlink.ts";

export const NETLINK_CONNECTOR = 11;
export const CN_IDX_PROC = 1, CN_VAL_PROC = 1;
export const PROC_CN_MCAST_LISTEN = 1, PROC_CN_MCAST_IGNORE = 2;
export const PROC_EVENT_NONE = 0, PROC_EVENT_FORK = 1, PROC_EVENT_EXEC = 2, PROC_EVENT_UID = 4;
export const PROC_EVENT_GID = 0x40, PROC_EVENT_SID = 0x80, PROC_EVENT_PTRACE = 0x100, PROC_EVENT_COMM = 0x200;
export const PROC_EVENT_COREDUMP = 0x40000000, PROC_EVENT_EXIT = 0x80000000;
/** sizeof(struct cn_msg) */
export const CN_MSG_LEN = 20;
/** Offset of event_data inside struct proc_event. */
const EVENT_DATA = 16;

/** Fields every decoded event carries. */
interface EventBase {
  /** The CPU that generated the event, and the connector's per-CPU sequence number. */
  cpu: number;
  seq: number;
}

/** One decoded process event. `pid` is the thread id, `tgid` the process id. */
export type ProcEvent =
  | (EventBase & { what: "ack"; err: number })
  | (EventBase & { what: "fork"; parentPid: number; parentTgid: number; childPid: number; childTgid: number })
  | (EventBase & { what: "exec"; pid: number; tgid: number })
  | (EventBase & { what: "comm"; pid: number; tgid: number; comm: string })
  | (EventBase & { what: "exit"; pid: number; tgid: number; exitCode: number; exitSignal: number })
  | (EventBase & { what: "other"; code: number });

const latin1 = new TextDecoder("latin1");

/**
 * Decodes the payload of one connector message (everything after the nlmsghdr); null when
 * it is not a proc event or is too short.
 */
export function decodeProcEvent(payload: Uint8Array): ProcEvent | null {
  if (payload.length < CN_MSG_LEN + EVENT_DATA) return null;
  const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  if (v.getUint32(0, true) !== CN_IDX_PROC || v.getUint32(4, true) !== CN_VAL_PROC) return null;
  const seq = v.getUint32(8, true);
  const dataLen = v.getUint16(16, true);
  const end = Math.min(payload.length, CN_MSG_LEN + dataLen);
  const e = CN_MSG_LEN;
  const what = v.getUint32(e, true);
  const cpu = v.getUint32(e + 4, true);
  const d = e + EVENT_DATA;
  const u32 = (i: number) => (d + 4 * i + 4 <= end ? v.getUint32(d + 4 * i, true) : 0);
  const i32 = (i: number) => (d + 4 * i + 4 <= end ? v.getInt32(d + 4 * i, true) : 0);
  switch (what) {
    case PROC_EVENT_NONE:
      return { what: "ack", cpu, seq, err: u32(0) };
    case PROC_EVENT_FORK:
      return { what: "fork", cpu, seq, parentPid: i32(0), parentTgid: i32(1), childPid: i32(2), childTgid: i32(3) };
    case PROC_EVENT_EXEC:
      return { what: "exec", cpu, seq, pid: i32(0), tgid: i32(1) };
    case PROC_EVENT_COMM: {
      const raw = payload.subarray(Math.min(d + 8, end), Math.min(d + 24, end));
      const nul = raw.indexOf(0);
      return { what: "comm", cpu, seq, pid: i32(0), tgid: i32(1), comm: latin1.decode(nul < 0 ? raw : raw.subarray(0, nul)) };
    }
    case PROC_EVENT_EXIT:
      return { what: "exit", cpu, seq, pid: i32(0), tgid: i32(1), exitCode: u32(2), exitSignal: u32(3) };
    default:
      return { what: "other", cpu, seq, code: what };
  }
}

/** The PROC_CN_MCAST_LISTEN / _IGNORE request: nlmsghdr(NLMSG_DONE) + cn_msg + u32 op. */
export function encodeMcastOp(op: number, seq: number, portId: number): Uint8Array {
  const len = NLMSG_HDRLEN + CN_MSG_LEN + 4;
  const b = alloc(len);
  const v = view(b);
  v.setUint32(0, len, true);
  v.setUint16(4, NLMSG_DONE, true);
  v.setUint16(6, 0, true);
  v.setUint32(8, seq >>> 0, true);
  v.setUint32(12, portId >>> 0, true);
  v.setUint32(16, CN_IDX_PROC, true);
  v.setUint32(20, CN_VAL_PROC, true);
  v.setUint32(24, seq >>> 0, true); // cn_msg.seq, echoed in the ack
  v.setUint32(28, 0, true); // cn_msg.ack
  v.setUint16(32, 4, true); // cn_msg.len
  v.setUint16(34, 0, true); // cn_msg.flags
  v.setUint32(36, op, true);
  return b;
}

/** The connector cannot be used here; `reason` is one line for the log. */
export class ProcConnectorUnavailable extends Error {
  /** errno name when a system call failed ("EPROTONOSUPPORT", "EPERM", ...), else "ETIMEDOUT"-like "NOACK". */
  readonly code: string;
  constructor(code: string, reason: string) {
    super(reason);
    this.name = "ProcConnectorUnavailable";
    this.code = code;
  }
}

export interface ProcConnectorOptions {
  /** Receive buffer in bytes (default 4 MiB; SO_RCVBUFFORCE, else SO_RCVBUF capped by rmem_max). */
  rcvbuf?: number;
  /** How long to wait for the kernel's acknowledgement (default 500 ms). */
  ackTimeoutMs?: number;
  /** Datagrams handled per wakeup before yielding (default 1024). */
  drainCap?: number;
}

/** Handlers for a running connector. */
export interface ProcConnectorHandlers {
  /** A batch of events, in kernel order (acks included). */
  onEvents(events: ProcEvent[]): void;
  /** The kernel dropped events (ENOBUFS): the owner must rescan /proc. */
  onOverrun(): void;
}

/** A listening proc connector socket. */
export class ProcConnector {
  readonly #sock: NetlinkSocket;
  readonly #watcher: FdWatcher;
  readonly #drainCap: number;
  #handlers: ProcConnectorHandlers;
  #closed = false;
  /** Datagrams received and the time spent decoding and handling them (ms). */
  readonly stats = { datagrams: 0, events: 0, overruns: 0, handleMs: 0 };

  private constructor(sock: NetlinkSocket, watcher: FdWatcher, handlers: ProcConnectorHandlers, drainCap: number) {
    this.#sock = sock;
    this.#watcher = watcher;
    this.#handlers = handlers;
    this.#drainCap = drainCap;
  }

  /**
   * Opens the socket, subscribes, and resolves once the kernel acknowledged. Events that
   * arrive before the ack are passed to `handlers` too. Rejects with ProcConnectorUnavailable.
   */
  static open(watcher: FdWatcher, handlers: ProcConnectorHandlers, opts: ProcConnectorOptions = {}): Promise<ProcConnector> {
    let sock: NetlinkSocket;
    try {
      sock = new NetlinkSocket(NETLINK_CONNECTOR, { groups: CN_IDX_PROC, nonblocking: true });
    } catch (e) {
      return Promise.reject(unavailable(e, "open the proc connector socket"));
    }
    const rcvbuf = opts.rcvbuf ?? 4 << 20;
    try {
      setsockoptInt(sock.fd, SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf, "SO_RCVBUFFORCE");
    } catch {
      try {
        setsockoptInt(sock.fd, SOL_SOCKET, SO_RCVBUF, rcvbuf, "SO_RCVBUF");
      } catch {
        // The default buffer still works; overruns are handled by a rescan.
      }
    }
    return new Promise<ProcConnector>((resolve, reject) => {
      let settled = false;
      const seq = (Math.floor(performance.now()) & 0x7fffffff) >>> 0;
      const conn = new ProcConnector(sock, watcher, {
        onEvents: (events) => {
          if (!settled) {
            const ack = events.find((ev) => ev.what === "ack");
            if (ack && ack.what === "ack") {
              settled = true;
              clearTimeout(timer);
              if (ack.err !== 0) {
                conn.close();
                reject(new ProcConnectorUnavailable(errnoName(ack.err),
                  `proc connector refused PROC_CN_MCAST_LISTEN: ${errnoName(ack.err)} (needs CAP_NET_ADMIN in the initial user and pid namespace)`));
                return;
              }
              resolve(conn);
            }
          }
          handlers.onEvents(events);
        },
        onOverrun: () => handlers.onOverrun(),
      }, opts.drainCap ?? 1024);
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        conn.close();
        reject(new ProcConnectorUnavailable("NOACK",
          "the kernel did not acknowledge PROC_CN_MCAST_LISTEN: CONFIG_PROC_EVENTS is off, or listening is not permitted here"));
      }, opts.ackTimeoutMs ?? 500);
      try {
        watcher.watch(sock.fd, () => conn.#drain());
        sendto(sock.fd, encodeMcastOp(PROC_CN_MCAST_LISTEN, seq, sock.portId), 0, sockaddrNl(0, 0), "sendto(PROC_CN_MCAST_LISTEN)");
      } catch (e) {
        settled = true;
        clearTimeout(timer);
        conn.close();
        reject(unavailable(e, "subscribe to process events"));
      }
    });
  }

  /** Unsubscribes (best effort), stops watching and closes the socket. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher.unwatch(this.#sock.fd);
    try {
      sendto(this.#sock.fd, encodeMcastOp(PROC_CN_MCAST_IGNORE, 0, this.#sock.portId), 0, sockaddrNl(0, 0), "sendto(PROC_CN_MCAST_IGNORE)");
    } catch {
      // Closing the socket drops the subscription's listener count anyway on recent kernels.
    }
    this.#sock.close();
  }

  #drain(): void {
    if (this.#closed) return;
    const t0 = performance.now();
    let res: { messages: NlMsg[]; overrun: boolean };
    try {
      res = this.#sock.drain(this.#drainCap);
    } catch (e) {
      // A receive error other than EAGAIN/ENOBUFS: treat like lost events so the owner resyncs.
      this.stats.overruns++;
      this.#handlers.onOverrun();
      throw e;
    }
    const events: ProcEvent[] = [];
    for (const m of res.messages) {
      this.stats.datagrams++;
      if (m.type !== NLMSG_DONE) continue; // the connector sends its events as NLMSG_DONE
      const ev = decodeProcEvent(m.payload);
      if (ev) events.push(ev);
    }
    this.stats.events += events.length;
    if (events.length > 0) this.#handlers.onEvents(events);
    if (res.overrun) {
      this.stats.overruns++;
      this.#handlers.onOverrun();
    }
    this.stats.handleMs += performance.now() - t0;
  }
}

function unavailable(e: unknown, what: string): ProcConnectorUnavailable {
  if (e instanceof SysError) {
    const hint = e.code === "EPROTONOSUPPORT" ? " (kernel without CONFIG_CONNECTOR/CONFIG_PROC_EVENTS?)"
      : e.code === "ECONNREFUSED" ? " (the connector exists only in the initial network namespace)"
      : e.code === "EPERM" || e.code === "EACCES" ? " (needs root/CAP_NET_ADMIN)" : "";
    return new ProcConnectorUnavailable(e.code, `cannot ${what}: ${e.message}${hint}`);
  }
  return new ProcConnectorUnavailable("ERROR", `cannot ${what}: ${String(e)}`);
}
