/**
 * One BFD session (RFC 5880 asynchronous mode, no echo, no authentication), as keepalived's
 * bfd.c / bfd_scheduler.c run it: three-way handshake, Poll/Final when the transmit interval
 * changes on reaching Up, detection time = remote Detect Mult × agreed remote interval,
 * transmissions jittered by 10–25 %, a Down session reset after one detection time.
 * Pure: time comes in as milliseconds; packets and events come out as values.
 */
import { BfdDiag, BfdState, DIAG_NAMES, STATE_NAMES, encodeBfd, type BfdControl } from "./codec.ts";

/** A session's configuration (keepalived's bfd_t configuration fields; intervals in µs). */
export interface BfdSessionConfig {
  name: string;
  /** bfd.RequiredMinRxInterval (min_rx). */
  minRxUs: number;
  /** bfd.DesiredMinTxInterval while Up (min_tx). */
  minTxUs: number;
  /** bfd.DesiredMinTxInterval while not Up (idle_tx). */
  idleTxUs: number;
  /** bfd.DetectMult (multiplier). */
  detectMult: number;
  /** Wait for the peer's first packet before sending. */
  passive: boolean;
  /** The TTL / hop limit we send with; received packets are checked against it. */
  ttl: number;
  /** Hops a received packet may have crossed (255: no check). */
  maxHops: number;
}

/** What a session needs from outside: randomness (jitter) and fresh local discriminators. */
export interface BfdSessionDeps {
  /** Uniform in [0, 1). */
  random: () => number;
  /** A new non-zero local discriminator, unique among the daemon's sessions. */
  newDiscriminator: () => number;
}

/** A log line in keepalived's wording. */
export interface BfdLog {
  level: "info" | "warn" | "debug";
  text: string;
}

/** What one call produced. */
export interface BfdOutput {
  /** Encoded Control packets to send to the neighbor now, in order. */
  send: Uint8Array[];
  /** State events for VRRP / checkers (keepalived's bfd_event_send): true = Up. */
  events: boolean[];
  log: BfdLog[];
  /** The local discriminator changed (the session must be re-indexed). */
  discriminatorChanged: boolean;
}

/** Why a packet that decoded fine was still discarded by the session. */
export type BfdDiscard = "ttl" | "auth" | "admin-down";

/** A read-only view for status output. */
export interface BfdSessionSnapshot {
  name: string;
  state: string;
  remoteState: string;
  localDiag: string;
  remoteDiag: string;
  localDiscriminator: number;
  remoteDiscriminator: number;
  /** Agreed intervals and detection time, in ms. */
  localTxIntervalMs: number;
  remoteTxIntervalMs: number;
  detectTimeMs: number;
  remoteDetectMult: number;
  poll: boolean;
  /** ms since the last valid packet, or null if none yet. */
  lastSeenAgoMs: number | null;
}

function newOutput(): BfdOutput {
  return { send: [], events: [], log: [], discriminatorChanged: false };
}

export class BfdSession {
  // RFC 5880 §6.8.1 state variables (and keepalived's derived values)
  sessionState: BfdState = BfdState.Down;
  remoteSessionState: BfdState = BfdState.Down;
  localDiscr: number;
  remoteDiscr = 0;
  localDiag: number = BfdDiag.None;
  remoteDiag: number = BfdDiag.None;
  remoteMinTxInterval = 0;
  remoteMinRxInterval = 0;
  remoteDemandMode = false;
  remoteDetectMult = 0;
  /** A Poll sequence is in progress (we set P until a Final comes back). */
  poll = false;
  /** The next packet carries F (answering the peer's Poll). */
  final = false;
  /** Agreed transmit interval (µs). */
  localTxInterval: number;
  /** Agreed interval the peer transmits at (µs). */
  remoteTxInterval = 0;
  /** Detection time (µs). */
  localDetectTime = 0;
  lastSeen: number | undefined;

  // Absolute deadlines (ms) of keepalived's sender, expire and reset threads.
  txAt: number | undefined;
  expireAt: number | undefined;
  resetAt: number | undefined;

