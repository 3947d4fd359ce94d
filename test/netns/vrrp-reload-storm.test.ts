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

/** A second lab's instances: a VMAC one, a unicast one, one to delete and one to add. */
function variedConf(o: { routerId: string; prio: number; fifo?: string; uniPrio?: number; uniSrc: string; uniPeer: string; withX: boolean; withN: boolean }): string {
  const block = (name: string, vrid: number, prio: number, vip: string, extra: string[]) => [
    `vrrp_instance ${name} {`, "    state BACKUP", "    interface eth0", "    version 3", `    virtual_router_id ${vrid}`, `    priority ${prio}`,
    "    advert_int 0.1", "    virtual_ipaddress {", `        ${vip}/24`, "    }", ...extra.map((l) => `    ${l}`), "}", "",
  ].join("\n");
  return [
    `global_defs {\n    router_id ${o.routerId}\n${o.fifo ? `    notify_fifo ${o.fifo}\n` : ""}}\n`,
    block("VI_V", 51, o.prio, "192.0.2.100", ["use_vmac"]),
    block("VI_U", 61, o.uniPrio ?? o.prio, "192.0.2.101", [`unicast_src_ip ${o.uniSrc}`, "unicast_peer {", `    ${o.uniPeer}`, "}"]),
    o.withX ? block("VI_X", 71, o.prio, "192.0.2.102", ["notify_deleted"]) : "",
    o.withN ? block("VI_N", 81, o.prio, "192.0.2.103", []) : "",
  ].join("");
}

