/**
 * VRRP timer arithmetic: Skew_Time, Master_Down_Interval and advert interval rounding,
 * computed the way keepalived computes them (integer microseconds, truncated), returned
 * in milliseconds (possibly fractional) for the monotonic-clock deadlines of the core.
 */
import type { VrrpVersion } from "./types.ts";

/** Priority of the address owner; never adjusted, always MASTER when up. */
export const PRIO_OWNER = 255;
/** Priority carried by the advert a master sends when it stops (fast takeover). */
export const PRIO_STOP = 0;
/** RFC value of the down-timer multiplier (`down_timer_adverts`). */
export const DEFAULT_DOWN_TIMER_ADVERTS = 3;
/** v3's 12-bit interval field: 1..4095 centiseconds. */
export const V3_MAX_ADVER_INT_CS = 4095;
/** v2's 8-bit interval field: 1..255 seconds. */
export const V2_MAX_ADVER_INT_S = 255;

/**
 * Skew_Time in ms. v2: (256 − P)/256 s, independent of the interval.
 * v3: (256 − P) × Master_Adver_Interval / 256. Truncated to whole µs like keepalived.
 */
export function skewTimeMs(version: VrrpVersion, priority: number, masterAdverIntCs: number): number {
  return skewFromFactorMs(version, 256 - priority, masterAdverIntCs);
}

/** The smallest possible skew (factor 1), used when a would-be master waits one interval. */
export function minSkewTimeMs(version: VrrpVersion, masterAdverIntCs: number): number {
  return skewFromFactorMs(version, 1, masterAdverIntCs);
}

function skewFromFactorMs(version: VrrpVersion, factor: number, masterAdverIntCs: number): number {
  // v3: factor × cs × 10000 µs / 256 = factor × cs × 625 / 16 µs (keepalived's overflow-safe form).
  const micros = version === 3
    ? Math.floor((factor * masterAdverIntCs * 625) / 16)
    : Math.floor((factor * 1_000_000) / 256);
  return micros / 1000;
}

/** Master_Down_Interval in ms = down_timer_adverts × Master_Adver_Interval + Skew_Time. */
export function masterDownIntervalMs(
  version: VrrpVersion,
  priority: number,
  masterAdverIntCs: number,
  downTimerAdverts: number = DEFAULT_DOWN_TIMER_ADVERTS,
): number {
  return downTimerAdverts * masterAdverIntCs * 10 + skewTimeMs(version, priority, masterAdverIntCs);
}

/** Converts an interval in centiseconds to milliseconds. */
export function csToMs(cs: number): number {
  return cs * 10;
}

/** Result of fitting a configured advert_int to what the version can carry. */
export interface RoundedInterval {
  /** Interval in centiseconds (v2: a multiple of 100). */
  cs: number;
  /** keepalived-style config warning when the value had to be changed. */
  warning?: string;
}

/**
 * Fits a configured `advert_int` (seconds, µs resolution) to the wire: v2 rounds half-up to
 * whole seconds in 1..255; v3 rounds half-up to centiseconds in 1..4095.
 */
export function roundAdverInt(version: VrrpVersion, seconds: number): RoundedInterval {
  const micros = Math.round(seconds * 1_000_000);
  if (version === 2) {
    if (micros >= 256 * 1_000_000) {
      return { cs: V2_MAX_ADVER_INT_S * 100, warning: `VRRPv2 advertisement interval ${fmt2(seconds)}s is out of range. Must be less than 256s. Setting to 255s` };
    }
    if (micros % 1_000_000 !== 0) {
      let s = Math.floor((micros + 500_000) / 1_000_000);
      if (s === 0) s = 1;
      return { cs: s * 100, warning: `VRRPv2 advertisement interval ${seconds.toFixed(6)}s must be an integer. rounding` };
    }
    return { cs: Math.max(1, micros / 1_000_000) * 100 };
  }
  if (micros >= (V3_MAX_ADVER_INT_CS + 1) * 10_000) {
    return { cs: V3_MAX_ADVER_INT_CS, warning: `VRRPv3 advertisement interval ${fmt2(seconds)}s is out of range. Must be less than 40.96s. Setting to 40.95s` };
  }
  if (micros % 10_000 !== 0) {
    let cs = Math.floor((micros + 5_000) / 10_000);
    if (cs === 0) cs = 1;
    else if (cs > V3_MAX_ADVER_INT_CS) cs = V3_MAX_ADVER_INT_CS;
    return { cs, warning: `VRRPv3 advertisement interval ${seconds.toFixed(6)}s must be in units of 10ms - rounding` };
  }
  return { cs: Math.max(1, micros / 10_000) };
}

function fmt2(n: number): string {
  return n.toFixed(2);
}

/**
 * Clamps a tracker total to the effective priority: [1,254], except that the owner's
 * base priority 255 is never adjusted.
 */
export function effectivePriority(basePriority: number, totalPriority: number): number {
  if (basePriority === PRIO_OWNER) return PRIO_OWNER;
  if (totalPriority < 1) return 1;
  if (totalPriority >= PRIO_OWNER) return PRIO_OWNER - 1;
  return Math.trunc(totalPriority);
}

/**
 * How long a nopreempt MASTER (`timer_expired_backup PRIO`) may go without sending before
 * it must assume another router took over: 3 × adver_int + skew of `highestOtherPriority`.
 */
export function stallLimitMs(version: VrrpVersion, adverIntCs: number, highestOtherPriority: number): number {
  return 3 * adverIntCs * 10 + skewTimeMs(version, highestOtherPriority, adverIntCs);
}