  constructor(public cfg: BfdSessionConfig, private readonly deps: BfdSessionDeps) {
    this.localDiscr = deps.newDiscriminator();
    this.localTxInterval = cfg.idleTxUs;
  }

  /** Starts the session: an active one sends at once and then every idle interval. */
  start(now: number): BfdOutput {
    const out = newOutput();
    out.events.push(false); // keepalived reports every session's state (Down) at start
    if (!this.cfg.passive) {
      this.#sendNow(out);
      this.#scheduleTx(now);
    }
    return out;
  }

  /** The earliest pending deadline (ms), or undefined when nothing is scheduled. */
  nextDeadline(): number | undefined {
    let d: number | undefined;
    for (const t of [this.txAt, this.expireAt, this.resetAt]) if (t !== undefined && (d === undefined || t < d)) d = t;
    return d;
  }

  /** Runs every deadline that is due at `now`: detection expiry, reset, periodic transmission. */
  advance(now: number): BfdOutput {
    const out = newOutput();
    if (this.expireAt !== undefined && now >= this.expireAt) this.#expire(now, out);
    if (this.resetAt !== undefined && now >= this.resetAt) {
      this.resetAt = undefined;
      this.#reset();
    }
    if (this.txAt !== undefined && now >= this.txAt) {
      this.txAt = undefined;
      this.#sendNow(out);
      this.#scheduleTx(now);
    }
    return out;
  }

  /**
   * Processes one decoded packet addressed to this session (RFC 5880 §6.8.6 from the TTL check
   * on), `ttl` being the received TTL / hop limit (0 if unknown). Returns the discard reason
   * instead when it is dropped.
   */
  receive(p: BfdControl, ttl: number, now: number): BfdOutput | BfdDiscard {
    // GTSM (RFC 5881 §5), widened by max_hops as keepalived does
    if (this.cfg.maxHops !== 255 && ttl && this.cfg.maxHops + ttl < this.cfg.ttl) return "ttl";
    if (p.authPresent) return "auth";
    if (this.sessionState === BfdState.AdminDown) return "admin-down";
    const out = newOutput();
    const oldLocalTx = this.localTxInterval;
    const oldDetect = this.localDetectTime;

    this.remoteDiscr = p.myDiscriminator;
    this.remoteSessionState = p.state;
    this.remoteDiag = p.diag;
    this.remoteMinRxInterval = p.requiredMinRxInterval;
    this.remoteMinTxInterval = p.desiredMinTxInterval;
    this.remoteDemandMode = p.demand;
    this.remoteDetectMult = p.detectMult;
    if (p.final) this.poll = false;

    // Intervals change only outside Up, or on a Poll or Final (RFC 5880 §6.8.3)
    if (this.sessionState !== BfdState.Up || p.poll || p.final) {
      const upward = this.remoteSessionState === BfdState.Up && (this.sessionState === BfdState.Init || this.sessionState === BfdState.Up);
      this.localTxInterval = Math.max(upward ? this.cfg.minTxUs : this.cfg.idleTxUs, this.remoteMinRxInterval);
      this.remoteTxInterval = Math.max(this.cfg.minRxUs, this.remoteMinTxInterval);
    }
    this.localDetectTime = this.remoteDetectMult * this.remoteTxInterval;
    if (this.localTxInterval < oldLocalTx && this.txAt !== undefined) this.#scheduleTx(now);
    if (this.localDetectTime !== oldDetect)
      out.log.push({ level: "info", text: `${" ".repeat(this.cfg.name.length + 2)} Detection time is ${this.localDetectTime} us (was ${oldDetect} us)` });

    // RFC 5880 §6.8.6 state machine
    if (this.remoteSessionState === BfdState.AdminDown && this.sessionState !== BfdState.Down) {
      this.#down(now, BfdDiag.NeighborSignaledDown, out);
    } else if (this.sessionState === BfdState.Down) {
      if (this.remoteSessionState === BfdState.Down) this.#init(now, out);
      else if (this.remoteSessionState === BfdState.Init) this.#up(now, out);
    } else if (this.sessionState === BfdState.Init) {
      if (this.remoteSessionState === BfdState.Init || this.remoteSessionState === BfdState.Up) this.#up(now, out);
    } else if (this.sessionState === BfdState.Up && this.remoteSessionState === BfdState.Down) {
      this.#down(now, BfdDiag.NeighborSignaledDown, out);
    }

    // Demand mode (the peer's; vipd never asks for it): no periodic packets while both Up
    const quiet = this.remoteDemandMode && this.sessionState === BfdState.Up && this.remoteSessionState === BfdState.Up;
    if (quiet) this.txAt = undefined;
    else if (this.txAt === undefined) this.#scheduleTx(now);
    if (p.poll) {
      this.final = true;
      this.#sendNow(out);
    }
    this.lastSeen = now;
    if (this.sessionState === BfdState.Up && this.expireAt !== undefined) this.expireAt = now + this.localDetectTime / 1000;
    return out;
  }

