import { describe, expect, test } from "bun:test";
import { VrrpInstance, compareIp, instanceParams } from "../../src/vrrp/instance.ts";
import type { InstanceParams, VrrpAction } from "../../src/vrrp/instance.ts";
import { VrrpState } from "../../src/vrrp/types.ts";

const SELF = "192.0.2.10";
const PEER_LOW = "192.0.2.5"; // numerically lower than SELF
const PEER_HIGH = "192.0.2.20"; // numerically higher than SELF

function mk(over: Partial<InstanceParams> = {}): VrrpInstance {
  return new VrrpInstance(instanceParams({ name: "VI_1", sourceAddress: SELF, ...over }));
}

/** Action types without the log lines, for order checks. */
function kinds(acts: VrrpAction[]): string[] {
  return acts.filter((a) => a.type !== "log").map((a) => a.type);
}
function logs(acts: VrrpAction[]): string[] {
  return acts.flatMap((a) => (a.type === "log" ? [a.message] : []));
}
function adverts(acts: VrrpAction[]): number[] {
  return acts.flatMap((a) => (a.type === "send-advert" ? [a.priority] : []));
}
function stateChanges(acts: VrrpAction[]): [number, number, string][] {
  return acts.flatMap((a) => (a.type === "state-change" ? [[a.from, a.to, a.reason] as [number, number, string]] : []));
}

/** Fires every deadline up to `until` (fake clock); returns the actions with their times. */
function drive(inst: VrrpInstance, until: number): { at: number; acts: VrrpAction[] }[] {
  const out: { at: number; acts: VrrpAction[] }[] = [];
  for (let i = 0; i < 10_000; i++) {
    const d = inst.nextDeadline();
    if (d === undefined || d > until) break;
    out.push({ at: d, acts: inst.onTimer(d) });
  }
  return out;
}

/** Starts a default v2 instance and lets it time out into MASTER; returns the time it did. */
function masterAt(inst: VrrpInstance): number {
  inst.start(0);
  const t = inst.nextDeadline()!;
  inst.onTimer(t);
  expect(inst.state).toBe(VrrpState.MASTER);
  return t;
}

describe("startup", () => {
  test("default instance enters BACKUP with a full Master_Down_Interval", () => {
    const i = mk();
    const acts = i.start(0);
    expect(logs(acts)).toEqual(["(VI_1) Entering BACKUP STATE (init)"]);
    expect(stateChanges(acts)).toEqual([[VrrpState.INIT, VrrpState.BACKUP, "startup"]]);
    expect(i.nextDeadline()).toBe(3609.375);
  });

  test("state MASTER without owner priority still starts as BACKUP with full interval", () => {
    const i = mk({ wantState: "MASTER", basePriority: 150 });
    i.start(10);
    expect(i.state).toBe(VrrpState.BACKUP);
    expect(i.nextDeadline()).toBe(10 + 3000 + 414.062);
  });

  test("owner with state MASTER becomes master at once, advert first", () => {
    const i = mk({ wantState: "MASTER", basePriority: 255 });
    expect(i.start(0)).toEqual([]);
    const d = i.nextDeadline()!;
    expect(d).toBeLessThan(0.01);
    const acts = i.onTimer(d);
    expect(kinds(acts)).toEqual(["send-advert", "add-addresses", "announce", "state-change"]);
    expect(adverts(acts)).toEqual([255]);
    expect(logs(acts)).toEqual(["(VI_1) Entering MASTER STATE"]);
    expect(acts).toContainEqual({ type: "announce", reason: "master", rounds: 5 });
    expect(i.stats.become_master).toBe(1);
  });

  test("a fault known before start gives FAULT (init) and no timer", () => {
    const i = mk();
    expect(i.setFault(0, "eth0 down", true)).toEqual([]);
    const acts = i.start(0);
    expect(logs(acts)).toEqual(["(VI_1) Entering FAULT STATE (init)"]);
    expect(i.state).toBe(VrrpState.FAULT);
    expect(i.nextDeadline()).toBeUndefined();
  });

  test("adverts are ignored before start", () => {
    const i = mk();
    expect(i.onAdvert(0, { src: PEER_HIGH, priority: 200, adverIntCs: 100 })).toEqual([]);
    expect(i.state).toBe(VrrpState.INIT);
  });
});

