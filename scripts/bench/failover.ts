/**
 * VRRP benchmark, vipd against keepalived in the same namespace lab and the same run:
 * crash and graceful failover time (on the wire and as a pinging client sees it) at
 * advert_int 1 (v2) and 0.1 (v3), then idle CPU and memory of one node mastering 1, 100
 * and 1,000 instances. Prints markdown tables with vipd/keepalived ratios.
 * Run through scripts/bench/failover (root; it builds and cleans up). See --help.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { type Daemon, type Impl, IMPLS, keepalivedVersion, startDaemon } from "./daemons.ts";
import { Registry, alive, sh, sleep, spawnIn } from "./lab.ts";
import { CLK_TCK, cpuNs, cpuTicks, memoryKiB, pingOutage, pingReplies, readWire, threads, wireFailover } from "./measure.ts";
import { ADDR, BACKUP_PRIO, MASTER_PRIO, type PairLab, type Scenario, VIP, hasVip, pairConf, pairLab, resetPair, scenario, until } from "./pair.ts";
import { type Summary, fmt, markdownTable, ratio, summarize } from "./report.ts";

const USAGE = `usage: scripts/bench/failover [--quick] [--trials N] [--cpu-seconds S] [--only failover|idle] [--no-build]
  --quick          3 failover trials per scenario and implementation (default 10)
  --trials N       N trials per scenario and implementation
  --cpu-seconds S  idle CPU sampling window (default 20)
  --only WHAT      run only the failover part or only the idle CPU/RSS part
  --no-build       use dist/vipd as it is (default: scripts/build first)`;

const { values: opts } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    quick: { type: "boolean" },
    trials: { type: "string" },
    "cpu-seconds": { type: "string" },
    only: { type: "string" },
    state: { type: "string" },
    vipd: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}
const TRIALS = Number(opts.trials ?? (opts.quick ? 3 : 10));
const CPU_SECONDS = Number(opts["cpu-seconds"] ?? 20);
if (!(TRIALS >= 1 && TRIALS <= 100) || !(CPU_SECONDS >= 1 && CPU_SECONDS <= 600)) {
  console.error(USAGE);
  process.exit(2);
}
const ONLY = opts.only;
if (ONLY !== undefined && ONLY !== "failover" && ONLY !== "idle") {
  console.error(USAGE);
  process.exit(2);
}

const STATE = opts.state ?? `/tmp/vipd-bench-failover.${process.pid}`;
mkdirSync(STATE, { recursive: true });
const reg = new Registry(STATE);
const TAG = `vipdb-${process.pid}`;
const t0 = performance.now();
const wallNow = (): number => (performance.timeOrigin + performance.now()) / 1000;
const elapsed = (): string => `${((performance.now() - t0) / 1000).toFixed(0).padStart(5)} s`;
const log = (msg: string): void => console.error(`${elapsed()}  ${msg}`);

// Snapshot the binary: a rebuild by someone else during the run must not change what we measure.
const VIPD_BIN = `${STATE}/vipd`;
copyFileSync(opts.vipd ?? "dist/vipd", VIPD_BIN);
sh(["chmod", "755", VIPD_BIN]);

// ---------------------------------------------------------------- machine

function machine(): string[] {
  const model = /^model name\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown CPU";
  const os = /^PRETTY_NAME="?([^"\n]*)/m.exec(existsSync("/etc/os-release") ? readFileSync("/etc/os-release", "utf8") : "")?.[1] ?? "Linux";
  const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  return [
    `date: ${new Date().toISOString().replace(/\.\d+Z$/, "Z")}`,
    `machine: ${cpus().length} × ${model} (nproc ${sh(["nproc"]).stdout.trim()}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM`,
    `os: ${os}, kernel ${sh(["uname", "-r"]).stdout.trim()}`,
    `vipd: ${sh([VIPD_BIN, "version"]).stdout.trim()}, Bun ${Bun.version}`,
    `keepalived: ${keepalivedVersion()} (Debian package)`,
    `load average at start: ${load}`,
  ];
}

// ---------------------------------------------------------------- failover lab

const SCENARIOS: Scenario[] = [
  scenario(3, 0.1, "crash"),
  scenario(3, 0.1, "graceful"),
  scenario(2, 1, "crash"),
  scenario(2, 1, "graceful"),
];

const countLines = (path: string, re: RegExp): number =>
  existsSync(path) ? (readFileSync(path, "utf8").match(re) ?? []).length : 0;

interface Trial {
  scenario: string;
  impl: Impl;
  trial: number;
  ok: boolean;
  error?: string;
  /** Old master's last advert → new master's first advert (ms). */
  wireMs?: number;
  /** Old master's last advert → new master's first gratuitous ARP (ms). */
  garpMs?: number | null;
  /** Longest gap between ping replies around the failover (ms). */
  pingMs?: number;
  /** Kill/stop → old master's last advert seen (negative: it came before) and → new master's first advert (ms). */
  killToLastAdvertMs?: number;
  lastPriority?: number;
}