  /**
   * Reload with new parameters, state kept (keepalived's bfd_complete_init): a change of
   * min_rx or min_tx starts a Poll sequence so the peer learns it (RFC 5880 §6.8.3).
   */
  reconfigure(cfg: BfdSessionConfig): void {
    const timersChanged = cfg.minRxUs !== this.cfg.minRxUs || cfg.minTxUs !== this.cfg.minTxUs;
    this.cfg = cfg;
    if (timersChanged && !this.final) this.poll = true;
  }

  /** Takes the session to AdminDown (its socket cannot be opened): silent, packets dropped. */
  adminDown(): BfdOutput {
    const out = newOutput();
    this.sessionState = BfdState.AdminDown;
    this.localDiag = BfdDiag.AdministrativelyDown;
    this.txAt = undefined;
    out.log.push({ level: "warn", text: `(${this.cfg.name}) Entering AdminDown state` });
    this.#fall(false, out);
    return out;
  }

  /** Whether the session is Up. */
  get up(): boolean {
    return this.sessionState === BfdState.Up;
  }

  snapshot(now: number): BfdSessionSnapshot {
    return {
      name: this.cfg.name,
      state: STATE_NAMES[this.sessionState],
      remoteState: STATE_NAMES[this.remoteSessionState],
      localDiag: DIAG_NAMES[this.localDiag] ?? String(this.localDiag),
      remoteDiag: DIAG_NAMES[this.remoteDiag] ?? String(this.remoteDiag),
      localDiscriminator: this.localDiscr,
      remoteDiscriminator: this.remoteDiscr,
      localTxIntervalMs: this.localTxInterval / 1000,
      remoteTxIntervalMs: this.remoteTxInterval / 1000,
      detectTimeMs: this.localDetectTime / 1000,
      remoteDetectMult: this.remoteDetectMult,
      poll: this.poll,
      lastSeenAgoMs: this.lastSeen === undefined ? null : Math.max(0, now - this.lastSeen),
    };
  }

  /** The Control packet this session sends now (keepalived's bfd_build_packet). */
  buildPacket(): BfdControl {
    // answering a Poll while wanting one: the new parameters go out with the Final
    if (this.poll && this.final) this.poll = false;
    return {
      version: 1, diag: this.localDiag, state: this.sessionState, poll: this.poll, final: this.final,
      controlPlaneIndependent: false, authPresent: false, demand: false, multipoint: false,
      detectMult: this.cfg.detectMult, length: 24, myDiscriminator: this.localDiscr, yourDiscriminator: this.remoteDiscr,
      desiredMinTxInterval: this.sessionState === BfdState.Up ? this.cfg.minTxUs : this.cfg.idleTxUs,
      requiredMinRxInterval: this.cfg.minRxUs, requiredMinEchoRxInterval: 0,
    };
  }