describe("BACKUP receiving", () => {
  test("priority 0 shortens the down timer to Skew_Time", () => {
    const i = mk();
    i.start(0);
    const acts = i.onAdvert(1000, { src: PEER_HIGH, priority: 0, adverIntCs: 100 });
    expect(logs(acts)).toEqual(["(VI_1) Backup received priority 0 advertisement"]);
    expect(i.nextDeadline()).toBe(1000 + 609.375);
    const fired = i.onTimer(1609.375);
    expect(stateChanges(fired)).toEqual([[VrrpState.BACKUP, VrrpState.MASTER, "priority-zero"]]);
  });

  test("higher or equal priority resets the down timer and records the master", () => {
    const i = mk();
    i.start(0);
    i.onAdvert(3000, { src: PEER_HIGH, priority: 150, adverIntCs: 100 });
    expect(i.nextDeadline()).toBe(6609.375);
    expect(i.masterAddress).toBe(PEER_HIGH);
    expect(i.masterPriority).toBe(150);
    i.onAdvert(4000, { src: PEER_LOW, priority: 100, adverIntCs: 100 });
    expect(i.nextDeadline()).toBe(7609.375);
  });

  test("lower priority with preempt is discarded: the timer runs out and we preempt", () => {
    const i = mk();
    i.start(0);
    const acts = i.onAdvert(1000, { src: PEER_LOW, priority: 50, adverIntCs: 100 });
    expect(logs(acts)).toEqual([`(VI_1) received lower priority (50) advert from ${PEER_LOW} - discarding`]);
    i.onAdvert(2000, { src: PEER_LOW, priority: 50, adverIntCs: 100 });
    expect(i.nextDeadline()).toBe(3609.375);
    const fired = i.onTimer(3609.375);
    expect(stateChanges(fired)).toEqual([[VrrpState.BACKUP, VrrpState.MASTER, "preempt"]]);
  });

  test("nopreempt accepts lower priority adverts and never takes over while they come", () => {
    const i = mk({ nopreempt: true, basePriority: 200 });
    i.start(0);
    for (let t = 1000; t <= 60_000; t += 1000) {
      i.onAdvert(t, { src: PEER_LOW, priority: 50, adverIntCs: 100 });
      expect(drive(i, t + 999)).toEqual([]);
    }
    expect(i.state).toBe(VrrpState.BACKUP);
    expect(i.masterAddress).toBe(PEER_LOW);
  });

  test("preempt_delay accepts a lower master until the delay, started by the first lower advert", () => {
    const i = mk({ basePriority: 200, preemptDelayMs: 10_000 });
    i.start(0);
    // Lower-priority master adverts every second from t=1 s.
    let became: number | undefined;
    for (let t = 1000; t <= 30_000 && became === undefined; t += 1000) {
      for (const f of drive(i, t - 0.001)) if (i.state === VrrpState.MASTER && became === undefined) became = f.at;
      if (became === undefined) i.onAdvert(t, { src: PEER_LOW, priority: 50, adverIntCs: 100 });
    }
    // Delay runs to 11 s; the advert at 11 s is discarded, so the timer set at 10 s
    // (10 s + 3 s + skew(200) = 218.75 ms) fires.
    expect(became).toBe(10_000 + 3218.75);
  });

  test("preempt_delay is cancelled by an advert at least as good as ours", () => {
    const i = mk({ basePriority: 200, preemptDelayMs: 5000 });
    i.start(0);
    i.onAdvert(1000, { src: PEER_LOW, priority: 50, adverIntCs: 100 }); // delay until 6 s
    i.onAdvert(2000, { src: PEER_HIGH, priority: 220, adverIntCs: 100 }); // cancels
    i.onAdvert(5000, { src: PEER_LOW, priority: 50, adverIntCs: 100 }); // restarts: until 10 s
    const acts = i.onAdvert(9000, { src: PEER_LOW, priority: 50, adverIntCs: 100 });
    expect(logs(acts).some((l) => l.includes("discarding"))).toBe(false);
    expect(i.nextDeadline()).toBe(9000 + 3218.75);
    const late = i.onAdvert(10_000, { src: PEER_LOW, priority: 50, adverIntCs: 100 });
    expect(logs(late).some((l) => l.includes("discarding"))).toBe(true);
  });

  test("v3 backup adopts the master's interval and reverts to its own as master", () => {
    const i = mk({ version: 3 });
    i.start(0);
    i.onAdvert(100, { src: PEER_HIGH, priority: 150, adverIntCs: 50 });
    expect(i.masterAdverIntCs).toBe(50);
    // 3 × 500 ms + (156 × 50 × 625 / 16 µs = 304687.5 → 304.687 ms)
    expect(i.nextDeadline()).toBe(100 + 1500 + 304.687);
    const f = i.onTimer(i.nextDeadline()!);
    expect(i.state).toBe(VrrpState.MASTER);
    expect(i.masterAdverIntCs).toBe(100);
    expect(f).toContainEqual({ type: "send-advert", priority: 100, adverIntCs: 100 });
    expect(i.nextDeadline()).toBe(100 + 1804.687 + 1000);
  });

  test("v2 keeps its own interval", () => {
    const i = mk({ version: 2 });
    i.start(0);
    i.onAdvert(100, { src: PEER_HIGH, priority: 150, adverIntCs: 200 });
    expect(i.masterAdverIntCs).toBe(100);
  });
});

