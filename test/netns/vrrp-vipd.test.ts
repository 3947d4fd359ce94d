/**
 * The compiled vipd on a real network (issue 3, item 6): 2 and 3 nodes in namespaces,
 * election, SIGKILL and graceful failover timed against the RFC intervals, preemption,
 * nopreempt, IPv6, PASS/AH mismatches, GARP/NA on the wire, stale VIPs, notify scripts and
 * `vipd status`. Each test builds its own lab, so they run concurrently.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { masterDownIntervalMs, skewTimeMs } from "../../src/vrrp/timing.ts";
import {
  adverts, advertSenders, hasAddress, instanceConfig, instanceView, killAll, lastAdvertBefore, nonZeroErrors, formatTakeover, notifyScript, TestEnv, Vipd, waitFor, waitTakeover,
  wallMs, type InstanceView, type WireFrame,
} from "./daemon.ts";
import { createLab, type LabOptions } from "./lab.ts";

const ROOT = process.getuid?.() === 0;
/** `vipd status` exists in this build: then every state check also goes through it. */
const STATUS = ROOT && Vipd.statusSupported();
const VIP4 = "192.0.2.100";
const VIP6 = "2001:db8::100";
const ADVER_INT_CS = 10;
/** Bound for start-up convergence: generous, since the CPU may be shared with other test groups. */
const START_MS = 8000;

afterAll(() => killAll());

function env(purpose: string, o: Partial<LabOptions> = {}): TestEnv {
  return new TestEnv(createLab({ purpose, nodes: ["a", "b"], v4: "192.0.2.0/24", ...o }));
}

/** The last "(VI_1) Entering X STATE" vipd logged. */
function loggedState(v: Vipd): string | undefined {
  let s: string | undefined;
  for (const l of v.lines) {
    const m = /\(VI_1\) Entering (MASTER|BACKUP|FAULT) STATE/.exec(l.line);
    if (m) s = m[1];
  }
  return s;
}

/** The instance as `vipd status` reports it (when the build has it), else from the log. */
async function view(v: Vipd): Promise<InstanceView | undefined> {
  if (!STATUS || !v.hasControl()) {
    const s = loggedState(v);
    return s ? { state: s, stats: {} } : undefined;
  }
  try {
    return instanceView(await v.status());
  } catch {
    return undefined;
  }
}

/** Waits until `v` reports `state` (status and log agree when status exists). */
async function waitState(v: Vipd, state: string, timeoutMs: number): Promise<InstanceView> {
  return waitFor(async () => {
    if (loggedState(v) !== state) return undefined;
    const s = await view(v);
    return s?.state === state ? s : undefined;
  }, timeoutMs, () => `${v.name} to be ${state}\n--- log ---\n${v.text}`, 20);
}

/**
 * Asserts `v`'s current state through status (or log), plus what status says about VIPs,
 * priority, master address and receive errors (none unless `allowErrors`).
 */
async function expectState(v: Vipd, state: string, extra: { priority?: number; master?: string; allowErrors?: boolean } = {}): Promise<void> {
  const s = await view(v);
  expect(s?.state, `${v.name} state`).toBe(state);
  if (!STATUS) return;
  expect(v.hasControl(), `${v.name} serves ${v.controlPath}`).toBe(true);
  expect(s!.vipsSet, `${v.name} vipsSet`).toBe(state === "MASTER");
  if (!extra.allowErrors) expect(nonZeroErrors(s!), `${v.name} error counters`).toEqual([]);
  if (extra.priority !== undefined) expect(s!.priority).toBe(extra.priority);
  if (extra.master !== undefined) expect(s!.masterAddress).toBe(extra.master);
}

/** Frames of `cap` within [from, to]. */
function between(frames: WireFrame[], from: number, to: number): WireFrame[] {
  return frames.filter((f) => f.at >= from && f.at <= to);
}

