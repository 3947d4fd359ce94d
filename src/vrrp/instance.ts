/**
 * The state machine of one VRRP instance (RFC 3768 / 5798 as keepalived runs it, reference
 * §2.6), sans I/O: every input is a method call carrying `now` (monotonic ms), every side
 * effect is a returned `VrrpAction`, and the one timer the daemon must arm is `nextDeadline()`.
 */
import { compareAddr, parseIp } from "../net/addr.ts";
import { AnnounceSchedule, DEFAULT_GARP_PARAMS } from "./garp-schedule.ts";
import type { AnnounceReason, GarpParams } from "./garp-schedule.ts";
import {
  DEFAULT_DOWN_TIMER_ADVERTS, PRIO_OWNER, PRIO_STOP, csToMs, effectivePriority,
  masterDownIntervalMs, minSkewTimeMs, skewTimeMs, stallLimitMs,
} from "./timing.ts";
import { STATE_NAMES, VrrpState, newStats } from "./types.ts";
import type { Family, VrrpStats, VrrpVersion } from "./types.ts";

/** Everything the state machine needs from the configuration, already validated. */
export interface InstanceParams {
  /** Instance name, used as the `(NAME)` log prefix. */
  name: string;
  version: VrrpVersion;
  vrid: number;
  family: Family;
  /** Configured priority 1..255 (255 = address owner). */
  basePriority: number;
  /** Configured advert interval in centiseconds, already rounded for the version. */
  adverIntCs: number;
  /** `state`: only the initial wish. */
  wantState: "MASTER" | "BACKUP";
  nopreempt: boolean;
  /** `preempt_delay` in ms (0 = none). */
  preemptDelayMs: number;
  /** `down_timer_adverts` (RFC: 3). */
  downTimerAdverts: number;
  /** Our source address (as sent in adverts), used for the equal-priority tie break. */
  sourceAddress: string;
  lowerPrioNoAdvert: boolean;
  higherPrioSendAdvert: boolean;
  /** Drop every received advert when we are the owner (strict mode default for 255). */
  ownerIgnoreAdverts: boolean;
  garp: GarpParams;
  /** `timer_expired_backup PRIO` (highest other priority; 0 = off; needs nopreempt). */
  timerExpiredBackupPrio: number;
}

/** keepalived's defaults for everything except name and addresses; override what you need. */
export function instanceParams(overrides: Partial<InstanceParams> & Pick<InstanceParams, "name" | "sourceAddress">): InstanceParams {
  return {
    version: 2,
    vrid: 51,
    family: "inet",
    basePriority: 100,
    adverIntCs: 100,
    wantState: "BACKUP",
    nopreempt: false,
    preemptDelayMs: 0,
    downTimerAdverts: DEFAULT_DOWN_TIMER_ADVERTS,
    lowerPrioNoAdvert: false,
    higherPrioSendAdvert: false,
    ownerIgnoreAdverts: false,
    garp: { ...DEFAULT_GARP_PARAMS },
    timerExpiredBackupPrio: 0,
    ...overrides,
  };
}

/** A received advert that passed the codec's validation (reference §2.6 steps 1–13). */
export interface RxAdvert {
  /** Source address of the IP packet. */
  src: string;
  priority: number;
  /** Advertised interval in centiseconds (v2: seconds × 100). */
  adverIntCs: number;
}

/** Why the state changed; the daemon maps these onto notifies, SNMP reasons and logs. */
export type TransitionReason =
  | "startup" // INIT → BACKUP/FAULT
  | "master-down" // down timer expired: the master stopped advertising
  | "priority-zero" // down timer expired after the master resigned (priority 0)
  | "preempt" // down timer expired while we ignored a lower-priority master (or owner start)
  | "higher-priority" // MASTER heard a better advert
  | "fault" // a fault reason appeared
  | "fault-cleared" // the last fault reason went away
  | "stall" // timer_expired_backup: we stalled too long to still be master
  | "sync-group" // moved to BACKUP or FAULT (or out of FAULT) because its sync group did
  | "address-removed" // MASTER whose VIP (or virtual route/rule) someone else deleted steps down
  | "stop"; // instance stopped (→ INIT); the daemon reports STOP

