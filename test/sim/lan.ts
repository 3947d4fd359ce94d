/**
 * A simulated LAN for VRRP: N routers (each one `VrrpInstance`) on a virtual clock. Adverts
 * are multicast to every other live router in the same partition, after a per-link delay
 * (base + seeded jitter) and subject to seeded random loss. Runs simulated minutes in
 * milliseconds of real time and records every state change.
 */
import { VrrpInstance, instanceParams } from "../../src/vrrp/instance.ts";
import { prng } from "../../src/prng.ts";
export { prng };
import type { InstanceParams, VrrpAction } from "../../src/vrrp/instance.ts";
import { STATE_NAMES, VrrpState } from "../../src/vrrp/types.ts";


export interface LinkModel {
  /** One-way delay every delivery has, ms. */
  delayMs: number;
  /** Uniform extra delay in [0, jitterMs), ms. */
  jitterMs: number;
  /** Independent probability that one delivery (sender → one receiver) is lost. */
  loss: number;
  /**
   * Never lose more than this many consecutive adverts on one sender→receiver path
   * (Infinity = plain i.i.d. loss). Models the RFC's tolerance of missed adverts.
   */
  maxConsecutiveLoss: number;
}

export interface RouterSpec {
  name: string;
  address: string;
  priority: number;
  /** Overrides on top of the LAN-wide instance parameters. */
  params?: Partial<InstanceParams>;
}

export interface StateEvent {
  at: number;
  router: string;
  from: VrrpState;
  to: VrrpState;
  reason: string;
}

export interface Router {
  spec: RouterSpec;
  inst: VrrpInstance;
  alive: boolean;
  /** Holds the VIPs (add-addresses seen without a later remove-addresses). */
  hasVips: boolean;
  advertsSent: number;
  announceRounds: number;
  /** Generation of the armed timer; a fired timer with an older generation is stale. */
  timerGen: number;
  armedAt: number | undefined;
}

interface QueuedEvent {
  at: number;
  seq: number;
  run: () => void;
}

/** A binary min-heap keyed by (at, seq): deterministic ordering of simultaneous events. */
export class EventQueue {
  #h: QueuedEvent[] = [];
  push(e: QueuedEvent): void {
    const h = this.#h;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  peek(): QueuedEvent | undefined {
    return this.#h[0];
  }
  pop(): QueuedEvent | undefined {
    const h = this.#h;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
  get size(): number {
    return this.#h.length;
  }
}

function less(a: QueuedEvent, b: QueuedEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

export interface LanOptions {
  seed: number;
  link?: Partial<LinkModel>;
  /** LAN-wide instance parameters (version, interval, ...). */
  params?: Partial<InstanceParams>;
}

/** The simulated LAN. Time starts at 0 ms. */
/** A virtual clock with an event queue: what both simulated LANs run on. */
export class SimClock {
  now = 0;
  #queue = new EventQueue();
  #seq = 0;

  /** Schedules `run` at absolute time `at` (never in the past). */
  at(at: number, run: () => void): void {
    this.#queue.push({ at: Math.max(at, this.now), seq: this.#seq++, run });
  }

  /** Processes every event up to and including time `t`, then sets the clock to `t`. */
  runUntil(t: number): void {
    for (let n = 0; n < 50_000_000; n++) {
      const e = this.#queue.peek();
      if (e === undefined || e.at > t) break;
      this.#queue.pop();
      this.now = e.at;
      e.run();
    }
    this.now = t;
  }

  /** Advances the clock by `ms`. */
  run(ms: number): void {
    this.runUntil(this.now + ms);
  }
}

export class Lan extends SimClock {
  readonly routers = new Map<string, Router>();
  readonly history: StateEvent[] = [];
  link: LinkModel;
  readonly rand: () => number;
  #params: Partial<InstanceParams>;
  /** Partition id per router name; routers only hear others with the same id. */
  #partition = new Map<string, number>();
  /** Consecutive losses per "from>to" path, for maxConsecutiveLoss. */
  #lossRun = new Map<string, number>();

  constructor(specs: RouterSpec[], opts: LanOptions) {
    super();
    this.rand = prng(opts.seed);
    this.link = { delayMs: 1, jitterMs: 0, loss: 0, maxConsecutiveLoss: Infinity, ...opts.link };
    this.#params = opts.params ?? {};
    for (const spec of specs) {
      this.routers.set(spec.name, {
        spec, inst: this.#newInstance(spec), alive: false, hasVips: false,
        advertsSent: 0, announceRounds: 0, timerGen: 0, armedAt: undefined,
      });
      this.#partition.set(spec.name, 0);
    }
  }

  #newInstance(spec: RouterSpec): VrrpInstance {
    return new VrrpInstance(instanceParams({
      ...this.#params,
      name: spec.name,
      sourceAddress: spec.address,
      basePriority: spec.priority,
      ...spec.params,
    }));
  }

  #router(name: string): Router {
    const r = this.routers.get(name);
    if (!r) throw new Error(`no router ${name}`);
    return r;
  }


