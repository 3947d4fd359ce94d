/**
 * One checker's retry/up/down state machine, as keepalived's checker epilogs (check_tcp.c
 * tcp_epilog, check_http.c epilog, check_misc.c): pure, on a caller-supplied clock.
 *
 * - The first run is due 1 s + random(0..warmup) after start.
 * - A checker that is UP and fails is retried `retry` times, `delay_before_retry` apart, and
 *   only then goes DOWN. A DOWN checker gets one attempt every `delay_loop`; one success is UP.
 * - At start the retries count as spent (check_data.c sets retry_it = retry), so a
 *   failing first check goes DOWN at once; `alpha` checkers start DOWN.
 * - HTTP: one url per run, round-robin, `delay_loop` apart; UP needs every url to pass; the url
 *   that failed is re-checked until it passes, then all urls again (fast_recovery: at once).
 */
import { prng } from "../prng.ts";
import type { CheckerTiming } from "./timing.ts";

/** How runs are scheduled. MISC_CHECK counts its interval from the start of a run, others from its end. */
export type SchedulerMode =
  | { kind: "generic"; from?: "end" | "start" }
  | { kind: "http"; urls: number; fastRecovery?: boolean };

/** What the scheduler concluded from one finished check. */
export interface CheckVerdict {
  ok: boolean;
  /** The checker's state after this check. */
  up: boolean;
  /** Set when the state changed. */
  transition?: "up" | "down";
  /** A failure that will be retried (the state holds for now). */
  retrying: boolean;
  /** Milliseconds from begin() to finish(). */
  latencyMs: number;
  /** keepalived would log this failure (a final failure, or any failure with log_all_failures). */
  logFailure: boolean;
  /** The url this check fetched (HTTP), else 0. */
  url: number;
  /** When the next check is due. */
  nextDueMs: number;
}

/** keepalived's BOOTSTRAP_DELAY: checkers start 1 s after the daemon. */
export const BOOTSTRAP_DELAY_MS = 1000;

/** The state machine of one checker; the runner calls start, then begin/finish for each check. */
export class CheckScheduler {
  up: boolean;
  hasRun = false;
  retryIt: number;
  /** HTTP: the url to fetch next (keepalived's url_it). */
  urlIt = 0;
  /** HTTP: the url that failed, while it has not passed again. */
  failedUrl: number | null = null;
  #dueAt: number | undefined;
  #beganAt: number | undefined;

  constructor(
    readonly timing: CheckerTiming,
    readonly mode: SchedulerMode = { kind: "generic" },
    private readonly rng: () => number = Math.random,
  ) {
    this.up = !timing.alpha;
    this.retryIt = timing.retry;
  }

  /** Arms the first run at now + 1 s + random(0..warmup); returns its time. */
  start(nowMs: number): number {
    const jitter = this.timing.warmupMs > 0 ? Math.floor(this.timing.warmupMs * this.rng()) : 0;
    this.#dueAt = nowMs + BOOTSTRAP_DELAY_MS + jitter;
    return this.#dueAt;
  }

  /** When the next check is due; undefined while one is running or before start. */
  get dueAtMs(): number | undefined {
    return this.#beganAt === undefined ? this.#dueAt : undefined;
  }

  /** Whether a check is running now. */
  get running(): boolean {
    return this.#beganAt !== undefined;
  }

  /** Starts a check at nowMs; returns which url to fetch (HTTP) or 0. */
  begin(nowMs: number): { url: number } {
    this.#beganAt = nowMs;
    this.#dueAt = undefined;
    return { url: this.mode.kind === "http" ? this.urlIt : 0 };
  }

  /** A disabled checker (ha_suspend) skips its turn: due again after delay_loop. */
  skip(nowMs: number): number {
    this.#beganAt = undefined;
    this.#dueAt = nowMs + this.timing.delayLoopMs;
    return this.#dueAt;
  }

  /** Records the result of the check started by begin(); returns the verdict and arms the next run. */
  finish(nowMs: number, ok: boolean): CheckVerdict {
    const began = this.#beganAt ?? nowMs;
    this.#beganAt = undefined;
    const wasUp = this.up;
    const url = this.mode.kind === "http" ? this.urlIt : 0;
    const { delay, retrying, logFailure } = this.mode.kind === "http" ? this.#http(ok, this.mode.urls, !!this.mode.fastRecovery) : this.#generic(ok);
    const base = this.mode.kind === "generic" && this.mode.from === "start" ? began : nowMs;
    this.#dueAt = Math.max(nowMs, base + delay);
    const v: CheckVerdict = { ok, up: this.up, retrying, latencyMs: nowMs - began, logFailure, url, nextDueMs: this.#dueAt };
    if (wasUp !== this.up) v.transition = this.up ? "up" : "down";
    return v;
  }

  // tcp_epilog (and udp/icmp/dns/smtp/misc, which decide alike).
  #generic(ok: boolean): { delay: number; retrying: boolean; logFailure: boolean } {
    const t = this.timing;
    let delay = t.delayLoopMs;
    let retrying = false;
    let logFailure = false;
    if (ok) {
      this.retryIt = 0;
      this.up = true;
    } else if (this.up || !this.hasRun) {
      if (this.retryIt >= t.retry) {
        this.retryIt = 0;
        logFailure = true;
        this.up = false;
      } else if (this.up) {
        this.retryIt++;
        delay = t.delayBeforeRetryMs;
        retrying = true;
        logFailure = t.logAllFailures;
      }
    }
    this.hasRun = true;
    return { delay, retrying, logFailure };
  }

  // check_http.c epilog() with REGISTER_CHECKER_NEW (success) / _RETRY / _FAILED.
  #http(ok: boolean, urls: number, fastRecovery: boolean): { delay: number; retrying: boolean; logFailure: boolean } {
    const t = this.timing;
    const n = Math.max(1, urls);
    let delay: number;
    let retrying = false;
    let logFailure = false;
    if (ok) {
      this.urlIt = this.urlIt + 1 < n ? this.urlIt + 1 : -1;
      this.retryIt = 0;
      if (this.urlIt === -1 && this.failedUrl === null) {
        // every url passed
        this.up = true;
        this.hasRun = true;
        this.urlIt = 0;
      } else if (this.failedUrl !== null) {
        // the failed url passes again: re-check them all from the first
        this.failedUrl = null;
        this.urlIt = 0;
      }
      delay = t.delayLoopMs;
      if (!this.hasRun) this.retryIt = t.retry;
    } else {
      if (this.up || !this.hasRun) {
        this.hasRun = true;
        this.retryIt++;
        if (this.retryIt > t.retry) {
          if (this.up) {
            this.up = false;
            logFailure = true;
          }
          this.failedUrl = this.urlIt;
        } else {
          retrying = true;
          logFailure = t.logAllFailures;
        }
      }
      delay = this.failedUrl !== null ? Math.max(t.delayBeforeRetryMs, t.delayLoopMs) : t.delayBeforeRetryMs;
    }
    if (fastRecovery && (!this.hasRun || (!this.up && this.failedUrl === null))) delay = 0;
    return { delay, retrying, logFailure };
  }
}

/** A deterministic RNG in [0, 1), for tests and reproducible jitter. */
export const seededRng = prng;