  /** The jittered delay (ms) to the next periodic packet: interval less 10–25 % (keepalived's get_jitter). */
  txDelayMs(): number {
    const min = Math.floor(this.localTxInterval / 10);
    const max = Math.floor(this.localTxInterval / 4);
    const jitter = min + Math.floor(this.deps.random() * (max - min + 1));
    return (this.localTxInterval - jitter) / 1000;
  }

  #scheduleTx(now: number): void {
    this.txAt = now + this.txDelayMs();
  }

  #sendNow(out: BfdOutput): void {
    out.send.push(encodeBfd(this.buildPacket()));
    this.final = false;
  }

  #expire(now: number, out: BfdOutput): void {
    this.expireAt = undefined;
    const dead = this.lastSeen === undefined ? 0 : now - this.lastSeen;
    if (this.sessionState === BfdState.Up)
      out.log.push({ level: "warn", text: `(${this.cfg.name}) Expired after ${Math.floor(dead)} ms (${Math.max(0, Math.round(dead * 1000 - this.localDetectTime))} usec overdue)` });
    // RFC 5880 §6.8.1: bfd.RemoteDiscr is zeroed when a Detection Time passes without a packet
    this.remoteDiscr = 0;
    this.#down(now, BfdDiag.ControlDetectionTimeExpired, out);
  }

  #down(now: number, diag: number, out: BfdOutput): void {
    const wasUp = this.sessionState === BfdState.Up;
    if (wasUp) {
      this.localDiscr = this.deps.newDiscriminator();
      out.discriminatorChanged = true;
      out.log.push({ level: "warn", text: `(${this.cfg.name}) Entering Down state (Local diagnostic - ${DIAG_NAMES[diag]}, Remote diagnostic - ${DIAG_NAMES[this.remoteDiag] ?? this.remoteDiag})` });
    }
    this.sessionState = BfdState.Down;
    this.localDiag = diag;
    this.resetAt = now + this.localDetectTime / 1000;
    if (this.cfg.passive) this.txAt = undefined;
    this.#fall(wasUp, out);
  }

  /** Common to Down and AdminDown: back to the idle rate, no detection timer, maybe an event. */
  #fall(sendEvent: boolean, out: BfdOutput): void {
    // RFC 5880 §6.8.3: not Up ⇒ DesiredMinTxInterval ≥ 1 s (idle_tx)
    this.localTxInterval = Math.max(this.cfg.idleTxUs, this.remoteMinRxInterval);
    this.expireAt = undefined;
    // keepalived does not report a Down the peer signalled administratively
    if (sendEvent && this.remoteSessionState !== BfdState.AdminDown) out.events.push(false);
  }

  #rise(now: number): void {
    this.localDiag = BfdDiag.None;
    this.resetAt = undefined;
    if (this.expireAt === undefined) this.expireAt = now + this.localDetectTime / 1000;
  }

  #init(now: number, out: BfdOutput): void {
    this.sessionState = BfdState.Init;
    this.#rise(now);
    out.log.push({ level: "debug", text: `(${this.cfg.name}) Entering Init state` });
    if (this.cfg.passive && this.txAt === undefined) this.#scheduleTx(now);
  }

  #up(now: number, out: BfdOutput): void {
    this.sessionState = BfdState.Up;
    this.#rise(now);
    out.log.push({ level: "info", text: `(${this.cfg.name}) Entering Up state` });
    if (this.cfg.idleTxUs !== this.cfg.minTxUs && !this.final) {
      out.log.push({ level: "debug", text: `(${this.cfg.name}) Starting poll sequence` });
      this.poll = true;
    }
    out.events.push(true);
  }

  /** keepalived's bfd_reset_state: forget the peer after a detection time in Down. */
  #reset(): void {
    this.sessionState = BfdState.Down;
    this.remoteSessionState = BfdState.Down;
    this.remoteDiscr = 0;
    this.remoteDiag = BfdDiag.None;
    this.remoteDemandMode = false;
    this.poll = false;
    this.final = false;
    this.localTxInterval = Math.max(this.cfg.idleTxUs, this.remoteMinRxInterval);
  }
}
