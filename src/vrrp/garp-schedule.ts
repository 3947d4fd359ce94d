/**
 * When gratuitous ARP / unsolicited NA rounds are due (reference §2.7).
 *
 * Two pure, clock-free pieces:
 * - `AnnounceSchedule` (one per VRRP instance) says how many rounds to send and when:
 *   the burst on becoming MASTER, the second burst after `garp_master_delay`, the periodic
 *   refresh, and the bursts after a lower-priority advert.
 * - `GarpPacer` (one per base interface and message kind) spaces individual messages by
 *   `vrrp_garp_interval` / `vrrp_gna_interval`, queueing what cannot go out yet.
 */

/** Per-instance announcement settings; times in ms, 0 = disabled. */
export interface GarpParams {
  /** `garp_master_repeat`: rounds sent on becoming MASTER and again after the delay (5). */
  masterRepeat: number;
  /** `garp_master_delay`: when the second burst goes out after becoming MASTER (5000; 0 = none). */
  masterDelayMs: number;
  /** `garp_master_refresh`: period of refresh rounds while MASTER (0 = off). */
  masterRefreshMs: number;
  /** `garp_master_refresh_repeat`: rounds per refresh (1). */
  masterRefreshRepeat: number;
  /** `garp_lower_prio_repeat`: rounds when a MASTER hears a lower-priority advert (= masterRepeat). */
  lowerPrioRepeat: number;
  /** `garp_lower_prio_delay`: delayed second lower-priority burst (= masterDelayMs; 0 = none). */
  lowerPrioDelayMs: number;
}

/** keepalived's defaults (vrrp_garp_master_delay 5 s, repeat 5, refresh off). */
export const DEFAULT_GARP_PARAMS: Readonly<GarpParams> = {
  masterRepeat: 5,
  masterDelayMs: 5000,
  masterRefreshMs: 0,
  masterRefreshRepeat: 1,
  lowerPrioRepeat: 5,
  lowerPrioDelayMs: 5000,
};

/** Why a set of rounds is being sent. */
export type AnnounceReason = "master" | "master-delayed" | "refresh" | "lower-prio" | "lower-prio-delayed";

/** "Send `rounds` rounds of one GARP/NA per VIP and eVIP". */
export interface AnnounceRounds {
  reason: AnnounceReason;
  rounds: number;
}

interface OneShot {
  at: number;
  reason: AnnounceReason;
  rounds: number;
}

/** Timed announcement bursts of one instance while it is MASTER. */
export class AnnounceSchedule {
  #params: GarpParams;
  #oneShots: OneShot[] = [];
  #refreshAt: number | undefined;

  constructor(params: GarpParams) {
    this.#params = { ...params };
  }

  /** Becoming MASTER (addresses just added): the immediate burst; arms the delayed burst and refresh. */
  becomeMaster(now: number): AnnounceRounds[] {
    this.cancel();
    const p = this.#params;
    if (p.masterDelayMs > 0 && p.masterRepeat > 0) {
      this.#oneShots.push({ at: now + p.masterDelayMs, reason: "master-delayed", rounds: p.masterRepeat });
    }
    // keepalived starts the refresh clock after the delayed burst.
    if (p.masterRefreshMs > 0 && p.masterRefreshRepeat > 0) this.#refreshAt = now + p.masterDelayMs + p.masterRefreshMs;
    return p.masterRepeat > 0 ? [{ reason: "master", rounds: p.masterRepeat }] : [];
  }

  /** A MASTER heard a lower-priority advert: immediate burst, plus a delayed one. */
  lowerPriority(now: number): AnnounceRounds[] {
    const p = this.#params;
    if (p.lowerPrioRepeat <= 0) return [];
    if (p.lowerPrioDelayMs > 0) {
      this.#oneShots.push({ at: now + p.lowerPrioDelayMs, reason: "lower-prio-delayed", rounds: p.lowerPrioRepeat });
    }
    return [{ reason: "lower-prio", rounds: p.lowerPrioRepeat }];
  }