describe("timeout in BACKUP", () => {
  test("goes MASTER: advert, addresses, GARP burst, report — then adverts every interval", () => {
    const i = mk();
    i.start(0);
    const acts = i.onTimer(3609.375);
    expect(kinds(acts)).toEqual(["send-advert", "add-addresses", "announce", "state-change"]);
    expect(stateChanges(acts)).toEqual([[VrrpState.BACKUP, VrrpState.MASTER, "master-down"]]);
    expect(i.stats.advert_sent).toBe(1);
    const later = drive(i, 3609.375 + 5500);
    const advertTimes = later.filter((f) => adverts(f.acts).length).map((f) => f.at - 3609.375);
    expect(advertTimes).toEqual([1000, 2000, 3000, 4000, 5000]);
    const delayed = later.flatMap((f) => f.acts.filter((a) => a.type === "announce").map((a) => [f.at - 3609.375, a]));
    expect(delayed).toEqual([[5000, { type: "announce", reason: "master-delayed", rounds: 5 }]]);
    expect(i.stats.advert_sent).toBe(6);
  });

  test("an early timer call does nothing", () => {
    const i = mk();
    i.start(0);
    expect(i.onTimer(3000)).toEqual([]);
    expect(i.state).toBe(VrrpState.BACKUP);
  });

  test("adverts stay anchored to their deadlines when timers fire late", () => {
    const i = mk();
    const t0 = masterAt(i);
    i.onTimer(t0 + 1000.7);
    expect(i.nextDeadline()).toBe(t0 + 2000);
  });
});

