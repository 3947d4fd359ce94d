/**
 * Issue 4 item 7, the reload storm, with the compiled vipd: a master and a backup, a client
 * pinging the VIP every 10 ms, and 50 reloads of the unchanged config on the master (SIGHUP
 * and `vipd reload` alternately) spread over the ping run. It must show zero state
 * transitions (status become_master/release_master unchanged, no "Entering" line), zero VIP
 * removals (`ip monitor address` in the master's namespace sees no Deleted line) and no lost
 * ping; the instances track a weight-0 script, a file and their interface, and the notify FIFO
 * sees no event. Then one reload that changes only another instance leaves the first untouched.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { hasAddress, killAll, Proc, signalPid, TestEnv, waitFor, type Vipd } from "./daemon.ts";
import { instanceStatus, vipdReload, waitStatus } from "./daemon-extra.ts";
import { createLab } from "./lab.ts";

const ROOT = process.getuid?.() === 0;
const WAIT_MS = 8000;
const VIP1 = "192.0.2.100";
const VIP2 = "192.0.2.200";

afterAll(() => killAll());

function inst(name: string, vrid: number, prio: number, vip: string): string {
  return [
    `vrrp_instance ${name} {`,
    "    state BACKUP",
    "    interface eth0",
    "    version 3",
    `    virtual_router_id ${vrid}`,
    `    priority ${prio}`,
    "    advert_int 0.1",
    "    virtual_ipaddress {",
    `        ${vip}/24`,
    "    }",
    "    virtual_routes {",
    `        198.51.100.${vrid}/32 via 192.0.2.254 table 100`,
    "    }",
    "    track_script {",
    "        chk_ok",
    "    }",
    "    track_file {",
    "        tf",
    "    }",
    "    track_interface {",
    "        eth0",
    "    }",
    "}",
    "",
  ].join("\n");
}

/**
 * Both instances track a healthy weight-0 script (a restarted script would hold them in FAULT
 * until its first result: a flap), a track_file at 0 and their interface; events go to a FIFO.
 */
function cfg(routerId: string, prio1: number, prio2: number, vip2 = VIP2): string {
  return [
    "global_defs {", `    router_id ${routerId}`, "    script_user root", `    notify_fifo ${files.fifo}-${routerId}`, "}",
    "vrrp_script chk_ok {", "    script /bin/true", "    interval 0.2", "    weight 0", "}",
    "track_file tf {", `    file ${files.trackFile}`, "    weight 1", "}",
    "",
  ].join("\n") + inst("VI_1", 51, prio1, VIP1) + inst("VI_2", 52, prio2, vip2);
}

const files = { fifo: "", trackFile: "" };

const counters = async (v: Vipd, name: string) => {
  const s = (await instanceStatus(v, name))!;
  return { state: s.state, become_master: s.stats.become_master, release_master: s.stats.release_master };
};

