import { describe, expect, test } from "bun:test";
import { ProcessQuorum, quorumConfigError, quorumConfigFromDoc, type QuorumConfig } from "../../src/vrrp/process-quorum.ts";

const cfg = (o: Partial<QuorumConfig> = {}): QuorumConfig => ({ quorum: 1, quorumMax: Infinity, forkDelayMs: 0, terminateDelayMs: 0, ...o });

describe("quorumConfigFromDoc", () => {
  test("defaults: quorum 1, unlimited max, no delays", () => {
    expect(quorumConfigFromDoc({})).toEqual(cfg());
  });
  test("quorum_max 0 forces quorum 0 (process must not run)", () => {
    expect(quorumConfigFromDoc({ quorum_max: 0 })).toMatchObject({ quorum: 0, quorumMax: 0 });
  });
  test("delay sets both; specific delays override it", () => {
    expect(quorumConfigFromDoc({ delay: 1.5 })).toMatchObject({ forkDelayMs: 1500, terminateDelayMs: 1500 });
    expect(quorumConfigFromDoc({ delay: 2, fork_delay: 0.25 })).toMatchObject({ forkDelayMs: 250, terminateDelayMs: 2000 });
  });
  test("quorum above quorum_max is an error", () => {
    expect(quorumConfigError(quorumConfigFromDoc({ quorum: 3, quorum_max: 2 }))).toContain("greater");
    expect(quorumConfigError(quorumConfigFromDoc({ quorum: 2, quorum_max: 2 }))).toBeNull();
  });
});

describe("ProcessQuorum without delays", () => {
  test("initial state is decided at once from the count", () => {
    expect(new ProcessQuorum(cfg(), 0).ok).toBe(false);
    expect(new ProcessQuorum(cfg(), 1).ok).toBe(true);
    expect(new ProcessQuorum(cfg({ quorum: 2, quorumMax: 3 }), 4).ok).toBe(false);
  });
  test("gaining and losing quorum emit changes with timestamps", () => {
    const q = new ProcessQuorum(cfg({ quorum: 2 }), 0);
    expect(q.increment("exec", 10)).toBeNull();
    expect(q.increment("exec", 20)).toEqual({ ok: true, count: 2, at: 20 });
    expect(q.increment("fork", 30)).toBeNull();
    expect(q.decrement("exit", 40)).toBeNull();
    expect(q.decrement("exit", 50)).toEqual({ ok: false, count: 1, at: 50 });
  });
  test("quorum_max: one too many fails, back to max recovers", () => {
    const q = new ProcessQuorum(cfg({ quorum: 1, quorumMax: 2 }), 2);
    expect(q.ok).toBe(true);
    expect(q.increment("exec", 5)).toEqual({ ok: false, count: 3, at: 5 });
    expect(q.increment("exec", 6)).toBeNull();
    expect(q.decrement("exit", 7)).toBeNull();
    expect(q.decrement("exit", 8)).toEqual({ ok: true, count: 2, at: 8 });
  });
  test("quorum_max 0: OK only while nothing runs", () => {
    const q = new ProcessQuorum(quorumConfigFromDoc({ quorum_max: 0 }), 0);
    expect(q.ok).toBe(true);
    expect(q.increment("exec", 1)).toEqual({ ok: false, count: 1, at: 1 });
    expect(q.decrement("exit", 2)).toEqual({ ok: true, count: 0, at: 2 });
  });
  test("decrement below zero is ignored", () => {
    const q = new ProcessQuorum(cfg(), 0);
    expect(q.decrement("exit", 1)).toBeNull();
    expect(q.count).toBe(0);
  });
});

