import { describe, expect, test } from "bun:test";
import { VrrpInstance, instanceParams } from "../../src/vrrp/instance.ts";
import type { InstanceParams } from "../../src/vrrp/instance.ts";
import { SyncGroup, createSyncGroups, tagActions } from "../../src/vrrp/sync-group.ts";
import type { SyncGroupAction } from "../../src/vrrp/sync-group.ts";
import { VrrpState } from "../../src/vrrp/types.ts";

const { INIT, BACKUP, MASTER, FAULT } = VrrpState;
const SELF = "192.0.2.10";
const PEER = "192.0.2.20";
const MDI = 3609.375; // v2, 1 s, priority 100

function inst(name: string, over: Partial<InstanceParams> = {}): VrrpInstance {
  return new VrrpInstance(instanceParams({ name, sourceAddress: SELF, ...over }));
}
function group(over: Partial<InstanceParams> = {}, overB: Partial<InstanceParams> = {}): SyncGroup {
  return new SyncGroup("G1", [inst("VI_A", { vrid: 1, ...over }), inst("VI_B", { vrid: 2, ...over, ...overB })]);
}

/** Member state changes as [member, from, to, reason, followsGroup]. */
function changes(acts: SyncGroupAction[]): [string, number, number, string, boolean][] {
  return acts.flatMap((a) => (a.type === "state-change" ? [[a.member, a.from, a.to, a.reason, a.followsGroup === true] as [string, number, number, string, boolean]] : []));
}
/** Group transitions as [from, to, trigger]. */
function groupChanges(acts: SyncGroupAction[]): [number, number, string | undefined][] {
  return acts.flatMap((a) => (a.type === "group-state-change" ? [[a.from, a.to, a.trigger] as [number, number, string | undefined]] : []));
}
function adverts(acts: SyncGroupAction[], member: string): number[] {
  return acts.flatMap((a) => (a.type === "send-advert" && a.member === member ? [a.priority] : []));
}
function states(g: SyncGroup): number[] {
  return g.members.map((m) => m.state);
}

/** Fires the members' deadlines in time order up to `until`; returns everything that happened. */
function drive(g: SyncGroup, until: number): SyncGroupAction[] {
  const out: SyncGroupAction[] = [];
  for (let i = 0; i < 10_000; i++) {
    let next: { at: number; name: string } | undefined;
    for (const m of g.members) {
      const d = m.nextDeadline();
      if (d !== undefined && d <= until && (next === undefined || d < next.at)) next = { at: d, name: m.params.name };
    }
    if (next === undefined) break;
    out.push(...g.onTimer(next.at, next.name));
  }
  return out;
}

/** Starts a group at 0 and lets it time out into MASTER; returns the time it did. */
function masterGroup(g: SyncGroup): number {
  g.start(0);
  drive(g, MDI);
  expect(states(g)).toEqual([MASTER, MASTER]);
  return MDI;
}

describe("construction", () => {
  test("rejects an empty group, a duplicate member and an instance already in a group", () => {
    expect(() => new SyncGroup("G", [])).toThrow(/no members/);
    const a = inst("VI_A");
    expect(() => new SyncGroup("G", [a, inst("VI_A")])).toThrow(/listed twice/);
    const g = new SyncGroup("G1", [a, inst("VI_B")]);
    expect(g.has("VI_A")).toBe(true);
    expect(() => new SyncGroup("G2", [a])).toThrow(/already in sync group G1/);
    expect(() => g.member("VI_X")).toThrow(/no member VI_X/);
  });
});