describe.skipIf(!ROOT)("reload storm (compiled vipd, netns)", () => {
  test("50 reloads under a 10 ms ping: no transition, no VIP removal, no lost ping; changing another instance leaves VI_1 untouched", async () => {
    const e = new TestEnv(createLab({ purpose: "vcstorm", nodes: ["a", "b", "c"], v4: "192.0.2.0/24" }));
    let ping: Proc | undefined;
    let fifoReader: Proc | undefined;
    const d = mkdtempSync(`${tmpdir()}/vipdt-storm-`);
    files.fifo = `${d}/notify`;
    files.trackFile = `${d}/track`;
    writeFileSync(files.trackFile, "0\n");
    try {
      const A = e.vipd("a", cfg("ra", 200, 200));
      for (const n of ["VI_1", "VI_2"]) await waitStatus(A, "MASTER", WAIT_MS, n);
      const B = e.vipd("b", cfg("rb", 100, 100));
      for (const n of ["VI_1", "VI_2"]) await waitStatus(B, "BACKUP", WAIT_MS, n);
      await Bun.sleep(300);
      fifoReader = new Proc("fifo reader", ["cat", `${files.fifo}-ra`]);
      await waitFor(() => fifoReader!.lines.length >= 4, 3000, () => `the start-up FIFO lines (${fifoReader!.text})`);
      const fifoLines = fifoReader.lines.length;
      const mon = await e.monitor("a");
      const before = { a1: await counters(A, "VI_1"), a2: await counters(A, "VI_2"), b1: await counters(B, "VI_1") };
      expect(before.a1).toEqual({ state: "MASTER", become_master: 1, release_master: 0 });
      const aLines = A.lines.length;
      const bLines = B.lines.length;

      // 700 pings at 10 ms (~7 s); the reloads start after 0.5 s and come every 100-130 ms.
      const COUNT = 700;
      ping = new Proc("ping", ["ip", "netns", "exec", e.ns("c"), "ping", "-n", "-q", "-i", "0.01", "-W", "1", "-c", String(COUNT), VIP1]);
      await Bun.sleep(500);
      const kinds = { sighup: 0, cli: 0 };
      const reloadMs: number[] = [];
      const stormStart = performance.now();
      for (let i = 0; i < 50; i++) {
        const t = performance.now();
        if (i % 2 === 0) {
          expect(signalPid(A.pid, "SIGHUP")).toBe(true);
          kinds.sighup++;
        } else {
          const r = await vipdReload(A);
          expect(r.code, r.out).toBe(0);
          kinds.cli++;
        }
        const done = await waitFor(() => A.lines.slice(aLines).filter((l) => /Reloaded .* 2 kept, 0 added, 0 removed/.test(l.line)).length >= i + 1, 3000, `reload ${i + 1} to complete`);
        expect(done).toBe(true);
        reloadMs.push(performance.now() - t);
        await Bun.sleep(Math.max(0, 100 + (i % 4) * 10 - (performance.now() - t)));
      }
      const stormMs = performance.now() - stormStart;
      const code = await Promise.race([ping.exited, Bun.sleep(15_000).then(() => -1)]);
      const summary = /(\d+) packets transmitted, (\d+) received/.exec(ping.text);
      expect(summary, ping.text).not.toBeNull();
      const [sent, received] = [Number(summary![1]), Number(summary![2])];
      console.log(`reload storm: ${kinds.sighup} SIGHUP + ${kinds.cli} vipd reload over ${(stormMs / 1000).toFixed(1)} s (each logged done within ${Math.max(...reloadMs).toFixed(0)} ms of its request); ping ${received}/${sent} received`);
      expect(code).toBe(0);
      expect(stormMs).toBeLessThan(COUNT * 10 - 500); // the storm fell inside the ping run
      expect([sent, received]).toEqual([COUNT, COUNT]);

      // Zero transitions, zero removals.
      expect(A.lines.slice(aLines).filter((l) => /Entering|removed|Deleted|ERROR|WARNING/.test(l.line) && !/Reloaded .* 0 removed$/.test(l.line)).map((l) => l.line)).toEqual([]);
      expect(B.lines.slice(bLines).filter((l) => /Entering/.test(l.line)).map((l) => l.line)).toEqual([]);
      expect(mon.list().filter((ev) => ev.kind === "del").map((ev) => `${ev.address} ${ev.ifname}`)).toEqual([]);
      expect({ a1: await counters(A, "VI_1"), a2: await counters(A, "VI_2"), b1: await counters(B, "VI_1") }).toEqual(before);
      expect(hasAddress(e.ns("a"), VIP1) && hasAddress(e.ns("a"), VIP2)).toBe(true);
      expect(fifoReader.lines.slice(fifoLines).map((l) => l.line)).toEqual([]); // no event at all

      // A reload that changes only VI_2 (its VIP): VI_1 keeps its VIP, state and counters.
      const aLines2 = A.lines.length;
      const monFrom = mon.list().length;
      writeFileSync(A.configPath, cfg("ra", 200, 200, "192.0.2.201"));
      expect(signalPid(A.pid, "SIGHUP")).toBe(true);
      await A.waitLine(/Reloaded .* 2 kept, 0 added, 0 removed/, 3000, aLines2);
      await waitFor(() => hasAddress(e.ns("a"), "192.0.2.201") && !hasAddress(e.ns("a"), VIP2), 2000, "VI_2's VIP replaced");
      await Bun.sleep(300);
      const evs = mon.list().slice(monFrom).map((ev) => `${ev.kind} ${ev.address}`);
      expect(evs.sort()).toEqual(["add 192.0.2.201", `del ${VIP2}`]);
      expect(A.lines.slice(aLines2).filter((l) => /\(VI_1\)|Entering/.test(l.line)).map((l) => l.line)).toEqual([]);
      expect(await counters(A, "VI_1")).toEqual(before.a1);
      expect(await counters(A, "VI_2")).toEqual(before.a2);
      expect(hasAddress(e.ns("a"), VIP1)).toBe(true);
      expect(B.lines.slice(bLines).filter((l) => /Entering/.test(l.line)).map((l) => l.line)).toEqual([]);
    } finally {
      await ping?.stop("SIGKILL", 1000);
      await fifoReader?.stop("SIGKILL", 1000);
      await e.close();
      rmSync(d, { recursive: true, force: true });
    }
  }, 60_000);
});
