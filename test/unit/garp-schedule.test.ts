import { describe, expect, test } from "bun:test";
import { AnnounceSchedule, DEFAULT_GARP_PARAMS, GarpPacer } from "../../src/vrrp/garp-schedule.ts";
import type { AnnounceRounds, GarpParams } from "../../src/vrrp/garp-schedule.ts";

/** Steps a schedule through its deadlines up to `until`, collecting (time, rounds). */
function run(s: AnnounceSchedule, until: number): { at: number; r: AnnounceRounds }[] {
  const out: { at: number; r: AnnounceRounds }[] = [];
  for (let i = 0; i < 1000; i++) {
    const d = s.nextDeadline();
    if (d === undefined || d > until) break;
    for (const r of s.due(d)) out.push({ at: d, r });
  }
  return out;
}

describe("AnnounceSchedule", () => {
  test("defaults: 5 rounds at once, 5 more after 5 s, nothing else", () => {
    const s = new AnnounceSchedule(DEFAULT_GARP_PARAMS);
    expect(s.becomeMaster(1000)).toEqual([{ reason: "master", rounds: 5 }]);
    expect(s.nextDeadline()).toBe(6000);
    expect(s.due(5999)).toEqual([]);
    expect(run(s, 100_000)).toEqual([{ at: 6000, r: { reason: "master-delayed", rounds: 5 } }]);
    expect(s.nextDeadline()).toBeUndefined();
  });

  test("refresh starts after the delayed burst and repeats every period", () => {
    const p: GarpParams = { ...DEFAULT_GARP_PARAMS, masterRefreshMs: 60_000, masterRefreshRepeat: 2 };
    const s = new AnnounceSchedule(p);
    s.becomeMaster(0);
    const got = run(s, 200_000);
    expect(got).toEqual([
      { at: 5000, r: { reason: "master-delayed", rounds: 5 } },
      { at: 65_000, r: { reason: "refresh", rounds: 2 } },
      { at: 125_000, r: { reason: "refresh", rounds: 2 } },
      { at: 185_000, r: { reason: "refresh", rounds: 2 } },
    ]);
  });

  test("garp_master_delay 0: no second burst, refresh from becoming master", () => {
    const s = new AnnounceSchedule({ ...DEFAULT_GARP_PARAMS, masterDelayMs: 0, masterRefreshMs: 10_000 });
    expect(s.becomeMaster(0)).toEqual([{ reason: "master", rounds: 5 }]);
    expect(run(s, 25_000).map((x) => [x.at, x.r.reason])).toEqual([[10_000, "refresh"], [20_000, "refresh"]]);
  });

  test("vrrp_min_garp style: one round, nothing later", () => {
    const s = new AnnounceSchedule({ ...DEFAULT_GARP_PARAMS, masterRepeat: 1, masterDelayMs: 0 });
    expect(s.becomeMaster(0)).toEqual([{ reason: "master", rounds: 1 }]);
    expect(s.nextDeadline()).toBeUndefined();
  });

  test("lower-priority burst and its delayed repeat", () => {
    const s = new AnnounceSchedule({ ...DEFAULT_GARP_PARAMS, lowerPrioRepeat: 3, lowerPrioDelayMs: 2000 });
    s.becomeMaster(0);
    expect(s.lowerPriority(1000)).toEqual([{ reason: "lower-prio", rounds: 3 }]);
    expect(run(s, 10_000).map((x) => [x.at, x.r.reason, x.r.rounds])).toEqual([
      [3000, "lower-prio-delayed", 3],
      [5000, "master-delayed", 5],
    ]);
  });

  test("lower_prio_repeat 0 (strict) sends nothing", () => {
    const s = new AnnounceSchedule({ ...DEFAULT_GARP_PARAMS, lowerPrioRepeat: 0 });
    expect(s.lowerPriority(0)).toEqual([]);
    expect(s.nextDeadline()).toBeUndefined();
  });

  test("cancel forgets pending bursts; a stall skips missed refreshes", () => {
    const s = new AnnounceSchedule({ ...DEFAULT_GARP_PARAMS, masterRefreshMs: 1000 });
    s.becomeMaster(0);
    s.cancel();
    expect(s.nextDeadline()).toBeUndefined();
    s.becomeMaster(0);
    const late = s.due(60_000);
    expect(late.filter((r) => r.reason === "refresh").length).toBe(1);
    expect(s.nextDeadline()).toBe(61_000);
  });
});

describe("GarpPacer", () => {
  test("interval 0 sends every round immediately, round by round", () => {
    const p = new GarpPacer(0);
    expect(p.request(0, ["a", "b"], 3)).toEqual(["a", "b", "a", "b", "a", "b"]);
    expect(p.nextDeadline()).toBeUndefined();
    expect(p.queued()).toBe(0);
  });

  test("interval spaces messages and keeps the total", () => {
    const p = new GarpPacer(10);
    const sent: { at: number; a: string }[] = [];
    for (const a of p.request(100, ["a", "b"], 5)) sent.push({ at: 100, a });
    expect(sent).toEqual([{ at: 100, a: "a" }]);
    expect(p.queued()).toBe(9);
    for (let i = 0; i < 100 && p.nextDeadline() !== undefined; i++) {
      const t = p.nextDeadline()!;
      for (const a of p.due(t)) sent.push({ at: t, a });
    }
    expect(sent.length).toBe(10);
    expect(sent.filter((s) => s.a === "a").length).toBe(5);
    expect(sent.filter((s) => s.a === "b").length).toBe(5);
    for (let i = 1; i < sent.length; i++) expect(sent[i]!.at - sent[i - 1]!.at).toBe(10);
    // Round-robin between queued addresses.
    expect(sent.slice(1, 5).map((s) => s.a)).toEqual(["b", "a", "b", "a"]);
  });

  test("nothing goes out before its time even if asked", () => {
    const p = new GarpPacer(50);
    expect(p.request(0, ["a"], 2)).toEqual(["a"]);
    expect(p.due(49)).toEqual([]);
    expect(p.due(50)).toEqual(["a"]);
    expect(p.nextDeadline()).toBeUndefined();
    // A later request right after a send must wait for the spacing.
    expect(p.request(60, ["b"], 1)).toEqual([]);
    expect(p.nextDeadline()).toBe(100);
    expect(p.due(100)).toEqual(["b"]);
  });

  test("a queued address is topped up, not duplicated", () => {
    const p = new GarpPacer(10);
    p.request(0, ["x", "y"], 2); // x sent, x:1 y:2 queued
    expect(p.queued()).toBe(3);
    p.request(1, ["y"], 5); // y topped up towards 5
    expect(p.queued()).toBe(1 + 5);
  });

  test("cancel drops an instance's queued messages", () => {
    const p = new GarpPacer(10);
    p.request(0, ["a", "b"], 3);
    p.cancel(["a", "b"]);
    expect(p.queued()).toBe(0);
    expect(p.nextDeadline()).toBeUndefined();
    expect(p.due(1000)).toEqual([]);
  });
});