describe("MASTER receiving", () => {
  test("lower priority: stay master, advert, lower-prio GARP, rx-lower-prio event", () => {
    const i = mk({ basePriority: 150 });
    const t0 = masterAt(i);
    const acts = i.onAdvert(t0 + 300, { src: PEER_HIGH, priority: 100, adverIntCs: 100 });
    expect(logs(acts)).toEqual([`(VI_1) Received advert from ${PEER_HIGH} with lower priority 100, ours 150, forcing new election`]);
    expect(kinds(acts)).toEqual(["send-advert", "announce", "master-rx-lower-prio"]);
    expect(acts).toContainEqual({ type: "announce", reason: "lower-prio", rounds: 5 });
    expect(i.state).toBe(VrrpState.MASTER);
    expect(i.nextDeadline()).toBe(t0 + 1300);
  });

  test("lower_prio_no_advert: no advert, no 'forcing new election'", () => {
    const i = mk({ basePriority: 150, lowerPrioNoAdvert: true, garp: { ...instanceParams({ name: "x", sourceAddress: SELF }).garp, lowerPrioRepeat: 0 } });
    const t0 = masterAt(i);
    const acts = i.onAdvert(t0 + 300, { src: PEER_HIGH, priority: 100, adverIntCs: 100 });
    expect(logs(acts)).toEqual([`(VI_1) Received advert from ${PEER_HIGH} with lower priority 100, ours 150`]);
    expect(kinds(acts)).toEqual(["master-rx-lower-prio"]);
    expect(i.nextDeadline()).toBe(t0 + 1000);
  });

  test("equal priority from a lower address counts as lower", () => {
    const i = mk();
    const t0 = masterAt(i);
    const acts = i.onAdvert(t0 + 10, { src: PEER_LOW, priority: 100, adverIntCs: 100 });
    expect(i.state).toBe(VrrpState.MASTER);
    expect(adverts(acts)).toEqual([100]);
  });

  test("equal priority from a higher address: BACKUP at once, no priority-0 advert", () => {
    const i = mk();
    const t0 = masterAt(i);
    const acts = i.onAdvert(t0 + 10, { src: PEER_HIGH, priority: 100, adverIntCs: 100 });
    expect(logs(acts)).toEqual([
      `(VI_1) Master received advert from ${PEER_HIGH} with same priority 100 but higher IP address than ours`,
      "(VI_1) Entering BACKUP STATE",
    ]);
    expect(kinds(acts)).toEqual(["remove-addresses", "state-change"]);
    expect(stateChanges(acts)).toEqual([[VrrpState.MASTER, VrrpState.BACKUP, "higher-priority"]]);
    expect(i.stats.release_master).toBe(1);
    expect(i.nextDeadline()).toBe(t0 + 10 + 3609.375);
  });

  test("higher priority: BACKUP at once with the keepalived log line", () => {
    const i = mk();
    const t0 = masterAt(i);
    const acts = i.onAdvert(t0 + 10, { src: PEER_LOW, priority: 150, adverIntCs: 100 });
    expect(logs(acts)[0]).toBe(`(VI_1) Master received advert from ${PEER_LOW} with higher priority 150, ours 100`);
    expect(adverts(acts)).toEqual([]);
    expect(i.state).toBe(VrrpState.BACKUP);
    expect(i.masterAddress).toBe(PEER_LOW);
  });

  test("higher_prio_send_advert sends one advert before stepping down", () => {
    const i = mk({ higherPrioSendAdvert: true });
    const t0 = masterAt(i);
    const acts = i.onAdvert(t0 + 10, { src: PEER_LOW, priority: 150, adverIntCs: 100 });
    expect(kinds(acts)).toEqual(["send-advert", "remove-addresses", "state-change"]);
    expect(adverts(acts)).toEqual([100]);
  });

  test("priority 0 from another router: answer with an advert at once, stay MASTER", () => {
    const i = mk();
    const t0 = masterAt(i);
    const acts = i.onAdvert(t0 + 500, { src: PEER_HIGH, priority: 0, adverIntCs: 100 });
    expect(kinds(acts)).toEqual(["send-advert"]);
    expect(i.state).toBe(VrrpState.MASTER);
    expect(i.nextDeadline()).toBe(t0 + 1500);
  });

  test("equal priority from our own address is only warned about", () => {
    const i = mk();
    const t0 = masterAt(i);
    const acts = i.onAdvert(t0 + 1, { src: SELF, priority: 100, adverIntCs: 100 });
    expect(kinds(acts)).toEqual([]);
    expect(logs(acts)[0]).toContain("WARNING - equal priority advert received from remote host with our IP address.");
    expect(i.state).toBe(VrrpState.MASTER);
  });

  test("v3 master stepping down adopts the new master's interval", () => {
    const i = mk({ version: 3 });
    const t0 = masterAt(i);
    i.onAdvert(t0 + 1, { src: PEER_HIGH, priority: 200, adverIntCs: 20 });
    expect(i.masterAdverIntCs).toBe(20);
    expect(i.nextDeadline()).toBe(t0 + 1 + 600 + 121.875); // 3×200 ms + 156×20×625/16 µs
  });

  test("IPv6 tie break compares word by word", () => {
    const i = mk({ family: "inet6", version: 3, sourceAddress: "fe80::10" });
    const t0 = masterAt(i);
    i.onAdvert(t0 + 1, { src: "fe80::9", priority: 100, adverIntCs: 100 });
    expect(i.state).toBe(VrrpState.MASTER);
    i.onAdvert(t0 + 2, { src: "fe80::1:0", priority: 100, adverIntCs: 100 });
    expect(i.state).toBe(VrrpState.BACKUP);
  });

  test("owner ignoring adverts drops them all", () => {
    const i = mk({ basePriority: 255, wantState: "MASTER", ownerIgnoreAdverts: true });
    i.start(0);
    i.onTimer(i.nextDeadline()!);
    expect(i.onAdvert(5, { src: PEER_HIGH, priority: 255, adverIntCs: 100 })).toEqual([]);
    expect(i.state).toBe(VrrpState.MASTER);
  });
});

