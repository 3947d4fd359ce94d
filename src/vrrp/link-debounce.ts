/**
 * interface_up_down_delays, as keepalived's update_interface_flags runs it: once an interface
 * has been seen up, a change of its up/down state takes effect only after that direction's
 * delay; a change back before then cancels it, so a flapping link never reaches the
 * instances or track_interface. Pure: times come in as arguments (ms); the runtime owns the
 * timers.
 */

/** One interface's delays, in ms (0: immediate). */
export interface LinkDelays {
  downMs: number;
  upMs: number;
}

/** What the runtime must do with a link report. */
export type DebounceDecision =
  /** Apply the state now (and disarm any timer of this interface). */
  | { kind: "apply"; up: boolean }
  /** Apply `up` at `dueMs` unless a later report cancels it (arm a timer). */
  | { kind: "delay"; up: boolean; dueMs: number; log: string }
  /** The pending change was called off (disarm its timer); the applied state stands. */
  | { kind: "cancel"; log: string }
  /** Nothing changes (same state as applied, or as already pending). */
  | { kind: "none" };

interface LinkState {
  applied: boolean | undefined;
  seenUp: boolean;
  pending?: { up: boolean; dueMs: number };
}

/**
 * The largest down delay an instance tolerates: (down_timer_adverts − 1) × advert_int −
 * advert_int/256 (keepalived's check_debounce_timers), so a backup never declares a master dead
 * while the master's own link change is still being debounced. 0 when down_timer_adverts is 1.
 */
export function maxDownDelayMs(downTimerAdverts: number, adverIntMs: number): number {
  return downTimerAdverts <= 1 ? 0 : (downTimerAdverts - 1) * adverIntMs - adverIntMs / 256;
}

/**
 * Clamps configured delays to what the instances on each interface allow; returns the
 * clamped delays and keepalived's log lines for every change.
 */
export function clampDelays(delays: ReadonlyMap<string, LinkDelays>, instances: ReadonlyArray<{ name: string; ifname: string; downTimerAdverts: number; adverIntMs: number }>): { delays: Map<string, LinkDelays>; logs: string[] } {
  const out = new Map([...delays].map(([k, v]) => [k, { ...v }]));
  const logs: string[] = [];
  for (const i of instances) {
    const d = out.get(i.ifname);
    if (!d || (!d.downMs && !d.upMs)) continue;
    if (i.downTimerAdverts <= 1) {
      logs.push(`${i.name}: cannot use debounce timers with down_timer_adverts = 1 - resetting`);
      d.downMs = 0;
      d.upMs = 0;
      continue;
    }
    const max = maxDownDelayMs(i.downTimerAdverts, i.adverIntMs);
    if (d.downMs > max) {
      if (d.upMs === d.downMs) d.upMs = max;
      d.downMs = max;
      logs.push(`${i.name}: interface ${i.ifname} down delay reduced to ${max / 1000} s (down_timer_adverts ${i.downTimerAdverts} × advert_int)`);
    }
  }
  return { delays: out, logs };
}

/** The debounced up/down state of every interface with delays. */
export class LinkDebouncer {
  #delays: ReadonlyMap<string, LinkDelays>;
  #links = new Map<string, LinkState>();

  constructor(delays: ReadonlyMap<string, LinkDelays>) {
    this.#delays = delays;
  }

  /** Replaces the delays (reload); a pending change keeps its due time. */
  setDelays(delays: ReadonlyMap<string, LinkDelays>): void {
    this.#delays = delays;
  }

  /** The kernel reported `ifname` up or down at `nowMs`; `immediate` (deleted link, resync) skips the delay. */
  report(ifname: string, up: boolean, nowMs: number, immediate = false): DebounceDecision {
    let s = this.#links.get(ifname);
    if (!s) this.#links.set(ifname, (s = { applied: undefined, seenUp: false }));
    if (s.pending) {
      if (s.pending.up === up && !immediate) return { kind: "none" }; // already on its way
      s.pending = undefined;
      if (s.applied === up) return { kind: "cancel", log: `Delay timer for ${ifname} cancelled` };
    }
    if (s.applied === up) return { kind: "none" };
    const d = this.#delays.get(ifname);
    const delay = d ? (up ? d.upMs : d.downMs) : 0;
    if (s.applied !== undefined && s.seenUp && delay > 0 && !immediate) {
      s.pending = { up, dueMs: nowMs + delay };
      return { kind: "delay", up, dueMs: nowMs + delay, log: `${ifname}: ${up ? "up" : "down"} state change delayed by ${delay / 1000} s` };
    }
    this.#apply(s, up);
    return { kind: "apply", up };
  }

  /** The delay of `ifname`'s pending change ran out: the state to apply, or undefined if none is pending. */
  fire(ifname: string): boolean | undefined {
    const s = this.#links.get(ifname);
    const p = s?.pending;
    if (!s || !p) return undefined;
    s.pending = undefined;
    this.#apply(s, p.up);
    return p.up;
  }

  #apply(s: LinkState, up: boolean): void {
    s.applied = up;
    if (up) s.seenUp = true;
  }
}
