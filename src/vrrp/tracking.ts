/**
 * Tracking math (reference §1.6 "Tracking", §1.8, §1.10): the rise/fall counter of a
 * vrrp_script, and how the states of tracked objects become an instance's total priority
 * and fault reasons. Pure: the daemon feeds results in and applies what comes out.
 */

/** keepalived's script counter: OK iff counter ≥ rise; range [0, rise+fall-1]. */
export interface RiseFall {
  rise: number;
  fall: number;
  counter: number;
}

/** Initial counter: rise-1 (one success suffices), or 0 with init_fail (needs `rise` successes). */
export function newRiseFall(rise: number, fall: number, initFail: boolean): RiseFall {
  return { rise, fall, counter: initFail ? 0 : rise - 1 };
}

export function isUp(rf: RiseFall): boolean {
  return rf.counter >= rf.rise;
}

/**
 * Applies one result. Success: below rise-1 counts up, else jumps to the top. Failure: above
 * rise counts down, else drops to 0. So `fall` failures in a row take an OK script down and
 * `rise` successes bring a failed one up. Returns whether the up/down state changed.
 */
export function applyResult(rf: RiseFall, success: boolean): boolean {
  const before = isUp(rf);
  const max = rf.rise + rf.fall - 1;
  if (success) rf.counter = rf.counter < rf.rise - 1 ? rf.counter + 1 : max;
  else rf.counter = rf.counter > rf.rise ? rf.counter - 1 : 0;
  return before !== isUp(rf);
}

/** One tracked object as an instance sees it. */
export interface TrackedState {
  /** "script chk_nginx", "interface eth1", "file f1", "process nginx" — used in fault reasons. */
  label: string;
  /** Effective weight (the instance's override or the object's default). */
  weight: number;
  reverse: boolean;
  /** Scripts, interfaces, processes, BFD: up/down; undefined while a script has not reported yet. */
  up?: boolean;
  /** track_file: the integer in the file (undefined while unknown). */
  value?: number;
}

export interface TrackOutcome {
  /** base + Σ adjustments (unclamped; the state machine clamps it, and never adjusts an owner). */
  total: number;
  /** Fault reasons that hold the instance in FAULT. */
  faults: string[];
}

/** Combines tracked objects into the instance's total priority and fault reasons. */
export function trackOutcome(basePriority: number, tracked: readonly TrackedState[]): TrackOutcome {
  let total = basePriority;
  const faults: string[] = [];
  for (const t of tracked) {
    if (t.value !== undefined || (t.up === undefined && t.label.startsWith("file "))) {
      // track_file: weight 0 → any non-zero value is a fault; else value × weight is added.
      const value = t.value ?? 0;
      if (t.weight === 0) {
        if (value !== 0) faults.push(`${t.label} is ${value}`);
        continue;
      }
      const adj = value * t.weight * (t.reverse ? -1 : 1);
      if (adj < -253) faults.push(`${t.label} value ${value} × weight ${t.weight} is below -253`);
      else total += adj;
      continue;
    }
    if (t.up === undefined) {
      // weight-0 objects hold the instance in FAULT until their first result
      if (t.weight === 0) faults.push(`${t.label} has not reported yet`);
      continue;
    }
    const good = t.reverse ? !t.up : t.up;
    if (t.weight === 0) {
      if (!good) faults.push(`${t.label} is down`);
    } else if (t.weight > 0) {
      if (good) total += t.weight;
    } else if (!good) {
      total -= Math.abs(t.weight);
    }
  }
  return { total, faults };
}