describe("fork_delay and terminate_delay (keepalived semantics)", () => {
  test("fork gain waits fork_delay, then re-evaluates with the count at that time", () => {
    const q = new ProcessQuorum(cfg({ forkDelayMs: 1000 }), 0);
    expect(q.increment("fork", 100)).toBeNull();
    expect(q.nextDeadline()).toBe(1100);
    expect(q.poll(1099)).toBeNull();
    expect(q.poll(1150)).toEqual({ ok: true, count: 1, at: 1100 });
    expect(q.nextDeadline()).toBeNull();
  });
  test("a forked child that exits before fork_delay cancels the gain", () => {
    const q = new ProcessQuorum(cfg({ forkDelayMs: 1000 }), 0);
    q.increment("fork", 0);
    expect(q.decrement("exit", 300)).toBeNull();
    expect(q.nextDeadline()).toBeNull();
    expect(q.poll(5000)).toBeNull();
    expect(q.ok).toBe(false);
  });
  test("exec gains act at once even with fork_delay (only forks are delayed)", () => {
    const q = new ProcessQuorum(cfg({ forkDelayMs: 1000 }), 0);
    expect(q.increment("exec", 50)).toEqual({ ok: true, count: 1, at: 50 });
  });
  test("exit loss waits terminate_delay; a refork within it cancels the loss", () => {
    const q = new ProcessQuorum(cfg({ terminateDelayMs: 2000 }), 1);
    expect(q.decrement("exit", 0)).toBeNull();
    expect(q.pending()).toBe("terminate");
    expect(q.increment("fork", 500)).toBeNull();
    expect(q.pending()).toBeNull();
    expect(q.poll(3000)).toBeNull();
    expect(q.ok).toBe(true);
  });
  test("exit loss fires at the deadline if nothing comes back", () => {
    const q = new ProcessQuorum(cfg({ terminateDelayMs: 2000 }), 1);
    q.decrement("exit", 10);
    expect(q.poll(2009)).toBeNull();
    expect(q.poll(2500)).toEqual({ ok: false, count: 0, at: 2010 });
  });
  test("mismatch losses are immediate (no terminate delay)", () => {
    const q = new ProcessQuorum(cfg({ terminateDelayMs: 2000 }), 1);
    expect(q.decrement("mismatch", 7)).toEqual({ ok: false, count: 0, at: 7 });
  });
  test("quorum_max 1 with fork_delay: a fork+exec bounce never fails", () => {
    const q = new ProcessQuorum(cfg({ quorumMax: 1, forkDelayMs: 500 }), 1);
    expect(q.increment("fork", 0)).toBeNull(); // child briefly counted: 2 > max, but delayed
    expect(q.decrement("mismatch", 20)).toBeNull(); // child exec'd something else
    expect(q.poll(1000)).toBeNull();
    expect(q.ok).toBe(true);
  });
  test("quorum_max 1 with fork_delay: a second instance that stays fails after the delay", () => {
    const q = new ProcessQuorum(cfg({ quorumMax: 1, forkDelayMs: 500 }), 1);
    q.increment("fork", 0);
    expect(q.poll(500)).toEqual({ ok: false, count: 2, at: 500 });
  });
});

describe("rescan (start-up resync and /proc polling)", () => {
  test("jumps straight to the new count without delays", () => {
    const q = new ProcessQuorum(cfg({ quorum: 2, quorumMax: 3 }), 0);
    expect(q.rescan(3, 1)).toEqual({ ok: true, count: 3, at: 1 });
    expect(q.rescan(2, 2)).toBeNull();
    expect(q.rescan(5, 3)).toEqual({ ok: false, count: 5, at: 3 });
  });
  test("a gain waits fork_delay, a loss terminate_delay; bouncing back cancels", () => {
    const q = new ProcessQuorum(cfg({ forkDelayMs: 1000, terminateDelayMs: 3000 }), 0);
    expect(q.rescan(1, 0)).toBeNull();
    expect(q.rescan(1, 500)).toBeNull(); // still waiting for the same change: deadline kept
    expect(q.nextDeadline()).toBe(1000);
    expect(q.poll(1000)).toEqual({ ok: true, count: 1, at: 1000 });
    expect(q.rescan(0, 2000)).toBeNull();
    expect(q.nextDeadline()).toBe(5000);
    expect(q.rescan(1, 3000)).toBeNull(); // back before the deadline
    expect(q.nextDeadline()).toBeNull();
    expect(q.ok).toBe(true);
  });
});