export type LogLevel = "info" | "warning" | "debug";

/** Side effects requested by the state machine, to be performed in order. */
export type VrrpAction =
  /** Send one advert now with this priority (0 = resign) and interval. */
  | { type: "send-advert"; priority: number; adverIntCs: number }
  /** Install VIPs, eVIPs, virtual routes/rules (and no_accept firewall rules). */
  | { type: "add-addresses" }
  /** Remove what add-addresses installed and drop this instance's queued GARP/NA. */
  | { type: "remove-addresses" }
  /** Send `rounds` rounds of GARP/NA for every VIP and eVIP (through the pacer). */
  | { type: "announce"; reason: AnnounceReason; rounds: number }
  /**
   * `followsGroup`: set when the sync group imposed this transition (the member did not
   * reach the state by its own timer, advert or fault).
   */
  | { type: "state-change"; from: VrrpState; to: VrrpState; reason: TransitionReason; followsGroup?: true }
  /** A MASTER heard a lower-priority advert (notify_master_rx_lower_pri / FIFO MASTER_RX_LOWER_PRI). */
  | { type: "master-rx-lower-prio"; src: string; priority: number }
  /** The effective priority changed (FIFO MASTER_PRIORITY / BACKUP_PRIORITY). */
  | { type: "priority-change"; from: number; to: number }
  | { type: "log"; level: LogLevel; message: string };

/** What `snapshot()` returns. */
export interface InstanceSnapshot {
  name: string;
  vrid: number;
  version: VrrpVersion;
  family: Family;
  state: string;
  wantsMaster: boolean;
  basePriority: number;
  effectivePriority: number;
  adverIntCs: number;
  masterAdverIntCs: number;
  masterAddress: string | undefined;
  masterPriority: number;
  faults: string[];
  /** Held in FAULT because another member of its sync group has a fault. */
  heldByGroup: boolean;
  nextDeadline: number | undefined;
  lastAdvertSentAt: number | undefined;
  stats: VrrpStats;
}

/** Decides whether an instance whose down timer expired may become MASTER (sync groups veto). */
export type CanGoMaster = (instance: VrrpInstance) => boolean;

/**
 * Compares two IP addresses as big-endian numbers (IPv6 word by word): −1, 0 or 1.
 * Unparsable addresses or different families compare as equal (keepalived's sanity rule).
 */