describe.skipIf(!ROOT)("reload storm (compiled vipd, netns)", () => {
  test.concurrent("reloads with VMAC and unicast instances: unchanged ones untouched (same macvlan); a bad config is rejected; a removed instance is DELETED and released, a new one starts, a lowered priority hands over", async () => {
    const e = new TestEnv(createLab({ purpose: "vcrlv", nodes: ["a", "b"], v4: "192.0.2.0/24" }));
    const d = mkdtempSync(`${tmpdir()}/vipdt-rlv-`);
    let reader: Proc | undefined;
    try {
      const fifo = `${d}/fifo`;
      const aConf = (o: Partial<Parameters<typeof variedConf>[0]> = {}) =>
        variedConf({ routerId: "ra", prio: 200, fifo, uniSrc: "192.0.2.1", uniPeer: "192.0.2.2", withX: true, withN: false, ...o });
      const A = e.vipd("a", aConf());
      const B = e.vipd("b", variedConf({ routerId: "rb", prio: 100, uniSrc: "192.0.2.2", uniPeer: "192.0.2.1", withX: true, withN: true }));
      for (const n of ["VI_V", "VI_U", "VI_X"]) await waitStatus(A, "MASTER", WAIT_MS, n);
      for (const n of ["VI_V", "VI_U", "VI_X"]) await waitStatus(B, "BACKUP", WAIT_MS, n);
      await waitStatus(B, "MASTER", WAIT_MS, "VI_N"); // only b has it so far
      reader = new Proc("fifo reader", ["cat", fifo]);
      await waitFor(() => reader!.lines.length >= 6, 3000, () => `start-up FIFO lines (${reader!.text})`);
      const fifoFrom = reader.lines.length;
      const vmacIndex = () => (JSON.parse(e.lab.exec("a", ["ip", "-j", "link", "show", "dev", "vrrp.51"]).stdout)[0] as { ifindex: number }).ifindex;
      const vmac0 = vmacIndex();
      const mon = await e.monitor("a");
      const l0 = A.lines.length;

      // 10 unchanged reloads
      for (let i = 0; i < 10; i++) {
        A.kill("SIGHUP");
        await waitFor(() => A.lines.slice(l0).filter((l) => /Reloaded .* 3 kept, 0 added, 0 removed/.test(l.line)).length >= i + 1, 3000, `reload ${i + 1}`);
        await Bun.sleep(50);
      }
      await Bun.sleep(300);
      // (the schema still marks notify_deleted "not yet implemented" although DELETED is reported: ignored here)
      expect(A.lines.slice(l0).filter((l) => /Entering|ERROR|WARNING/.test(l.line) && !/'notify_deleted' is parsed but not yet implemented/.test(l.line)).map((l) => l.line)).toEqual([]);
      expect(mon.list().filter((ev) => ev.kind === "del").map((ev) => ev.address)).toEqual([]);
      expect(vmacIndex()).toBe(vmac0);
      expect(reader.lines.slice(fifoFrom).map((l) => l.line)).toEqual([]);

      // a config with an error is rejected; the daemon keeps the old one
      writeFileSync(A.configPath, aConf().replace("priority 200", "priority 300"));
      const bad = await vipdReload(A);
      expect(bad.code).not.toBe(0);
      expect(bad.out).toMatch(/reject/i);
      await A.waitLine(/reload rejected/, 3000, l0);
      for (const n of ["VI_V", "VI_U", "VI_X"]) expect((await instanceStatus(A, n))?.state).toBe("MASTER");

      // VI_X removed, VI_N added, VI_U's priority lowered below b's
      const l1 = A.lines.length;
      const f1 = reader.lines.length;
      writeFileSync(A.configPath, aConf({ withX: false, withN: true, uniPrio: 50 }));
      const good = await vipdReload(A);
      expect(good.code, good.out).toBe(0);
      await A.waitLine(/Reloaded .* 2 kept, 1 added, 1 removed/, 3000, l1);
      await waitStatus(B, "MASTER", WAIT_MS, "VI_X"); // a's VI_X resigned
      await waitStatus(B, "MASTER", WAIT_MS, "VI_U");
      await waitStatus(A, "BACKUP", WAIT_MS, "VI_U");
      await waitStatus(A, "MASTER", WAIT_MS, "VI_N"); // new: starts BACKUP (the FIFO shows it), then preempts b's 100
      await waitStatus(B, "BACKUP", WAIT_MS, "VI_N");
      await waitFor(() => !hasAddress(e.ns("a"), "192.0.2.102") && !hasAddress(e.ns("a"), "192.0.2.101") && hasAddress(e.ns("a"), "192.0.2.103"), 2000, "a's addresses to follow");
      expect((await instanceStatus(A, "VI_V"))?.state).toBe("MASTER");
      expect(A.lines.slice(l1).filter((l) => /\(VI_V\)/.test(l.line)).map((l) => l.line)).toEqual([]);
      expect(mon.list().filter((ev) => ev.kind === "del").map((ev) => ev.address).sort()).toEqual(["192.0.2.101", "192.0.2.102"]);
      expect(vmacIndex()).toBe(vmac0);
      const fl = await waitFor(() => {
        const l = reader!.lines.slice(f1).map((x) => x.line);
        return l.includes('INSTANCE "VI_N" MASTER 200') ? l : undefined;
      }, 3000, () => `FIFO lines after the reload (${reader!.text})`);
      expect(fl).toContain('INSTANCE "VI_X" DELETED 200');
      expect(fl).toContain('INSTANCE "VI_U" BACKUP 50');
      // (b's last adverts may still reach a's new master: MASTER_RX_LOWER_PRI, a legitimate line, is left out)
      expect(fl.filter((l) => /VI_N/.test(l) && !/MASTER_RX_LOWER_PRI/.test(l))).toEqual(['INSTANCE "VI_N" BACKUP 200', 'INSTANCE "VI_N" MASTER 200']);
      expect(fl.filter((l) => /VI_V/.test(l))).toEqual([]);
    } finally {
      await reader?.stop("SIGKILL", 1000);
      await e.close();
      rmSync(d, { recursive: true, force: true });
    }
  }, 60_000);

  test.concurrent("50 reloads under a 10 ms ping: no transition, no VIP removal, no lost ping; changing another instance leaves VI_1 untouched", async () => {
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

      // 800 pings, one every ≤ 10 ms (~8 s; `-i 0.0099`, not 0.01: iputils' ping measured 16 ms
      // a ping at -i 0.01 here, 9.5 ms at 0.0099). The reloads start after 0.5 s, every 100-130 ms.
      const COUNT = 800;
      const pingStart = performance.now();
      ping = new Proc("ping", ["ip", "netns", "exec", e.ns("c"), "ping", "-n", "-q", "-i", "0.0099", "-W", "1", "-c", String(COUNT), VIP1]);
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
      // bounded: twice the nominal run plus 5 s; then SIGINT makes ping print what it has
      const left = pingStart + COUNT * 10 * 2 + 5000 - performance.now();
      const code = await Promise.race([ping.exited, Bun.sleep(Math.max(0, left)).then(() => -1)]);
      const pingMs = performance.now() - pingStart;
      if (code === -1) {
        ping.kill("SIGINT");
        await Promise.race([ping.exited, Bun.sleep(2000)]);
      }
      const summary = /(\d+) packets transmitted, (\d+) received/.exec(ping.text);
      expect(summary, ping.text).not.toBeNull();
      expect(code, `ping still running after ${pingMs.toFixed(0)} ms: ${ping.text}`).not.toBe(-1);
      const [sent, received] = [Number(summary![1]), Number(summary![2])];
      console.log(`reload storm: ${kinds.sighup} SIGHUP + ${kinds.cli} vipd reload over ${(stormMs / 1000).toFixed(1)} s (each logged done within ${Math.max(...reloadMs).toFixed(0)} ms of its request); ping ${received}/${sent} received in ${(pingMs / 1000).toFixed(1)} s (one every ${(pingMs / sent).toFixed(1)} ms)`);
      expect(code).toBe(0);
      expect(stormStart - pingStart + stormMs).toBeLessThan(pingMs); // the storm fell inside the ping run
      const diag = () => [`--- a ---`, ...A.lines.slice(aLines).map((l) => l.line).filter((l) => !/Reload/.test(l)), `--- b ---`, ...B.lines.slice(bLines).map((l) => l.line),
        `--- address events on a ---`, ...mon.list().map((ev) => `${new Date(ev.at).toISOString()} ${ev.kind} ${ev.address}`)].join("\n");
      expect([sent, received], diag()).toEqual([COUNT, COUNT]);

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
