/**
 * The BFD sessions on the event loop (keepalived's BFD child): listening sockets on 3784 /
 * 4784, one send socket and one timer per session, received packets demultiplexed by Your
 * Discriminator (or by addresses while it is 0), and session state events delivered to the
 * VRRP side (track_bfd) and the checker side (BFD_CHECK) as each bfd_instance allows.
 */
import { decodeBfd, type BfdDecodeError } from "../bfd/codec.ts";
import { BFD_CONTROL_PORT, BFD_MULTIHOP_CONTROL_PORT, bfdInstances, type BfdInstanceConfig } from "../bfd/config.ts";
import { BfdSession, type BfdDiscard, type BfdOutput, type BfdSessionSnapshot } from "../bfd/session.ts";
import type { Doc } from "../config/schema/kinds.ts";
import type { Logger } from "./logger.ts";

/** What the socket layer reports with a datagram (ffi/bfd-socket.ts BfdRxMeta). */
export interface BfdPacketMeta {
  src: string;
  dst: string;
  ttl: number;
  truncated: boolean;
}

/** The sockets BFD needs; ffi/bfd-socket.ts createBfdNet() is the real one. */
export interface BfdNet {
  listen(port: number, onPacket: (data: Uint8Array, meta: BfdPacketMeta) => void): { close(): void };
  sender(family: "inet" | "inet6", source: string | undefined, ttl: number): { send(data: Uint8Array, dst: string, port: number): void; close(): void };
}

export interface BfdRuntimeOptions {
  net: BfdNet;
  log: Logger;
  /** Monotonic ms (default performance.now). */
  now?: () => number;
  /** Uniform [0, 1) (default Math.random). */
  random?: () => number;
}

/** One session in `vipd status`. */
export interface BfdSessionStatus extends BfdSessionSnapshot {
  neighbor: string;
  source?: string;
  multihop: boolean;
  passive: boolean;
  /** Configured intervals (ms) and multiplier. */
  minRxMs: number;
  minTxMs: number;
  idleTxMs: number;
  multiplier: number;
  /** Packets sent / accepted by this session, and send errors. */
  sent: number;
  received: number;
  sendErrors: number;
}

/** Runtime-wide receive statistics. */
export interface BfdRuntimeStats {
  /** Datagrams discarded, by reason (RFC 5880 §6.8.6 checks, TTL, no session...). */
  discarded: Partial<Record<BfdDecodeError | BfdDiscard | "no-session" | "truncated", number>>;
}

type Listener = (name: string, up: boolean) => void;

interface Running {
  inst: BfdInstanceConfig;
  session: BfdSession;
  sock: ReturnType<BfdNet["sender"]> | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  timerAt: number | undefined;
  /** The last state reported in an event (keepalived's tbfd->bfd_up), initially down. */
  reportedUp: boolean;
  sendError: boolean;
  sent: number;
  received: number;
  sendErrors: number;
}

export class BfdRuntime {
  #sessions = new Map<string, Running>();
  #byDiscr = new Map<number, Running>();
  #listeners: Array<{ close(): void }> = [];
  #vrrp: Listener[] = [];
  #checker: Listener[] = [];
  #stats: BfdRuntimeStats = { discarded: {} };
  #now: () => number;
  #random: () => number;
  #usedDiscr = new Set<number>();
  #stopped = false;
  #listenPorts = "";

  constructor(private blocks: Record<string, Doc>, private readonly opts: BfdRuntimeOptions) {
    this.#now = opts.now ?? (() => performance.now());
    this.#random = opts.random ?? Math.random;
  }

  /** Subscribes to state events for the VRRP side (instances with `checker` only are left out). */
  onVrrpEvent(cb: Listener): void {
    this.#vrrp.push(cb);
  }

  /** Subscribes to state events for the checker side (instances with `vrrp` only are left out). */
  onCheckerEvent(cb: Listener): void {
    this.#checker.push(cb);
  }

  /** The last reported state of a session: true Up, false otherwise; undefined if no such session. */
  state(name: string): boolean | undefined {
    return this.#sessions.get(name)?.reportedUp;
  }

  /** Whether events of `name` go to the VRRP (or checker) side. */
  delivers(name: string, side: "vrrp" | "checker"): boolean {
    const r = this.#sessions.get(name);
    return !!r && (side === "vrrp" ? r.inst.toVrrp : r.inst.toChecker);
  }