export function compareIp(a: string, b: string): -1 | 0 | 1 {
  const x = parseIp(a);
  const y = parseIp(b);
  if (x === null || y === null || x.family !== y.family) return 0;
  const c = compareAddr(x.bytes, y.bytes);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

/** One VRRP instance. Construct, call `start(now)`, then feed it events and timer expiries. */
export class VrrpInstance {
  /** Replaced only by reconfigure(). */
  params: Readonly<InstanceParams>;
  readonly stats: VrrpStats = newStats();

  #state: VrrpState = VrrpState.INIT;
  /** Tracker-adjusted, clamped priority; what we advertise and compare. */
  #effectivePriority: number;
  /** The interval we currently time the master with (v3: the master's advertised one). */
  #masterAdverIntCs: number;
  /** Length of the down timer as last (re)started; a shift base for priority changes. */
  #msDownTimerMs = 0;
  /** BACKUP: when the master is declared down. MASTER: when the next advert is due. */
  #deadline: number | undefined;
  #masterAddress: string | undefined;
  #masterPriority = 0;
  /** preempt_delay: when the delay ends (undefined = not started). */
  #preemptUntil: number | undefined;
  #lastAdvertSentAt: number | undefined;
  #faults = new Set<string>();
  /** Held in FAULT by the sync group (another member has a fault); not one of `#faults`. */
  #groupFault = false;
  /** The instance would be MASTER if a sync group let it (its down timer expired). */
  #wantsMaster = false;
  #nextMasterReason: TransitionReason = "master-down";
  #announce: AnnounceSchedule;
  #canGoMaster: CanGoMaster;

  constructor(params: InstanceParams, canGoMaster: CanGoMaster = () => true) {
    this.params = { ...params, garp: { ...params.garp } };
    this.#effectivePriority = params.basePriority;
    this.#masterAdverIntCs = params.adverIntCs;
    this.#announce = new AnnounceSchedule(params.garp);
    this.#canGoMaster = canGoMaster;
  }

  /** Current state. */
  get state(): VrrpState {
    return this.#state;
  }
  /** Effective priority (what we advertise). */
  get effectivePriority(): number {
    return this.#effectivePriority;
  }
  /** Master_Adver_Interval in centiseconds. */
  get masterAdverIntCs(): number {
    return this.#masterAdverIntCs;
  }
  /** Address of the master we last accepted (or saw) adverts from. */
  get masterAddress(): string | undefined {
    return this.#masterAddress;
  }
  /** Priority of the master we last accepted adverts from. */
  get masterPriority(): number {
    return this.#masterPriority;
  }
  /** True while the down timer has expired but a sync group held us in BACKUP. */
  get wantsMaster(): boolean {
    return this.#wantsMaster;
  }
  /** Active fault reasons of this instance itself (not counting a sync group's hold). */
  get faults(): ReadonlySet<string> {
    return this.#faults;
  }
  /** True while the sync group holds this instance in FAULT for another member's fault. */
  get heldByGroup(): boolean {
    return this.#groupFault;
  }

  /** Plain-data view of the instance for status output and JSON dumps. */
  snapshot(): InstanceSnapshot {
    const p = this.params;
    return {
      name: p.name,
      vrid: p.vrid,
      version: p.version,
      family: p.family,
      state: stateName(this.#state),
      wantsMaster: this.#wantsMaster,
      basePriority: p.basePriority,
      effectivePriority: this.#effectivePriority,
      adverIntCs: p.adverIntCs,
      masterAdverIntCs: this.#masterAdverIntCs,
      masterAddress: this.#masterAddress,
      masterPriority: this.#masterPriority,
      faults: [...this.#faults],
      heldByGroup: this.#groupFault,
      nextDeadline: this.nextDeadline(),
      lastAdvertSentAt: this.#lastAdvertSentAt,
      stats: { ...this.stats },
    };
  }

  /** Replaces the "may I go MASTER now?" predicate (for sync groups). */
  setCanGoMaster(fn: CanGoMaster): void {
    this.#canGoMaster = fn;
  }

  /** Current Skew_Time in ms (owner uses 255, others the effective priority). */
  skewTimeMs(): number {
    return skewTimeMs(this.params.version, this.#timerPriority(), this.#masterAdverIntCs);
  }

  /** Current Master_Down_Interval in ms. */
  masterDownIntervalMs(): number {
    return masterDownIntervalMs(this.params.version, this.#timerPriority(), this.#masterAdverIntCs, this.params.downTimerAdverts);
  }

  /** The earliest absolute time (ms) at which `onTimer` must be called, if any. */
  nextDeadline(): number | undefined {
    const a = this.#deadline;
    const b = this.#state === VrrpState.MASTER ? this.#announce.nextDeadline() : undefined;
    if (a === undefined) return b;
    if (b === undefined) return a;
    return Math.min(a, b);
  }

  /**
   * Leaves INIT: FAULT if a fault (or a sync group's hold) is already known, owner+MASTER at
   * once, else BACKUP. `ownerWaits` (a sync group whose members are not all owners): an owner
   * wanting MASTER starts as BACKUP and waits one interval + minimal skew (keepalived's init).
   */
  start(now: number, opts: { ownerWaits?: boolean } = {}): VrrpAction[] {
    if (this.#state !== VrrpState.INIT) return [];
    const out: VrrpAction[] = [];
    const p = this.params;
    const ownerMaster = p.basePriority === PRIO_OWNER && p.wantState === "MASTER";
    this.#masterAdverIntCs = p.adverIntCs;
    this.#masterAddress = undefined;
    this.#preemptUntil = undefined;
    // keepalived's wantstate: an owner configured MASTER wants MASTER from the start.
    this.#wantsMaster = ownerMaster;
    if (this.#faults.size > 0 || this.#groupFault) {
      this.#wantsMaster = false;
      this.#deadline = undefined;
      this.#log(out, "info", "Entering FAULT STATE (init)");
      this.#setState(out, VrrpState.FAULT, "startup");
    } else if (ownerMaster && opts.ownerWaits === true) {
      this.#msDownTimerMs = csToMs(this.#masterAdverIntCs) + minSkewTimeMs(p.version, this.#masterAdverIntCs);
      this.#deadline = now + this.#msDownTimerMs;
      this.#nextMasterReason = "preempt";
      this.#log(out, "info", "Entering BACKUP STATE (init)");
      this.#setState(out, VrrpState.BACKUP, "startup");
    } else if (ownerMaster) {
      // The owner becomes master by timing out of BACKUP almost at once (keepalived: 1 µs),
      // without a BACKUP notify.
      this.#state = VrrpState.BACKUP;
      this.#msDownTimerMs = 0.001;
      this.#deadline = now + this.#msDownTimerMs;
      this.#nextMasterReason = "preempt";
    } else {
      this.#msDownTimerMs = this.masterDownIntervalMs();
      this.#deadline = now + this.#msDownTimerMs;
      this.#nextMasterReason = "master-down";
      this.#log(out, "info", "Entering BACKUP STATE (init)");
      this.#setState(out, VrrpState.BACKUP, "startup");
    }
    return out;
  }

  /**
   * A validated advert for our VRID arrived. Ignored in INIT and FAULT. Receive counters
   * (advert_rcvd, pri_zero_rcvd, ...) are counted by validation, not here.
   */
  onAdvert(now: number, adv: RxAdvert): VrrpAction[] {
    const out: VrrpAction[] = [];
    if (this.#state === VrrpState.MASTER) this.#checkStall(now, out);
    if (this.#state !== VrrpState.BACKUP && this.#state !== VrrpState.MASTER) return out;
    // Normally already dropped by validation (owner_ignored); kept so the core is safe alone.
    if (this.params.ownerIgnoreAdverts && this.params.basePriority === PRIO_OWNER) return out;
    if (this.#state === VrrpState.BACKUP) this.#backupRx(now, adv, out);
    else this.#masterRx(now, adv, out);
    return out;
  }

  /** The deadline from `nextDeadline()` has been reached (calling it early is harmless). */
  onTimer(now: number): VrrpAction[] {
    const out: VrrpAction[] = [];
    if (this.#state === VrrpState.MASTER) {
      this.#checkStall(now, out);
    }
    if (this.#state === VrrpState.MASTER) {
      for (const r of this.#announce.due(now)) out.push({ type: "announce", reason: r.reason, rounds: r.rounds });
    }
    if (this.#deadline === undefined || now < this.#deadline) return out;
    if (this.#state === VrrpState.BACKUP) {
      this.#gotoMaster(now, out);
    } else if (this.#state === VrrpState.MASTER) {
      this.#sendAdvert(now, this.#effectivePriority, out);
      const period = csToMs(this.params.adverIntCs);
      // Anchored to the previous deadline so adverts don't drift; after a stall, restart from now.
      const next = this.#deadline + period;
      this.#deadline = next > now ? next : now + period;
    }
    return out;
  }

  /**
   * Sets the tracker total (base ± weights). The effective priority is that clamped to
   * [1,254] (owner: always 255). While BACKUP the running down timer moves by the change
   * in Master_Down_Interval; a MASTER's next advert carries the new priority.
   */
  setTotalPriority(now: number, total: number): VrrpAction[] {
    void now;
    const out: VrrpAction[] = [];
    const next = effectivePriority(this.params.basePriority, total);
    const prev = this.#effectivePriority;
    if (next === prev) return out;
    const oldMdi = this.masterDownIntervalMs();
    this.#effectivePriority = next;
    const delta = this.masterDownIntervalMs() - oldMdi;
    this.#log(out, "info", `Changing effective priority from ${prev} to ${next}`);
    if (this.#state === VrrpState.BACKUP && this.#deadline !== undefined) {
      this.#msDownTimerMs = Math.max(0, this.#msDownTimerMs + delta);
      this.#deadline += delta;
    }
    out.push({ type: "priority-change", from: prev, to: next });
    return out;
  }

  /**
   * Raises (`on`) or clears a named fault reason (interface down, weight-0 tracker failed,
   * ...). The first reason puts the instance in FAULT (a MASTER resigns with priority 0);
   * clearing the last one brings it back to BACKUP.
   */
  setFault(now: number, reason: string, on: boolean): VrrpAction[] {
    const out: VrrpAction[] = [];
    if (on) {
      if (this.#faults.has(reason)) return out;
      this.#faults.add(reason);
      if (this.#faults.size > 1 || this.#state === VrrpState.INIT || this.#state === VrrpState.FAULT) return out;
      this.#enterFault(now, out, "fault");
      return out;
    }
    if (!this.#faults.delete(reason)) return out;
    if (this.#faults.size > 0 || this.#groupFault || this.#state !== VrrpState.FAULT) return out;
    this.#leaveFault(now, out, "fault-cleared");
    return out;
  }

  /**
   * Sync group hold: `on` puts the instance in FAULT like a fault of its own (a MASTER resigns
   * with priority 0), tagged `followsGroup`; releasing it with no fault of its own left brings
   * it back to BACKUP. Before `start` it is only recorded.
   */
  setGroupFault(now: number, on: boolean): VrrpAction[] {
    const out: VrrpAction[] = [];
    if (on === this.#groupFault) return out;
    this.#groupFault = on;
    if (on) {
      if (this.#faults.size > 0 || this.#state === VrrpState.INIT || this.#state === VrrpState.FAULT) return out;
      this.#enterFault(now, out, "sync-group", true);
      return out;
    }
    if (this.#faults.size > 0 || this.#state !== VrrpState.FAULT) return out;
    this.#leaveFault(now, out, "sync-group", true);
    return out;
  }

  /**
   * Sync group: another member went MASTER with every member agreeing, so this BACKUP member
   * goes MASTER now (advert, addresses, GARP/NA), reporting the trigger's `reason`.
   */
  forceMaster(now: number, reason: TransitionReason): VrrpAction[] {
    const out: VrrpAction[] = [];
    if (this.#state !== VrrpState.BACKUP) return out;
    this.#becomeMaster(now, out, reason, true);
    return out;
  }

  /**
   * A MASTER steps down to BACKUP (addresses removed, no priority-0 advert, full down timer):
   * its sync group went BACKUP ("sync-group"), or one of its VIPs was deleted by someone else
   * ("address-removed", keepalived's set_vrrp_backup: a new election puts it back). Other
   * states are left alone.
   */
  forceBackup(now: number, reason: "sync-group" | "address-removed" = "sync-group"): VrrpAction[] {
    const out: VrrpAction[] = [];
    if (this.#state !== VrrpState.MASTER) return out;
    this.#log(out, "info", "Entering BACKUP STATE");
    this.#leaveMaster(out, VrrpState.BACKUP, reason, reason === "sync-group");
    this.#wantsMaster = false;
    this.#preemptUntil = undefined;
    this.#masterAdverIntCs = this.params.adverIntCs;
    this.#nextMasterReason = "master-down";
    this.#restartDownTimer(now);
    return out;
  }

  /**
   * Sync group: another member, as MASTER, heard a lower-priority advert; a MASTER sends its
   * own `garp_lower_prio_repeat` GARP/NA rounds too (and schedules the delayed ones).
   */
  announceLowerPriority(now: number): VrrpAction[] {
    if (this.#state !== VrrpState.MASTER) return [];
    return this.#announce.lowerPriority(now).map((r) => ({ type: "announce" as const, reason: r.reason, rounds: r.rounds }));
  }

  /** Enters FAULT from BACKUP or MASTER (a MASTER resigns with priority 0). */
  #enterFault(now: number, out: VrrpAction[], reason: TransitionReason, followsGroup = false): void {
    this.#wantsMaster = false;
    this.#log(out, "info", "Entering FAULT STATE");
    if (this.#state === VrrpState.MASTER) {
      this.#sendAdvert(now, PRIO_STOP, out);
      this.#leaveMaster(out, VrrpState.FAULT, reason, followsGroup);
    } else {
      this.#setState(out, VrrpState.FAULT, reason, followsGroup);
    }
    this.#masterAdverIntCs = this.params.adverIntCs;
    this.#msDownTimerMs = this.masterDownIntervalMs();
    this.#deadline = undefined;
  }

  /** FAULT → BACKUP with a fresh down timer (the owner wanting MASTER only waits adver_int + skew). */
  #leaveFault(now: number, out: VrrpAction[], reason: TransitionReason, followsGroup = false): void {
    const p = this.params;
    this.#masterAdverIntCs = p.adverIntCs;
    this.#preemptUntil = undefined;
    this.#masterAddress = undefined;
    if (p.basePriority === PRIO_OWNER && p.wantState === "MASTER") {
      // The owner only waits one interval (plus skew) to hear whether someone else is master.
      this.#msDownTimerMs = csToMs(this.#masterAdverIntCs) + this.skewTimeMs();
      this.#nextMasterReason = "preempt";
    } else {
      this.#msDownTimerMs = this.masterDownIntervalMs();
      this.#nextMasterReason = "master-down";
    }
    this.#deadline = now + this.#msDownTimerMs;
    this.#log(out, "info", "Entering BACKUP STATE");
    this.#setState(out, VrrpState.BACKUP, reason, followsGroup);
  }

  /**
   * Reload: takes new parameters and keeps the state (keepalived's reload of a matched
   * instance). Identical parameters change nothing. Otherwise the effective priority restarts
   * from the new base (trackers re-apply theirs), and a MASTER advertises at once with the
   * new values; a BACKUP keeps its running down timer.
   */
  reconfigure(now: number, params: InstanceParams): VrrpAction[] {
    const out: VrrpAction[] = [];
    if (JSON.stringify(params) === JSON.stringify(this.params)) return out;
    const old = this.params;
    this.params = { ...params, garp: { ...params.garp } };
    if (JSON.stringify(old.garp) !== JSON.stringify(params.garp)) this.#announce = new AnnounceSchedule(params.garp);
    if (old.basePriority !== params.basePriority) {
      this.#log(out, "info", `Changing base priority from ${old.basePriority} to ${params.basePriority}`);
      this.#effectivePriority = params.basePriority;
    }
    if (this.#state === VrrpState.MASTER) {
      this.#masterAdverIntCs = params.adverIntCs;
      this.#sendAdvert(now, this.#effectivePriority, out);
      this.#deadline = now + csToMs(params.adverIntCs);
    } else if (this.#state !== VrrpState.BACKUP) {
      this.#masterAdverIntCs = params.adverIntCs;
    }
    return out;
  }

  /** Stops the instance (shutdown/removal): a MASTER resigns with a priority-0 advert. Ends in INIT. */
  stop(now: number): VrrpAction[] {
    const out: VrrpAction[] = [];
    if (this.#state === VrrpState.INIT) return out;
    if (this.#state === VrrpState.MASTER) {
      this.#sendAdvert(now, PRIO_STOP, out);
      this.#log(out, "debug", "sent 0 priority");
      this.#announce.cancel();
      out.push({ type: "remove-addresses" });
      this.stats.release_master++;
    }
    this.#deadline = undefined;
    this.#wantsMaster = false;
    this.#setState(out, VrrpState.INIT, "stop");
    return out;
  }

  // ---- internals ------------------------------------------------------------------------

  #timerPriority(): number {
    return this.params.basePriority === PRIO_OWNER ? PRIO_OWNER : this.#effectivePriority;
  }

  #log(out: VrrpAction[], level: LogLevel, msg: string): void {
    out.push({ type: "log", level, message: `(${this.params.name}) ${msg}` });
  }

  #setState(out: VrrpAction[], to: VrrpState, reason: TransitionReason, followsGroup = false): void {
    const from = this.#state;
    this.#state = to;
    out.push(followsGroup ? { type: "state-change", from, to, reason, followsGroup } : { type: "state-change", from, to, reason });
  }

  #sendAdvert(now: number, priority: number, out: VrrpAction[]): void {
    out.push({ type: "send-advert", priority, adverIntCs: this.params.adverIntCs });
    this.stats.advert_sent++;
    if (priority === PRIO_STOP) this.stats.pri_zero_sent++;
    this.#lastAdvertSentAt = now;
  }

  /** (Re)starts the BACKUP down timer at the full Master_Down_Interval. */
  #restartDownTimer(now: number): void {
    this.#msDownTimerMs = this.masterDownIntervalMs();
    this.#deadline = now + this.#msDownTimerMs;
  }

  #adoptInterval(out: VrrpAction[], cs: number): void {
    if (this.params.version !== 3 || cs === this.#masterAdverIntCs || cs <= 0) return;
    this.#log(out, "debug", `advertisement interval updated from ${csToMs(this.#masterAdverIntCs)}ms to ${csToMs(cs)}ms by master`);
    this.#masterAdverIntCs = cs;
  }

  #backupRx(now: number, adv: RxAdvert, out: VrrpAction[]): void {
    const p = this.params;
    if (adv.priority === PRIO_STOP) {
      this.#log(out, "info", "Backup received priority 0 advertisement");
      this.#msDownTimerMs = this.skewTimeMs();
      this.#deadline = now + this.#msDownTimerMs;
      this.#nextMasterReason = "priority-zero";
      return;
    }
    const preemptDelayRunning = p.preemptDelayMs > 0 && (this.#preemptUntil === undefined || this.#preemptUntil > now);
    if (p.nopreempt || adv.priority >= this.#effectivePriority || preemptDelayRunning) {
      this.#adoptInterval(out, adv.adverIntCs);
      this.#restartDownTimer(now);
      this.#masterAddress = adv.src;
      this.#masterPriority = adv.priority;
      this.#nextMasterReason = "master-down";
      if (p.preemptDelayMs > 0) {
        if (adv.priority >= this.#effectivePriority) {
          if (this.#preemptUntil !== undefined) this.#log(out, "debug", "stop preempt delay");
          this.#preemptUntil = undefined;
        } else if (this.#preemptUntil === undefined) {
          this.#log(out, "debug", `start preempt delay (${(p.preemptDelayMs / 1000).toFixed(6)})`);
          this.#preemptUntil = now + p.preemptDelayMs;
        }
      }
      // A higher-priority master exists: we no longer want MASTER even if a group held us.
      this.#wantsMaster = false;
      return;
    }
    // Lower priority and we may preempt: let the down timer run out.
    this.#log(out, "info", `received lower priority (${adv.priority}) advert from ${adv.src} - discarding`);
    this.#masterAddress = adv.src;
    this.#nextMasterReason = "preempt";
  }

  #masterRx(now: number, adv: RxAdvert, out: VrrpAction[]): void {
    const p = this.params;
    const ours = this.#effectivePriority;
    const addrCmp = compareIp(adv.src, p.sourceAddress);
    const higher = adv.priority > ours || (adv.priority === ours && addrCmp > 0);
    const lower = adv.priority < ours || (adv.priority === ours && addrCmp < 0);

    if (adv.priority === PRIO_STOP || (p.higherPrioSendAdvert && higher)) {
      this.#sendAdvert(now, ours, out);
      this.#deadline = now + csToMs(p.adverIntCs);
      if (adv.priority === PRIO_STOP) {
        this.#log(out, "debug", "Master received priority 0 message");
        return;
      }
    }
    if (adv.priority === ours) {
      if (addrCmp === 0) {
        this.#log(out, "warning", "WARNING - equal priority advert received from remote host with our IP address.");
      } else if (ours === PRIO_OWNER) {
        this.#log(out, "warning", `CONFIGURATION ERROR: local instance and ${adv.src} are both configured as address owner, please resolve`);
      }
    }
    if (lower) {
      this.#log(out, "info", `Received advert from ${adv.src} with lower priority ${adv.priority}, ours ${ours}${p.lowerPrioNoAdvert ? "" : ", forcing new election"}`);
      if (!p.lowerPrioNoAdvert) {
        this.#sendAdvert(now, ours, out);
        this.#deadline = now + csToMs(p.adverIntCs);
      }
      for (const r of this.#announce.lowerPriority(now)) out.push({ type: "announce", reason: r.reason, rounds: r.rounds });
      out.push({ type: "master-rx-lower-prio", src: adv.src, priority: adv.priority });
      return;
    }
    if (higher) {
      if (adv.priority > ours && p.basePriority !== PRIO_OWNER) {
        this.#log(out, "info", `Master received advert from ${adv.src} with higher priority ${adv.priority}, ours ${ours}`);
      } else {
        this.#log(out, "info", `Master received advert from ${adv.src} with same priority ${adv.priority} but higher IP address than ours`);
      }
      this.#adoptInterval(out, adv.adverIntCs);
      this.#masterAddress = adv.src;
      this.#masterPriority = adv.priority;
      this.#log(out, "info", "Entering BACKUP STATE");
      this.#leaveMaster(out, VrrpState.BACKUP, "higher-priority");
      this.#preemptUntil = undefined;
      this.#nextMasterReason = "master-down";
      this.#restartDownTimer(now);
    }
    // Equal priority from our own address: warned above, otherwise ignored.
  }

  /** Common part of MASTER → BACKUP/FAULT: drop addresses and bursts, then report. */
  #leaveMaster(out: VrrpAction[], to: VrrpState, reason: TransitionReason, followsGroup = false): void {
    this.#announce.cancel();
    out.push({ type: "remove-addresses" });
    this.stats.release_master++;
    this.#setState(out, to, reason, followsGroup);
  }

  /** BACKUP down timer expired: become MASTER unless a sync group says to wait. */
  #gotoMaster(now: number, out: VrrpAction[]): void {
    if (!this.#canGoMaster(this)) {
      // Held in BACKUP by the group: keep waiting a full Master_Down_Interval (keepalived's
      // vrrp_sync_can_goto_master), still wanting MASTER until an advert says otherwise.
      this.#wantsMaster = true;
      this.#restartDownTimer(now);
      return;
    }
    this.#becomeMaster(now, out, this.#nextMasterReason);
  }

  /**
   * BACKUP → MASTER: advert first (so the old master drops the VIPs before our GARPs),
   * then addresses, then the GARP/NA burst, then the report.
   */
  #becomeMaster(now: number, out: VrrpAction[], reason: TransitionReason, followsGroup = false): void {
    const p = this.params;
    this.#wantsMaster = false;
    this.#masterAdverIntCs = p.adverIntCs;
    this.#sendAdvert(now, this.#effectivePriority, out);
    this.#deadline = now + csToMs(p.adverIntCs);
    this.#log(out, "info", "Entering MASTER STATE");
    this.stats.become_master++;
    out.push({ type: "add-addresses" });
    for (const r of this.#announce.becomeMaster(now)) out.push({ type: "announce", reason: r.reason, rounds: r.rounds });
    this.#masterAddress = p.sourceAddress;
    this.#masterPriority = this.#effectivePriority;
    this.#setState(out, VrrpState.MASTER, reason, followsGroup);
  }

  /**
   * timer_expired_backup: if we (a nopreempt MASTER) have not sent an advert for longer than
   * the configured other router needs to take over, assume it did and step down.
   */
  #checkStall(now: number, out: VrrpAction[]): void {
    const p = this.params;
    if (p.timerExpiredBackupPrio <= 0 || this.#lastAdvertSentAt === undefined) return;
    const limit = stallLimitMs(p.version, p.adverIntCs, p.timerExpiredBackupPrio);
    const silent = now - this.#lastAdvertSentAt;
    if (silent < limit) return;
    const late = Math.max(0, silent - csToMs(p.adverIntCs)) / 1000;
    out.push({ type: "log", level: "info", message: `VRRP thread timer expired ${late.toFixed(6)} seconds ago` });
    this.#log(out, "info", "Entering BACKUP STATE");
    this.#leaveMaster(out, VrrpState.BACKUP, "stall");
    this.#preemptUntil = undefined;
    this.#masterAdverIntCs = p.adverIntCs;
    this.#nextMasterReason = "master-down";
    this.#restartDownTimer(now);
  }
}

/** Human name of a state ("MASTER"), for logs and status output. */
export function stateName(s: VrrpState): string {
  return STATE_NAMES[s];
}
