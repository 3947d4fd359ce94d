/**
 * The life of virtual and real servers, as keepalived's ipwrapper.c runs it: a real server is
 * alive when all its checkers are up; its weight is the configured one plus the dynamic
 * checkers' deltas; quorum (with hysteresis) over the alive weights brings the sorry server in
 * and out; notifies, quorum scripts and omega's shutdown notifies come out as actions. The
 * kernel is not touched here: `pool()` says which destinations each virtual server should
 * have at which weight, and the reconciler makes the kernel match. Pure, no clock: times come
 * in as arguments.
 */
import { IPVS_WEIGHT_MAX, type RealServerSpec, type VirtualServerSpec, destinationFor } from "./desired.ts";
import type { IpvsDestination, IpvsService } from "./ipvs-types.ts";

/** What the daemon must do after a lifecycle change (run scripts, write FIFO lines, mail, log). */
export type LifecycleAction =
  /** A real server went up or down: notify_up/notify_down, the FIFO `RS … UP|DOWN` line; `removed` also mails "Removing"/"Shutting down". */
  | { type: "rs"; vs: VirtualServerSpec; rs: RealServerSpec; up: boolean; stopping: boolean; removed?: "reload" | "stop" }
  /** Quorum gained or lost (or the start-up state): quorum_up/quorum_down, the FIFO `VS … UP|DOWN` line, the virtual server email. */
  | { type: "vs"; vs: VirtualServerSpec; up: boolean; init: boolean; threshold: number; weightSum: number; stopping: boolean }
  | { type: "log"; message: string };

/** One checker's state. */
export interface CheckerState {
  up: boolean;
  /** Has reported at least once. */
  hasRun: boolean;
  /** Contribution to the real server's weight (misc_dynamic, FILE_CHECK): keepalived's cur_weight. */
  weightDelta: number;
  detail?: string;
  latencyMs?: number;
  /** Monotonic ms of the last up/down change (or of the first report). */
  since?: number;
}

/** One real server's state. */
export interface RealServerState {
  alive: boolean;
  checkers: CheckerState[];
}

/** One virtual server's state. */
export interface VirtualServerState {
  quorumUp: boolean;
  /** The sorry server is in the pool (quorum lost and a sorry server configured). */
  sorryActive: boolean;
  /** ha_suspend: checkers are off because no service address is local. */
  suspended: boolean;
  rs: Map<string, RealServerState>;
}

/** A destination a virtual server should have in the kernel. */
export interface PoolEntry {
  rs: RealServerSpec;
  weight: number;
  sorry: boolean;
}

/** What the reconciler should make true: every service with its destinations. */
export interface DesiredService {
  service: IpvsService;
  dests: IpvsDestination[];
  /** The virtual server's key. */
  vs: string;
}

/** keepalived's real_weight: the effective weight clamped to what IPVS takes. */
export function realWeight(w: number): number {
  return w < 0 ? 0 : w > IPVS_WEIGHT_MAX ? IPVS_WEIGHT_MAX : w;
}

/** keepalived's misc_dynamic: exit status 2..255 sets the weight to status − 2, as a delta from the configured weight. */
export function miscDynamicDelta(exitStatus: number, configuredWeight: number): number {
  return exitStatus >= 2 && exitStatus <= 255 ? exitStatus - 2 - configuredWeight : 0;
}

/**
 * ha_suspend: whether a virtual server's checkers must be off, i.e. it has ha_suspend and none
 * of its service addresses is configured locally (the node is a BACKUP). fwmark-only servers never suspend.
 */
export function haSuspended(vs: Pick<VirtualServerSpec, "haSuspend" | "addresses">, localAddresses: ReadonlySet<string>): boolean {
  if (!vs.haSuspend || vs.addresses.length === 0) return false;
  return !vs.addresses.some((a) => localAddresses.has(a));
}

