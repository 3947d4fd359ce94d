import { describe, expect, test } from "bun:test";
import {
  effectivePriority, masterDownIntervalMs, minSkewTimeMs, roundAdverInt, skewTimeMs, stallLimitMs,
} from "../../src/vrrp/timing.ts";

describe("Skew_Time", () => {
  test("v2 is (256-P)/256 s whatever the interval", () => {
    expect(skewTimeMs(2, 100, 100)).toBe(609.375);
    expect(skewTimeMs(2, 100, 300)).toBe(609.375);
    expect(skewTimeMs(2, 200, 100)).toBe(218.75);
    expect(skewTimeMs(2, 1, 100)).toBe(996.093); // 255e6/256 = 996093.75 µs, truncated
  });

  test("v3 scales with Master_Adver_Interval", () => {
    expect(skewTimeMs(3, 100, 100)).toBe(609.375);
    expect(skewTimeMs(3, 100, 300)).toBe(1828.125);
    expect(skewTimeMs(3, 200, 10)).toBe(21.875);
    expect(skewTimeMs(3, 100, 1)).toBe(6.093); // 156 × 10 ms / 256 = 6093.75 µs → 6093
  });

  test("truncates to whole microseconds like keepalived", () => {
    expect(skewTimeMs(2, 254, 100)).toBe(7.812); // 7812.5 µs
    expect(skewTimeMs(3, 254, 100)).toBe(7.812);
    expect(skewTimeMs(2, 255, 100)).toBe(3.906); // 3906.25 µs
  });

  test("minimal skew uses factor 1", () => {
    expect(minSkewTimeMs(2, 100)).toBe(3.906);
    expect(minSkewTimeMs(3, 10)).toBe(0.39); // 390.625 µs
  });
});

describe("Master_Down_Interval", () => {
  test("v3 priority 100 at 1 s is 3.609375 s", () => {
    expect(masterDownIntervalMs(3, 100, 100)).toBe(3609.375);
  });
  test("v2 priority 100 at 3 s: 9 s + 609.375 ms", () => {
    expect(masterDownIntervalMs(2, 100, 300)).toBe(9609.375);
  });
  test("v3 priority 200 at 0.1 s", () => {
    expect(masterDownIntervalMs(3, 200, 10)).toBe(321.875);
  });
  test("down_timer_adverts multiplies the interval only", () => {
    expect(masterDownIntervalMs(3, 100, 100, 5)).toBe(5609.375);
    expect(masterDownIntervalMs(2, 150, 100, 1)).toBe(1000 + 414.062);
  });
});

describe("advert_int rounding", () => {
  test("v2 keeps whole seconds", () => {
    expect(roundAdverInt(2, 3)).toEqual({ cs: 300 });
    expect(roundAdverInt(2, 1)).toEqual({ cs: 100 });
  });
  test("v2 rounds half up to whole seconds, never to 0", () => {
    expect(roundAdverInt(2, 1.4).cs).toBe(100);
    expect(roundAdverInt(2, 1.5).cs).toBe(200);
    expect(roundAdverInt(2, 0.3).cs).toBe(100);
    expect(roundAdverInt(2, 1.4).warning).toContain("must be an integer. rounding");
  });
  test("v2 caps at 255 s", () => {
    const r = roundAdverInt(2, 256);
    expect(r.cs).toBe(25500);
    expect(r.warning).toContain("out of range");
  });
  test("v3 rounds to centiseconds in 1..4095", () => {
    expect(roundAdverInt(3, 0.1)).toEqual({ cs: 10 });
    expect(roundAdverInt(3, 0.015).cs).toBe(2);
    expect(roundAdverInt(3, 0.014).cs).toBe(1);
    expect(roundAdverInt(3, 0.004).cs).toBe(1);
    expect(roundAdverInt(3, 0.004).warning).toContain("units of 10ms");
    expect(roundAdverInt(3, 40.955).cs).toBe(4095);
    expect(roundAdverInt(3, 41).cs).toBe(4095);
    expect(roundAdverInt(3, 41).warning).toContain("out of range");
    expect(roundAdverInt(3, 40.95)).toEqual({ cs: 4095 });
  });
});

describe("effective priority", () => {
  test("clamps tracker totals to [1,254]", () => {
    expect(effectivePriority(100, 90)).toBe(90);
    expect(effectivePriority(100, 300)).toBe(254);
    expect(effectivePriority(100, 255)).toBe(254);
    expect(effectivePriority(100, -5)).toBe(1);
    expect(effectivePriority(100, 0)).toBe(1);
  });
  test("never adjusts the owner", () => {
    expect(effectivePriority(255, 10)).toBe(255);
    expect(effectivePriority(255, 400)).toBe(255);
  });
});

describe("timer_expired_backup limit", () => {
  test("3 × adver_int + skew of the other priority", () => {
    expect(stallLimitMs(2, 100, 254)).toBe(3007.812);
    expect(stallLimitMs(3, 10, 200)).toBe(321.875);
  });
});