  /** Boots a router (a fresh process: new instance) now. */
  start(name: string): void {
    const r = this.#router(name);
    r.inst = this.#newInstance(r.spec);
    r.alive = true;
    r.hasVips = false;
    this.#apply(r, r.inst.start(this.now));
  }

  /** Kills a router abruptly: no priority-0 advert, it just goes silent. */
  kill(name: string): void {
    const r = this.#router(name);
    r.alive = false;
    r.timerGen++;
    r.armedAt = undefined;
    r.hasVips = false; // the box is gone; its VIPs with it
  }

  /** Stops a router gracefully (a MASTER sends priority 0), then it goes silent. */
  stop(name: string): void {
    const r = this.#router(name);
    this.#apply(r, r.inst.stop(this.now));
    r.alive = false;
    r.timerGen++;
    r.armedAt = undefined;
  }

  /** Feeds a tracker total into one router. */
  setPriority(name: string, total: number): void {
    const r = this.#router(name);
    this.#apply(r, r.inst.setTotalPriority(this.now, total));
  }

  /** Raises or clears a fault on one router. */
  setFault(name: string, reason: string, on: boolean): void {
    const r = this.#router(name);
    this.#apply(r, r.inst.setFault(this.now, reason, on));
  }

  /** Splits the LAN: each list is one partition; routers not listed keep partition 0. */
  partition(...groups: string[][]): void {
    for (const n of this.routers.keys()) this.#partition.set(n, 0);
    groups.forEach((g, i) => g.forEach((n) => this.#partition.set(n, i + 1)));
  }

  /** Removes every partition. */
  heal(): void {
    for (const n of this.routers.keys()) this.#partition.set(n, 0);
  }

  /** Names of live routers currently in MASTER state. */
  masters(): string[] {
    return [...this.routers.values()].filter((r) => r.alive && r.inst.state === VrrpState.MASTER).map((r) => r.spec.name);
  }

  /** State changes after time `t` (exclusive). */
  changesSince(t: number): StateEvent[] {
    return this.history.filter((e) => e.at > t);
  }

  /** Human-readable history, for failure messages. */
  describe(since = 0): string {
    return this.history.filter((e) => e.at >= since)
      .map((e) => `${e.at.toFixed(3)} ${e.router} ${STATE_NAMES[e.from]}→${STATE_NAMES[e.to]} (${e.reason})`).join("\n");
  }

  /** Checks the address invariant: a live router holds the VIPs iff it is MASTER. */
  vipInvariantViolations(): string[] {
    const bad: string[] = [];
    for (const r of this.routers.values()) {
      if (!r.alive) continue;
      const isMaster = r.inst.state === VrrpState.MASTER;
      if (r.hasVips !== isMaster) bad.push(`${r.spec.name}: state ${STATE_NAMES[r.inst.state]} but hasVips=${r.hasVips}`);
    }
    return bad;
  }

  #apply(r: Router, acts: VrrpAction[]): void {
    for (const a of acts) {
      switch (a.type) {
        case "send-advert":
          r.advertsSent++;
          this.#broadcast(r, a.priority, a.adverIntCs);
          break;
        case "add-addresses":
          r.hasVips = true;
          break;
        case "remove-addresses":
          r.hasVips = false;
          break;
        case "announce":
          r.announceRounds += a.rounds;
          break;
        case "state-change":
          this.history.push({ at: this.now, router: r.spec.name, from: a.from, to: a.to, reason: a.reason });
          break;
        default:
          break;
      }
    }
    this.#rearm(r);
  }

  #rearm(r: Router): void {
    if (!r.alive) return;
    const d = r.inst.nextDeadline();
    if (d === r.armedAt) return;
    r.armedAt = d;
    const gen = ++r.timerGen;
    if (d === undefined) return;
    this.at(d, () => {
      if (!r.alive || gen !== r.timerGen) return;
      r.armedAt = undefined;
      this.#apply(r, r.inst.onTimer(this.now));
    });
  }

  #broadcast(from: Router, priority: number, adverIntCs: number): void {
    const part = this.#partition.get(from.spec.name);
    for (const to of this.routers.values()) {
      if (to === from) continue;
      if (this.#partition.get(to.spec.name) !== part) continue;
      if (this.#lost(from.spec.name, to.spec.name)) continue;
      const delay = this.link.delayMs + this.rand() * this.link.jitterMs;
      const src = from.spec.address;
      this.at(this.now + delay, () => {
        if (!to.alive) return;
        // A partition raised while the packet was in flight also drops it.
        if (this.#partition.get(to.spec.name) !== this.#partition.get(from.spec.name)) return;
        this.#apply(to, to.inst.onAdvert(this.now, { src, priority, adverIntCs }));
      });
    }
  }

  #lost(from: string, to: string): boolean {
    const key = `${from}>${to}`;
    const run = this.#lossRun.get(key) ?? 0;
    const lost = this.link.loss > 0 && this.rand() < this.link.loss && run < this.link.maxConsecutiveLoss;
    this.#lossRun.set(key, lost ? run + 1 : 0);
    return lost;
  }
}