export interface LifecycleOptions {
  /** global rs_init_notifies: notify for real servers that start alive. */
  rsInitNotifies?: boolean;
}

/** The virtual/real server state machine of all configured virtual servers. */
export class LvsLifecycle {
  private specs = new Map<string, VirtualServerSpec>();
  private states = new Map<string, VirtualServerState>();
  private started = false;

  constructor(specs: VirtualServerSpec[], private readonly opts: LifecycleOptions = {}) {
    for (const s of specs) this.specs.set(s.key, s);
  }

  /** The configured virtual servers, in order. */
  virtualServers(): VirtualServerSpec[] {
    return [...this.specs.values()];
  }

  /** Initial states (alpha checkers down, the rest up) and the start-up quorum evaluation. */
  start(now = 0): LifecycleAction[] {
    const out: LifecycleAction[] = [];
    this.started = true;
    for (const vs of this.specs.values()) {
      const st = this.initState(vs, out, now);
      this.states.set(vs.key, st);
      this.updateQuorum(vs, st, true, out);
    }
    return out;
  }

  private initState(vs: VirtualServerSpec, out: LifecycleAction[], now: number): VirtualServerState {
    const st: VirtualServerState = { quorumUp: false, sorryActive: false, suspended: false, rs: new Map() };
    for (const rs of vs.realServers) st.rs.set(rs.key, this.initRs(vs, rs, out, now));
    return st;
  }

  private initRs(vs: VirtualServerSpec, rs: RealServerSpec, out: LifecycleAction[], now: number): RealServerState {
    const checkers = rs.checkers.map((c): CheckerState => ({ up: !c.alpha, hasRun: false, weightDelta: 0, since: now }));
    const alive = checkers.every((c) => c.up);
    if (alive && this.opts.rsInitNotifies) out.push({ type: "rs", vs, rs, up: true, stopping: false });
    return { alive, checkers };
  }

  private weightOf(rs: RealServerSpec, st: RealServerState): number {
    return rs.weight + st.checkers.reduce((s, c) => s + c.weightDelta, 0);
  }

  /** Sum of the alive real servers' weights (keepalived's weigh_live_realservers). */
  weightSum(vsKey: string): number {
    const vs = this.specs.get(vsKey);
    const st = this.states.get(vsKey);
    if (!vs || !st) return 0;
    let sum = 0;
    for (const rs of vs.realServers) {
      const r = st.rs.get(rs.key)!;
      if (r.alive) sum += realWeight(this.weightOf(rs, r));
    }
    return sum;
  }

  private updateQuorum(vs: VirtualServerSpec, st: VirtualServerState, init: boolean, out: LifecycleAction[]): void {
    const weightSum = this.weightSum(vs.key);
    const threshold = vs.quorum + (st.quorumUp ? -1 : 1) * vs.hysteresis;
    if (!st.quorumUp && weightSum >= threshold) {
      st.quorumUp = true;
      out.push({ type: "log", message: `Gained quorum ${vs.quorum}+${vs.hysteresis}=${threshold} <= ${weightSum} for VS ${vs.label}` });
      if (vs.sorry && st.sorryActive) {
        out.push({ type: "log", message: `${vs.sorry.inhibit ? "Disabling" : "Removing"} sorry server ${vs.sorry.key} from VS ${vs.label}` });
        out.push({ type: "log", message: `Adding alive servers to the pool for VS ${vs.label}` });
        st.sorryActive = false;
      }
      out.push({ type: "vs", vs, up: true, init, threshold, weightSum, stopping: false });
    } else if ((st.quorumUp && (!weightSum || weightSum < threshold)) || (init && !st.quorumUp && vs.sorry && !st.sorryActive)) {
      st.quorumUp = false;
      out.push({ type: "log", message: `${init ? "Starting with quorum down" : "Lost quorum"} ${vs.quorum}-${vs.hysteresis}=${threshold} > ${weightSum} for VS ${vs.label}` });
      if (vs.sorry && !st.sorryActive) {
        out.push({ type: "log", message: `Removing alive servers from the pool for VS ${vs.label}` });
        out.push({ type: "log", message: `${vs.sorry.inhibit ? "Enabling" : "Adding"} sorry server ${vs.sorry.key} to VS ${vs.label}` });
        st.sorryActive = true;
      }
      out.push({ type: "vs", vs, up: false, init, threshold, weightSum, stopping: false });
    }
  }

