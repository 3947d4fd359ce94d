/**
 * Quorum state of one vrrp_track_process: the count of matching processes → OK/FAILED,
 * OK iff quorum ≤ count ≤ quorum_max (reference §1.9), debounced by fork_delay and
 * terminate_delay. Pure: time comes in as `now` (ms, monotonic); changes come out as values.
 *
 * The delays follow keepalived (core/track_process.c), where they depend on what changed
 * the count:
 * - `fork`: a tracked process forked. Crossing into quorum (or past quorum_max) waits
 *   fork_delay, unless a terminate timer was pending (then it is cancelled: no bounce).
 * - `exec`: a process exec'd into (or changed its comm to) a match: acts at once, cancels a
 *   pending terminate timer.
 * - `exit`: a counted process exited. Leaving quorum (or returning to quorum_max) waits
 *   terminate_delay, unless a fork timer was pending (then it is cancelled).
 * - `mismatch`: a counted process exec'd or renamed into a non-match: acts at once,
 *   cancels a pending fork timer.
 * - `rescan`: a full /proc scan (start-up resync, /proc polling). A gain waits fork_delay,
 *   a loss terminate_delay; a count back on the current side cancels the pending timer.
 * A fired timer re-evaluates quorum ≤ count ≤ quorum_max with the count at that time.
 */
import type { Doc } from "../config/schema/kinds.ts";

/** Quorum bounds and delays of one tracker. */
export interface QuorumConfig {
  /** Minimum count for OK (0 only with quorum_max 0). */
  quorum: number;
  /** Maximum count for OK; Infinity when unlimited. */
  quorumMax: number;
  /** Delay before acting on a gain caused by a fork or rescan, ms. */
  forkDelayMs: number;
  /** Delay before acting on a loss caused by an exit or rescan, ms. */
  terminateDelayMs: number;
}

/** What changed a tracker's count (see the module comment for the delay each one gets). */
export type CountCause = "fork" | "exec" | "exit" | "mismatch" | "rescan";

/** A quorum state change, emitted when OK/FAILED actually flips. */
export interface QuorumChange {
  ok: boolean;
  count: number;
  /** The `now` at which the change took effect (event time or timer deadline). */
  at: number;
}

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/**
 * Reads quorum, quorum_max and the delays from a parsed vrrp_track_process, with
 * keepalived's rules: quorum default 1, quorum_max default unlimited, `quorum_max 0`
 * forces quorum 0, and `fork_delay`/`terminate_delay` override `delay`.
 */
export function quorumConfigFromDoc(doc: Doc): QuorumConfig {
  const quorumMax = num(doc.quorum_max) ?? Infinity;
  let quorum = num(doc.quorum) ?? 1;
  if (quorumMax === 0 && quorum <= 1) quorum = 0;
  else if (quorum === 0) quorum = 1; // keepalived's minimum when quorum_max is not 0
  const delay = num(doc.delay) ?? 0;
  return {
    quorum,
    quorumMax,
    forkDelayMs: Math.round((num(doc.fork_delay) ?? delay) * 1000),
    terminateDelayMs: Math.round((num(doc.terminate_delay) ?? delay) * 1000),
  };
}

/** A config error (quorum above quorum_max), or null. */
export function quorumConfigError(cfg: QuorumConfig): string | null {
  return cfg.quorum > cfg.quorumMax ? `quorum ${cfg.quorum} is greater than quorum_max ${cfg.quorumMax}` : null;
}

/** One tracker's count, quorum state and pending delay timer. */
export class ProcessQuorum {
  readonly config: QuorumConfig;
  #count: number;
  #ok: boolean;
  /** The single pending delay (keepalived never has a fork and a terminate timer at once). */
  #timer: { kind: "fork" | "terminate"; deadline: number } | null = null;

  /** Starts with `count` processes; the initial state takes effect at once (no delay), as in keepalived. */
  constructor(config: QuorumConfig, count = 0) {
    this.config = config;
    this.#count = count;
    this.#ok = this.#inRange(count);
  }

  /** The current number of matching processes. */
  get count(): number {
    return this.#count;
  }

  /** Whether the tracker is OK (has quorum) now. */
  get ok(): boolean {
    return this.#ok;
  }

  /** The deadline of the pending delay, or null; call `poll` at or after it. */
  nextDeadline(): number | null {
    return this.#timer?.deadline ?? null;
  }

  /** Which delay is pending, if any (for status output). */
  pending(): "fork" | "terminate" | null {
    return this.#timer?.kind ?? null;
  }

  /** One more matching process. Returns the change it causes, if any. */
  increment(cause: "fork" | "exec", now: number): QuorumChange | null {
    const c = ++this.#count;
    const { quorum, quorumMax } = this.config;
    if (c !== quorum && c !== quorumMax + 1) return null;
    if (cause === "fork") {
      if (this.#timer?.kind === "terminate") this.#timer = null;
      else if (this.config.forkDelayMs > 0) {
        this.#timer = { kind: "fork", deadline: now + this.config.forkDelayMs };
        return null;
      }
    } else if (this.#timer?.kind === "terminate") {
      this.#timer = null;
    }
    return this.#set(c === quorum, now);
  }

  /** One matching process fewer. Returns the change it causes, if any. */
  decrement(cause: "exit" | "mismatch", now: number): QuorumChange | null {
    if (this.#count === 0) return null;
    const c = --this.#count;
    const { quorum, quorumMax } = this.config;
    if (c + 1 !== quorum && c !== quorumMax) return null;
    if (cause === "exit") {
      if (this.#timer?.kind === "fork") this.#timer = null;
      else if (this.config.terminateDelayMs > 0) {
        this.#timer = { kind: "terminate", deadline: now + this.config.terminateDelayMs };
        return null;
      }
    } else if (this.#timer?.kind === "fork") {
      this.#timer = null;
    }
    return this.#set(c === quorumMax, now);
  }

  /** Sets the count from a full scan (`rescan` semantics). Returns the change, if any. */
  rescan(count: number, now: number): QuorumChange | null {
    this.#count = count;
    const target = this.#inRange(count);
    if (target === this.#ok) {
      this.#timer = null; // back on the current side: the pending change is void
      return null;
    }
    const kind = target ? "fork" : "terminate";
    if (this.#timer?.kind === kind) return null; // already waiting for this very change
    const delay = target ? this.config.forkDelayMs : this.config.terminateDelayMs;
    if (delay > 0) {
      this.#timer = { kind, deadline: now + delay };
      return null;
    }
    this.#timer = null;
    return this.#set(target, now);
  }

  /** Fires the pending delay if `now` has reached it. Returns the change, if any. */
  poll(now: number): QuorumChange | null {
    if (!this.#timer || now < this.#timer.deadline) return null;
    const at = this.#timer.deadline;
    this.#timer = null;
    return this.#set(this.#inRange(this.#count), at);
  }

  #inRange(c: number): boolean {
    return c >= this.config.quorum && c <= this.config.quorumMax;
  }

  #set(ok: boolean, at: number): QuorumChange | null {
    if (ok === this.#ok) return null;
    this.#ok = ok;
    return { ok, count: this.#count, at };
  }
}
