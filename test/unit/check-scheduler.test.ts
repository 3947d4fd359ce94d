/** The checker state machine on a fake clock: keepalived's up/retry/down rules, warmup, alpha, HTTP urls. */
import { describe, expect, test } from "bun:test";
import { BOOTSTRAP_DELAY_MS, CheckScheduler, seededRng, type CheckVerdict, type SchedulerMode } from "../../src/check/scheduler.ts";
import { resolveTiming, type CheckerTiming } from "../../src/check/timing.ts";

const T = (o: Partial<CheckerTiming> = {}): CheckerTiming => ({
  delayLoopMs: 10_000, retry: 2, delayBeforeRetryMs: 1000, warmupMs: 0, connectTimeoutMs: 5000, alpha: false, logAllFailures: false, ...o,
});

interface Step {
  beganAt: number;
  url: number;
  v: CheckVerdict;
}

/** Runs checks back to back on a fake clock: each takes `durationMs`, results from `results` (true = pass). */
function drive(s: CheckScheduler, results: Array<boolean | ((url: number) => boolean)>, durationMs = 0, start = 0): Step[] {
  let now = start;
  s.start(now);
  const steps: Step[] = [];
  for (const r of results) {
    now = s.dueAtMs!;
    const { url } = s.begin(now);
    now += durationMs;
    const ok = typeof r === "function" ? r(url) : r;
    steps.push({ beganAt: now - durationMs, url, v: s.finish(now, ok) });
  }
  return steps;
}

describe("generic checkers (TCP, UDP, DNS, SMTP, PING, MISC)", () => {
  test("first run 1 s after start without warmup; passes every delay_loop while up", () => {
    const steps = drive(new CheckScheduler(T()), [true, true, true], 20);
    expect(steps.map((x) => x.beganAt)).toEqual([1000, 11_020, 21_040]);
    expect(steps.every((x) => x.v.up && x.v.transition === undefined)).toBe(true);
    expect(steps[0]!.v.latencyMs).toBe(20);
  });

  test("an UP checker retries `retry` times delay_before_retry apart, then goes DOWN", () => {
    const steps = drive(new CheckScheduler(T({ retry: 2 })), [true, false, false, false, false], 50);
    const [ok, f1, f2, f3, f4] = steps;
    expect(ok!.v.transition).toBeUndefined();
    expect(f1!.v).toMatchObject({ up: true, retrying: true });
    expect(f2!.beganAt - (f1!.beganAt + 50)).toBe(1000);
    expect(f2!.v).toMatchObject({ up: true, retrying: true });
    expect(f3!.beganAt - (f2!.beganAt + 50)).toBe(1000);
    expect(f3!.v).toMatchObject({ up: false, retrying: false, transition: "down", logFailure: true });
    // down: one attempt per delay_loop, no retries
    expect(f4!.beganAt - (f3!.beganAt + 50)).toBe(10_000);
    expect(f4!.v).toMatchObject({ up: false, retrying: false });
    expect(f4!.v.transition).toBeUndefined();
    // the down transition comes retry × (delay_before_retry + check time) after the first failure ends... plus that failure
    const downAt = f3!.beganAt + 50;
    expect(downAt - f1!.beganAt).toBe(3 * 50 + 2 * 1000);
  });

  test("a single success while DOWN brings it UP at once", () => {
    const steps = drive(new CheckScheduler(T({ retry: 1 })), [true, false, false, false, true, true], 0);
    expect(steps.map((x) => x.v.transition ?? "")).toEqual(["", "", "down", "", "up", ""]);
    expect(steps[4]!.beganAt - steps[3]!.beganAt).toBe(10_000);
  });

  test("at start the retries count as spent: a failing first check is DOWN at once", () => {
    const steps = drive(new CheckScheduler(T({ retry: 3 })), [false, false], 0);
    expect(steps[0]!.v).toMatchObject({ transition: "down", up: false, retrying: false });
    expect(steps[1]!.beganAt - steps[0]!.beganAt).toBe(10_000);
  });

  test("retry 0: the first failure while up is final", () => {
    const steps = drive(new CheckScheduler(T({ retry: 0 })), [true, false], 0);
    expect(steps[1]!.v.transition).toBe("down");
  });

  test("retries restart after a success", () => {
    const steps = drive(new CheckScheduler(T({ retry: 1 })), [true, false, true, false, false], 0);
    expect(steps.map((x) => [x.v.retrying, x.v.transition ?? ""])).toEqual([[false, ""], [true, ""], [false, ""], [true, ""], [false, "down"]]);
  });

  test("alpha starts DOWN; a first failure is no transition; a success is UP", () => {
    const s = new CheckScheduler(T({ alpha: true, retry: 2 }));
    expect(s.up).toBe(false);
    const steps = drive(s, [false, false, true], 0);
    expect(steps[0]!.v.transition).toBeUndefined();
    expect(steps[0]!.v.up).toBe(false);
    expect(steps[1]!.beganAt - steps[0]!.beganAt).toBe(10_000); // no retries for a down checker
    expect(steps[2]!.v.transition).toBe("up");
  });

  test("warmup jitter: first run within [1 s, 1 s + warmup), spread over the range", () => {
    const rng = seededRng(42);
    const firsts: number[] = [];
    for (let i = 0; i < 2000; i++) firsts.push(new CheckScheduler(T({ warmupMs: 5000 }), { kind: "generic" }, rng).start(100) - 100);
    expect(Math.min(...firsts)).toBeGreaterThanOrEqual(BOOTSTRAP_DELAY_MS);
    expect(Math.max(...firsts)).toBeLessThan(BOOTSTRAP_DELAY_MS + 5000);
    // a uniform spread: both ends of the range are used
    expect(firsts.filter((x) => x < 1500).length).toBeGreaterThan(100);
    expect(firsts.filter((x) => x >= 5500).length).toBeGreaterThan(100);
    expect(new CheckScheduler(T({ warmupMs: 0 }), { kind: "generic" }, () => 0.99).start(0)).toBe(1000);
  });

  test("MISC counts the interval from the start of a run", () => {
    const steps = drive(new CheckScheduler(T({ retry: 0 }), { kind: "generic", from: "start" }), [true, true], 300);
    expect(steps[1]!.beganAt - steps[0]!.beganAt).toBe(10_000);
    const endBased = drive(new CheckScheduler(T({ retry: 0 })), [true, true], 300);
    expect(endBased[1]!.beganAt - endBased[0]!.beganAt).toBe(10_300);
  });

  test("log_all_failures logs retried failures too", () => {
    const quiet = drive(new CheckScheduler(T({ retry: 1 })), [true, false], 0);
    expect(quiet[1]!.v.logFailure).toBe(false);
    const loud = drive(new CheckScheduler(T({ retry: 1, logAllFailures: true })), [true, false], 0);
    expect(loud[1]!.v.logFailure).toBe(true);
  });

  test("skip (ha_suspend) re-arms after delay_loop without changing state", () => {
    const s = new CheckScheduler(T());
    s.start(0);
    expect(s.skip(1000)).toBe(11_000);
    expect(s.up).toBe(true);
    expect(s.hasRun).toBe(false);
  });
});