describe("priority changes", () => {
  test("in BACKUP the running down timer moves by the skew difference", () => {
    const i = mk();
    i.start(0);
    const acts = i.setTotalPriority(100, 50);
    expect(logs(acts)).toEqual(["(VI_1) Changing effective priority from 100 to 50"]);
    expect(acts).toContainEqual({ type: "priority-change", from: 100, to: 50 });
    // skew(50) = 206/256 s = 804687.5 µs → 804.687 ms; was 609.375
    expect(i.nextDeadline()).toBe(3609.375 + (804.687 - 609.375));
    i.setTotalPriority(200, 100);
    expect(i.nextDeadline()).toBeCloseTo(3609.375, 9);
  });

  test("clamped to [1,254]; unchanged effective priority emits nothing", () => {
    const i = mk();
    i.start(0);
    i.setTotalPriority(0, 300);
    expect(i.effectivePriority).toBe(254);
    expect(i.setTotalPriority(0, 260)).toEqual([]);
    i.setTotalPriority(0, -20);
    expect(i.effectivePriority).toBe(1);
  });

  test("the owner is never adjusted", () => {
    const i = mk({ basePriority: 255 });
    i.start(0);
    expect(i.setTotalPriority(0, 200)).toEqual([]);
    expect(i.effectivePriority).toBe(255);
  });

  test("a MASTER advertises the new priority on its next advert", () => {
    const i = mk();
    const t0 = masterAt(i);
    i.setTotalPriority(t0 + 10, 80);
    expect(adverts(i.onTimer(t0 + 1000))).toEqual([80]);
  });
});