async function failoverTrial(lab: PairLab, s: Scenario, impl: Impl, trial: number): Promise<Trial> {
  const name = `${impl}-${s.version}-${s.mode}-${trial}`;
  const dir = `${STATE}/trials`;
  mkdirSync(dir, { recursive: true });
  const res: Trial = { scenario: s.tag, impl, trial, ok: false };
  const confA = `${dir}/${name}-a.conf`;
  const confB = `${dir}/${name}-b.conf`;
  writeFileSync(confA, pairConf(s, MASTER_PRIO, "bench-a"));
  writeFileSync(confB, pairConf(s, BACKUP_PRIO, "bench-b"));
  const pcap = `${dir}/${name}.pcap`;
  const pingOut = `${dir}/${name}.ping`;
  const tdErr = `${dir}/${name}.tcpdump`;
  let a: Daemon | null = null;
  let b: Daemon | null = null;
  let td: ReturnType<typeof spawnIn> | null = null;
  let ping: ReturnType<typeof spawnIn> | null = null;
  let aStopped: Promise<void> | null = null;
  const startAt = 3 * s.advertInt * 1000 + 3000;
  try {
    b = startDaemon(impl, { reg, ns: lab.ns.b, conf: confB, dir, name: `${name}-b`, vipdBin: VIPD_BIN });
    a = startDaemon(impl, { reg, ns: lab.ns.a, conf: confA, dir, name: `${name}-a`, vipdBin: VIPD_BIN });
    if (!(await until(() => hasVip(lab.ns.a) && !hasVip(lab.ns.b), startAt))) throw new Error("A did not become the only VIP holder");

    td = spawnIn(reg, lab.ns.c, ["tcpdump", "-i", "eth0", "-n", "-U", "--immediate-mode", "-s", "128", "--time-stamp-precision=nano", "-w", pcap,
      "ip proto 112 or arp"], { stderr: tdErr });
    if (!(await until(() => existsSync(tdErr) && readFileSync(tdErr, "utf8").includes("listening on"), 3000, 10))) {
      throw new Error("tcpdump did not start");
    }
    // stdbuf: ping's stdout is a file, which stdio would otherwise buffer until exit.
    ping = spawnIn(reg, lab.ns.c, ["stdbuf", "-oL", "ping", "-D", "-n", "-i", "0.01", VIP], { stdout: pingOut });
    const replyRe = /icmp_seq=\d+ ttl/g;
    if (!(await until(() => countLines(pingOut, replyRe) >= 20, 3000, 20))) throw new Error("the client gets no replies from the VIP");
    // Let the capture hold at least one advert of A, then kill at a random phase of its advert timer.
    await sleep(s.advertInt * 1000 * (1.1 + Math.random()));

    const killT = wallNow();
    if (s.mode === "crash") {
      await a.crash();
      // The node is gone, not just the daemon: cut its link so the stale VIP stops answering.
      sh(["ip", "-n", lab.ns.sw, "link", "set", "pa", "down"]);
    } else {
      aStopped = a.stop();
    }
    if (!(await until(() => hasVip(lab.ns.b), s.expectedMs + 3000))) throw new Error("B never took the VIP");
    // Wait for the client to see replies again (bounded).
    const before = countLines(pingOut, replyRe);
    await until(() => countLines(pingOut, replyRe) >= before + 20, 3000, 20);
    await sleep(100);

    ping.kill("SIGINT");
    td.kill("SIGINT");
    await Promise.race([Promise.all([ping.exited, td.exited]), sleep(3000)]);

    const w = wireFailover(readWire(pcap), ADDR.a, ADDR.b, lab.mac.b, VIP);
    if (!w) throw new Error("capture lacks the old master's last advert or the new master's first");
    const p = pingOutage(pingReplies(readFileSync(pingOut, "utf8")), killT);
    if (!p || p.after < killT) throw new Error("no ping outage found after the kill");
    Object.assign(res, {
      ok: true,
      wireMs: w.gapMs,
      garpMs: w.garpMs,
      pingMs: p.outageMs,
      killToLastAdvertMs: (w.lastAdvertT - killT) * 1000,
      lastPriority: w.lastPriority,
    });
    const wantPrio = s.mode === "crash" ? MASTER_PRIO : 0;
    if (w.lastPriority !== wantPrio) {
      res.ok = false;
      res.error = `old master's last advert had priority ${w.lastPriority}, expected ${wantPrio}`;
    }
  } catch (e) {
    res.error = (e as Error).message;
  } finally {
    for (const p of [ping, td]) if (p && alive(p.pid)) p.kill("SIGKILL");
    await Promise.all([b?.stop(), aStopped]);
    if (a && alive(a.pid)) await a.crash().catch(() => {});
    await a?.exited;
    resetPair(lab);
  }
  return res;
}