describe("HTTP_GET / SSL_GET url rules", () => {
  const http = (urls: number, fastRecovery = false): SchedulerMode => ({ kind: "http", urls, fastRecovery });

  test("one url per delay_loop, round-robin", () => {
    const steps = drive(new CheckScheduler(T(), http(3)), [true, true, true, true, true], 0);
    expect(steps.map((x) => x.url)).toEqual([0, 1, 2, 0, 1]);
    expect(steps[1]!.beganAt - steps[0]!.beganAt).toBe(10_000);
  });

  test("alpha: UP only when every url has passed", () => {
    const s = new CheckScheduler(T({ alpha: true }), http(3));
    const steps = drive(s, [true, true, true], 0);
    expect(steps.map((x) => x.v.transition ?? "")).toEqual(["", "", "up"]);
  });

  test("a failing url is retried, then DOWN; it is re-checked until it passes, then all urls again before UP", () => {
    const s = new CheckScheduler(T({ retry: 2, delayBeforeRetryMs: 3000 }), http(3));
    s.start(0);
    const steps: Step[] = [];
    for (let i = 0; i < 12; i++) {
      const now = s.dueAtMs!;
      const { url } = s.begin(now);
      const bad = i >= 4 && i <= 7 && url === 1; // url 1 fails from the second round until i = 8
      steps.push({ beganAt: now, url, v: s.finish(now, !bad) });
    }
    // first round 0,1,2 passes; then 0 ok, 1 fails (retry), 1 (retry), 1 → DOWN
    expect(steps.slice(3, 7).map((x) => [x.url, x.v.ok, x.v.retrying, x.v.transition ?? ""])).toEqual([[0, true, false, ""], [1, false, true, ""], [1, false, true, ""], [1, false, false, "down"]]);
    expect(steps[5]!.beganAt - steps[4]!.beganAt).toBe(3000);
    // down: the failed url again, max(delay_before_retry, delay_loop) apart
    expect(steps[7]!.url).toBe(1);
    expect(steps[7]!.beganAt - steps[6]!.beganAt).toBe(10_000);
    // url 1 passes at i = 8, then 0, 1, 2 are checked and only then UP
    expect(steps.slice(8, 12).map((x) => [x.url, x.v.transition ?? ""])).toEqual([[1, ""], [0, ""], [1, ""], [2, "up"]]);
  });

  test("during the first round every failure is final (retries count as spent until all urls ran)", () => {
    const steps = drive(new CheckScheduler(T({ retry: 2 }), http(2)), [true, false], 0);
    expect(steps[1]!.v.transition).toBe("down");
  });

  test("fast_recovery re-checks every url at once after the failed one passes", () => {
    const s = new CheckScheduler(T({ retry: 0 }), http(3, true));
    s.start(0);
    const seen: Array<{ at: number; url: number; up: boolean }> = [];
    // checks 0-2 pass (the first round runs back to back: fast_recovery before has_run), 3-4 fail, then all pass
    for (let i = 0; i < 9; i++) {
      const at = s.dueAtMs!;
      const { url } = s.begin(at);
      const v = s.finish(at, !(i === 3 || i === 4));
      seen.push({ at, url, up: v.up });
    }
    expect(seen.slice(0, 3).map((x) => x.at)).toEqual([1000, 1000, 1000]);
    expect(seen[3]!.at).toBe(11_000); // up again: delay_loop
    expect(seen[3]!.up).toBe(false); // retry 0: DOWN on the first failure
    expect(seen[4]!.at - seen[3]!.at).toBe(10_000); // failed url known: delay_loop
    // the failed url passes (i = 5): the others follow at once
    expect(seen[6]!.at).toBe(seen[5]!.at);
    expect(seen[7]!.at).toBe(seen[5]!.at);
    expect(seen[7]!.up).toBe(false);
    expect(seen[8]!.up).toBe(true);
  });

  test("no url: the check passes (keepalived enables the server without checking)", () => {
    const steps = drive(new CheckScheduler(T({ alpha: true }), http(0)), [true], 0);
    expect(steps[0]!.v.transition).toBe("up");
  });
});