  private setAlive(vs: VirtualServerSpec, st: VirtualServerState, rs: RealServerSpec, r: RealServerState, alive: boolean, out: LifecycleAction[]): void {
    if (r.alive === alive) return;
    const verb = alive ? (rs.inhibit ? "Enabling" : "Adding") : rs.inhibit ? "Disabling" : "Removing";
    out.push({ type: "log", message: `${verb} service ${rs.key} ${rs.inhibit ? "of" : alive ? "to" : "from"} VS ${vs.label}` });
    r.alive = alive;
    out.push({ type: "rs", vs, rs, up: alive, stopping: false });
    this.updateQuorum(vs, st, false, out);
  }

  /** Real server specs by key, per virtual server spec (built once: lookups happen on every check result). */
  private rsByKey = new WeakMap<VirtualServerSpec, Map<string, RealServerSpec>>();
  private rsSpec(vs: VirtualServerSpec, rsKey: string): RealServerSpec | undefined {
    let m = this.rsByKey.get(vs);
    if (!m) this.rsByKey.set(vs, (m = new Map(vs.realServers.map((x) => [x.key, x]))));
    return m.get(rsKey);
  }

  private find(vsKey: string, rsKey: string): { vs: VirtualServerSpec; st: VirtualServerState; rs: RealServerSpec; r: RealServerState } | undefined {
    const vs = this.specs.get(vsKey);
    const st = this.states.get(vsKey);
    const rs = vs && this.rsSpec(vs, rsKey);
    const r = rs && st?.rs.get(rs.key);
    return vs && st && rs && r ? { vs, st, rs, r } : undefined;
  }

  /**
   * A checker's result (keepalived's update_svr_checker_state). `weightDelta`, for dynamic
   * checkers, is their new contribution to the weight (see miscDynamicDelta); a failure resets
   * it to 0. Returns the actions and the real server's alive state before and after.
   */
  checkerResult(
    vsKey: string, rsKey: string, index: number,
    r0: { up: boolean; weightDelta?: number; detail?: string; latencyMs?: number }, now = 0,
  ): { actions: LifecycleAction[]; rsWasAlive: boolean; rsIsAlive: boolean; checkerWasUp: boolean } {
    const out: LifecycleAction[] = [];
    const f = this.find(vsKey, rsKey);
    const c = f?.r.checkers[index];
    if (!f || !c) return { actions: out, rsWasAlive: false, rsIsAlive: false, checkerWasUp: false };
    const { vs, st, rs, r } = f;
    const rsWasAlive = r.alive;
    const checkerWasUp = c.up;
    if (r0.detail !== undefined) c.detail = r0.detail;
    if (r0.latencyMs !== undefined) c.latencyMs = r0.latencyMs;
    if (r0.up && r0.weightDelta !== undefined && r0.weightDelta !== c.weightDelta) this.applyDelta(vs, st, rs, r, c, r0.weightDelta, out);
    if (c.up === r0.up) {
      // First report confirming the initial state: an alpha checker's first failure still notifies DOWN.
      if (!c.hasRun && (rs.checkers[index]!.alpha || !r0.up)) out.push({ type: "rs", vs, rs, up: r.alive, stopping: false });
      c.hasRun = true;
      return { actions: out, rsWasAlive, rsIsAlive: r.alive, checkerWasUp };
    }
    c.hasRun = true;
    c.up = r0.up;
    c.since = now;
    this.setAlive(vs, st, rs, r, r.checkers.every((x) => x.up), out);
    if (!r0.up && c.weightDelta !== 0) c.weightDelta = 0;
    return { actions: out, rsWasAlive, rsIsAlive: r.alive, checkerWasUp };
  }