async function failoverPart(): Promise<{ trials: Trial[]; table: string }> {
  const lab = pairLab(reg, TAG);
  const trials: Trial[] = [];
  for (const s of SCENARIOS) {
    log(`${s.tag}: ${TRIALS} trials per implementation, alternating (RFC predicts ${s.expectedMs.toFixed(1)} ms on the wire)`);
    for (let i = 0; i < TRIALS; i++) {
      const order: Impl[] = i % 2 === 0 ? ["vipd", "keepalived"] : ["keepalived", "vipd"];
      for (const impl of order) {
        const t = await failoverTrial(lab, s, impl, i);
        trials.push(t);
        log(t.ok
          ? `  ${impl.padEnd(10)} #${i + 1}: wire ${fmt(t.wireMs)} ms, GARP ${fmt(t.garpMs)} ms, client outage ${fmt(t.pingMs, 0)} ms`
          : `  ${impl.padEnd(10)} #${i + 1}: FAILED: ${t.error}`);
      }
    }
  }
  const rows: string[][] = [];
  for (const s of SCENARIOS) {
    const sums = new Map<Impl, { wire: Summary | null; ping: Summary | null; garp: Summary | null; n: number }>();
    for (const impl of IMPLS) {
      const ok = trials.filter((t) => t.scenario === s.tag && t.impl === impl && t.ok);
      sums.set(impl, {
        wire: summarize(ok.map((t) => t.wireMs!)),
        ping: summarize(ok.map((t) => t.pingMs!)),
        garp: summarize(ok.flatMap((t) => (t.garpMs == null ? [] : [t.garpMs]))),
        n: ok.length,
      });
      const x = sums.get(impl)!;
      rows.push([
        impl === "vipd" ? `${s.tag} (RFC ${s.expectedMs.toFixed(1)})` : "",
        impl,
        `${x.n}/${TRIALS}`,
        fmt(x.wire?.min), fmt(x.wire?.median), fmt(x.wire?.max),
        x.wire ? `${x.wire.median - s.expectedMs >= 0 ? "+" : ""}${fmt(x.wire.median - s.expectedMs)}` : "–",
        fmt(x.garp?.median),
        fmt(x.ping?.min, 0), fmt(x.ping?.median, 0), fmt(x.ping?.max, 0),
      ]);
    }
    const v = sums.get("vipd")!;
    const k = sums.get("keepalived")!;
    const delta = v.wire && k.wire ? v.wire.median - k.wire.median : null;
    rows.push([
      "", "**vipd/keepalived**", "", "", `**${ratio(v.wire?.median, k.wire?.median)}**`, "",
      delta === null ? "–" : `Δ ${delta >= 0 ? "+" : ""}${fmt(delta)}`,
      ratio(v.garp?.median, k.garp?.median), "", `**${ratio(v.ping?.median, k.ping?.median)}**`, "",
    ]);
  }
  const table = markdownTable(
    ["scenario (ms)", "implementation", "ok", "wire min", "wire median", "wire max", "median − RFC", "GARP median", "outage min", "outage median", "outage max"],
    rows, 2);
  return { trials, table };
}

// ---------------------------------------------------------------- idle CPU and memory

const PER_IFACE = 250;

interface Idle {
  instances: number;
  impl: Impl;
  ok: boolean;
  error?: string;
  cpuPercent?: number;
  /** The same from schedstat (ns resolution, live threads only). */
  cpuPercentFine?: number;
  rssMiB?: number;
  pssMiB?: number;
  threads?: number;
  advertsPerSec?: number;
  startSec?: number;
}