  /** Opens the sockets and starts every session. Throws when no listening socket can be opened. */
  start(): void {
    const { instances, warnings } = bfdInstances(this.blocks);
    for (const w of warnings) this.opts.log.error(w);
    this.#openListeners(instances);
    for (const inst of instances) this.#startSession(inst);
  }

  /** Reload: sessions whose configuration is unchanged keep running; others restart or stop. */
  reload(blocks: Record<string, Doc>): void {
    this.blocks = blocks;
    const { instances, warnings } = bfdInstances(blocks);
    for (const w of warnings) this.opts.log.error(w);
    const next = new Map(instances.map((i) => [i.session.name, i]));
    for (const [name, r] of this.#sessions) {
      const n = next.get(name);
      const sameSocket = (x: BfdInstanceConfig) => JSON.stringify([x.neighbor, x.source, x.family, x.multihop, x.session.ttl]);
      if (n && sameSocket(n) === sameSocket(r.inst)) {
        // same peer and socket: the session keeps its state; new timers go out with a Poll
        next.delete(name);
        r.inst = n;
        r.session.reconfigure(n.session);
        continue;
      }
      this.#stopSession(r);
    }
    // listening sockets stay open unless the set of ports changed (keepalived keeps fd_in too)
    const all = [...this.#sessions.values()].map((r) => r.inst).concat([...next.values()]);
    const ports = [...new Set(all.map((i) => (i.multihop ? BFD_MULTIHOP_CONTROL_PORT : BFD_CONTROL_PORT)))].sort().join(",");
    if (ports !== this.#listenPorts) {
      for (const l of this.#listeners) l.close();
      this.#listeners = [];
      try {
        this.#openListeners(all);
      } catch (e) {
        this.opts.log.error((e as Error).message);
      }
    }
    for (const inst of next.values()) this.#startSession(inst);
  }

  stop(): void {
    this.#stopped = true;
    for (const r of this.#sessions.values()) this.#stopSession(r);
    for (const l of this.#listeners) l.close();
    this.#listeners = [];
  }

  /** Every session, for status output. */
  status(): BfdSessionStatus[] {
    const now = this.#now();
    return [...this.#sessions.values()].map((r) => ({
      ...r.session.snapshot(now),
      neighbor: r.inst.neighbor, ...(r.inst.source ? { source: r.inst.source } : {}), multihop: r.inst.multihop, passive: r.inst.session.passive,
      minRxMs: r.inst.session.minRxUs / 1000, minTxMs: r.inst.session.minTxUs / 1000, idleTxMs: r.inst.session.idleTxUs / 1000,
      multiplier: r.inst.session.detectMult, sent: r.sent, received: r.received, sendErrors: r.sendErrors,
    }));
  }

  stats(): BfdRuntimeStats {
    return { discarded: { ...this.#stats.discarded } };
  }

  /** Handles one datagram from a listening socket (exposed for tests with a fake net). */
  handlePacket(data: Uint8Array, meta: BfdPacketMeta, multihop: boolean): void {
    if (meta.truncated) return this.#discard("truncated");
    const d = decodeBfd(data);
    if (!d.ok) {
      this.opts.log.debug(`Discarding bogus packet from ${meta.src} (${d.error})`);
      return this.#discard(d.error);
    }
    const p = d.packet;
    const r = p.yourDiscriminator ? this.#byDiscr.get(p.yourDiscriminator) : this.#findByAddr(meta.src, meta.dst, multihop);
    if (!r) {
      this.opts.log.debug(`Discarding packet from ${meta.src} (session is not found - your discriminator field is 0x${p.yourDiscriminator.toString(16).padStart(8, "0")})`);
      return this.#discard("no-session");
    }
    const now = this.#now();
    const out = r.session.receive(p, meta.ttl, now);
    if (typeof out === "string") {
      if (out === "ttl") this.opts.log.debug(`(${r.inst.session.name}) Packet ${r.inst.family === "inet" ? "ttl" : "hop_limit"}(${meta.ttl}) < ${r.inst.session.ttl - r.inst.session.maxHops} - discarding`);
      return this.#discard(out);
    }
    r.received++;
    this.#apply(r, out);
  }

  #discard(reason: keyof BfdRuntimeStats["discarded"]): void {
    this.#stats.discarded[reason] = (this.#stats.discarded[reason] ?? 0) + 1;
  }

  #findByAddr(src: string, dst: string, multihop: boolean): Running | undefined {
    for (const r of this.#sessions.values()) {
      if (r.inst.multihop !== multihop || r.inst.neighbor !== src) continue;
      if (!r.inst.source || !dst || r.inst.source === dst) return r;
    }
    return undefined;
  }

  #openListeners(instances: BfdInstanceConfig[]): void {
    const ports = new Set(instances.map((i) => (i.multihop ? BFD_MULTIHOP_CONTROL_PORT : BFD_CONTROL_PORT)));
    this.#listenPorts = [...ports].sort().join(",");
    let opened = 0;
    for (const port of ports) {
      try {
        const multihop = port === BFD_MULTIHOP_CONTROL_PORT;
        this.#listeners.push(this.opts.net.listen(port, (data, meta) => this.handlePacket(data, meta, multihop)));
        opened++;
      } catch (e) {
        this.opts.log.error(`Unable to open ${port === BFD_MULTIHOP_CONTROL_PORT ? "multihop " : ""}listening socket: ${(e as Error).message}`);
      }
    }
    if (ports.size && !opened) throw new Error("BFD: no listening socket could be opened");
  }

  #newDiscriminator(): number {
    for (;;) {
      const d = 1 + Math.floor(this.#random() * 0xfffffffe);
      if (!this.#usedDiscr.has(d)) return d;
    }
  }

  #startSession(inst: BfdInstanceConfig): void {
    const session = new BfdSession(inst.session, { random: this.#random, newDiscriminator: () => this.#newDiscriminator() });
    const r: Running = { inst, session, sock: undefined, timer: undefined, timerAt: undefined, reportedUp: false, sendError: false, sent: 0, received: 0, sendErrors: 0 };
    this.#sessions.set(inst.session.name, r);
    this.#index(r);
    try {
      r.sock = this.opts.net.sender(inst.family, inst.source, inst.session.ttl);
    } catch (e) {
      this.opts.log.error(`(${inst.session.name}) Unable to open output socket, disabling instance: ${(e as Error).message}`);
      this.#apply(r, session.adminDown());
      return;
    }
    this.#apply(r, session.start(this.#now()));
  }

  #stopSession(r: Running): void {
    if (r.timer) clearTimeout(r.timer);
    r.timer = undefined;
    r.sock?.close();
    this.#byDiscr.delete(r.session.localDiscr);
    this.#usedDiscr.delete(r.session.localDiscr);
    this.#sessions.delete(r.inst.session.name);
  }

  #index(r: Running): void {
    this.#byDiscr.set(r.session.localDiscr, r);
    this.#usedDiscr.add(r.session.localDiscr);
  }

  /** Carries out a session's output: re-index, send, log, deliver events, re-arm the timer. */
  #apply(r: Running, out: BfdOutput): void {
    if (this.#stopped || this.#sessions.get(r.inst.session.name) !== r) return;
    if (out.discriminatorChanged) {
      for (const [d, x] of this.#byDiscr) if (x === r) {
        this.#byDiscr.delete(d);
        this.#usedDiscr.delete(d);
      }
      this.#index(r);
    }
    const port = r.inst.multihop ? BFD_MULTIHOP_CONTROL_PORT : BFD_CONTROL_PORT;
    for (const pkt of out.send) {
      try {
        r.sock?.send(pkt, r.inst.neighbor, port);
        r.sent++;
        r.sendError = false;
      } catch (e) {
        r.sendErrors++;
        if (!r.sendError) this.opts.log.error(`(${r.inst.session.name}) Error sending packet: ${(e as Error).message}`);
        r.sendError = true;
      }
    }
    for (const l of out.log) {
      if (l.level === "warn") this.opts.log.warn(l.text);
      else if (l.level === "info") this.opts.log.info(l.text);
      else this.opts.log.debug(l.text);
    }
    for (const up of out.events) this.#event(r, up);
    this.#arm(r);
  }

  #event(r: Running, up: boolean): void {
    const name = r.inst.session.name;
    const changed = r.reportedUp !== up;
    r.reportedUp = up;
    if (!changed) return;
    if (r.inst.toVrrp) for (const l of this.#vrrp) l(name, up);
    if (r.inst.toChecker) for (const l of this.#checker) l(name, up);
  }

  #arm(r: Running): void {
    const at = r.session.nextDeadline();
    if (at === r.timerAt && r.timer) return;
    if (r.timer) clearTimeout(r.timer);
    r.timer = undefined;
    r.timerAt = at;
    if (at === undefined) return;
    r.timer = setTimeout(() => {
      r.timer = undefined;
      r.timerAt = undefined;
      this.#apply(r, r.session.advance(this.#now()));
    }, Math.max(0, Math.ceil(at - this.#now())));
  }
}
