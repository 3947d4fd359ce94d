/**
 * A simulated LAN for sync groups: routers that each run several VRRP instances (one per
 * VRID), optionally all in one `SyncGroup`, on a virtual clock. Adverts go to the instance
 * with the same VRID on every other live router in the same partition, with seeded delay,
 * jitter and loss (as in lan.ts). Records every member and group transition and checks,
 * after every event, that the members of a running group are all in the same state.
 */
import { VrrpInstance, instanceParams } from "../../src/vrrp/instance.ts";
import type { InstanceParams, VrrpAction } from "../../src/vrrp/instance.ts";
import { SyncGroup, tagActions as tag } from "../../src/vrrp/sync-group.ts";
import type { SyncGroupAction } from "../../src/vrrp/sync-group.ts";
import { STATE_NAMES, VrrpState } from "../../src/vrrp/types.ts";
import { prng, SimClock } from "./lan.ts";
import type { LinkModel } from "./lan.ts";

export interface MemberSpec {
  name: string;
  vrid: number;
  priority: number;
  params?: Partial<InstanceParams>;
}

export interface GroupRouterSpec {
  name: string;
  address: string;
  instances: MemberSpec[];
  /** Name of the sync group holding all of this router's instances (none = standalone). */
  group?: string;
}

export interface MemberEvent {
  at: number;
  router: string;
  member: string;
  from: VrrpState;
  to: VrrpState;
  reason: string;
  followsGroup: boolean;
}

export interface GroupEvent {
  at: number;
  router: string;
  group: string;
  from: VrrpState;
  to: VrrpState;
  trigger: string | undefined;
}

export interface GroupRouter {
  spec: GroupRouterSpec;
  alive: boolean;
  insts: Map<string, VrrpInstance>;
  group: SyncGroup | undefined;
  /** Member → holds its VIPs (add-addresses without a later remove-addresses). */
  hasVips: Map<string, boolean>;
  /** Member → generation of its armed timer (older generations are stale). */
  timerGen: Map<string, number>;
  armedAt: Map<string, number | undefined>;
  advertsSent: number;
}

export interface GroupLanOptions {
  seed: number;
  link?: Partial<LinkModel>;
  /** LAN-wide instance parameters (version, interval, ...). */
  params?: Partial<InstanceParams>;
}

/** The simulated LAN. Time starts at 0 ms. */
export class GroupLan extends SimClock {
  readonly routers = new Map<string, GroupRouter>();
  readonly history: MemberEvent[] = [];
  readonly groupHistory: GroupEvent[] = [];
  /** Moments when a running group's members were not all in one state. */
  readonly violations: string[] = [];
  link: LinkModel;
  readonly rand: () => number;
  #params: Partial<InstanceParams>;
  #partition = new Map<string, number>();
  #lossRun = new Map<string, number>();

  constructor(specs: GroupRouterSpec[], opts: GroupLanOptions) {
    super();
    this.rand = prng(opts.seed);
    this.link = { delayMs: 1, jitterMs: 0, loss: 0, maxConsecutiveLoss: Infinity, ...opts.link };
    this.#params = opts.params ?? {};
    for (const spec of specs) {
      const r: GroupRouter = {
        spec, alive: false, insts: new Map(), group: undefined, hasVips: new Map(),
        timerGen: new Map(), armedAt: new Map(), advertsSent: 0,
      };
      this.#build(r);
      this.routers.set(spec.name, r);
      this.#partition.set(spec.name, 0);
    }
  }