function idleConf(n: number): string {
  let out = "global_defs {\n    router_id bench-idle\n}\n";
  for (let j = 0; j < n; j++) {
    const k = Math.floor(j / PER_IFACE);
    const vrid = (j % PER_IFACE) + 1;
    // VRIDs and VIPs repeat per interface (each veth is its own LAN); 192.0.2.0/24 has too few addresses for 1,000.
    out += `vrrp_instance VI_${j + 1} {
    state BACKUP
    interface v${k}
    version 2
    virtual_router_id ${vrid}
    priority 150
    advert_int 1
    virtual_ipaddress {
        192.0.2.${vrid}/32 dev v${k}
    }
}
`;
  }
  return out;
}

function txPackets(ns: string, ifaces: number): number {
  const links = JSON.parse(sh(["ip", "-n", ns, "-s", "-j", "link", "show"]).stdout) as { ifname: string; stats64?: { tx: { packets: number } } }[];
  return links.filter((l) => /^v\d+$/.test(l.ifname) && Number(l.ifname.slice(1)) < ifaces).reduce((s, l) => s + (l.stats64?.tx.packets ?? 0), 0);
}

const vipCount = (ns: string): number => (sh(["ip", "-n", ns, "-4", "-o", "addr", "show"], true).stdout.match(/ inet 192\.0\.2\.\d+\/32 /g) ?? []).length;

async function idleRun(n: number, impl: Impl): Promise<Idle> {
  const res: Idle = { instances: n, impl, ok: false };
  const node = reg.addNamespace(`${TAG}-n`);
  const sink = reg.addNamespace(`${TAG}-s`);
  const ifaces = Math.ceil(n / PER_IFACE);
  const dir = `${STATE}/idle`;
  mkdirSync(dir, { recursive: true });
  let d: Daemon | null = null;
  try {
    for (let k = 0; k < ifaces; k++) {
      sh(["ip", "-n", node, "link", "add", `v${k}`, "type", "veth", "peer", "name", `s${k}`, "netns", sink]);
      sh(["ip", "-n", node, "addr", "add", `203.0.113.${16 * k + 1}/28`, "dev", `v${k}`]);
      sh(["ip", "-n", node, "link", "set", `v${k}`, "up"]);
      sh(["ip", "-n", sink, "link", "set", `s${k}`, "up"]);
    }
    const conf = `${dir}/${impl}-${n}.conf`;
    writeFileSync(conf, idleConf(n));
    const started = performance.now();
    d = startDaemon(impl, { reg, ns: node, conf, dir, name: `${impl}-${n}`, vipdBin: VIPD_BIN });
    if (!(await until(() => vipCount(node) === n, 60_000, 250))) throw new Error(`only ${vipCount(node)} of ${n} VIPs after 60 s`);
    res.startSec = (performance.now() - started) / 1000;
    // Past the second GARP burst (garp_master_delay 5 s) and start-up work.
    await sleep(6000);
    const pids = await d.allPids();
    const cpu0 = pids.reduce((s, p) => s + cpuTicks(p), 0);
    const ns0 = pids.reduce((s, p) => s + cpuNs(p), 0);
    const tx0 = txPackets(node, ifaces);
    const w0 = performance.now();
    await sleep(CPU_SECONDS * 1000);
    const cpu1 = pids.reduce((s, p) => s + cpuTicks(p), 0);
    const ns1 = pids.reduce((s, p) => s + cpuNs(p), 0);
    const tx1 = txPackets(node, ifaces);
    const secs = (performance.now() - w0) / 1000;
    const mem = pids.map(memoryKiB);
    Object.assign(res, {
      ok: pids.every(alive) && vipCount(node) === n,
      cpuPercent: ((cpu1 - cpu0) / CLK_TCK / secs) * 100,
      cpuPercentFine: ((ns1 - ns0) / 1e9 / secs) * 100,
      rssMiB: mem.reduce((s, m) => s + m.rss, 0) / 1024,
      pssMiB: mem.reduce((s, m) => s + m.pss, 0) / 1024,
      threads: pids.reduce((s, p) => s + threads(p), 0),
      advertsPerSec: (tx1 - tx0) / secs,
    });
    if (!res.ok) res.error = "daemon died or lost VIPs during the measurement";
  } catch (e) {
    res.error = (e as Error).message;
  } finally {
    if (d) {
      await d.stop(20_000);
      if (alive(d.pid)) await d.crash().catch(() => {});
    }
    reg.deleteNamespace(node);
    reg.deleteNamespace(sink);
  }
  return res;
}