describe("FAULT", () => {
  test("MASTER → FAULT resigns with priority 0 and removes addresses", () => {
    const i = mk();
    const t0 = masterAt(i);
    const acts = i.setFault(t0 + 5, "eth0 down", true);
    expect(logs(acts)).toEqual(["(VI_1) Entering FAULT STATE"]);
    expect(kinds(acts)).toEqual(["send-advert", "remove-addresses", "state-change"]);
    expect(adverts(acts)).toEqual([0]);
    expect(stateChanges(acts)).toEqual([[VrrpState.MASTER, VrrpState.FAULT, "fault"]]);
    expect(i.stats.pri_zero_sent).toBe(1);
    expect(i.nextDeadline()).toBeUndefined();
    expect(i.onAdvert(t0 + 6, { src: PEER_HIGH, priority: 200, adverIntCs: 100 })).toEqual([]);
    expect(drive(i, t0 + 100_000)).toEqual([]);
  });

  test("all reasons must clear before leaving FAULT; then BACKUP with the full interval", () => {
    const i = mk();
    i.start(0);
    expect(stateChanges(i.setFault(10, "a", true))).toEqual([[VrrpState.BACKUP, VrrpState.FAULT, "fault"]]);
    expect(i.setFault(20, "b", true)).toEqual([]);
    expect(i.setFault(30, "a", false)).toEqual([]);
    expect(i.state).toBe(VrrpState.FAULT);
    const acts = i.setFault(40, "b", false);
    expect(logs(acts)).toEqual(["(VI_1) Entering BACKUP STATE"]);
    expect(stateChanges(acts)).toEqual([[VrrpState.FAULT, VrrpState.BACKUP, "fault-cleared"]]);
    expect(i.nextDeadline()).toBe(40 + 3609.375);
  });

  test("owner wanting MASTER leaves FAULT with adver_int + skew", () => {
    const i = mk({ basePriority: 255, wantState: "MASTER" });
    i.setFault(0, "x", true);
    i.start(0);
    i.setFault(100, "x", false);
    expect(i.state).toBe(VrrpState.BACKUP);
    expect(i.nextDeadline()).toBe(100 + 1000 + 3.906);
  });

  test("leaving FAULT reverts a v3 instance to its own interval", () => {
    const i = mk({ version: 3 });
    i.start(0);
    i.onAdvert(10, { src: PEER_HIGH, priority: 200, adverIntCs: 300 });
    i.setFault(20, "x", true);
    i.setFault(30, "x", false);
    expect(i.masterAdverIntCs).toBe(100);
    expect(i.nextDeadline()).toBe(30 + 3609.375);
  });
});

describe("stop", () => {
  test("a MASTER sends priority 0 and removes its addresses", () => {
    const i = mk();
    const t0 = masterAt(i);
    const acts = i.stop(t0 + 1);
    expect(kinds(acts)).toEqual(["send-advert", "remove-addresses", "state-change"]);
    expect(adverts(acts)).toEqual([0]);
    expect(stateChanges(acts)).toEqual([[VrrpState.MASTER, VrrpState.INIT, "stop"]]);
    expect(i.stats.pri_zero_sent).toBe(1);
    expect(i.nextDeadline()).toBeUndefined();
  });

  test("a BACKUP just stops", () => {
    const i = mk();
    i.start(0);
    const acts = i.stop(5);
    expect(kinds(acts)).toEqual(["state-change"]);
    expect(i.stats.pri_zero_sent).toBe(0);
    expect(i.stop(6)).toEqual([]);
  });
});

describe("sync group hook", () => {
  test("a vetoed instance keeps waiting in BACKUP and re-arms its down timer", () => {
    let allow = false;
    const i = new VrrpInstance(instanceParams({ name: "VI_1", sourceAddress: SELF }), () => allow);
    i.start(0);
    expect(i.onTimer(3609.375)).toEqual([]);
    expect(i.state).toBe(VrrpState.BACKUP);
    expect(i.wantsMaster).toBe(true);
    expect(i.nextDeadline()).toBe(2 * 3609.375);
    allow = true;
    i.onTimer(2 * 3609.375);
    expect(i.state).toBe(VrrpState.MASTER);
    expect(i.wantsMaster).toBe(false);
  });
});