  /** Fresh instances (and group) for a router, as a newly started process has. */
  #build(r: GroupRouter): void {
    r.insts = new Map(r.spec.instances.map((m) => [m.name, new VrrpInstance(instanceParams({
      ...this.#params,
      name: m.name,
      vrid: m.vrid,
      sourceAddress: r.spec.address,
      basePriority: m.priority,
      ...m.params,
    }))]));
    r.group = r.spec.group === undefined ? undefined : new SyncGroup(r.spec.group, [...r.insts.values()]);
    for (const name of r.insts.keys()) r.hasVips.set(name, false);
  }

  #router(name: string): GroupRouter {
    const r = this.routers.get(name);
    if (!r) throw new Error(`no router ${name}`);
    return r;
  }


  /** Boots a router (a fresh process) now. Faults given are known before start. */
  start(name: string, faults: Array<{ member: string; reason: string }> = []): void {
    const r = this.#router(name);
    this.#build(r);
    r.alive = true;
    const out: SyncGroupAction[] = [];
    for (const f of faults) out.push(...this.#call(r, f.member, (g) => g.setFault(this.now, f.member, f.reason, true), (i) => i.setFault(this.now, f.reason, true)));
    if (r.group) out.push(...r.group.start(this.now));
    else for (const [n, i] of r.insts) out.push(...tag(n, i.start(this.now)));
    this.#apply(r, out);
  }

  /** Kills a router abruptly: it goes silent and its VIPs go with it. */
  kill(name: string): void {
    const r = this.#router(name);
    r.alive = false;
    for (const n of r.insts.keys()) {
      r.timerGen.set(n, (r.timerGen.get(n) ?? 0) + 1);
      r.armedAt.set(n, undefined);
      r.hasVips.set(n, false);
    }
  }

  /** Stops a router gracefully (MASTERs send priority 0), then it goes silent. */
  stop(name: string): void {
    const r = this.#router(name);
    const out = r.group ? r.group.stop(this.now) : [...r.insts].flatMap(([n, i]) => tag(n, i.stop(this.now)));
    this.#apply(r, out);
    this.kill(name);
  }

  /** Raises or clears a fault on one member of one router. */
  setFault(router: string, member: string, reason: string, on: boolean): void {
    const r = this.#router(router);
    this.#apply(r, this.#call(r, member, (g) => g.setFault(this.now, member, reason, on), (i) => i.setFault(this.now, reason, on)));
  }

  /** Feeds a tracker total into one member of one router. */
  setPriority(router: string, member: string, total: number): void {
    const r = this.#router(router);
    this.#apply(r, this.#call(r, member, (g) => g.setTotalPriority(this.now, member, total), (i) => i.setTotalPriority(this.now, total)));
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

  /** State of one member of one router. */
  state(router: string, member: string): VrrpState {
    const i = this.#router(router).insts.get(member);
    if (!i) throw new Error(`no member ${member} on ${router}`);
    return i.state;
  }

  /** Names of live routers whose instance for `vrid` is MASTER. */
  masters(vrid: number): string[] {
    const out: string[] = [];
    for (const r of this.routers.values()) {
      if (!r.alive) continue;
      for (const i of r.insts.values()) if (i.params.vrid === vrid && i.state === VrrpState.MASTER) out.push(r.spec.name);
    }
    return out;
  }

  /** Group transitions of `router` after time `since` (exclusive), as "FROM→TO". */
  groupChanges(router: string, since = -1): string[] {
    return this.groupHistory.filter((e) => e.router === router && e.at > since).map((e) => `${STATE_NAMES[e.from]}→${STATE_NAMES[e.to]}`);
  }

  /** Live members whose VIP holding disagrees with their state. */
  vipInvariantViolations(): string[] {
    const bad: string[] = [];
    for (const r of this.routers.values()) {
      if (!r.alive) continue;
      for (const [n, i] of r.insts) {
        if (r.hasVips.get(n) !== (i.state === VrrpState.MASTER)) bad.push(`${r.spec.name}/${n}: ${STATE_NAMES[i.state]} hasVips=${r.hasVips.get(n)}`);
      }
    }
    return bad;
  }

  /** Human-readable history, for failure messages. */
  describe(since = 0): string {
    const lines: [number, string][] = [
      ...this.history.filter((e) => e.at >= since).map((e): [number, string] => [e.at, `${e.router}/${e.member} ${STATE_NAMES[e.from]}→${STATE_NAMES[e.to]} (${e.reason}${e.followsGroup ? ", follows group" : ""})`]),
      ...this.groupHistory.filter((e) => e.at >= since).map((e): [number, string] => [e.at, `${e.router} GROUP ${e.group} ${STATE_NAMES[e.from]}→${STATE_NAMES[e.to]}${e.trigger ? ` (by ${e.trigger})` : ""}`]),
    ];
    return lines.sort((a, b) => a[0] - b[0]).map(([at, s]) => `${at.toFixed(3)} ${s}`).join("\n");
  }

  #call(r: GroupRouter, member: string, viaGroup: (g: SyncGroup) => SyncGroupAction[], alone: (i: VrrpInstance) => VrrpAction[]): SyncGroupAction[] {
    if (r.group) return viaGroup(r.group);
    const i = r.insts.get(member);
    if (!i) throw new Error(`no member ${member} on ${r.spec.name}`);
    return tag(member, alone(i));
  }

  #apply(r: GroupRouter, acts: SyncGroupAction[]): void {
    for (const a of acts) {
      switch (a.type) {
        case "group-state-change":
          this.groupHistory.push({ at: this.now, router: r.spec.name, group: a.group, from: a.from, to: a.to, trigger: a.trigger });
          break;
        case "group-log":
        case "log":
          break;
        case "send-advert": {
          r.advertsSent++;
          const vrid = r.insts.get(a.member)!.params.vrid;
          this.#broadcast(r, vrid, a.priority, a.adverIntCs);
          break;
        }
        case "add-addresses":
          r.hasVips.set(a.member, true);
          break;
        case "remove-addresses":
          r.hasVips.set(a.member, false);
          break;
        case "state-change":
          this.history.push({ at: this.now, router: r.spec.name, member: a.member, from: a.from, to: a.to, reason: a.reason, followsGroup: a.followsGroup === true });
          break;
        default:
          break;
      }
    }
    this.#checkGroup(r);
    for (const n of r.insts.keys()) this.#rearm(r, n);
  }

  /** A running group's members must all be in one state after every event. */
  #checkGroup(r: GroupRouter): void {
    if (!r.alive || !r.group) return;
    const states = [...r.insts.values()].map((i) => i.state);
    if (states.some((s) => s !== states[0])) {
      this.violations.push(`${this.now.toFixed(3)} ${r.spec.name}: ${[...r.insts].map(([n, i]) => `${n}=${STATE_NAMES[i.state]}`).join(" ")}`);
    }
  }

  #rearm(r: GroupRouter, member: string): void {
    if (!r.alive) return;
    const inst = r.insts.get(member)!;
    const d = inst.nextDeadline();
    if (d === r.armedAt.get(member)) return;
    r.armedAt.set(member, d);
    const gen = (r.timerGen.get(member) ?? 0) + 1;
    r.timerGen.set(member, gen);
    if (d === undefined) return;
    this.at(d, () => {
      if (!r.alive || gen !== r.timerGen.get(member)) return;
      r.armedAt.set(member, undefined);
      this.#apply(r, this.#call(r, member, (g) => g.onTimer(this.now, member), (i) => i.onTimer(this.now)));
    });
  }

  #broadcast(from: GroupRouter, vrid: number, priority: number, adverIntCs: number): void {
    const part = this.#partition.get(from.spec.name);
    for (const to of this.routers.values()) {
      if (to === from || this.#partition.get(to.spec.name) !== part) continue;
      const member = [...to.insts.values()].find((i) => i.params.vrid === vrid)?.params.name;
      if (member === undefined) continue;
      if (this.#lost(`${from.spec.name}>${to.spec.name}/${vrid}`)) continue;
      const delay = this.link.delayMs + this.rand() * this.link.jitterMs;
      const src = from.spec.address;
      this.at(this.now + delay, () => {
        if (!to.alive) return;
        if (this.#partition.get(to.spec.name) !== this.#partition.get(from.spec.name)) return;
        const adv = { src, priority, adverIntCs };
        this.#apply(to, this.#call(to, member, (g) => g.onAdvert(this.now, member, adv), (i) => i.onAdvert(this.now, adv)));
      });
    }
  }

  #lost(key: string): boolean {
    const run = this.#lossRun.get(key) ?? 0;
    const lost = this.link.loss > 0 && this.rand() < this.link.loss && run < this.link.maxConsecutiveLoss;
    this.#lossRun.set(key, lost ? run + 1 : 0);
    return lost;
  }
}