describe("start", () => {
  test("members enter BACKUP on their own; the group reports BACKUP once", () => {
    const g = group();
    const acts = g.start(0);
    expect(changes(acts)).toEqual([
      ["VI_A", INIT, BACKUP, "startup", false],
      ["VI_B", INIT, BACKUP, "startup", false],
    ]);
    expect(groupChanges(acts)).toEqual([[INIT, BACKUP, undefined]]);
    expect(g.state).toBe(BACKUP);
    expect(g.start(1)).toEqual([]);
  });

  test("a fault known before start puts every member and the group in FAULT", () => {
    const g = group();
    expect(g.setFault(0, "VI_B", "eth1 down", true)).toEqual([]);
    const acts = g.start(0);
    expect(states(g)).toEqual([FAULT, FAULT]);
    expect(g.member("VI_A").heldByGroup).toBe(true);
    expect(g.member("VI_B").heldByGroup).toBe(false);
    expect(groupChanges(acts)).toEqual([[INIT, FAULT, undefined]]);
    expect(g.nextDeadline()).toBeUndefined();
  });

  test("a group of address owners goes MASTER together at once, reporting MASTER once", () => {
    const g = group({ basePriority: 255, wantState: "MASTER" });
    const start = g.start(0);
    expect(groupChanges(start)).toEqual([]);
    const acts = drive(g, 1);
    expect(states(g)).toEqual([MASTER, MASTER]);
    expect(groupChanges(acts)).toEqual([[INIT, MASTER, "VI_A"]]);
    expect(changes(acts)).toEqual([
      ["VI_A", BACKUP, MASTER, "preempt", false],
      ["VI_B", BACKUP, MASTER, "preempt", true],
    ]);
  });

  test("in a mixed group the owner starts BACKUP and waits adver_int + minimal skew", () => {
    const g = group({}, { basePriority: 255, wantState: "MASTER" });
    const acts = g.start(0);
    expect(changes(acts)).toContainEqual(["VI_B", INIT, BACKUP, "startup", false]);
    expect(g.member("VI_B").nextDeadline()).toBe(1000 + 3.906);
    // It wants MASTER, but VI_A does not yet: held until VI_A's own timer runs out.
    drive(g, 1004);
    expect(states(g)).toEqual([BACKUP, BACKUP]);
    const later = drive(g, MDI);
    expect(states(g)).toEqual([MASTER, MASTER]);
    expect(groupChanges(later)).toEqual([[BACKUP, MASTER, "VI_A"]]);
  });
});

describe("going MASTER", () => {
  test("a member whose timer expires first waits until every member wants MASTER", () => {
    const g = group();
    g.start(0);
    // VI_B hears the master once more, so its timer runs 500 ms later.
    g.onAdvert(500, "VI_B", { src: PEER, priority: 100, adverIntCs: 100 });
    const first = g.onTimer(MDI, "VI_A");
    expect(changes(first)).toEqual([]);
    expect(groupChanges(first)).toEqual([]);
    const a = g.member("VI_A");
    expect(a.state).toBe(BACKUP);
    expect(a.wantsMaster).toBe(true);
    expect(a.nextDeadline()).toBe(2 * MDI); // keeps waiting a full Master_Down_Interval

    const second = g.onTimer(500 + MDI, "VI_B");
    expect(changes(second)).toEqual([
      ["VI_B", BACKUP, MASTER, "master-down", false],
      ["VI_A", BACKUP, MASTER, "master-down", true],
    ]);
    expect(groupChanges(second)).toEqual([[BACKUP, MASTER, "VI_B"]]);
    // The trigger's actions first, then the group log, the follower's, and the group event.
    expect(second.filter((x) => x.type !== "log").map((x) => `${x.type}:${"member" in x ? x.member : x.group}`)).toEqual([
      "send-advert:VI_B", "add-addresses:VI_B", "announce:VI_B", "state-change:VI_B",
      "group-log:G1",
      "send-advert:VI_A", "add-addresses:VI_A", "announce:VI_A", "state-change:VI_A",
      "group-state-change:G1",
    ]);
    expect(second).toContainEqual({ type: "group-log", group: "G1", level: "info", message: "VRRP_Group(G1) Syncing instances to MASTER state" });
    expect(a.wantsMaster).toBe(false);
    expect(a.nextDeadline()).toBe(500 + MDI + 1000);
  });

  test("a held member that hears a master again stops wanting MASTER, so the group stays BACKUP", () => {
    const g = group();
    g.start(0);
    g.onAdvert(500, "VI_B", { src: PEER, priority: 100, adverIntCs: 100 });
    g.onTimer(MDI, "VI_A");
    expect(g.member("VI_A").wantsMaster).toBe(true);
    g.onAdvert(MDI + 100, "VI_A", { src: PEER, priority: 150, adverIntCs: 100 });
    expect(g.member("VI_A").wantsMaster).toBe(false);
    const acts = g.onTimer(500 + MDI, "VI_B");
    expect(changes(acts)).toEqual([]);
    expect(states(g)).toEqual([BACKUP, BACKUP]);
    expect(g.member("VI_B").wantsMaster).toBe(true);
  });

  test("one member preempting a lower master still waits for the other", () => {
    const g = group({ basePriority: 200 });
    g.start(0);
    // VI_A's peer is lower (discarded: A's timer runs out); VI_B's peer is higher (accepted).
    for (let t = 1000; t <= 20_000; t += 1000) {
      g.onAdvert(t, "VI_A", { src: PEER, priority: 100, adverIntCs: 100 });
      g.onAdvert(t, "VI_B", { src: PEER, priority: 250, adverIntCs: 100 });
      drive(g, t + 999);
      expect(states(g)).toEqual([BACKUP, BACKUP]);
    }
    expect(g.member("VI_A").wantsMaster).toBe(true);
    // VI_B's master goes quiet: now both want MASTER and the group takes over.
    const acts = drive(g, 20_000 + MDI);
    expect(states(g)).toEqual([MASTER, MASTER]);
    expect(groupChanges(acts)).toEqual([[BACKUP, MASTER, expect.any(String)]]);
  });
});

