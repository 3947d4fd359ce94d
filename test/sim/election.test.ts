/**
 * VRRP election properties on the simulated LAN (RFC 3768 / 5798 as keepalived runs them).
 * Every scenario runs under several fixed seeds plus one random seed printed below, so a
 * failure can be replayed with that seed.
 */
import { describe, expect, test } from "bun:test";
import { Lan } from "./lan.ts";
import type { RouterSpec } from "./lan.ts";
import type { InstanceParams } from "../../src/vrrp/instance.ts";
import { masterDownIntervalMs, skewTimeMs } from "../../src/vrrp/timing.ts";
import { VrrpState } from "../../src/vrrp/types.ts";

// VIPD_SIM_SEED=<n> replays a failing random seed.
const RANDOM_SEED = Number(process.env.VIPD_SIM_SEED ?? "") || ((Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0);
console.log(`election sim: random seed ${RANDOM_SEED} (fixed seeds 1, 7, 42, 20261122; replay with VIPD_SIM_SEED=${RANDOM_SEED})`);
const SEEDS = [1, 7, 42, 20261122, RANDOM_SEED];

const V2: Partial<InstanceParams> = { version: 2, adverIntCs: 100 };
const V3_FAST: Partial<InstanceParams> = { version: 3, adverIntCs: 10 };
const PROFILES: [string, Partial<InstanceParams>][] = [["v2 1s", V2], ["v3 0.1s", V3_FAST]];

/** Routers r1..rN on 192.0.2.1..N with the given priorities. */
function routers(...priorities: number[]): RouterSpec[] {
  return priorities.map((p, i) => ({ name: `r${i + 1}`, address: `192.0.2.${i + 1}`, priority: p }));
}

function intervalMs(p: Partial<InstanceParams>): number {
  return (p.adverIntCs ?? 100) * 10;
}
function mdi(p: Partial<InstanceParams>, prio: number): number {
  return masterDownIntervalMs(p.version ?? 2, prio, p.adverIntCs ?? 100);
}

/** Starts every router at a seeded random offset within `spreadMs`. */
function startAll(lan: Lan, spreadMs: number): void {
  for (const name of lan.routers.keys()) {
    const at = lan.rand() * spreadMs;
    lan.at(at, () => lan.start(name));
  }
}

/** Time of the first transition of `router` into MASTER after `since`. */
function becameMasterAt(lan: Lan, router: string, since: number): number | undefined {
  return lan.history.find((e) => e.at >= since && e.router === router && e.to === VrrpState.MASTER)?.at;
}

function expectConsistent(lan: Lan): void {
  expect(lan.vipInvariantViolations()).toEqual([]);
}

describe.each(SEEDS)("seed %d", (seed) => {
  for (const [label, prof] of PROFILES) {
    const ivl = intervalMs(prof);

    test(`${label}: distinct priorities converge on the highest, for 2..5 routers`, () => {
      for (const prios of [[100, 200], [150, 100, 250], [10, 240, 120, 60], [90, 180, 30, 250, 140]]) {
        const lan = new Lan(routers(...prios), { seed, params: prof, link: { delayMs: 0.5, jitterMs: 0.2 } });
        startAll(lan, 4 * ivl);
        lan.runUntil(4 * ivl + 2 * mdi(prof, 1) + 10 * ivl);
        const best = `r${prios.indexOf(Math.max(...prios)) + 1}`;
        expect(lan.masters()).toEqual([best]);
        expectConsistent(lan);
      }
    });

    test(`${label}: equal priorities timing out together elect the highest source address`, () => {
      for (const n of [2, 3, 5]) {
        const lan = new Lan(routers(...new Array<number>(n).fill(100)), { seed, params: prof, link: { delayMs: 0.5, jitterMs: 0.2 } });
        startAll(lan, 0);
        lan.runUntil(2 * mdi(prof, 100) + 10 * ivl);
        expect(lan.masters()).toEqual([`r${n}`]);
        // Every router went MASTER at the same instant; all but the highest address stepped down.
        expect(lan.history.filter((e) => e.to === VrrpState.MASTER).length).toBe(n);
        expectConsistent(lan);
      }
    });

    test(`${label}: equal priorities never preempt: the first to time out keeps mastership`, () => {
      const lan = new Lan(routers(100, 100, 100, 100), { seed, params: prof, link: { delayMs: 0.5, jitterMs: 0.2 } });
      const order = ["r3", "r1", "r4", "r2"];
      order.forEach((name, k) => lan.at(k * ivl * 0.5, () => lan.start(name)));
      lan.run(2 * ivl + 2 * mdi(prof, 100) + 100 * ivl);
      expect(lan.masters()).toEqual(["r3"]);
      expect(lan.history.filter((e) => e.to === VrrpState.MASTER).map((e) => e.router)).toEqual(["r3"]);
      expectConsistent(lan);
    });

    test(`${label}: equal-priority masters meeting after a partition keep the highest address`, () => {
      const link = { delayMs: 1, jitterMs: 0.5 };
      const lan = new Lan(routers(100, 100, 100), { seed, params: prof, link });
      lan.partition(["r1"], ["r2"], ["r3"]);
      startAll(lan, ivl);
      lan.run(ivl + mdi(prof, 100) + 5 * ivl);
      expect(lan.masters().sort()).toEqual(["r1", "r2", "r3"]);
      lan.heal();
      lan.run(ivl + link.delayMs + link.jitterMs + 1e-6);
      expect(lan.masters()).toEqual(["r3"]);
      expectConsistent(lan);
    });

    test(`${label}: killed master (no priority 0) is replaced within Master_Down_Interval + delay`, () => {
      const prios = [250, 200, 150, 100, 50];
      const link = { delayMs: 1, jitterMs: 0.5 };
      const lan = new Lan(routers(...prios), { seed, params: prof, link });
      startAll(lan, ivl);
      lan.run(ivl + mdi(prof, 50) + 5 * ivl);
      expect(lan.masters()).toEqual(["r1"]);
      // Kill at a seeded point inside an advert interval.
      lan.run(lan.rand() * ivl);
      const killedAt = lan.now;
      lan.kill("r1");
      lan.run(2 * mdi(prof, 200));
      const took = becameMasterAt(lan, "r2", killedAt);
      expect(took).toBeDefined();
      const elapsed = took! - killedAt;
      expect(elapsed).toBeLessThanOrEqual(mdi(prof, 200) + link.delayMs + link.jitterMs + 1e-6);
      expect(elapsed).toBeGreaterThanOrEqual(mdi(prof, 200) - ivl);
      expect(lan.masters()).toEqual(["r2"]);
      // Only r2 changed state after the kill.
      expect(lan.changesSince(killedAt).map((e) => e.router)).toEqual(["r2"]);
      expectConsistent(lan);
    });

    test(`${label}: graceful stop (priority 0) is taken over within Skew_Time + delay`, () => {
      const link = { delayMs: 1, jitterMs: 0.5 };
      const lan = new Lan(routers(220, 180, 100), { seed, params: prof, link });
      startAll(lan, ivl);
      lan.run(ivl + mdi(prof, 100) + 5 * ivl);
      expect(lan.masters()).toEqual(["r1"]);
      lan.run(lan.rand() * ivl);
      const stoppedAt = lan.now;
      const roundsBefore = lan.routers.get("r2")!.announceRounds;
      lan.stop("r1");
      lan.run(mdi(prof, 100));
      const took = becameMasterAt(lan, "r2", stoppedAt)!;
      expect(took - stoppedAt).toBeLessThanOrEqual(skewTimeMs(prof.version ?? 2, 180, prof.adverIntCs ?? 100) + link.delayMs + link.jitterMs + 1e-6);
      expect(lan.masters()).toEqual(["r2"]);
      expect(lan.routers.get("r1")!.hasVips).toBe(false);
      // New master announces: 5 rounds at once, 5 more after garp_master_delay (5 s).
      // (r2 may have been master briefly during the staggered boot, so count from the stop.)
      const r2 = lan.routers.get("r2")!;
      lan.runUntil(took + 4999);
      expect(r2.announceRounds - roundsBefore).toBe(5);
      lan.runUntil(took + 5001);
      expect(r2.announceRounds - roundsBefore).toBe(10);
      expectConsistent(lan);
    });

    test(`${label}: partition gives two masters; healing leaves one within an interval`, () => {
      const link = { delayMs: 1, jitterMs: 0.5 };
      const lan = new Lan(routers(200, 150, 100), { seed, params: prof, link });
      startAll(lan, ivl);
      lan.run(ivl + mdi(prof, 100) + 5 * ivl);
      expect(lan.masters()).toEqual(["r1"]);
      const cutAt = lan.now;
      lan.partition(["r1"], ["r2", "r3"]);
      lan.run(mdi(prof, 150) + ivl + 2 * link.delayMs);
      expect(lan.masters().sort()).toEqual(["r1", "r2"]);
      expect(becameMasterAt(lan, "r3", cutAt)).toBeUndefined();
      lan.run(20 * ivl);
      const healedAt = lan.now;
      lan.heal();
      lan.run(ivl + link.delayMs + link.jitterMs + 1e-6);
      expect(lan.masters()).toEqual(["r1"]);
      const drop = lan.changesSince(healedAt);
      expect(drop.map((e) => [e.router, e.to])).toEqual([["r2", VrrpState.BACKUP]]);
      lan.run(100 * ivl);
      expect(lan.changesSince(healedAt + ivl + 5)).toEqual([]);
      expectConsistent(lan);
    });

    test(`${label}: preempt returns mastership to a higher router that comes back`, () => {
      const link = { delayMs: 1, jitterMs: 0.5 };
      const lan = new Lan(routers(200, 100), { seed, params: prof, link });
      startAll(lan, ivl);
      lan.run(ivl + mdi(prof, 100) + 5 * ivl);
      lan.kill("r1");
      lan.run(2 * mdi(prof, 100));
      expect(lan.masters()).toEqual(["r2"]);
      const backAt = lan.now;
      lan.start("r1");
      lan.run(mdi(prof, 200) + ivl);
      expect(lan.masters()).toEqual(["r1"]);
      // r1 waits its own Master_Down_Interval (it discards r2's lower adverts) before taking over.
      const took = becameMasterAt(lan, "r1", backAt)!;
      expect(took - backAt).toBeCloseTo(mdi(prof, 200), 6);
      expectConsistent(lan);
    });

    test(`${label}: nopreempt keeps the current master when a higher router returns`, () => {
      const link = { delayMs: 1, jitterMs: 0.5 };
      const specs = routers(200, 100).map((s) => ({ ...s, params: { nopreempt: true } }));
      const lan = new Lan(specs, { seed, params: prof, link });
      // With nopreempt whoever times out first stays master, so let r1 boot first.
      lan.start("r1");
      lan.at(ivl / 2, () => lan.start("r2"));
      lan.run(ivl + mdi(prof, 100) + 5 * ivl);
      expect(lan.masters()).toEqual(["r1"]);
      lan.kill("r1");
      lan.run(2 * mdi(prof, 100));
      expect(lan.masters()).toEqual(["r2"]);
      const backAt = lan.now;
      lan.start("r1");
      lan.run(600 * ivl);
      expect(lan.masters()).toEqual(["r2"]);
      expect(lan.changesSince(backAt - 0.001).map((e) => [e.router, e.to])).toEqual([["r1", VrrpState.BACKUP]]);
      expectConsistent(lan);
    });

    test(`${label}: a master whose tracked priority drops below a backup is preempted`, () => {
      const lan = new Lan(routers(200, 150, 100), { seed, params: prof, link: { delayMs: 1, jitterMs: 0.5 } });
      startAll(lan, ivl);
      lan.run(ivl + mdi(prof, 100) + 5 * ivl);
      lan.setPriority("r1", 120);
      lan.run(mdi(prof, 150) + 2 * ivl);
      expect(lan.masters()).toEqual(["r2"]);
      lan.setPriority("r1", 200);
      lan.run(mdi(prof, 200) + 2 * ivl);
      expect(lan.masters()).toEqual(["r1"]);
      expectConsistent(lan);
    });

    test(`${label}: a faulted master hands over within Skew_Time, and takes back after the fault`, () => {
      const link = { delayMs: 1, jitterMs: 0.5 };
      const lan = new Lan(routers(200, 150), { seed, params: prof, link });
      startAll(lan, ivl);
      lan.run(ivl + mdi(prof, 150) + 5 * ivl);
      const faultAt = lan.now;
      lan.setFault("r1", "eth0 down", true);
      lan.run(skewTimeMs(prof.version ?? 2, 150, prof.adverIntCs ?? 100) + link.delayMs + link.jitterMs + 1e-6);
      expect(lan.masters()).toEqual(["r2"]);
      expect(becameMasterAt(lan, "r2", faultAt)).toBeDefined();
      lan.run(50 * ivl);
      lan.setFault("r1", "eth0 down", false);
      lan.run(mdi(prof, 200) + 2 * ivl);
      expect(lan.masters()).toEqual(["r1"]);
      expectConsistent(lan);
    });
  }

  /*
   * Flapping under loss. A backup declares the master dead only when it hears nothing for
   * Master_Down_Interval = 3 × interval + skew, i.e. when three consecutive adverts are lost
   * (the fourth would come at 4 × interval > MDI, since skew < interval). So:
   *  - VRRP guarantees no flap whenever no path loses 3 adverts in a row, whatever the loss
   *    rate, provided delay jitter < skew. Tested with 10% loss capped at 2 consecutive.
   *  - With independent loss p, each backup falsely times out with probability ≈ p³ per
   *    advert. At 10% over 10 min at 0.1 s with 3 backups that is 6000 × 3 × 1e-3 ≈ 18
   *    expected flaps: VRRP does NOT promise stability there, and the sim shows it. At 1%,
   *    v2 1 s, 4 backups, 10 min: 600 × 4 × 1e-6 = 0.0024 expected — asserted as zero.
   */
  test("v3 0.1s, 10% loss but never 3 in a row: zero state changes in 10 minutes", () => {
    const link = { delayMs: 1, jitterMs: 2, loss: 0.1, maxConsecutiveLoss: 2 };
    const lan = new Lan(routers(250, 200, 150, 100), { seed, params: V3_FAST, link });
    startAll(lan, 100);
    lan.run(3000);
    expect(lan.masters()).toEqual(["r1"]);
    const settled = lan.now;
    lan.run(10 * 60_000);
    expect(lan.changesSince(settled)).toEqual([]);
    expect(lan.masters()).toEqual(["r1"]);
    expect(lan.routers.get("r1")!.advertsSent).toBeGreaterThan(5900);
  });

  test("v2 1s, 1% independent loss: zero state changes in 10 minutes", () => {
    const link = { delayMs: 1, jitterMs: 2, loss: 0.01 };
    const lan = new Lan(routers(90, 180, 30, 250, 140), { seed, params: V2, link });
    startAll(lan, 1000);
    lan.run(10_000);
    expect(lan.masters()).toEqual(["r4"]);
    const settled = lan.now;
    lan.run(10 * 60_000);
    expect(lan.changesSince(settled)).toEqual([]);
  });

  test("v3 0.1s, 30% independent loss flaps, and one master remains once the loss stops", () => {
    const lan = new Lan(routers(250, 200, 150), { seed, params: V3_FAST, link: { delayMs: 1, jitterMs: 2, loss: 0.3 } });
    startAll(lan, 100);
    lan.run(3000);
    const lossyFrom = lan.now;
    lan.run(5 * 60_000);
    // p³ = 2.7% per advert per backup: thousands of chances, so takeovers must have happened.
    expect(lan.changesSince(lossyFrom).length).toBeGreaterThan(0);
    lan.link = { ...lan.link, loss: 0 };
    const cleanFrom = lan.now;
    lan.run(mdi(V3_FAST, 150) + 5 * intervalMs(V3_FAST));
    expect(lan.masters()).toEqual(["r1"]);
    const stable = lan.now;
    lan.run(60_000);
    expect(lan.changesSince(stable)).toEqual([]);
    expect(cleanFrom).toBeLessThan(stable);
    expect(lan.vipInvariantViolations()).toEqual([]);
  });
});