async function idlePart(): Promise<{ runs: Idle[]; table: string }> {
  const runs: Idle[] = [];
  for (const n of [1, 100, 1000]) {
    for (const impl of IMPLS) {
      log(`idle: ${impl}, master of ${n} instance(s), ${CPU_SECONDS} s sample`);
      const r = await idleRun(n, impl);
      runs.push(r);
      log(r.ok
        ? `  CPU ${fmt(r.cpuPercent, 2)} % (schedstat ${fmt(r.cpuPercentFine, 3)} %), RSS ${fmt(r.rssMiB)} MiB, PSS ${fmt(r.pssMiB)} MiB, ${fmt(r.advertsPerSec, 0)} adverts/s, all masters after ${fmt(r.startSec)} s`
        : `  FAILED: ${r.error}`);
    }
  }
  const rows: string[][] = [];
  for (const n of [1, 100, 1000]) {
    const v = runs.find((r) => r.instances === n && r.impl === "vipd");
    const k = runs.find((r) => r.instances === n && r.impl === "keepalived");
    for (const r of [v, k]) {
      if (!r) continue;
      rows.push([r.impl === "vipd" ? String(n) : "", r.impl, r.ok ? fmt(r.cpuPercent, 2) : `failed: ${r.error}`, fmt(r.cpuPercentFine, 3), fmt(r.rssMiB), fmt(r.pssMiB),
        String(r.threads ?? "–"), fmt(r.advertsPerSec, 0), fmt(r.startSec)]);
    }
    const both = v?.ok && k?.ok;
    rows.push(["", "**vipd/keepalived**", both ? `**${ratio(v!.cpuPercent, k!.cpuPercent)}**` : "–", both ? `**${ratio(v!.cpuPercentFine, k!.cpuPercentFine)}**` : "–",
      both ? `**${ratio(v!.rssMiB, k!.rssMiB)}**` : "–",
      both ? ratio(v!.pssMiB, k!.pssMiB) : "–", "", "", ""]);
  }
  const table = markdownTable(["instances", "implementation", "CPU % (stat)", "CPU % (schedstat)", "RSS MiB", "PSS MiB", "threads", "adverts/s sent", "all MASTER after s"], rows, 2);
  return { runs, table };
}

// ---------------------------------------------------------------- main

let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${sig}: cleaning up`);
    reg.cleanup();
    process.exit(130);
  });
}

try {
  const desc = machine();
  for (const l of desc) log(l);
  const out: string[] = ["Machine:", "", ...desc.map((l) => `- ${l}`), ""];
  const json: Record<string, unknown> = { machine: desc, trialsPerScenario: TRIALS, cpuSeconds: CPU_SECONDS };
  if (ONLY !== "idle") {
    const f = await failoverPart();
    json.failover = f.trials;
    out.push(`Failover, ${TRIALS} trials per scenario and implementation, alternating; times in ms.`,
      "wire: the old master's last advert to the new master's first advert (tcpdump on a third node);",
      "GARP: the old master's last advert to the new master's first gratuitous ARP;",
      "outage: the longest gap between replies of `ping -i 0.01` to the VIP from that node.", "", f.table, "");
  }
  if (ONLY !== "failover") {
    const i = await idlePart();
    json.idle = i.runs;
    out.push(`Idle, one node MASTER of N VRRPv2 instances (advert_int 1, ≤ 250 per veth), ${CPU_SECONDS} s sample:`,
      "CPU % of one core = utime+stime from /proc/PID/stat (10 ms ticks), and the sum of /proc/PID/task/*/schedstat run time (ns);",
      "RSS = VmRSS, PSS from smaps_rollup (keepalived: parent + VRRP child summed).", "", i.table, "");
  }
  const loadEnd = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  out.push(`Total time: ${((performance.now() - t0) / 1000).toFixed(0)} s; load average at the end ${loadEnd}. Raw data: ${STATE}/results.json`);
  writeFileSync(`${STATE}/results.json`, JSON.stringify(json, null, 2));
  writeFileSync(`${STATE}/results.md`, out.join("\n") + "\n");
  console.log(out.join("\n"));
} catch (e) {
  console.error(`bench failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
} finally {
  reg.cleanup();
}