  /** A dynamic checker's weight contribution changed while its state did not (FILE_CHECK value, misc_dynamic code). */
  weightUpdate(vsKey: string, rsKey: string, index: number, weightDelta: number): LifecycleAction[] {
    const out: LifecycleAction[] = [];
    const f = this.find(vsKey, rsKey);
    const c = f?.r.checkers[index];
    if (f && c && c.weightDelta !== weightDelta) this.applyDelta(f.vs, f.st, f.rs, f.r, c, weightDelta, out);
    return out;
  }

  private applyDelta(vs: VirtualServerSpec, st: VirtualServerState, rs: RealServerSpec, r: RealServerState, c: CheckerState, delta: number, out: LifecycleAction[]): void {
    const before = realWeight(this.weightOf(rs, r));
    c.weightDelta = delta;
    const after = realWeight(this.weightOf(rs, r));
    if (before === after) return;
    out.push({ type: "log", message: `Changing weight from ${before} to ${after} for ${r.alive ? "" : "in"}active service ${rs.key} of VS ${vs.label}` });
    this.updateQuorum(vs, st, false, out);
  }

  /** ha_suspend: records whether a virtual server's checkers are suspended; true if that changed. */
  setSuspended(vsKey: string, suspended: boolean): boolean {
    const st = this.states.get(vsKey);
    if (!st || st.suspended === suspended) return false;
    st.suspended = suspended;
    return true;
  }

  /**
   * The destinations a virtual server should have now: alive servers at their weight,
   * failed inhibit_on_failure servers at 0, and while the sorry server is in, only it (alive
   * inhibit servers stay at 0); a sorry_server_inhibit sorry server sits at 0 otherwise.
   */
  pool(vsKey: string): PoolEntry[] {
    const vs = this.specs.get(vsKey);
    const st = this.states.get(vsKey);
    if (!vs || !st) return [];
    const out = new Map<string, PoolEntry>();
    for (const rs of vs.realServers) {
      const r = st.rs.get(rs.key)!;
      if (st.sorryActive) {
        if (rs.inhibit) out.set(rs.key, { rs, weight: 0, sorry: false });
      } else if (r.alive) out.set(rs.key, { rs, weight: realWeight(this.weightOf(rs, r)), sorry: false });
      else if (rs.inhibit) out.set(rs.key, { rs, weight: 0, sorry: false });
    }
    if (vs.sorry) {
      if (st.sorryActive) out.set(vs.sorry.key, { rs: vs.sorry, weight: realWeight(vs.sorry.weight), sorry: true });
      else if (vs.sorry.inhibit && !out.has(vs.sorry.key)) out.set(vs.sorry.key, { rs: vs.sorry, weight: 0, sorry: true });
    }
    return [...out.values()];
  }

  /** Every service of every virtual server with its destinations (empty before start). */
  desiredServices(): DesiredService[] {
    if (!this.started) return [];
    const out: DesiredService[] = [];
    for (const vs of this.specs.values()) {
      const pool = this.pool(vs.key);
      for (const service of vs.services) out.push({ vs: vs.key, service, dests: pool.map((p) => destinationFor(service, p.rs, p.weight)) });
    }
    return out;
  }