  /** Rounds whose time has come (in deadline order); re-arms the refresh. */
  due(now: number): AnnounceRounds[] {
    const out: (AnnounceRounds & { at: number })[] = [];
    const keep: OneShot[] = [];
    for (const s of this.#oneShots) {
      if (s.at <= now) out.push({ reason: s.reason, rounds: s.rounds, at: s.at });
      else keep.push(s);
    }
    this.#oneShots = keep;
    const p = this.#params;
    if (this.#refreshAt !== undefined && this.#refreshAt <= now) {
      out.push({ reason: "refresh", rounds: p.masterRefreshRepeat, at: this.#refreshAt });
      // Keep the period anchored; after a long stall skip the missed refreshes rather than burst.
      let next = this.#refreshAt + p.masterRefreshMs;
      if (next <= now) next = now + p.masterRefreshMs;
      this.#refreshAt = next;
    }
    out.sort((a, b) => a.at - b.at);
    return out.map(({ reason, rounds }) => ({ reason, rounds }));
  }

  /** Earliest pending burst, if any. */
  nextDeadline(): number | undefined {
    let next = this.#refreshAt;
    for (const s of this.#oneShots) if (next === undefined || s.at < next) next = s.at;
    return next;
  }

  /** Leaving MASTER: forget every pending burst. */
  cancel(): void {
    this.#oneShots = [];
    this.#refreshAt = undefined;
  }
}

/**
 * Paces individual GARP (or NA) messages on one base interface: at most one message per
 * `intervalMs`, the rest queued round-robin per address, as keepalived's garp_delay queue
 * does. With interval 0 everything goes out at once.
 */
export class GarpPacer {
  readonly intervalMs: number;
  /** Earliest time the next message may go out (undefined: never sent yet). */
  #nextTime: number | undefined;
  /** Queue of addresses with messages still pending, in release order. */
  #queue: string[] = [];
  #pending = new Map<string, number>();

  constructor(intervalMs: number) {
    this.intervalMs = intervalMs;
  }

  /**
   * Asks for `rounds` messages for each address (VIPs then eVIPs). Returns what may be sent
   * right now, in order; the rest is queued. An address already queued is topped up to
   * `rounds` pending rather than added again.
   */
  request(now: number, addresses: readonly string[], rounds: number): string[] {
    const out: string[] = [];
    for (let j = 0; j < rounds; j++) {
      for (const addr of addresses) this.#requestOne(now, addr, rounds, out);
    }
    return out;
  }

  #requestOne(now: number, addr: string, rounds: number, out: string[]): void {
    const pending = this.#pending.get(addr) ?? 0;
    if (pending > 0) {
      if (pending < rounds) this.#pending.set(addr, pending + 1);
      return;
    }
    if (this.intervalMs > 0 && this.#nextTime !== undefined && now < this.#nextTime) {
      this.#pending.set(addr, 1);
      this.#queue.push(addr);
      return;
    }
    out.push(addr);
    if (this.intervalMs > 0) this.#nextTime = now + this.intervalMs;
  }

  /** Releases queued messages whose turn has come (at most one per interval). */
  due(now: number): string[] {
    const out: string[] = [];
    while (this.#queue.length > 0 && (this.#nextTime === undefined || now >= this.#nextTime)) {
      const addr = this.#queue.shift()!;
      out.push(addr);
      this.#nextTime = now + this.intervalMs;
      const left = (this.#pending.get(addr) ?? 1) - 1;
      if (left > 0) {
        this.#pending.set(addr, left);
        this.#queue.push(addr);
      } else {
        this.#pending.delete(addr);
      }
    }
    return out;
  }

  /** When the next queued message may go out (undefined if nothing is queued). */
  nextDeadline(): number | undefined {
    return this.#queue.length > 0 ? (this.#nextTime ?? 0) : undefined;
  }

  /** Drops queued messages for these addresses (their instance left MASTER). */
  cancel(addresses: readonly string[]): void {
    const drop = new Set(addresses);
    this.#queue = this.#queue.filter((a) => !drop.has(a));
    for (const a of drop) this.#pending.delete(a);
  }

  /** Number of messages still queued (all addresses). */
  queued(): number {
    let n = 0;
    for (const v of this.#pending.values()) n += v;
    return n;
  }
}
