/**
 * vrrp_track_process against real processes: copies of /bin/sleep and /bin/sh under
 * distinctive names (comm is the file name, cut to 15 bytes, so names stay short), shell
 * scripts for cmdline/param_match, a renamed shell for comm events and an unreaped child
 * for zombies. Runs with the proc connector (root netns) and with the /proc polling
 * fallback, including the automatic fallback inside a network namespace where the
 * connector is refused. Prints the measured cost of a /proc scan and of event handling.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFdWatcher, type FdWatcher } from "../../ffi/fdwatch.ts";
import { withNetns } from "../../ffi/netns.ts";
import {
  CN_MSG_LEN, PROC_CN_MCAST_LISTEN, PROC_EVENT_COMM, PROC_EVENT_EXIT, PROC_EVENT_FORK, decodeProcEvent, encodeMcastOp,
} from "../../ffi/proc-connector.ts";
import { ProcessTracker, processTrackerSpecs, type ProcessTrackerOptions } from "../../src/daemon/process-tracker.ts";

const isRoot = process.getuid?.() === 0;
const ID = process.pid;
const NS = `vipdt-trackproc-${ID}`;

let dir = "";
let watcher: FdWatcher | undefined;
const started: number[] = []; // process-group leaders we started (killed as groups)
const trackers: ProcessTracker[] = [];
let nsCreated = false;

/** A short unique name (comm keeps only 15 bytes). */
const nm = (tag: string) => `vtp${ID}${tag}`;

/** Copies /bin/sleep (or another binary) to dir/name. */
function binary(name: string, from = "/bin/sleep"): string {
  const p = join(dir, name);
  copyFileSync(from, p);
  chmodSync(p, 0o755);
  return p;
}

/** Starts argv in its own process group; returns its pid. */
function start(argv: string[]): number {
  const p = Bun.spawn(argv, { detached: true, stdio: ["ignore", "ignore", "ignore"] });
  started.push(p.pid);
  return p.pid;
}

/** Kills the process group we started and waits until its leader is gone from /proc. */
async function stop(pid: number): Promise<void> {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
  for (let i = 0; i < 200 && procState(pid) !== null && procState(pid) !== "Z"; i++) await Bun.sleep(5);
}

function procState(pid: number): string | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "latin1");
    return s[s.lastIndexOf(")") + 2] ?? null;
  } catch {
    return null;
  }
}

interface Change { name: string; ok: boolean; count: number; t: number }

/** A tracker over these vrrp_track_process documents, recording its changes. */
async function track(docs: Record<string, Record<string, unknown>>, opts: Partial<ProcessTrackerOptions> = {}, inNetns = false) {
  const { specs, warnings } = processTrackerSpecs({ vrrp_track_process: docs });
  expect(warnings).toEqual([]);
  const changes: Change[] = [];
  const logs: string[] = [];
  const tr = new ProcessTracker({
    specs, watcher, log: (m) => logs.push(m), pollIntervalMs: 100,
    onChange: (name, ok, count) => changes.push({ name, ok, count, t: performance.now() }),
    ...opts,
  });
  trackers.push(tr);
  if (inNetns) {
    let p: Promise<void> | undefined;
    withNetns(NS, () => { p = tr.start(); }); // the connector socket is created synchronously, inside the netns
    await p;
  } else {
    await tr.start();
  }
  const state = (name: string) => tr.status().find((s) => s.name === name)!;
  /** Waits (bounded) until the tracker reports `ok` with `count` processes. */
  const until = async (name: string, ok: boolean, count: number, ms = 3000) => {
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      const s = state(name);
      if (s.ok === ok && s.count === count) return performance.now() - t0;
      await Bun.sleep(5);
    }
    throw new Error(`${name}: wanted ok=${ok} count=${count}, have ${JSON.stringify(state(name))}`);
  };
  return { tr, changes, logs, state, until };
}

beforeAll(() => {
  if (!isRoot) return;
  dir = mkdtempSync(join(tmpdir(), "vipd-trackproc-"));
  watcher = createFdWatcher({ keepAlive: false });
  nsCreated = Bun.spawnSync(["ip", "netns", "add", NS]).exitCode === 0;
});