  /**
   * Shutdown (keepalived's clear_services): alive real servers are marked down and, with omega,
   * their notify_down and "Shutting down" mail go out, then the virtual servers' quorum_down.
   * With a flush on stop only the virtual server notifies run. The pool becomes empty.
   */
  stop(flushOnStop: "none" | "full" | "vs" = "none"): LifecycleAction[] {
    const out: LifecycleAction[] = [];
    for (const vs of this.specs.values()) {
      const st = this.states.get(vs.key);
      if (!st) continue;
      if (flushOnStop === "none") {
        for (const rs of vs.realServers) {
          const r = st.rs.get(rs.key)!;
          out.push({ type: "log", message: `Shutting down ${rs.inhibit && !r.alive ? "(inhibited) " : ""}service ${rs.key} from VS ${vs.label}` });
          if (!r.alive) continue;
          r.alive = false;
          if (vs.omega) out.push({ type: "rs", vs, rs, up: false, stopping: true, removed: "stop" });
        }
      }
      const weightSum = this.weightSum(vs.key);
      st.quorumUp = false;
      st.sorryActive = false;
      if (vs.omega) out.push({ type: "vs", vs, up: false, init: false, threshold: vs.quorum - vs.hysteresis, weightSum, stopping: true });
    }
    this.started = false;
    return out;
  }

  /**
   * Reload: new virtual servers start fresh; unchanged ones (same key) keep quorum, sorry and
   * the states of real servers that are still configured; removed alive real servers notify
   * DOWN with a "Removing" mail. Quorum is re-evaluated (as at start) for every server.
   */
  reload(specs: VirtualServerSpec[], now = 0): LifecycleAction[] {
    const out: LifecycleAction[] = [];
    const oldSpecs = this.specs;
    const oldStates = this.states;
    this.specs = new Map(specs.map((s) => [s.key, s]));
    this.states = new Map();
    for (const [key, vs] of oldSpecs) {
      if (this.specs.has(key)) continue;
      const st = oldStates.get(key);
      if (!st) continue;
      for (const rs of vs.realServers) if (st.rs.get(rs.key)?.alive) out.push({ type: "rs", vs, rs, up: false, stopping: false, removed: "reload" });
      out.push({ type: "log", message: `Removing Virtual Server ${vs.label}` });
    }
    for (const vs of this.specs.values()) {
      const oldVs = oldSpecs.get(vs.key);
      const old = oldStates.get(vs.key);
      if (!old || !oldVs) {
        const st = this.initState(vs, out, now);
        this.states.set(vs.key, st);
        if (this.started) this.updateQuorum(vs, st, true, out);
        continue;
      }
      const st: VirtualServerState = { quorumUp: old.quorumUp, sorryActive: old.sorryActive && !!vs.sorry, suspended: old.suspended, rs: new Map() };
      for (const rs of vs.realServers) {
        const prev = old.rs.get(rs.key);
        const prevSpec = oldVs.realServers.find((x) => x.key === rs.key);
        if (prev && prevSpec && sameCheckers(prevSpec, rs)) st.rs.set(rs.key, prev);
        else st.rs.set(rs.key, this.initRs(vs, rs, out, now));
      }
      for (const rs of oldVs.realServers) {
        if (!st.rs.has(rs.key) && old.rs.get(rs.key)?.alive) {
          out.push({ type: "log", message: `Removing service ${rs.key} from VS ${vs.label}` });
          out.push({ type: "rs", vs, rs, up: false, stopping: false, removed: "reload" });
        }
      }
      this.states.set(vs.key, st);
      if (this.started) this.updateQuorum(vs, st, true, out);
    }
    return out;
  }

  /** The state of one virtual server (for status), or undefined. */
  state(vsKey: string): Readonly<VirtualServerState> | undefined {
    return this.states.get(vsKey);
  }

  /** A real server's effective weight (configured + dynamic deltas, clamped). */
  effectiveWeight(vsKey: string, rsKey: string): number {
    const f = this.find(vsKey, rsKey);
    return f ? realWeight(this.weightOf(f.rs, f.r)) : 0;
  }
}

/** Same checker list (types and alpha), so the old states still mean the same thing. */
function sameCheckers(a: RealServerSpec, b: RealServerSpec): boolean {
  return a.checkers.length === b.checkers.length && a.checkers.every((c, i) => c.type === b.checkers[i]!.type);
}