describe("following BACKUP", () => {
  test("a higher-priority advert to one MASTER member takes the whole group to BACKUP", () => {
    const g = group();
    const t0 = masterGroup(g);
    const acts = g.onAdvert(t0 + 10, "VI_B", { src: PEER, priority: 200, adverIntCs: 100 });
    expect(changes(acts)).toEqual([
      ["VI_B", MASTER, BACKUP, "higher-priority", false],
      ["VI_A", MASTER, BACKUP, "sync-group", true],
    ]);
    expect(groupChanges(acts)).toEqual([[MASTER, BACKUP, "VI_B"]]);
    // The follower removes its addresses but sends no priority-0 advert (keepalived: leave_master without advF).
    expect(acts).toContainEqual({ type: "remove-addresses", member: "VI_A" });
    expect(adverts(acts, "VI_A")).toEqual([]);
    expect(g.member("VI_A").nextDeadline()).toBe(t0 + 10 + MDI);
    expect(g.member("VI_A").stats.release_master).toBe(1);
  });

  test("a timer_expired_backup stall of one member takes the group to BACKUP", () => {
    const g = group({ nopreempt: true, timerExpiredBackupPrio: 254 });
    const t0 = masterGroup(g);
    const acts = g.onTimer(t0 + 3100, "VI_A");
    expect(changes(acts).map((c) => [c[0], c[2], c[3]])).toEqual([["VI_A", BACKUP, "stall"], ["VI_B", BACKUP, "sync-group"]]);
    expect(groupChanges(acts)).toEqual([[MASTER, BACKUP, "VI_A"]]);
  });

  test("a lower-priority advert to one MASTER member makes every member re-announce", () => {
    const g = group();
    const t0 = masterGroup(g);
    const acts = g.onAdvert(t0 + 10, "VI_A", { src: "192.0.2.5", priority: 50, adverIntCs: 100 });
    expect(acts).toContainEqual({ type: "announce", reason: "lower-prio", rounds: 5, member: "VI_A" });
    expect(acts).toContainEqual({ type: "announce", reason: "lower-prio", rounds: 5, member: "VI_B" });
    expect(adverts(acts, "VI_B")).toEqual([]);
    expect(states(g)).toEqual([MASTER, MASTER]);
  });
});

describe("FAULT", () => {
  test("one member's fault puts all in FAULT (MASTERs resign); clearing it brings all back", () => {
    const g = group();
    const t0 = masterGroup(g);
    const down = g.setFault(t0 + 5, "VI_A", "eth0 down", true);
    expect(changes(down)).toEqual([
      ["VI_A", MASTER, FAULT, "fault", false],
      ["VI_B", MASTER, FAULT, "sync-group", true],
    ]);
    expect(adverts(down, "VI_A")).toEqual([0]);
    expect(adverts(down, "VI_B")).toEqual([0]);
    expect(groupChanges(down)).toEqual([[MASTER, FAULT, "VI_A"]]);
    expect(g.nextDeadline()).toBeUndefined();
    // Adverts are ignored in FAULT.
    expect(changes(g.onAdvert(t0 + 6, "VI_B", { src: PEER, priority: 1, adverIntCs: 100 }))).toEqual([]);

    const up = g.setFault(t0 + 100, "VI_A", "eth0 down", false);
    expect(changes(up)).toEqual([
      ["VI_A", FAULT, BACKUP, "fault-cleared", false],
      ["VI_B", FAULT, BACKUP, "sync-group", true],
    ]);
    expect(groupChanges(up)).toEqual([[FAULT, BACKUP, "VI_A"]]);
    expect(g.member("VI_B").nextDeadline()).toBe(t0 + 100 + MDI);
  });

  test("the group stays FAULT until every member's faults have cleared", () => {
    const g = group();
    g.start(0);
    const all: SyncGroupAction[] = [];
    all.push(...g.setFault(10, "VI_A", "x", true));
    all.push(...g.setFault(20, "VI_B", "y", true));
    all.push(...g.setFault(30, "VI_A", "x", false));
    expect(states(g)).toEqual([FAULT, FAULT]);
    expect(g.member("VI_A").heldByGroup).toBe(true);
    all.push(...g.setFault(40, "VI_B", "y", false));
    expect(states(g)).toEqual([BACKUP, BACKUP]);
    expect(groupChanges(all)).toEqual([[BACKUP, FAULT, "VI_A"], [FAULT, BACKUP, "VI_B"]]);
    // Each member changed state exactly twice.
    expect(changes(all).map((c) => `${c[0]}:${c[2]}`)).toEqual(["VI_A:3", "VI_B:3", "VI_B:1", "VI_A:1"]);
  });

  test("a fault on a group tracker (setFaultAll) and its recovery are one transition each", () => {
    const g = group();
    const t0 = masterGroup(g);
    const down = g.setFaultAll(t0 + 1, "chk_group", true);
    expect(states(g)).toEqual([FAULT, FAULT]);
    expect(groupChanges(down)).toEqual([[MASTER, FAULT, "VI_A"]]);
    const up = g.setFaultAll(t0 + 2, "chk_group", false);
    expect(states(g)).toEqual([BACKUP, BACKUP]);
    expect(groupChanges(up)).toEqual([[FAULT, BACKUP, "VI_B"]]);
    expect(changes(up)).toEqual([["VI_B", FAULT, BACKUP, "fault-cleared", false], ["VI_A", FAULT, BACKUP, "sync-group", true]]);
    expect(g.members.every((m) => m.faults.size === 0 && !m.heldByGroup)).toBe(true);
  });
});