/** No daemon logged an error, a warning or a dropped packet. */
function expectCleanLogs(...daemons: Vipd[]): void {
  for (const v of daemons) expect(v.problemLines(), `${v.name} log:\n${v.text}`).toEqual([]);
}

const cfg = (priority: number, more: Partial<Parameters<typeof instanceConfig>[0]> = {}) =>
  instanceConfig({ priority, state: priority >= 150 ? "MASTER" : "BACKUP", vips: [`${VIP4}/24`], ...more });

/** Starts A and waits until it is MASTER, then B until it is BACKUP: a deterministic start. */
async function startPair(e: TestEnv, cfgA: string, cfgB: string): Promise<[Vipd, Vipd]> {
  const A = e.vipd("a", cfgA);
  await waitState(A, "MASTER", START_MS);
  const B = e.vipd("b", cfgB);
  await waitState(B, "BACKUP", START_MS);
  return [A, B];
}

describe.skipIf(!ROOT)("vipd on the wire (compiled binary, netns)", () => {
  test.concurrent("2 nodes: the higher priority is MASTER and holds the VIP; one sender on the wire", async () => {
    const e = env("v2n");
    try {
      const cap = await e.capture("b");
      // Started together: whoever starts first may be MASTER for a moment; the election settles it.
      const A = e.vipd("a", cfg(150));
      const B = e.vipd("b", cfg(100));
      await waitState(A, "MASTER", START_MS);
      await waitState(B, "BACKUP", START_MS);
      await Bun.sleep(300);
      const t0 = wallMs();
      await Bun.sleep(1000);
      const t1 = wallMs();
      const frames = between(cap.frames(), t0, t1);
      expect(advertSenders(frames, t0, t1)).toEqual([e.lab.node("a").v4!]);
      // advert_int 0.1: one advert per 100 ms of the window (± 2), each v3 with TTL 255 to 224.0.0.18
      const ads = adverts(frames, 51);
      const expected = (t1 - t0) / 100;
      expect(ads.length).toBeGreaterThanOrEqual(Math.floor(expected) - 2);
      expect(ads.length).toBeLessThanOrEqual(Math.ceil(expected) + 2);
      for (const f of ads) {
        expect([f.advert.version, f.advert.priority, f.advert.adverIntCs, f.ttl, f.dst]).toEqual([3, 150, 10, 255, "224.0.0.18"]);
        expect(f.advert.addresses).toEqual([VIP4]);
      }
      expect(hasAddress(e.ns("a"), VIP4)).toBe(true);
      expect(hasAddress(e.ns("b"), VIP4)).toBe(false);
      await expectState(A, "MASTER", { priority: 150, master: e.lab.node("a").v4 });
      await expectState(B, "BACKUP", { priority: 100, master: e.lab.node("a").v4 });
      expectCleanLogs(A, B);
    } finally {
      await e.close();
    }
  }, 30_000);

  test.concurrent("3 nodes on a bridge: the highest priority wins wherever it is; exactly one master", async () => {
    const e = new TestEnv(createLab({ purpose: "v3n", nodes: ["a", "b", "c"], v4: "192.0.2.0/24" }));
    try {
      const cap = await e.capture("a");
      const A = e.vipd("a", cfg(100));
      const B = e.vipd("b", cfg(200));
      const C = e.vipd("c", cfg(150));
      await waitState(B, "MASTER", START_MS);
      await waitState(A, "BACKUP", START_MS);
      await waitState(C, "BACKUP", START_MS);
      await Bun.sleep(300);
      const t0 = wallMs();
      await Bun.sleep(1000);
      const t1 = wallMs();
      expect(advertSenders(cap.frames(), t0, t1)).toEqual([e.lab.node("b").v4!]);
      expect(["a", "b", "c"].map((n) => hasAddress(e.ns(n), VIP4))).toEqual([false, true, false]);
      for (const [v, s] of [[A, "BACKUP"], [B, "MASTER"], [C, "BACKUP"]] as const) await expectState(v, s, { master: e.lab.node("b").v4 });
      expectCleanLogs(A, B, C);
    } finally {
      await e.close();
    }
  }, 30_000);

  test.concurrent("nopreempt: a higher-priority node that returns stays BACKUP; the current master keeps the VIP", async () => {
    const e = env("vnopre");
    try {
      const cap = await e.capture("a");
      const B = e.vipd("b", cfg(100, { state: "BACKUP", nopreempt: true }));
      await waitState(B, "MASTER", START_MS);
      const A = e.vipd("a", cfg(150, { state: "BACKUP", nopreempt: true }));
      await waitState(A, "BACKUP", START_MS);
      const t0 = wallMs();
      await Bun.sleep(1500); // 15 advert intervals: A would have preempted long ago
      const t1 = wallMs();
      expect(loggedState(A)).toBe("BACKUP");
      expect(A.lines.some((l) => /Entering MASTER STATE/.test(l.line))).toBe(false);
      expect(advertSenders(cap.frames(), t0, t1)).toEqual([e.lab.node("b").v4!]);
      expect(hasAddress(e.ns("b"), VIP4)).toBe(true);
      expect(hasAddress(e.ns("a"), VIP4)).toBe(false);
      await expectState(A, "BACKUP", { priority: 150, master: e.lab.node("b").v4 });
      await expectState(B, "MASTER", { priority: 100 });
      expectCleanLogs(A, B);
    } finally {
      await e.close();
    }
  }, 30_000);

  for (const auth of ["PASS", "AH"] as const) {
    test.concurrent(`v2 ${auth} mismatch: the peer's adverts are never adopted (both MASTER, auth_failure grows)`, async () => {
      const e = env(`v${auth.toLowerCase()}`);
      try {
        // state BACKUP: initial MASTER is refused with AH (keepalived's rule), and PASS gets the same start
        const v2 = (p: number, pass: string) => cfg(p, { state: "BACKUP", version: 2, advertInt: 1, auth: { type: auth, pass } });
        const cap = await e.capture("b");
        const A = e.vipd("a", v2(150, "secretA"));
        const B = e.vipd("b", v2(100, "secretB"));
        await waitState(A, "MASTER", masterDownIntervalMs(2, 150, 100) + START_MS);
        // B hears A's higher priority but cannot trust it: it times out (3 s + skew) and takes over too.
        await waitState(B, "MASTER", masterDownIntervalMs(2, 100, 100) + START_MS);
        const tB = wallMs();
        await Bun.sleep(1500);
        const frames = cap.frames();
        const a = e.lab.node("a").v4!;
        const fromA = adverts(frames).filter((f) => f.src === a);
        // A's higher-priority adverts kept arriving while B stayed MASTER
        expect(fromA.length).toBeGreaterThanOrEqual(2);
        expect(fromA.filter((f) => f.at > tB).length).toBeGreaterThanOrEqual(1);
        expect(fromA.every((f) => f.proto === (auth === "AH" ? 51 : 112) && f.advert.priority === 150)).toBe(true);
        // after the initial BACKUP neither ever went back to BACKUP
        for (const v of [A, B]) expect(v.lines.filter((l) => /Entering BACKUP STATE/.test(l.line) && !/\(init\)/.test(l.line))).toEqual([]);
        expect(hasAddress(e.ns("a"), VIP4)).toBe(true);
        expect(hasAddress(e.ns("b"), VIP4)).toBe(true);
        for (const v of [A, B]) {
          expect(loggedState(v)).toBe("MASTER");
          expect(v.problemLines().join("\n")).toMatch(auth === "PASS" ? /\(VI_1\) received an invalid passwd from/ : /\(VI_1\) IPSEC-AH : invalid IPSEC HMAC-MD5 value/);
        }
        if (STATUS && B.hasControl()) {
          const first = (await view(B))!.stats.auth_failure!;
          expect(first).toBeGreaterThanOrEqual(1);
          await Bun.sleep(1100);
          expect((await view(B))!.stats.auth_failure!).toBeGreaterThan(first);
          expect((await view(A))!.stats.auth_failure!).toBeGreaterThanOrEqual(1);
          await expectState(A, "MASTER", { allowErrors: true });
          await expectState(B, "MASTER", { allowErrors: true });
        }
      } finally {
        await e.close();
      }
    }, 40_000);
  }

  test.concurrent("notify: `INSTANCE VI_1 STATE prio` in order on both nodes through failover", async () => {
    const e = env("vnotify");
    const dir = mkdtempSync(`${tmpdir()}/vipdt-notify-`);
    try {
      const logA = `${dir}/a.log`;
      const logB = `${dir}/b.log`;
      const [A, B] = await startPair(e, cfg(150, { notify: notifyScript(`${dir}/a.sh`, logA) }), cfg(100, { notify: notifyScript(`${dir}/b.sh`, logB) }));
      const read = (p: string) => { try { return readFileSync(p, "utf8").trim().split("\n").filter(Boolean); } catch { return []; } };
      await waitFor(() => read(logA).includes("INSTANCE VI_1 MASTER 150"), 10000, "A's MASTER notify");
      await waitFor(() => read(logB).includes("INSTANCE VI_1 BACKUP 100"), 10000, "B's BACKUP notify");
      A.kill("SIGTERM");
      await waitState(B, "MASTER", 4000);
      await waitFor(() => read(logB).includes("INSTANCE VI_1 MASTER 100"), 4000, "B's MASTER notify");
      await waitFor(() => read(logA).includes("INSTANCE VI_1 STOP 150"), 4000, "A's STOP notify");
      const a = read(logA);
      const b = read(logB);
      // A: BACKUP at init, MASTER, then STOP; B: BACKUP then MASTER; nothing else
      expect(a).toEqual(["INSTANCE VI_1 BACKUP 150", "INSTANCE VI_1 MASTER 150", "INSTANCE VI_1 STOP 150"]);
      expect(b).toEqual(["INSTANCE VI_1 BACKUP 100", "INSTANCE VI_1 MASTER 100"]);
      expectCleanLogs(A, B);
    } finally {
      await e.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  // Timed failovers run one at a time, so this file's own start-ups do not delay the daemons being timed.
  test("master SIGKILL: backup holds the VIP within Master_Down_Interval + 100 ms and sends 5 GARPs from its MAC; the restarted master removes its stale VIP and preempts", async () => {
    const e = env("vkill");
    try {
      const monA = await e.monitor("a");
      const monB = await e.monitor("b");
      const cap = await e.capture("b");
      const [A, B] = await startPair(e, cfg(150), cfg(100));
      await Bun.sleep(400);

      const tKill = wallMs();
      A.kill("SIGKILL");
      const add = await waitTakeover(monB, cap, VIP4, e.lab.node("b").v4!, tKill, 2000);
      const mdi = masterDownIntervalMs(3, 100, ADVER_INT_CS);
      const takeover = add.at - tKill;
      console.log(`vipd SIGKILL takeover: ${formatTakeover(add, tKill)}; Master_Down_Interval ${mdi} ms`);
      expect(takeover).toBeLessThanOrEqual(mdi + 100);
      // The down timer really ran its course: B took over a full MDI after A's last advert on the wire.
      const last = lastAdvertBefore(cap.frames(), e.lab.node("a").v4!, tKill);
      expect(last).toBeDefined();
      expect(add.at - last!.at).toBeGreaterThanOrEqual(mdi - 2);
      await waitState(B, "MASTER", 1000);
      await Bun.sleep(200);

      // GARP burst: garp_master_repeat 5, sender = target = VIP, from B's own MAC
      const frames = cap.frames();
      const garps = frames.filter((f): f is Extract<WireFrame, { kind: "arp" }> =>
        f.kind === "arp" && f.at >= tKill && f.arp.senderIp === VIP4);
      expect(garps.length).toBe(5);
      for (const g of garps) {
        expect(g.srcMac).toBe(e.lab.node("b").mac);
        expect(g.arp.targetIp).toBe(VIP4);
        expect([...g.arp.senderMac].map((x) => x.toString(16).padStart(2, "0")).join(":")).toBe(e.lab.node("b").mac);
        expect(g.at - add.vipAt).toBeLessThan(100);
      }
      const firstAdvertB = adverts(frames).find((f) => f.src === e.lab.node("b").v4 && f.at >= tKill);
      expect(firstAdvertB).toBeDefined();
      expect(Math.abs(firstAdvertB!.at - add.vipAt)).toBeLessThan(50);
      await expectState(B, "MASTER", { priority: 100, master: e.lab.node("b").v4 });
      if (STATUS) {
        const s = (await view(B))!;
        // the status's transition time is the takeover (wall clock, ms resolution)
        expect(Math.abs(s.lastTransition! * 1000 - add.at)).toBeLessThan(50);
        expect([s.stats.become_master, s.stats.release_master]).toEqual([1, 0]);
      }

      // SIGKILL left A's VIP behind; the restart removes it, then A preempts and adds it again.
      expect(hasAddress(e.ns("a"), VIP4)).toBe(true);
      const tRestart = wallMs();
      const A2 = e.vipd("a", cfg(150), { dir: A.dir, name: "vipd@a(restarted)" });
      await A2.waitLine(new RegExp(`removed ${VIP4.replaceAll(".", "\\.")}/24 from eth0 left by a previous run`), 3000);
      const del = await monA.waitEvent(VIP4, "del", tRestart, 3000);
      await waitState(A2, "MASTER", START_MS);
      await waitState(B, "BACKUP", 2000);
      const readd = await monA.waitEvent(VIP4, "add", tRestart, 1000);
      expect(readd.at).toBeGreaterThan(del.at);
      await monB.waitEvent(VIP4, "del", tRestart, 1000);
      expect(hasAddress(e.ns("b"), VIP4)).toBe(false);
      await expectState(A2, "MASTER", { priority: 150 });
      await expectState(B, "BACKUP", { master: e.lab.node("a").v4 });
      if (STATUS) {
        expect((await view(A2))!.stats.become_master).toBe(1);
        const s = (await view(B))!;
        expect([s.stats.become_master, s.stats.release_master]).toEqual([1, 1]);
        expect(s.stats.advert_rcvd).toBeGreaterThan(0);
      }
      expectCleanLogs(B, A2);
    } finally {
      await e.close();
    }
  }, 30_000);

  test("graceful stop (SIGTERM): priority-0 advert on the wire, VIP removed, takeover within skew + 100 ms, exit 0", async () => {
    const e = env("vterm");
    try {
      const monA = await e.monitor("a");
      const monB = await e.monitor("b");
      const cap = await e.capture("b");
      const [A, B] = await startPair(e, cfg(150), cfg(100));
      await Bun.sleep(400);

      const tTerm = wallMs();
      A.kill("SIGTERM");
      const add = await waitTakeover(monB, cap, VIP4, e.lab.node("b").v4!, tTerm, 2000);
      const skew = skewTimeMs(3, 100, ADVER_INT_CS);
      const takeover = add.at - tTerm;
      console.log(`vipd graceful takeover: ${formatTakeover(add, tTerm)}; skew ${skew} ms`);
      expect(takeover).toBeLessThanOrEqual(skew + 100);
      const del = await monA.waitEvent(VIP4, "del", tTerm, 2000);
      expect(del.at).toBeLessThan(add.vipAt + 100);
      expect(await Promise.race([A.exited, Bun.sleep(3000).then(() => "timeout")])).toBe(0);
      expect(hasAddress(e.ns("a"), VIP4)).toBe(false);
      await waitState(B, "MASTER", 1000);
      await Bun.sleep(100);
      const zero = adverts(cap.frames()).filter((f) => f.at >= tTerm && f.src === e.lab.node("a").v4);
      expect(zero.length).toBeGreaterThanOrEqual(1);
      expect(zero.every((f) => f.advert.priority === 0)).toBe(true);
      // B took over after the priority-0 advert, not before
      expect(add.at).toBeGreaterThan(zero[0]!.at);
      await expectState(B, "MASTER", { priority: 100 });
      if (STATUS && B.hasControl()) expect((await view(B))!.stats.pri_zero_rcvd).toBeGreaterThanOrEqual(1);
      expectCleanLogs(A, B);
    } finally {
      await e.close();
    }
  }, 30_000);

  test("IPv6 v3: link-local source, VIP 2001:db8::100/64, unsolicited NA for the VIP; SIGKILL failover", async () => {
    const e = env("v6", { v4: undefined, v6: true });
    try {
      const monB = await e.monitor("b");
      const cap = await e.capture("b");
      const v6cfg = (p: number) => instanceConfig({ priority: p, state: p >= 150 ? "MASTER" : "BACKUP", vips: [`${VIP6}/64`] });
      const [A, B] = await startPair(e, v6cfg(150), v6cfg(100));
      await Bun.sleep(500);
      const a = e.lab.node("a");
      const b = e.lab.node("b");
      let frames = cap.frames();
      const ads = adverts(frames, 51);
      expect(ads.length).toBeGreaterThanOrEqual(4);
      for (const f of ads) {
        expect([f.family, f.src, f.dst, f.ttl, f.advert.version, f.advert.priority]).toEqual(["inet6", a.linkLocal, "ff02::12", 255, 3, 150]);
        expect(f.advert.addresses).toEqual([VIP6]);
      }
      const nas = frames.filter((f): f is Extract<WireFrame, { kind: "na" }> => f.kind === "na" && f.na.target === VIP6);
      expect(nas.length).toBeGreaterThanOrEqual(1);
      for (const n of nas) {
        expect(n.srcMac).toBe(a.mac);
        expect(n.na.checksumOk).toBe(true);
        expect(n.na.hopLimit).toBe(255);
        expect(n.na.dst).toBe("ff02::1");
      }
      expect(hasAddress(e.ns("a"), VIP6)).toBe(true);
      expect(hasAddress(e.ns("b"), VIP6)).toBe(false);
      await expectState(A, "MASTER");
      await expectState(B, "BACKUP", { master: a.linkLocal });

      const tKill = wallMs();
      A.kill("SIGKILL");
      const add = await waitTakeover(monB, cap, VIP6, b.linkLocal, tKill, 2000);
      const mdi = masterDownIntervalMs(3, 100, ADVER_INT_CS);
      console.log(`vipd IPv6 SIGKILL takeover: ${formatTakeover(add, tKill)}; Master_Down_Interval ${mdi} ms`);
      expect(add.at - tKill).toBeLessThanOrEqual(mdi + 100);
      const last = lastAdvertBefore(cap.frames(), a.linkLocal, tKill);
      expect(add.at - last!.at).toBeGreaterThanOrEqual(mdi - 2);
      await waitState(B, "MASTER", 1000);
      await Bun.sleep(200);
      frames = cap.frames();
      const naB = frames.filter((f): f is Extract<WireFrame, { kind: "na" }> => f.kind === "na" && f.at >= tKill && f.na.target === VIP6);
      expect(naB.length).toBeGreaterThanOrEqual(1);
      expect(naB.every((n) => n.srcMac === b.mac)).toBe(true);
      expect(adverts(frames).some((f) => f.at >= tKill && f.src === b.linkLocal && f.advert.priority === 100)).toBe(true);
      expectCleanLogs(B);
    } finally {
      await e.close();
    }
  }, 30_000);
});
