// Tracking math: keepalived's rise/fall counter and the weight/FAULT rules of reference §1.6.
import { describe, expect, test } from "bun:test";
import { applyResult, isUp, newRiseFall, trackOutcome } from "../../src/vrrp/tracking.ts";

describe("rise/fall counter", () => {
  test("default start: one success is enough; init_fail needs `rise` successes", () => {
    const a = newRiseFall(2, 2, false);
    expect(isUp(a)).toBe(false);
    expect(applyResult(a, true)).toBe(true);
    expect(isUp(a)).toBe(true);
    const b = newRiseFall(2, 2, true);
    expect(applyResult(b, true)).toBe(false);
    expect(applyResult(b, true)).toBe(true);
  });

  test("fall consecutive failures take an OK script down; a success in between resets", () => {
    const rf = newRiseFall(2, 3, false);
    applyResult(rf, true); // up, counter at max (4)
    expect(rf.counter).toBe(4);
    expect(applyResult(rf, false)).toBe(false); // 3
    expect(applyResult(rf, false)).toBe(false); // 2 (still ≥ rise)
    expect(applyResult(rf, true)).toBe(false); // back to max
    expect(applyResult(rf, false)).toBe(false);
    expect(applyResult(rf, false)).toBe(false);
    expect(applyResult(rf, false)).toBe(true); // third in a row: down
    expect(isUp(rf)).toBe(false);
    expect(rf.counter).toBe(0);
  });

  test("rise consecutive successes bring a failed script up; a failure resets to 0", () => {
    const rf = newRiseFall(3, 1, true);
    applyResult(rf, true);
    applyResult(rf, true);
    applyResult(rf, false);
    expect(rf.counter).toBe(0);
    applyResult(rf, true);
    applyResult(rf, true);
    expect(applyResult(rf, true)).toBe(true);
  });

  test("rise 1 fall 1 flips on every result", () => {
    const rf = newRiseFall(1, 1, false);
    expect(isUp(rf)).toBe(false);
    expect(applyResult(rf, true)).toBe(true);
    expect(applyResult(rf, false)).toBe(true);
    expect(applyResult(rf, true)).toBe(true);
  });
});

describe("priority and FAULT from tracked objects", () => {
  test("negative weight subtracts while down, positive adds while up", () => {
    expect(trackOutcome(100, [{ label: "script a", weight: -50, reverse: false, up: false }])).toEqual({ total: 50, faults: [] });
    expect(trackOutcome(100, [{ label: "script a", weight: -50, reverse: false, up: true }])).toEqual({ total: 100, faults: [] });
    expect(trackOutcome(100, [{ label: "script a", weight: 20, reverse: false, up: true }])).toEqual({ total: 120, faults: [] });
    expect(trackOutcome(100, [{ label: "script a", weight: 20, reverse: false, up: false }])).toEqual({ total: 100, faults: [] });
  });

  test("reverse flips the direction", () => {
    expect(trackOutcome(100, [{ label: "interface eth1", weight: -30, reverse: true, up: true }]).total).toBe(70);
    expect(trackOutcome(100, [{ label: "interface eth1", weight: 30, reverse: true, up: false }]).total).toBe(130);
  });

  test("weight 0 means FAULT while down, and while a script has not reported", () => {
    expect(trackOutcome(100, [{ label: "script chk", weight: 0, reverse: false, up: false }]).faults).toEqual(["script chk is down"]);
    expect(trackOutcome(100, [{ label: "script chk", weight: 0, reverse: false }]).faults).toEqual(["script chk has not reported yet"]);
    expect(trackOutcome(100, [{ label: "script chk", weight: -10, reverse: false }])).toEqual({ total: 100, faults: [] });
  });

  test("track_file: value × weight, weight 0 faults on non-zero, below -253 faults", () => {
    expect(trackOutcome(100, [{ label: "file f", weight: 2, reverse: false, value: 10 }]).total).toBe(120);
    expect(trackOutcome(100, [{ label: "file f", weight: -1, reverse: false, value: 10 }]).total).toBe(90);
    expect(trackOutcome(100, [{ label: "file f", weight: 0, reverse: false, value: 3 }]).faults).toEqual(["file f is 3"]);
    expect(trackOutcome(100, [{ label: "file f", weight: 0, reverse: false, value: 0 }]).faults).toEqual([]);
    expect(trackOutcome(100, [{ label: "file f", weight: -1, reverse: false, value: 300 }]).faults.length).toBe(1);
  });
});