describe("sync group methods", () => {
  test("a vetoed member re-arms a full Master_Down_Interval, even after a priority-0 advert", () => {
    let allow = false;
    const i = new VrrpInstance(instanceParams({ name: "VI_1", sourceAddress: SELF }), () => allow);
    i.start(0);
    i.onAdvert(1000, { src: PEER_HIGH, priority: 0, adverIntCs: 100 });
    expect(i.nextDeadline()).toBe(1609.375);
    expect(i.onTimer(1609.375)).toEqual([]);
    expect(i.wantsMaster).toBe(true);
    expect(i.nextDeadline()).toBe(1609.375 + 3609.375);
    allow = true;
    const acts = i.onTimer(1609.375 + 3609.375);
    expect(stateChanges(acts)).toEqual([[VrrpState.BACKUP, VrrpState.MASTER, "priority-zero"]]);
  });

  test("setGroupFault holds a MASTER in FAULT (priority-0 advert) and releases it to BACKUP", () => {
    const i = mk();
    const t0 = masterAt(i);
    const on = i.setGroupFault(t0 + 1, true);
    expect(kinds(on)).toEqual(["send-advert", "remove-addresses", "state-change"]);
    expect(adverts(on)).toEqual([0]);
    expect(on).toContainEqual({ type: "state-change", from: VrrpState.MASTER, to: VrrpState.FAULT, reason: "sync-group", followsGroup: true });
    expect(i.heldByGroup).toBe(true);
    expect(i.faults.size).toBe(0);
    expect(i.nextDeadline()).toBeUndefined();
    expect(i.setGroupFault(t0 + 2, true)).toEqual([]);
    const off = i.setGroupFault(t0 + 10, false);
    expect(off).toContainEqual({ type: "state-change", from: VrrpState.FAULT, to: VrrpState.BACKUP, reason: "sync-group", followsGroup: true });
    expect(i.nextDeadline()).toBe(t0 + 10 + 3609.375);
    expect(i.snapshot().heldByGroup).toBe(false);
  });

  test("own faults and the group hold both keep the instance in FAULT until both are gone", () => {
    const i = mk();
    i.start(0);
    i.setFault(1, "eth0", true);
    expect(i.setGroupFault(2, true)).toEqual([]);
    expect(i.setFault(3, "eth0", false)).toEqual([]);
    expect(i.state).toBe(VrrpState.FAULT);
    expect(i.snapshot()).toMatchObject({ faults: [], heldByGroup: true, state: "FAULT" });
    i.setGroupFault(4, true);
    i.setFault(5, "eth1", true);
    expect(stateChanges(i.setGroupFault(6, false))).toEqual([]);
    expect(stateChanges(i.setFault(7, "eth1", false))).toEqual([[VrrpState.FAULT, VrrpState.BACKUP, "fault-cleared"]]);
  });

  test("a hold recorded before start makes start enter FAULT (init)", () => {
    const i = mk();
    expect(i.setGroupFault(0, true)).toEqual([]);
    const acts = i.start(0);
    expect(stateChanges(acts)).toEqual([[VrrpState.INIT, VrrpState.FAULT, "startup"]]);
  });

  test("forceMaster takes a BACKUP to MASTER with the given reason, marked followsGroup", () => {
    const i = mk();
    i.start(0);
    const acts = i.forceMaster(500, "preempt");
    expect(kinds(acts)).toEqual(["send-advert", "add-addresses", "announce", "state-change"]);
    expect(acts).toContainEqual({ type: "state-change", from: VrrpState.BACKUP, to: VrrpState.MASTER, reason: "preempt", followsGroup: true });
    expect(i.nextDeadline()).toBe(1500);
    expect(i.stats.become_master).toBe(1);
    expect(i.forceMaster(600, "preempt")).toEqual([]);
    const f = mk();
    f.setFault(0, "x", true);
    f.start(0);
    expect(f.forceMaster(1, "master-down")).toEqual([]);
    expect(f.state).toBe(VrrpState.FAULT);
  });

  test("forceBackup: a MASTER drops its addresses without a priority-0 advert; others are untouched", () => {
    const i = mk({ version: 3 });
    const t0 = masterAt(i);
    const acts = i.forceBackup(t0 + 7);
    expect(kinds(acts)).toEqual(["remove-addresses", "state-change"]);
    expect(acts).toContainEqual({ type: "state-change", from: VrrpState.MASTER, to: VrrpState.BACKUP, reason: "sync-group", followsGroup: true });
    expect(i.stats.release_master).toBe(1);
    expect(i.nextDeadline()).toBe(t0 + 7 + 3609.375);
    expect(i.forceBackup(t0 + 8)).toEqual([]);
    expect(i.announceLowerPriority(t0 + 9)).toEqual([]);
  });

  test("announceLowerPriority gives a MASTER the lower-priority GARP rounds", () => {
    const i = mk();
    const t0 = masterAt(i);
    expect(i.announceLowerPriority(t0 + 1)).toEqual([{ type: "announce", reason: "lower-prio", rounds: 5 }]);
  });

  test("an owner configured MASTER wants MASTER from the start; ownerWaits makes it wait one interval + minimal skew", () => {
    const a = mk({ basePriority: 255, wantState: "MASTER" });
    a.start(0);
    expect(a.wantsMaster).toBe(true);
    const b = mk({ basePriority: 255, wantState: "MASTER" });
    const acts = b.start(100, { ownerWaits: true });
    expect(stateChanges(acts)).toEqual([[VrrpState.INIT, VrrpState.BACKUP, "startup"]]);
    expect(b.nextDeadline()).toBe(100 + 1000 + 3.906);
    expect(stateChanges(b.onTimer(1103.906))).toEqual([[VrrpState.BACKUP, VrrpState.MASTER, "preempt"]]);
  });
});