afterAll(async () => {
  for (const t of trackers) t.close();
  for (const pid of started) await stop(pid);
  watcher?.close();
  if (nsCreated) Bun.spawnSync(["ip", "netns", "del", NS]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

for (const mode of ["connector", "poll"] as const) {
  describe.skipIf(!isRoot)(`track_process with ${mode === "connector" ? "the proc connector" : "/proc polling"}`, () => {
    const tag = mode === "connector" ? "c" : "p";

    test("a process is seen when it starts and when it is killed", async () => {
      const name = nm(`${tag}a`);
      const path = binary(name);
      const { tr, changes, until } = await track({ T: { process: [name] } }, { mode });
      expect(tr.stats().mode).toBe(mode);
      expect(changes).toEqual([expect.objectContaining({ name: "T", ok: false, count: 0 })]); // initial state
      const t0 = performance.now();
      const pid = start([path, "1000"]);
      await until("T", true, 1);
      const up = changes.at(-1)!;
      expect(up).toMatchObject({ name: "T", ok: true, count: 1 });
      const t1 = performance.now();
      await stop(pid);
      await until("T", false, 0);
      console.log(`[${mode}] start seen after ${(up.t - t0).toFixed(1)} ms; kill seen after ${(changes.at(-1)!.t - t1).toFixed(1)} ms`);
      expect(changes.map((c) => c.ok)).toEqual([false, true, false]);
    });

    test("quorum and quorum_max", async () => {
      const name = nm(`${tag}q`);
      const path = binary(name);
      const { until, changes } = await track({ Q: { process: [name], quorum: 2, quorum_max: 3 } }, { mode });
      const pids: number[] = [];
      pids.push(start([path, "1000"]));
      await until("Q", false, 1);
      pids.push(start([path, "1000"]));
      await until("Q", true, 2);
      pids.push(start([path, "1000"]));
      await until("Q", true, 3);
      pids.push(start([path, "1000"]));
      await until("Q", false, 4);
      await stop(pids.pop()!);
      await until("Q", true, 3);
      for (const p of pids) await stop(p);
      await until("Q", false, 0);
      // The last two kills may land in one poll, so the count at the final change is 1 or 0 there.
      const last = mode === "connector" ? 1 : changes.at(-1)!.count;
      expect(changes.map((c) => [c.ok, c.count])).toEqual([[false, 0], [true, 2], [false, 4], [true, 3], [false, last]]);
      expect(last).toBeLessThanOrEqual(1);
    });

    test("terminate_delay holds OK after an exit, and a restart within it means no flap", async () => {
      const name = nm(`${tag}t`);
      const path = binary(name);
      const { until, changes, state } = await track({ D: { process: [name], terminate_delay: 0.6 } }, { mode });
      const a = start([path, "1000"]);
      await until("D", true, 1);
      // Killed and replaced at once: the replacement arrives before terminate_delay runs out.
      await stop(a);
      const b = start([path, "1000"]);
      await until("D", true, 1);
      await Bun.sleep(800);
      expect(state("D")).toMatchObject({ ok: true, count: 1 });
      expect(changes.filter((c) => !c.ok).length).toBe(1); // only the initial state
      // Killed for good: OK until the delay has passed.
      const t0 = performance.now();
      await stop(b);
      await Bun.sleep(300);
      expect(state("D").ok).toBe(true);
      await until("D", false, 0, 2000);
      const took = changes.at(-1)!.t - t0;
      console.log(`[${mode}] terminate_delay 600 ms: FAILED ${took.toFixed(0)} ms after the kill`);
      expect(took).toBeGreaterThanOrEqual(550);
      expect(took).toBeLessThan(600 + 400);
    });

    test("fork_delay: a forked copy is counted only after the delay", async () => {
      // A shell named N runs a subshell (a fork that keeps the name N) which runs sleep.
      const name = nm(`${tag}f`);
      const sh = binary(name, "/bin/sh");
      const { until, changes, state } = await track({ F: { process: [name], quorum: 2, fork_delay: 0.5 } }, { mode });
      const t0 = performance.now();
      const pid = start([sh, "-c", "( /bin/sleep 1000; true ) & wait"]);
      // the fork is seen; the subshell's own fork for /bin/sleep may count as a third copy for the
      // moment before its exec renames it, so wait for the count to settle at 2
      for (let i = 0; i < 400 && state("F").count !== 2; i++) await Bun.sleep(5);
      expect(state("F").count).toBe(2);
      if (mode === "connector") {
        expect(state("F")).toMatchObject({ ok: false, count: 2, pending: "fork" });
      }
      await until("F", true, 2, 2000);
      const took = changes.at(-1)!.t - t0;
      console.log(`[${mode}] fork_delay 500 ms: OK ${took.toFixed(0)} ms after the start`);
      expect(took).toBeGreaterThanOrEqual(450);
      await stop(pid);
      await until("F", false, 0);
    });

    test("a zombie is not counted", async () => {
      // sh starts Z (a short sleep) and then execs sleep, which never reaps Z.
      const name = nm(`${tag}z`);
      const z = binary(name);
      const { until } = await track({ Z: { process: [name] } }, { mode });
      const parent = start(["/bin/sh", "-c", `${z} 0.3 & exec /bin/sleep 1000`]);
      await until("Z", true, 1);
      await until("Z", false, 0);
      // The child really is a zombie named Z right now.
      const kids = readFileSync(`/proc/${parent}/task/${parent}/children`, "latin1").trim().split(/\s+/).filter(Boolean).map(Number);
      expect(kids.length).toBe(1);
      expect(procState(kids[0]!)).toBe("Z");
      expect(readFileSync(`/proc/${kids[0]}/comm`, "latin1").trim()).toBe(name);
      // A fresh scan (start-up) does not count it either.
      const fresh = await track({ Z2: { process: [name] } }, { mode });
      expect(fresh.state("Z2")).toMatchObject({ ok: false, count: 0 });
      await stop(parent);
    });

    test("full command, param_match exact/partial/initial", async () => {
      const script = join(dir, `${nm(tag)}.sh`);
      writeFileSync(script, "#!/bin/sh\n/bin/sleep 1000\ntrue\n");
      chmodSync(script, 0o755);
      const { until, state } = await track({
        EXACT: { process: ["/bin/sh", script, "alpha", "beta"] },
        PARTIAL: { process: ["/bin/sh", script, "alpha"], param_match: "partial" },
        INITIAL: { process: ["/bin/sh", script, "alpha", "be"], param_match: "initial" },
        NOPE: { process: ["/bin/sh", script, "alpha", "bx"], param_match: "initial" },
        FULL: { process: ["/bin/sh"], full_command: true, quorum: 2 },
      }, { mode });
      const a = start([script, "alpha", "beta"]);
      const b = start([script, "alpha", "beta", "gamma"]);
      await until("EXACT", true, 1);
      await until("PARTIAL", true, 2);
      await until("INITIAL", true, 2);
      expect(state("NOPE")).toMatchObject({ ok: false, count: 0 });
      expect(state("FULL").count).toBeGreaterThanOrEqual(2);
      await stop(a);
      await until("EXACT", false, 0);
      await until("PARTIAL", true, 1);
      await stop(b);
      await until("PARTIAL", false, 0);
      await until("INITIAL", false, 0);
    });

    test("a process that renames itself (comm) starts counting", async () => {
      const name = nm(`${tag}r`);
      const { until } = await track({ R: { process: [name] } }, { mode });
      const pid = start(["/bin/sh", "-c", `printf ${name} > /proc/$$/comm; /bin/sleep 1000; true`]);
      await until("R", true, 1);
      await stop(pid);
      await until("R", false, 0);
    });
  });
}

/** One connector datagram payload (after the nlmsghdr): cn_msg + proc_event. */
function cnPayload(what: number, words: number[], tail: Uint8Array = new Uint8Array(0), seq = 7): Uint8Array {
  const evLen = 16 + 4 * words.length + tail.length;
  const b = new Uint8Array(CN_MSG_LEN + evLen);
  const v = new DataView(b.buffer);
  v.setUint32(0, 1, true); // CN_IDX_PROC
  v.setUint32(4, 1, true); // CN_VAL_PROC
  v.setUint32(8, seq, true);
  v.setUint16(16, evLen, true);
  v.setUint32(CN_MSG_LEN, what >>> 0, true);
  v.setUint32(CN_MSG_LEN + 4, 1, true); // cpu
  words.forEach((w, i) => v.setUint32(CN_MSG_LEN + 16 + 4 * i, w, true));
  b.set(tail, CN_MSG_LEN + 16 + 4 * words.length);
  return b;
}

describe("proc connector wire format", () => {
  test("decodes fork, comm, exit and ack events", () => {
    expect(decodeProcEvent(cnPayload(PROC_EVENT_FORK, [10, 10, 11, 11]))).toEqual(
      { what: "fork", cpu: 1, seq: 7, parentPid: 10, parentTgid: 10, childPid: 11, childTgid: 11 });
    const comm = new Uint8Array(16);
    comm.set(new TextEncoder().encode("nginx"));
    expect(decodeProcEvent(cnPayload(PROC_EVENT_COMM, [5, 5], comm))).toMatchObject({ what: "comm", pid: 5, tgid: 5, comm: "nginx" });
    expect(decodeProcEvent(cnPayload(PROC_EVENT_EXIT, [6, 6, 9, 17, 1, 1]))).toMatchObject({ what: "exit", pid: 6, exitCode: 9, exitSignal: 17 });
    expect(decodeProcEvent(cnPayload(0, [1]))).toMatchObject({ what: "ack", err: 1 });
  });
  test("rejects other connector ids and short payloads", () => {
    const p = cnPayload(PROC_EVENT_FORK, [1, 1, 2, 2]);
    p[0] = 2;
    expect(decodeProcEvent(p)).toBeNull();
    expect(decodeProcEvent(new Uint8Array(20))).toBeNull();
  });
  test("encodes PROC_CN_MCAST_LISTEN as NLMSG_DONE + cn_msg + op", () => {
    const b = encodeMcastOp(PROC_CN_MCAST_LISTEN, 5, 1234);
    const v = new DataView(b.buffer);
    expect(b.length).toBe(40);
    expect([v.getUint32(0, true), v.getUint16(4, true), v.getUint32(12, true)]).toEqual([40, 3, 1234]);
    expect([v.getUint32(16, true), v.getUint32(20, true), v.getUint16(32, true), v.getUint32(36, true)]).toEqual([1, 1, 4, 1]);
  });
});

describe.skipIf(!isRoot)("connector availability and cost", () => {
  test("lost events (ENOBUFS) trigger a /proc rescan that restores the right count", async () => {
    const name = nm("o");
    const path = binary(name);
    const { tr, until, logs } = await track({ O: { process: [name] } },
      { mode: "connector", connector: { rcvbuf: 1 }, resyncDelayMs: 50 });
    // Block the loop while many processes come and go: the tiny receive buffer overflows.
    for (let i = 0; i < 40; i++) Bun.spawnSync(["/bin/true"]);
    const pid = start([path, "1000"]);
    for (let i = 0; i < 40; i++) Bun.spawnSync(["/bin/true"]);
    await Bun.sleep(20);
    await until("O", true, 1);
    expect(tr.stats().overruns).toBeGreaterThanOrEqual(1);
    expect(logs.join("\n")).toContain("dropped process events");
    expect(tr.stats().scans).toBeGreaterThanOrEqual(2); // start-up + resync
    await stop(pid);
    await until("O", false, 0);
  });

  test("inside a network namespace the connector is refused and polling takes over", async () => {
    expect(nsCreated).toBe(true);
    const name = nm("n");
    const path = binary(name);
    const { tr, logs, until } = await track({ N: { process: [name] } }, {}, true);
    const st = tr.stats();
    expect(st.mode).toBe("poll");
    expect(st.fallbackReason).toContain("ECONNREFUSED");
    expect(logs.join("\n")).toContain("polling /proc every 100 ms");
    const pid = start([path, "1000"]);
    await until("N", true, 1);
    await stop(pid);
    await until("N", false, 0);
  });

  test("no trackers: no socket and no polling", async () => {
    const tr = new ProcessTracker({ specs: [], watcher, onChange: () => { throw new Error("no trackers, no changes"); } });
    trackers.push(tr);
    await tr.start();
    expect(tr.stats()).toMatchObject({ mode: "stopped", scans: 0 });
    expect(tr.status()).toEqual([]);
  });

  test("explicit connector mode fails loudly inside a network namespace", async () => {
    const { specs } = processTrackerSpecs({ vrrp_track_process: { X: { process: ["x"] } } });
    const tr = new ProcessTracker({ specs, watcher, mode: "connector", onChange: () => {} });
    trackers.push(tr);
    let p: Promise<void> | undefined;
    withNetns(NS, () => { p = tr.start(); });
    await expect(p!).rejects.toThrow(/initial network namespace/);
  });

  test("measured: /proc scan and event handling cost", async () => {
    const procs = readdirSync("/proc").filter((d) => /^\d+$/.test(d)).length;
    const name = nm("m");
    const comm = await track({ M: { process: [name] } }, { mode: "poll", pollIntervalMs: 50 });
    const full = await track({ MF: { process: ["/nonexistent/" + name], full_command: true } }, { mode: "poll", pollIntervalMs: 50 });
    await Bun.sleep(600); // ~10 polls each
    const a = comm.tr.stats(), b = full.tr.stats();
    expect(a.scans).toBeGreaterThanOrEqual(3);
    expect(a.lastScan!.processes).toBeGreaterThan(10);
    expect(b.lastScan!.cmdline).toBe(true);
    // Events: a connector tracker while 50 short processes come and go.
    const ev = await track({ E: { process: [name] } }, { mode: "connector" });
    const bin = binary(name);
    for (let i = 0; i < 50; i++) {
      const p = Bun.spawn([bin, "0"], { stdio: ["ignore", "ignore", "ignore"] });
      await p.exited;
    }
    await Bun.sleep(100);
    const e = ev.tr.stats();
    expect(e.events).toBeGreaterThanOrEqual(150); // fork + exec + exit each
    expect(ev.changes.filter((c) => c.ok).length).toBeGreaterThanOrEqual(1);
    const per = (e.eventMs / e.events) * 1000;
    console.log(`[cost] ${procs} processes: /proc scan (stat only) ${a.lastScan!.ms.toFixed(2)} ms in ${a.lastScan!.slices} slices (longest ${a.lastScan!.maxSliceMs.toFixed(2)} ms); ` +
      `with cmdline ${b.lastScan!.ms.toFixed(2)} ms (longest slice ${b.lastScan!.maxSliceMs.toFixed(2)} ms); ` +
      `per process ${(a.lastScan!.busyMs / a.lastScan!.processes * 1000).toFixed(1)} µs / ${(b.lastScan!.busyMs / b.lastScan!.processes * 1000).toFixed(1)} µs`);
    console.log(`[cost] connector: ${e.events} events applied in ${e.eventMs.toFixed(2)} ms = ${per.toFixed(1)} µs/event (exec of a process reads /proc/PID/comm)`);
    expect(a.lastScan!.maxSliceMs).toBeLessThan(50);
  });

  test("measured: a /proc scan with 1000 more processes runs in slices", async () => {
    const name = nm("k");
    const path = binary(name);
    const leader = start(["/bin/sh", "-c", `i=0; while [ $i -lt 1000 ]; do ${path} 1000 & i=$((i+1)); done; wait`]);
    const { tr, until } = await track({ K: { process: [name], quorum: 1000 } }, { mode: "poll", pollIntervalMs: 200, sliceMs: 4 });
    await until("K", true, 1000, 20000);
    await Bun.sleep(250); // one more full scan with all of them
    const s = tr.stats().lastScan!;
    console.log(`[cost] ${s.processes} processes: /proc scan busy ${s.busyMs.toFixed(1)} ms (${(s.busyMs / s.processes * 1000).toFixed(1)} µs each), ${s.ms.toFixed(1)} ms wall in ${s.slices} slices, longest ${s.maxSliceMs.toFixed(2)} ms`);
    expect(s.processes).toBeGreaterThanOrEqual(1000);
    // Sliced: the scan yields to the loop between slices. How long a slice takes depends on the
    // machine's load (we may be preempted mid-slice), so it is printed above, not asserted.
    expect(s.slices).toBeGreaterThan(1);
    await stop(leader);
    await until("K", false, 0, 10000);
  }, 60000);
});
