/**
 * vipd and Debian's keepalived 2.2.7 in one VRRP group (issue 3, item 7): v2 PASS, v2 AH,
 * v3 IPv4 and v3 IPv6, each with vipd as master and keepalived as backup and the reverse.
 * Every pair checks the election, one sender on the wire in steady state, both sides' view
 * (vipd status or log; keepalived's JSON dump and log), a crash failover timed against
 * Master_Down_Interval, preemption when the master returns, a graceful stop (priority 0) timed
 * against skew time, and clean logs and error counters on both sides.
 * The 8 pairs run concurrently in their own labs (the v2 ones set the pace: advert_int 1).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { masterDownIntervalMs, skewTimeMs } from "../../src/vrrp/timing.ts";
import {
  adverts, advertSenders, hasAddress, instanceConfig, instanceView, Keepalived, killAll, formatTakeover, lastAdvertBefore, nonZeroErrors, TestEnv, Vipd, waitFor, waitTakeover, wallMs,
  type InstanceConfig, type InstanceView,
} from "./daemon.ts";
import { createLab } from "./lab.ts";

const ROOT = process.getuid?.() === 0;
const HAVE_KEEPALIVED = ROOT && Bun.spawnSync(["sh", "-c", "command -v keepalived"]).exitCode === 0;
const STATUS = HAVE_KEEPALIVED && Vipd.statusSupported();

afterAll(() => killAll());

/** Bound for start-up convergence: generous, since the CPU may be shared with other test groups. */
const START_MS = 8000;

interface Mode {
  name: string;
  version: 2 | 3;
  v6: boolean;
  advertInt: number;
  auth?: InstanceConfig["auth"];
  vip: string;
}

const MODES: Mode[] = [
  { name: "v2 PASS", version: 2, v6: false, advertInt: 1, auth: { type: "PASS", pass: "s3cret" }, vip: "192.0.2.100/24" },
  { name: "v2 AH", version: 2, v6: false, advertInt: 1, auth: { type: "AH", pass: "ahsecret" }, vip: "192.0.2.100/24" },
  { name: "v3 IPv4", version: 3, v6: false, advertInt: 0.1, vip: "192.0.2.100/24" },
  { name: "v3 IPv6", version: 3, v6: true, advertInt: 0.1, vip: "2001:db8::100/64" },
];

type Daemon = Vipd | Keepalived;

/** The instance as the daemon itself reports it: vipd status (or its log), keepalived's JSON dump. */
async function view(d: Daemon): Promise<InstanceView | undefined> {
  try {
    if (d instanceof Keepalived) return instanceView(await d.json());
    if (STATUS && d.hasControl()) return instanceView(await d.status());
  } catch {
    return undefined;
  }
  let state: string | undefined;
  for (const l of d.lines) state = /\(VI_1\) Entering (MASTER|BACKUP|FAULT) STATE/.exec(l.line)?.[1] ?? state;
  return state ? { state, stats: {} } : undefined;
}

/** The last state the daemon logged ("(VI_1) Entering MASTER STATE" in both). */
function loggedState(d: Daemon): string | undefined {
  let state: string | undefined;
  for (const l of d.lines) state = /\(VI_1\) Entering (MASTER|BACKUP|FAULT) STATE/.exec(l.line)?.[1] ?? state;
  return state;
}

/** Waits until both the log and the daemon's own report say `state`. */
async function waitState(d: Daemon, state: string, timeoutMs: number): Promise<InstanceView> {
  await waitFor(() => loggedState(d) === state, timeoutMs, () => `${d.name} to log ${state}\n--- log ---\n${d.text}`, 20);
  return waitFor(async () => {
    const v = await view(d);
    return v?.state === state ? v : undefined;
  }, 2000, () => `${d.name} to report ${state}`, 50);
}

/**
 * Both daemons' receive-error counters are zero (vipd without status: its log is checked instead).
 * One exception: with AH, an advert the other side sent while our preempting advert was in flight
 * carries a sequence number we already used, and is dropped as a replay (keepalived does the same);
 * at most one such drop per takeover is the protocol, not a fault.
 */
