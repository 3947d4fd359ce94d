/**
 * BFD with the compiled vipd against Debian's keepalived 2.2.7 (built with BFD) in two
 * namespaces: IPv4 and IPv6 sessions reach Up on both sides; a track_bfd weight −100 moves
 * VRRP mastership to keepalived while BFD is blocked (nft drop on keepalived's side) and back
 * when it flows again; killing keepalived takes vipd's sessions Down within the detection time
 * (bounded generously: the machine is shared). min_rx/min_tx 100 ms, multiplier 3.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { instanceConfig, killAll, Proc, signalPid, TestEnv, VIPD_BIN, waitFor, type Vipd } from "./daemon.ts";
import { haveKeepalived, instanceStatus, waitStatus } from "./daemon-extra.ts";
import { createLab } from "./lab.ts";

const ROOT = process.getuid?.() === 0;
const WAIT_MS = 10_000;
const dirs: string[] = [];
const procs: Proc[] = [];

afterAll(async () => {
  for (const p of procs) await p.stop("SIGKILL", 2000);
  killAll();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface BfdRow { name: string; state: string; remoteState: string; localDiag: string; detectTimeMs: number; localTxIntervalMs: number; received: number }

async function bfdOf(v: Vipd, name: string): Promise<BfdRow | undefined> {
  try {
    return ((await v.status()).bfd as BfdRow[] | undefined)?.find((b) => b.name === name);
  } catch {
    return undefined;
  }
}

function bfdBlocks(self: { v4: string; v6: string }, peer: { v4: string; v6: string }): string {
  const block = (name: string, nbr: string, src: string) => [
    `bfd_instance ${name} {`, `    neighbor_ip ${nbr}`, `    source_ip ${src}`, "    min_rx 100", "    min_tx 100", "    idle_tx 1000", "    multiplier 3", "}",
  ].join("\n");
  return `${block("B4", peer.v4, self.v4)}\n${block("B6", peer.v6, self.v6)}\n`;
}

/** keepalived with its BFD child (the shared helper runs --vrrp only), files in a temp dir. */
function startKeepalivedBfd(ns: string, config: string): { proc: Proc; bfdPid: () => number | undefined } {
  const dir = mkdtempSync("/run/vipdt-kad-bfd-");
  dirs.push(dir);
  writeFileSync(`${dir}/keepalived.conf`, config);
  const proc = new Proc(`keepalived@${ns}`, [
    "ip", "netns", "exec", ns, "keepalived", "-n", "-l", "-D", "--dont-respawn", "-f", `${dir}/keepalived.conf`,
    "-p", `${dir}/keepalived.pid`, "-r", `${dir}/vrrp.pid`, "-c", `${dir}/checkers.pid`, "-b", `${dir}/bfd.pid`,
  ]);
  procs.push(proc);
  const pidOf = (f: string) => {
    try {
      const n = Number(readFileSync(`${dir}/${f}`, "utf8").trim());
      return n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  };
  return { proc, bfdPid: () => pidOf("bfd.pid") };
}

describe.skipIf(!ROOT || !haveKeepalived())("BFD: vipd ↔ keepalived 2.2.7", () => {
  test("sessions Up both ways (IPv4, IPv6); track_bfd moves mastership; keepalived killed ⇒ Down within the detection time", async () => {
    const lab = createLab({ purpose: "bfd", nodes: ["a", "b"], v4: "192.0.2.0/24", v6: true });
    const env = new TestEnv(lab);
    const a = { v4: lab.node("a").v4!, v6: lab.node("a").v6! };
    const b = { v4: lab.node("b").v4!, v6: lab.node("b").v6! };
    try {
      // keepalived (b) is the VRRP peer too: priority 100 against vipd's 150 − 100 while B4 is down
      const kad = startKeepalivedBfd(lab.node("b").ns, bfdBlocks(b, a) + instanceConfig({ priority: 100, state: "BACKUP", vips: ["192.0.2.100/24"] }));
      const vipd = env.vipd("a", bfdBlocks(a, b) + instanceConfig({ priority: 150, state: "BACKUP", vips: ["192.0.2.100/24"], extra: ["track_bfd {", "    B4 weight -100", "}"] }));
      expect(VIPD_BIN).toBeTruthy();

      // 1. both sessions Up on vipd's side, at min_tx, with a 300 ms detection time
      for (const name of ["B4", "B6"]) {
        const row = await waitFor(async () => {
          const r = await bfdOf(vipd, name);
          return r?.state === "Up" && r.remoteState === "Up" && r.localTxIntervalMs === 100 ? r : undefined;
        }, WAIT_MS, () => `vipd ${name} Up: ${vipd.text.slice(-2000)}\n--- keepalived:\n${kad.proc.text.slice(-2000)}`);
        expect(row.detectTimeMs).toBe(300);
      }
      // ... and on keepalived's
      await waitFor(() => /\(B4\) Entering Up state/.test(kad.proc.text) && /\(B6\) Entering Up state/.test(kad.proc.text), WAIT_MS, () => `keepalived Up: ${kad.proc.text.slice(-2000)}`);
      expect(kad.proc.text).toMatch(/Tracked BFD instance B4 is UP|Received BFD event: instance B4 is in state Up/);
      expect(vipd.text).toMatch(/\(B4\) Entering Up state/);

      // 2. vipd wins VRRP with 150 while B4 is Up
      const master = await waitStatus(vipd, "MASTER", WAIT_MS);
      expect(master.effectivePriority).toBe(150);

      // 3. BFD blocked on keepalived's side (VRRP still flows): B4 Down with diag 1, priority 50, keepalived takes over
      lab.exec("b", ["nft", "add table inet vipdt; add chain inet vipdt in { type filter hook input priority 0; }; add rule inet vipdt in udp dport 3784 drop; add chain inet vipdt out { type filter hook output priority 0; }; add rule inet vipdt out udp dport 3784 drop"]);
      const blockedAt = performance.now();
      const down = await waitFor(async () => {
        const r = await bfdOf(vipd, "B4");
        return r?.state === "Down" ? r : undefined;
      }, WAIT_MS, "vipd B4 Down after the block");
      const detectMs = performance.now() - blockedAt;
      expect(down.localDiag).toBe("Control Detection Time Expired");
      expect(detectMs).toBeLessThan(3000); // 300 ms detection time + status polling on a loaded machine
      const backup = await waitStatus(vipd, "BACKUP", WAIT_MS);
      expect(backup.effectivePriority).toBe(50);
      expect(vipd.text).toMatch(/Tracked BFD instance B4 is DOWN/);

      // 4. BFD flows again: Up, priority 150, vipd preempts back
      lab.exec("b", ["nft", "delete table inet vipdt"]);
      await waitFor(async () => (await bfdOf(vipd, "B4"))?.state === "Up", WAIT_MS, "vipd B4 Up again");
      const again = await waitStatus(vipd, "MASTER", WAIT_MS);
      expect(again.effectivePriority).toBe(150);

      // 5. keepalived killed (parent and BFD child, no goodbye): both sessions Down within the detection time
      const bfdChild = kad.bfdPid();
      expect(bfdChild).toBeDefined();
      signalPid(bfdChild!, "SIGKILL");
      kad.proc.kill("SIGKILL");
      const killedAt = performance.now();
      for (const name of ["B6", "B4"]) {
        const r = await waitFor(async () => {
          const x = await bfdOf(vipd, name);
          return x?.state === "Down" ? x : undefined;
        }, WAIT_MS, `vipd ${name} Down after keepalived died`);
        expect(r.localDiag).toBe("Control Detection Time Expired");
      }
      expect(performance.now() - killedAt).toBeLessThan(3000);
      const st = await instanceStatus(vipd);
      expect(st?.effectivePriority).toBe(50);
      // the wire was clean: nothing vipd received was discarded as malformed
      expect(vipd.text).not.toMatch(/Discarding bogus packet/);
    } finally {
      await env.close();
    }
  }, 60_000);
});
