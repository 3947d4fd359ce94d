/**
 * vrrp_sync_group on the simulated LAN: two routers, each running an "inside" (VRID 10) and
 * an "outside" (VRID 20) instance in one sync group. The group must move as one on master
 * failure, on a member's FAULT and on a higher-priority advert for one member; its members
 * are never in different states; group events come once per transition. Every scenario runs
 * under fixed seeds plus one random seed printed below (replay with VIPD_SIM_SEED).
 */
import { describe, expect, test } from "bun:test";
import { GroupLan } from "./group-lan.ts";
import type { GroupLanOptions, GroupRouterSpec } from "./group-lan.ts";
import type { InstanceParams } from "../../src/vrrp/instance.ts";
import { masterDownIntervalMs, skewTimeMs } from "../../src/vrrp/timing.ts";
import { STATE_NAMES, VrrpState } from "../../src/vrrp/types.ts";

const RANDOM_SEED = Number(process.env.VIPD_SIM_SEED ?? "") || ((Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0);
console.log(`sync-group sim: random seed ${RANDOM_SEED} (fixed seeds 1, 7, 42, 20261122; replay with VIPD_SIM_SEED=${RANDOM_SEED})`);
const SEEDS = [1, 7, 42, 20261122, RANDOM_SEED];

const { BACKUP, MASTER, FAULT } = VrrpState;
const V2: Partial<InstanceParams> = { version: 2, adverIntCs: 100 };
const V3_FAST: Partial<InstanceParams> = { version: 3, adverIntCs: 10 };
const PROFILES: [string, Partial<InstanceParams>][] = [["v2 1s", V2], ["v3 0.1s", V3_FAST]];
const IN = 10;
const OUT = 20;

/** A router with the inside and outside instances in sync group G. */
function grouped(name: string, address: string, prioIn: number, prioOut = prioIn): GroupRouterSpec {
  return {
    name, address, group: "G",
    instances: [{ name: "VI_IN", vrid: IN, priority: prioIn }, { name: "VI_OUT", vrid: OUT, priority: prioOut }],
  };
}
function pair(): GroupRouterSpec[] {
  return [grouped("r1", "192.0.2.1", 200), grouped("r2", "192.0.2.2", 100)];
}

function ivlMs(p: Partial<InstanceParams>): number {
  return (p.adverIntCs ?? 100) * 10;
}
function mdi(p: Partial<InstanceParams>, prio: number): number {
  return masterDownIntervalMs(p.version ?? 2, prio, p.adverIntCs ?? 100);
}

/** Both members of `router` (alive) are in `state`. */
function groupIn(lan: GroupLan, router: string, state: VrrpState): boolean {
  return lan.state(router, "VI_IN") === state && lan.state(router, "VI_OUT") === state;
}

/** Group events are a chain: each starts where the previous one ended and changes something. */
function expectGroupChains(lan: GroupLan): void {
  const last = new Map<string, VrrpState>();
  for (const e of lan.groupHistory) {
    expect(e.from).not.toBe(e.to);
    const prev = last.get(e.router);
    // A restarted router starts a fresh chain from INIT.
    if (prev !== undefined && e.from !== VrrpState.INIT) expect(`${e.router} ${STATE_NAMES[prev]}`).toBe(`${e.router} ${STATE_NAMES[e.from]}`);
    last.set(e.router, e.to);
  }
}

function expectHealthy(lan: GroupLan): void {
  expect(lan.violations).toEqual([]);
  expect(lan.vipInvariantViolations()).toEqual([]);
  expectGroupChains(lan);
}

/** Starts r1 and r2 together and lets r1's group win. */
function converged(seed: number, prof: Partial<InstanceParams>, link: GroupLanOptions["link"] = { delayMs: 0.5, jitterMs: 0.2 }): GroupLan {
  const lan = new GroupLan(pair(), { seed, params: prof, link });
  lan.start("r1");
  lan.start("r2");
  lan.runUntil(mdi(prof, 1) + 5 * ivlMs(prof));
  return lan;
}

describe.each(SEEDS)("seed %d", (seed) => {
  for (const [label, prof] of PROFILES) {
    const ivl = ivlMs(prof);

    test(`${label}: the higher group wins with both members; one group event per transition`, () => {
      const lan = converged(seed, prof);
      expect(lan.masters(IN)).toEqual(["r1"]);
      expect(lan.masters(OUT)).toEqual(["r1"]);
      expect(groupIn(lan, "r2", BACKUP)).toBe(true);
      expect(lan.groupChanges("r1")).toEqual(["INIT→BACKUP", "BACKUP→MASTER"]);
      expect(lan.groupChanges("r2")).toEqual(["INIT→BACKUP"]);
      // One member of r1 reached MASTER by its own timer, the other followed the group.
      const r1Master = lan.history.filter((e) => e.router === "r1" && e.to === MASTER);
      expect(r1Master.map((e) => e.followsGroup).sort()).toEqual([false, true]);
      expect(r1Master[0]!.at).toBe(r1Master[1]!.at);
      expectHealthy(lan);
    });

    test(`${label}: master failure moves the whole group, within one down interval`, () => {
      const lan = converged(seed, prof);
      const killedAt = lan.now;
      lan.kill("r1");
      lan.run(mdi(prof, 100) + 3 * ivl);
      expect(groupIn(lan, "r2", MASTER)).toBe(true);
      expect(lan.groupChanges("r2", killedAt)).toEqual(["BACKUP→MASTER"]);
      const took = lan.history.filter((e) => e.router === "r2" && e.at > killedAt && e.to === MASTER);
      expect(took.length).toBe(2);
      expect(took[0]!.at).toBe(took[1]!.at);
      // Both members time out one Master_Down_Interval after the last advert they heard.
      expect(took[0]!.at - killedAt).toBeLessThanOrEqual(mdi(prof, 100) + ivl + 1);
      expectHealthy(lan);
    });

    test(`${label}: one member's FAULT takes the master group to FAULT and the peer group over; recovery preempts back`, () => {
      const lan = converged(seed, prof);
      const t0 = lan.now;
      lan.run(1); // events at t0 itself are not "after t0"
      lan.setFault("r1", "VI_OUT", "eth1 down", true);
      expect(groupIn(lan, "r1", FAULT)).toBe(true);
      lan.run(mdi(prof, 100) + 3 * ivl);
      expect(groupIn(lan, "r2", MASTER)).toBe(true);
      expect(lan.groupChanges("r1", t0)).toEqual(["MASTER→FAULT"]);
      expect(lan.groupChanges("r2", t0)).toEqual(["BACKUP→MASTER"]);
      // r1 resigned both members with priority 0, so r2 took over after Skew_Time, not the full interval.
      const r2Master = lan.history.find((e) => e.router === "r2" && e.at > t0 && e.to === MASTER)!;
      expect(r2Master.at - t0).toBeLessThan(skewTimeMs(prof.version ?? 2, 100, prof.adverIntCs ?? 100) + ivl);
      const r1Fault = lan.history.filter((e) => e.router === "r1" && e.at > t0);
      expect(r1Fault.map((e) => [e.member, STATE_NAMES[e.to], e.reason, e.followsGroup])).toEqual([
        ["VI_OUT", "FAULT", "fault", false],
        ["VI_IN", "FAULT", "sync-group", true],
      ]);

      const t1 = lan.now;
      lan.run(1);
      lan.setFault("r1", "VI_OUT", "eth1 down", false);
      lan.run(2 * mdi(prof, 1) + 3 * ivl);
      expect(lan.masters(IN)).toEqual(["r1"]);
      expect(lan.masters(OUT)).toEqual(["r1"]);
      expect(groupIn(lan, "r2", BACKUP)).toBe(true);
      expect(lan.groupChanges("r1", t1)).toEqual(["FAULT→BACKUP", "BACKUP→MASTER"]);
      expect(lan.groupChanges("r2", t1)).toEqual(["MASTER→BACKUP"]);
      expectHealthy(lan);
    });

    test(`${label}: a higher-priority advert for one member takes its whole group to BACKUP`, () => {
      // r3 runs only an outside instance, standalone, with a higher priority than r1's.
      const specs = [...pair(), { name: "r3", address: "192.0.2.3", instances: [{ name: "VI_OUT", vrid: OUT, priority: 250 }] }];
      const lan = new GroupLan(specs, { seed, params: prof, link: { delayMs: 0.5, jitterMs: 0.2 } });
      lan.start("r1");
      lan.start("r2");
      lan.runUntil(mdi(prof, 1) + 5 * ivl);
      expect(groupIn(lan, "r1", MASTER)).toBe(true);
      const t0 = lan.now;
      lan.start("r3");
      lan.run(mdi(prof, 1) + 5 * ivl);
      expect(lan.masters(OUT)).toEqual(["r3"]);
      const moved = lan.history.filter((e) => e.router === "r1" && e.at > t0);
      expect(moved.map((e) => [e.member, STATE_NAMES[e.to], e.reason, e.followsGroup])).toEqual([
        ["VI_OUT", "BACKUP", "higher-priority", false],
        ["VI_IN", "BACKUP", "sync-group", true],
      ]);
      expect(moved[0]!.at).toBe(moved[1]!.at);
      expect(lan.groupChanges("r1", t0)).toEqual(["MASTER→BACKUP"]);
      // keepalived prefers BACKUP: with their outside members following r3, neither group
      // may take VRID 10 alone, so it has no master (the members want MASTER but wait).
      expect(lan.masters(IN)).toEqual([]);
      expect(groupIn(lan, "r2", BACKUP)).toBe(true);
      expect(lan.groupChanges("r2", t0)).toEqual([]);

      // r3 leaves (priority 0): r1's group, the better one, takes both VRIDs back together.
      const t1 = lan.now;
      lan.stop("r3");
      lan.run(mdi(prof, 1) + 5 * ivl);
      expect(lan.masters(IN)).toEqual(["r1"]);
      expect(lan.masters(OUT)).toEqual(["r1"]);
      expect(lan.groupChanges("r1", t1)).toEqual(["BACKUP→MASTER"]);
      expect(lan.groupChanges("r2", t1)).toEqual([]);
      expectHealthy(lan);
    });

    test(`${label}: a group raised above the master's preempts it, and the old master group steps down together`, () => {
      const lan = converged(seed, prof);
      const t0 = lan.now;
      lan.setPriority("r2", "VI_IN", 250);
      lan.setPriority("r2", "VI_OUT", 250);
      lan.run(mdi(prof, 1) + 5 * ivl);
      expect(lan.masters(IN)).toEqual(["r2"]);
      expect(lan.masters(OUT)).toEqual(["r2"]);
      const down = lan.history.filter((e) => e.router === "r1" && e.at > t0);
      expect(down.map((e) => [STATE_NAMES[e.to], e.reason, e.followsGroup])).toEqual([
        ["BACKUP", "higher-priority", false],
        ["BACKUP", "sync-group", true],
      ]);
      expect(lan.groupChanges("r1", t0)).toEqual(["MASTER→BACKUP"]);
      expect(lan.groupChanges("r2", t0)).toEqual(["BACKUP→MASTER"]);
      expectHealthy(lan);
    });

    test(`${label}: raising only one member never splits the group`, () => {
      const lan = converged(seed, prof);
      const t0 = lan.now;
      lan.setPriority("r2", "VI_OUT", 250);
      lan.run(10 * mdi(prof, 1));
      expect(lan.masters(IN)).toEqual(["r1"]);
      expect(lan.masters(OUT)).toEqual(["r1"]);
      expect(lan.groupChanges("r2", t0)).toEqual([]);
      expect(lan.routers.get("r2")!.insts.get("VI_OUT")!.wantsMaster).toBe(true);
      expectHealthy(lan);
    });

    test(`${label}: under loss, faults, kills and restarts the members of a group never disagree, and it reconverges`, () => {
      const lan = new GroupLan(pair(), { seed, params: prof, link: { delayMs: 0.5, jitterMs: 0.3, loss: 0.25 } });
      lan.start("r1");
      lan.start("r2");
      const members = ["VI_IN", "VI_OUT"];
      const faults = new Map<string, boolean>();
      // 60 seeded random operations, one every ~2 intervals to ~1.5 down intervals.
      for (let k = 0; k < 60; k++) {
        lan.run(2 * ivl + lan.rand() * 1.5 * mdi(prof, 1));
        const router = lan.rand() < 0.5 ? "r1" : "r2";
        const op = lan.rand();
        const r = lan.routers.get(router)!;
        if (op < 0.5) {
          if (!r.alive) continue;
          const member = members[Math.floor(lan.rand() * 2)]!;
          const key = `${router}/${member}`;
          const on = !(faults.get(key) ?? false);
          faults.set(key, on);
          lan.setFault(router, member, "link", on);
        } else if (op < 0.75) {
          if (r.alive) lan.kill(router);
          else {
            faults.delete(`${router}/VI_IN`);
            faults.delete(`${router}/VI_OUT`);
            lan.start(router);
          }
        } else if (r.alive) {
          lan.stop(router);
        }
      }
      expect(lan.violations).toEqual([]);
      // Heal: no loss, no faults, everyone up; the group with the higher priority must win.
      lan.link.loss = 0;
      for (const [key, on] of faults) {
        const [router, member] = key.split("/") as [string, string];
        if (on && lan.routers.get(router)!.alive) lan.setFault(router, member, "link", false);
      }
      for (const name of ["r1", "r2"]) if (!lan.routers.get(name)!.alive) lan.start(name);
      lan.run(2 * mdi(prof, 1) + 5 * ivl);
      expect(lan.masters(IN)).toEqual(["r1"]);
      expect(lan.masters(OUT)).toEqual(["r1"]);
      expect(groupIn(lan, "r2", BACKUP)).toBe(true);
      const last = (router: string): string | undefined => lan.groupChanges(router).at(-1);
      expect(last("r1")).toMatch(/→MASTER$/);
      expect(last("r2")).toMatch(/→BACKUP$/);
      expectHealthy(lan);
      // Every group event matches the members' transitions: no member changed without one.
      for (const e of lan.history) {
        if (!e.followsGroup) continue;
        expect(lan.groupHistory.some((g) => g.router === e.router && g.at === e.at && (g.to === e.to || g.to === VrrpState.INIT))).toBe(true);
      }
    });
  }
});