function expectNoErrorStats(v: InstanceView | undefined, who: string): void {
  if (!v || Object.keys(v.stats).length === 0) return;
  const errors = nonZeroErrors(v).filter((e) => !/^ah_seq_err=[12]$/.test(e));
  expect(errors, `${who} error counters`).toEqual([]);
}

describe.skipIf(!HAVE_KEEPALIVED)("vipd + keepalived 2.2.7 in one VRRP group", () => {
  for (const mode of MODES) {
    for (const masterKind of ["vipd", "keepalived"] as const) {
      const backupKind = masterKind === "vipd" ? "keepalived" : "vipd";
      test.concurrent(`${mode.name}: ${masterKind} master, ${backupKind} backup — election, one sender, crash failover, preemption, graceful stop, clean logs`, async () => {
        const e = new TestEnv(createLab({
          purpose: `io${mode.version}${mode.auth?.type.toLowerCase() ?? (mode.v6 ? "v6" : "v4")}${masterKind[0]}`,
          nodes: ["m", "b"], v4: mode.v6 ? undefined : "192.0.2.0/24", v6: mode.v6,
        }));
        const vip = mode.vip.split("/")[0]!;
        const cs = Math.round(mode.advertInt * 100);
        const config = (priority: number) => instanceConfig({
          // both refuse initial state MASTER with AH (unless priority 255)
          priority, state: priority === 150 && mode.auth?.type !== "AH" ? "MASTER" : "BACKUP", version: mode.version, advertInt: mode.advertInt,
          auth: mode.auth, vips: [mode.vip],
        });
        const start = (kind: "vipd" | "keepalived", node: string, priority: number, dir?: string): Daemon =>
          kind === "vipd" ? e.vipd(node, config(priority), { dir }) : e.keepalived(node, config(priority));
        const all: Daemon[] = [];
        try {
          const m = e.lab.node("m");
          const b = e.lab.node("b");
          const addrOf = (n: typeof m) => (mode.v6 ? n.linkLocal : n.v4!);
          const monM = await e.monitor("m");
          const monB = await e.monitor("b");
          const cap = await e.capture("b");
          const M = start(masterKind, "m", 150);
          const B = start(backupKind, "b", 100);
          all.push(M, B);

          // Election: the priority-150 node is MASTER, from both sides' point of view.
          await waitState(M, "MASTER", masterDownIntervalMs(mode.version, 150, cs) + START_MS);
          await waitState(B, "BACKUP", START_MS);
          await Bun.sleep(Math.max(300, 3 * cs * 10));

          // Steady state over ~2 s: only the master sends (non-zero priority) adverts, and they are well-formed.
          const t0 = wallMs();
          await Bun.sleep(2000);
          const t1 = wallMs();
          const frames = cap.frames();
          expect(advertSenders(frames, t0, t1)).toEqual([addrOf(m)]);
          const steady = adverts(frames, 51).filter((f) => f.at >= t0 && f.at <= t1);
          expect(steady.length).toBeGreaterThanOrEqual(Math.floor((0.75 * 2000) / (cs * 10)));
          for (const f of steady) {
            expect([f.advert.version, f.advert.priority, f.advert.adverIntCs, f.ttl]).toEqual([mode.version, 150, cs, 255]);
            expect(f.proto).toBe(mode.auth?.type === "AH" ? 51 : 112);
            expect(f.advert.addresses).toEqual([vip]);
            if (mode.version === 2) expect(f.advert.authType).toBe(mode.auth?.type === "AH" ? 2 : 1);
          }
          expect(hasAddress(e.ns("m"), vip)).toBe(true);
          expect(hasAddress(e.ns("b"), vip)).toBe(false);
          for (const d of [M, B]) if (STATUS && d instanceof Vipd) expect(d.hasControl(), `${d.name} serves its control socket`).toBe(true);
          const vm = await view(M);
          const vb = await view(B);
          expect([vm?.state, vb?.state]).toEqual(["MASTER", "BACKUP"]);
          if (vm?.vipsSet !== undefined) expect(vm.vipsSet).toBe(true);
          if (vb?.vipsSet !== undefined) expect(vb.vipsSet).toBe(false);
          if (Object.keys(vb?.stats ?? {}).length) expect(vb!.stats.advert_rcvd).toBeGreaterThan(0);
          expectNoErrorStats(vm, M.name);
          expectNoErrorStats(vb, B.name);

          // Crash the master: the backup takes the VIP within Master_Down_Interval + 100 ms.
          const tKill = wallMs();
          if (M instanceof Keepalived) await M.crash();
          else M.kill("SIGKILL");
          const mdi = masterDownIntervalMs(mode.version, 100, cs);
          const add = await waitTakeover(monB, cap, vip, addrOf(b), tKill, mdi + 2000);
          console.log(`${mode.name}: ${masterKind} crashed, ${backupKind} took over after ${formatTakeover(add, tKill)}; MDI ${mdi} ms`);
          const around = () => adverts(cap.frames()).filter((f) => f.at > tKill - 2 * cs * 10 && f.at <= add.at + 50)
            .map((f) => `${(f.at - tKill).toFixed(1)} ms ${f.src} prio ${f.advert.priority}`).join("\n");
          expect(add.at - tKill, `takeover; adverts around the kill (ms after it):\n${around()}\n${B.text}`).toBeLessThanOrEqual(mdi + 100);
          // ... and not before its down timer ran out: a full MDI after the master's last advert on the wire
          const last = lastAdvertBefore(cap.frames(), addrOf(m), tKill);
          expect(last).toBeDefined();
          expect(add.at - last!.at).toBeGreaterThanOrEqual(mdi - 2);
          await waitState(B, "MASTER", 1000);

          // The master comes back and preempts.
          const tBack = wallMs();
          const M2 = start(masterKind, "m", 150, M instanceof Vipd ? M.dir : undefined);
          all.push(M2);
          await waitState(M2, "MASTER", masterDownIntervalMs(mode.version, 150, cs) + START_MS);
          await waitState(B, "BACKUP", 4000);
          await monM.waitEvent(vip, "add", tBack, 1000);
          await monB.waitEvent(vip, "del", tBack, 1000);
          expect(hasAddress(e.ns("b"), vip)).toBe(false);
          const vm2 = await view(M2);
          const vb2 = await view(B);
          expect([vm2?.state, vb2?.state]).toEqual(["MASTER", "BACKUP"]);
          expectNoErrorStats(vm2, M2.name);
          expectNoErrorStats(vb2, B.name);

          // Graceful stop of the master: a priority-0 advert on the wire, its VIP removed, and the
          // peer takes over within skew time + 100 ms.
          const tTerm = wallMs();
          M2.kill("SIGTERM"); // keepalived's parent forwards it to its VRRP child
          const skew = skewTimeMs(mode.version, 100, cs);
          const add2 = await waitTakeover(monB, cap, vip, addrOf(b), tTerm, skew + 2000);
          console.log(`${mode.name}: ${masterKind} stopped, ${backupKind} took over after ${formatTakeover(add2, tTerm)}; skew ${skew} ms`);
          expect(add2.at - tTerm).toBeLessThanOrEqual(skew + 100);
          await monM.waitEvent(vip, "del", tTerm, 2000);
          expect(await Promise.race([M2.exited, Bun.sleep(5000).then(() => "timeout")])).toBe(0);
          await waitState(B, "MASTER", 2000);
          const zero = adverts(cap.frames()).filter((f) => f.at >= tTerm && f.src === addrOf(m));
          expect(zero.length).toBeGreaterThanOrEqual(1);
          expect(zero.every((f) => f.advert.priority === 0)).toBe(true);
          const vb3 = await view(B);
          expectNoErrorStats(vb3, B.name);
          if (vb3 && Object.keys(vb3.stats).length) expect(vb3.stats.pri_zero_rcvd).toBeGreaterThanOrEqual(1);

          // Neither side logged a packet it did not like (or any other error).
          for (const d of all) expect(d.problemLines(), `${d.name} log:\n${d.text}`).toEqual([]);
        } finally {
          await e.close();
        }
      }, 60_000);
    }
  }
});