describe("timer_expired_backup", () => {
  test("a stalled nopreempt MASTER steps down without a priority-0 advert", () => {
    const i = mk({ nopreempt: true, timerExpiredBackupPrio: 254 });
    const t0 = masterAt(i);
    const acts = i.onTimer(t0 + 3100);
    expect(logs(acts)[0]).toMatch(/^VRRP thread timer expired 2\.1\d* seconds ago$/);
    expect(stateChanges(acts)).toEqual([[VrrpState.MASTER, VrrpState.BACKUP, "stall"]]);
    expect(adverts(acts)).toEqual([]);
  });

  test("a shorter stall, or no option, just sends the late advert", () => {
    const a = mk({ nopreempt: true, timerExpiredBackupPrio: 254 });
    const ta = masterAt(a);
    expect(adverts(a.onTimer(ta + 2900))).toEqual([100]);
    const b = mk({ nopreempt: true });
    const tb = masterAt(b);
    expect(adverts(b.onTimer(tb + 10_000))).toEqual([100]);
    expect(b.state).toBe(VrrpState.MASTER);
  });
});

describe("snapshot", () => {
  test("reports state, priorities, master and counters as plain data", () => {
    const i = mk({ version: 3 });
    i.start(0);
    i.onAdvert(50, { src: PEER_HIGH, priority: 180, adverIntCs: 200 });
    i.setFault(60, "eth0", true);
    const s = i.snapshot();
    expect(s).toMatchObject({
      name: "VI_1", state: "FAULT", basePriority: 100, effectivePriority: 100, adverIntCs: 100,
      masterAddress: PEER_HIGH, masterPriority: 180, faults: ["eth0"], nextDeadline: undefined,
    });
    expect(JSON.parse(JSON.stringify(s)).stats.advert_sent).toBe(0);
  });
});

describe("compareIp", () => {
  test("big-endian numeric order", () => {
    expect(compareIp("192.0.2.9", "192.0.2.10")).toBe(-1);
    expect(compareIp("192.0.2.10", "10.0.0.1")).toBe(1);
    expect(compareIp("2001:db8::1:0", "2001:db8::ffff")).toBe(1);
    expect(compareIp("2001:db8::1", "2001:DB8:0::1")).toBe(0);
    expect(compareIp("192.0.2.1", "2001:db8::1")).toBe(0);
  });
});