describe("timing inheritance", () => {
  test("per-type defaults", () => {
    const vs = { delay_loop: 6 };
    expect(resolveTiming("TCP_CHECK", {}, {}, vs)).toMatchObject({ delayLoopMs: 6000, retry: 1, delayBeforeRetryMs: 1000, warmupMs: 6000, connectTimeoutMs: 5000, alpha: false });
    expect(resolveTiming("HTTP_GET", {}, {}, vs)).toMatchObject({ retry: 1, delayBeforeRetryMs: 3000 });
    expect(resolveTiming("SSL_GET", {}, {}, vs)).toMatchObject({ delayBeforeRetryMs: 3000 });
    expect(resolveTiming("DNS_CHECK", {}, {}, vs)).toMatchObject({ retry: 3, delayBeforeRetryMs: 6000 });
    expect(resolveTiming("MISC_CHECK", {}, {}, vs)).toMatchObject({ retry: 0 });
    expect(resolveTiming("TCP_CHECK", {}, {}, {})).toMatchObject({ delayLoopMs: 60_000, warmupMs: 60_000 });
  });

  test("checker over real_server over virtual_server", () => {
    const vs = { delay_loop: 10, retry: 5, delay_before_retry: 2, connect_timeout: 3, alpha: true, warmup: 0 };
    const rs = { delay_loop: 4, retry: 7 };
    expect(resolveTiming("TCP_CHECK", {}, rs, vs)).toMatchObject({ delayLoopMs: 4000, retry: 7, delayBeforeRetryMs: 2000, connectTimeoutMs: 3000, alpha: true, warmupMs: 0 });
    expect(resolveTiming("TCP_CHECK", { retry: 0, delay_loop: 1, connect_timeout: 0.5, alpha: false, warmup: 2 }, rs, vs)).toMatchObject({ delayLoopMs: 1000, retry: 0, connectTimeoutMs: 500, alpha: false, warmupMs: 2000 });
    // warmup defaults to the checker's own delay_loop
    expect(resolveTiming("TCP_CHECK", { delay_loop: 3 }, {}, { delay_loop: 10 }).warmupMs).toBe(3000);
    // FILE_CHECK is never alpha
    expect(resolveTiming("FILE_CHECK", {}, {}, { alpha: true }).alpha).toBe(false);
  });
});
