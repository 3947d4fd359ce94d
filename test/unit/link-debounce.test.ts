// interface_up_down_delays: keepalived's debounce of link up/down changes (update_interface_flags)
// and the cap that keeps a down delay shorter than the backups' patience (check_debounce_timers).
import { describe, expect, test } from "bun:test";
import { clampDelays, LinkDebouncer, maxDownDelayMs } from "../../src/vrrp/link-debounce.ts";

const delays = new Map([["eth0", { downMs: 2000, upMs: 500 }]]);

describe("LinkDebouncer", () => {
  test("the first reports apply at once; after the link was seen up, a down waits its delay", () => {
    const d = new LinkDebouncer(delays);
    expect(d.report("eth0", true, 0)).toEqual({ kind: "apply", up: true });
    expect(d.report("eth0", true, 10)).toEqual({ kind: "none" });
    expect(d.report("eth0", false, 100)).toMatchObject({ kind: "delay", up: false, dueMs: 2100 });
    expect(d.fire("eth0")).toBe(false);
    expect(d.fire("eth0")).toBeUndefined();
    // and up again waits the up delay
    expect(d.report("eth0", true, 3000)).toMatchObject({ kind: "delay", up: true, dueMs: 3500 });
    expect(d.fire("eth0")).toBe(true);
  });

  test("a flap shorter than the delay is cancelled and never applied", () => {
    const d = new LinkDebouncer(delays);
    d.report("eth0", true, 0);
    expect(d.report("eth0", false, 100).kind).toBe("delay");
    expect(d.report("eth0", false, 150)).toEqual({ kind: "none" }); // same direction: the timer stands
    expect(d.report("eth0", true, 900)).toEqual({ kind: "cancel", log: "Delay timer for eth0 cancelled" });
    expect(d.fire("eth0")).toBeUndefined();
  });

  test("a link that starts down comes up at once (never seen up); interfaces without delays are immediate", () => {
    const d = new LinkDebouncer(delays);
    expect(d.report("eth0", false, 0)).toEqual({ kind: "apply", up: false });
    expect(d.report("eth0", true, 10)).toEqual({ kind: "apply", up: true });
    d.report("eth1", true, 0);
    expect(d.report("eth1", false, 10)).toEqual({ kind: "apply", up: false });
  });

  test("immediate reports (a deleted link, a resync) skip the delay and drop a pending change", () => {
    const d = new LinkDebouncer(delays);
    d.report("eth0", true, 0);
    expect(d.report("eth0", false, 100).kind).toBe("delay");
    expect(d.report("eth0", false, 200, true)).toEqual({ kind: "apply", up: false });
    expect(d.fire("eth0")).toBeUndefined();
  });
});

describe("delay caps", () => {
  test("(down_timer_adverts − 1) × advert_int − advert_int/256, as keepalived", () => {
    expect(maxDownDelayMs(3, 1000)).toBeCloseTo(2000 - 1000 / 256);
    expect(maxDownDelayMs(1, 1000)).toBe(0);
  });

  test("a down delay above the cap is reduced (and an equal up delay with it); down_timer_adverts 1 resets both", () => {
    const r = clampDelays(new Map([["eth0", { downMs: 5000, upMs: 5000 }], ["eth1", { downMs: 300, upMs: 100 }]]), [
      { name: "VI_1", ifname: "eth0", downTimerAdverts: 3, adverIntMs: 1000 },
      { name: "VI_2", ifname: "eth1", downTimerAdverts: 1, adverIntMs: 1000 },
    ]);
    const cap = 2000 - 1000 / 256;
    expect(r.delays.get("eth0")).toEqual({ downMs: cap, upMs: cap });
    expect(r.delays.get("eth1")).toEqual({ downMs: 0, upMs: 0 });
    expect(r.logs).toEqual([
      `VI_1: interface eth0 down delay reduced to ${cap / 1000} s (down_timer_adverts 3 × advert_int)`,
      "VI_2: cannot use debounce timers with down_timer_adverts = 1 - resetting",
    ]);
  });
});