describe("stop", () => {
  test("stops every member (MASTERs send priority 0) and reports the group stopped once", () => {
    const g = group();
    const t0 = masterGroup(g);
    const acts = g.stop(t0 + 1);
    expect(adverts(acts, "VI_A")).toEqual([0]);
    expect(adverts(acts, "VI_B")).toEqual([0]);
    expect(states(g)).toEqual([INIT, INIT]);
    expect(groupChanges(acts)).toEqual([[MASTER, INIT, undefined]]);
    expect(g.stop(t0 + 2)).toEqual([]);
    expect(g.snapshot()).toEqual({ name: "G1", state: "INIT", members: ["VI_A", "VI_B"] });
  });
});

describe("createSyncGroups", () => {
  test("builds groups over named instances, skipping what keepalived skips, with its warnings", () => {
    const insts = new Map(["VI_1", "VI_2", "VI_3", "VI_4", "OWN"].map((n) => [n, inst(n, n === "OWN" ? { basePriority: 255, wantState: "MASTER" } : {})]));
    const set = createSyncGroups({
      G1: { group: ["VI_1", "VI_2", "VI_9"] },
      G2: { group: ["VI_2", "VI_3"] },
      G3: { group: ["VI_8"] },
      G4: { group: ["VI_4", "OWN"], notify_master: "/x" },
    }, insts);
    expect(set.groups.map((g) => g.snapshot().members)).toEqual([["VI_1", "VI_2"], ["VI_3"], ["VI_4", "OWN"]]);
    expect(set.byMember.get("VI_2")?.name).toBe("G1");
    expect(set.byMember.get("VI_3")?.name).toBe("G2");
    expect(set.byMember.has("VI_9")).toBe(false);
    expect(set.warnings).toEqual([
      "Virtual router VI_9 specified in sync group G1 doesn't exist - ignoring",
      "Virtual router VI_2 cannot exist in more than one sync group; ignoring G2",
      "Sync group G2 has only 1 virtual router(s) - this probably isn't what you want",
      "Virtual router VI_8 specified in sync group G3 doesn't exist - ignoring",
      "Sync group G3, no matching virtual router found in group declaration - removing",
      "Sync group G4 has some member(s) as address owner and some not as address owner. This won't work.",
    ]);
    // The groups really mediate their members: VI_1 alone may not go MASTER.
    const g1 = set.byMember.get("VI_1")!;
    g1.start(0);
    g1.onTimer(MDI, "VI_1");
    expect(insts.get("VI_1")!.state).toBe(BACKUP);
  });

  test("tagActions names the member on every action", () => {
    expect(tagActions("VI_1", [{ type: "add-addresses" }, { type: "send-advert", priority: 0, adverIntCs: 100 }])).toEqual([
      { type: "add-addresses", member: "VI_1" },
      { type: "send-advert", priority: 0, adverIntCs: 100, member: "VI_1" },
    ]);
  });
});
