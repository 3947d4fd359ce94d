/**
 * Health-checker benchmark: N real servers (1,000 and 5,000) with TCP_CHECK or HTTP_GET at
 * delay_loop 1 against local servers, vipd and keepalived's checker child one after the other
 * in the same run. Measures CPU and RSS of the daemon and, from the servers' side, how evenly
 * each real server is checked (the intervals between a real server's arriving connections
 * against the configured 1 s). Prints markdown tables with vipd/keepalived ratios.
 * Run through scripts/bench/checkers (root; it builds, runs on the host and in the IPVS VM, and
 * cleans up). Internal modes: --serve (the servers), --fetch URL (an HTTP GET, for the metrics).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { type ServerLayout, readArrivals, serve } from "./checker-servers.ts";
import { type Impl, IMPLS, keepalivedVersion } from "./daemons.ts";
import { Registry, alive, readPidFile, sh, sleep, spawnIn } from "./lab.ts";
import { CLK_TCK, cpuNs, cpuTicks, memoryKiB, threads } from "./measure.ts";
import { fmt, markdownTable, ratio } from "./report.ts";

const USAGE = `usage: checkers.ts --state DIR --vipd BIN [--where host|vm] [--sizes 1000,5000] [--types TCP_CHECK,HTTP_GET]
                   [--impls vipd,keepalived] [--seconds S] [--quick] [--ipvs-stub SO]
  --ipvs-stub keepalived with LD_PRELOAD=SO (scripts/bench/ipvs-stub.c) where the kernel has no IP_VS
  --sizes     numbers of real servers (multiples of 10; default 1000,5000)
  --types     checkers (default TCP_CHECK,HTTP_GET)
  --seconds   measurement window per run (default 30; --quick 15)`;

const { values: opts } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    state: { type: "string" },
    vipd: { type: "string" },
    where: { type: "string" },
    sizes: { type: "string" },
    types: { type: "string" },
    impls: { type: "string" },
    seconds: { type: "string" },
    quick: { type: "boolean" },
    serve: { type: "boolean" },
    addresses: { type: "string" },
    "first-port": { type: "string" },
    ports: { type: "string" },
    dump: { type: "string" },
    fetch: { type: "string" },
    "ipvs-stub": { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});

// ---------------------------------------------------------------- the benchmark

type CheckType = "TCP_CHECK" | "HTTP_GET";

/** The command that runs this script again (a compiled binary runs itself). */
function selfCmd(): string[] {
  return Bun.main.startsWith("/$bunfs/") ? [process.execPath] : [process.execPath, Bun.main];
}

const ADDRESSES = Array.from({ length: 10 }, (_, i) => `198.51.100.${i + 1}`);
const FIRST_PORT = 10000;
const PER_VS = 100;
const METRICS = "127.0.0.1:9109";

/** Real server i sits on address i % 10, port FIRST_PORT + floor(i / 10). */
function layoutFor(n: number): ServerLayout {
  return { addresses: ADDRESSES, firstPort: FIRST_PORT, ports: n / ADDRESSES.length };
}

/** keepalived.conf with n real servers in virtual servers of 100, every one with one checker at delay_loop 1. */
export function checkersConf(n: number, type: CheckType): string {
  const check = type === "TCP_CHECK"
    ? "        TCP_CHECK {\n            connect_timeout 3\n        }\n"
    : "        HTTP_GET {\n            url {\n                path /\n                status_code 200\n            }\n            connect_timeout 3\n        }\n";
  const parts = ["global_defs {\n    router_id bench-checkers\n}\n"];
  for (let v = 0; v < n / PER_VS; v++) {
    parts.push(`virtual_server 203.0.113.1 ${1000 + v} {\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n`);
    for (let j = 0; j < PER_VS; j++) {
      const i = v * PER_VS + j;
      parts.push(`    real_server ${ADDRESSES[i % ADDRESSES.length]} ${FIRST_PORT + Math.floor(i / ADDRESSES.length)} {\n        weight 1\n${check}    }\n`);
    }
    parts.push("}\n");
  }
  return parts.join("");
}

interface Run {
  n: number;
  type: CheckType;
  impl: Impl;
  ok: boolean;
  error?: string;
  /** From daemon start until every real server had been checked once (s). */
  allCheckedSec?: number;
  cpuPercent?: number;
  cpuPercentFine?: number;
  rssMiB?: number;
  threads?: number;
  /** Connections the servers saw per second during the window. */
  checksPerSec?: number;
  /** Real servers with no check at all during the window. */
  unchecked?: number;
  /** Intervals between consecutive checks of one real server, minus 1000 ms. */
  dev?: { n: number; min: number; p50: number; p90: number; p99: number; p999: number; max: number };
  /** vipd only: event-loop lag over the window from its metrics (share of 250 ms ticks later than each bound). */
  loopLag?: { count: number; meanMs: number; over5ms: number; over25ms: number; over100ms: number; maxBucket: string };
  log?: string;
}

interface Ctx {
  reg: Registry;
  state: string;
  vipdBin: string;
  tag: string;
  seconds: number;
  /** An LD_PRELOAD library answering keepalived's IPVS socket options (ipvs-stub.c), on a host without IP_VS. */
  ipvsStub?: string;
  log: (msg: string) => void;
}

const quantile = (sorted: Float64Array, q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/** Intervals between consecutive arrivals inside [w0, w1] (wall ms), per real server, pooled. */
export function intervalStats(arrivals: Float64Array[], w0: number, w1: number): { dev: NonNullable<Run["dev"]> | null; count: number; unchecked: number } {
  const iv: number[] = [];
  let count = 0;
  let unchecked = 0;
  for (const a of arrivals) {
    let prev = -1;
    let seen = 0;
    for (const t of a) {
      if (t < w0 || t > w1) continue;
      seen++;
      if (prev >= 0) iv.push(t - prev - 1000);
      prev = t;
    }
    count += seen;
    if (seen === 0) unchecked++;
  }
  if (iv.length === 0) return { dev: null, count, unchecked };
  const s = Float64Array.from(iv).sort();
  return {
    dev: { n: s.length, min: s[0]!, p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), p999: quantile(s, 0.999), max: s[s.length - 1]! },
    count,
    unchecked,
  };
}

/** vipd_event_loop_lag_seconds from a Prometheus text page: cumulative bucket counts, sum, count. */
function parseLag(text: string): { le: Map<string, number>; sum: number; count: number } {
  const le = new Map<string, number>();
  for (const m of text.matchAll(/^vipd_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$/gm)) le.set(m[1]!, Number(m[2]));
  const sum = Number(/^vipd_event_loop_lag_seconds_sum (\S+)$/m.exec(text)?.[1] ?? NaN);
  const count = Number(/^vipd_event_loop_lag_seconds_count (\S+)$/m.exec(text)?.[1] ?? NaN);
  return { le, sum, count };
}

function lagDelta(a: ReturnType<typeof parseLag>, b: ReturnType<typeof parseLag>): NonNullable<Run["loopLag"]> {
  const count = b.count - a.count;
  const over = (le: string) => (count > 0 ? (count - ((b.le.get(le) ?? 0) - (a.le.get(le) ?? 0))) / count : NaN);
  let maxBucket = "≤ 1 ms";
  for (const [le, c] of b.le) if (c - (a.le.get(le) ?? 0) < count) maxBucket = le === "+Inf" ? "> 2.5 s" : `> ${Number(le) * 1000} ms`;
  return { count, meanMs: count > 0 ? ((b.sum - a.sum) / count) * 1000 : NaN, over5ms: over("0.005"), over25ms: over("0.025"), over100ms: over("0.1"), maxBucket };
}

/** Scrapes vipd's metrics from inside the namespace (the endpoint listens there). */
function scrape(ns: string): string {
  return sh(["ip", "netns", "exec", ns, ...selfCmd(), "--fetch", `http://${METRICS}/metrics`], true).stdout;
}

async function waitFor(cond: () => boolean, maxMs: number, stepMs = 200): Promise<boolean> {
  const start = performance.now();
  while (performance.now() - start < maxMs) {
    if (cond()) return true;
    await sleep(stepMs);
  }
  return cond();
}

/** Asks the servers for their arrival times and reads them (bounded wait for the new file). */
async function arrivals(server: number, dump: string): Promise<Float64Array[]> {
  const before = existsSync(dump) ? readFileSync(dump).byteLength : -1;
  rmSync(dump, { force: true });
  process.kill(server, "SIGUSR1");
  if (!(await waitFor(() => existsSync(dump), 20_000, 50))) throw new Error(`the servers wrote no dump (had ${before} bytes)`);
  return readArrivals(new Uint8Array(readFileSync(dump)));
}

const tail = (path: string, lines = 8): string =>
  existsSync(path) ? readFileSync(path, "utf8").trim().split("\n").slice(-lines).join("\n") : "";

/** The line of a daemon's log that says why it stopped (keepalived: "IPVS: Can't initialize ipvs: ..."). */
function whyExited(log: string): string {
  const lines = existsSync(log) ? readFileSync(log, "utf8").split("\n") : [];
  const line = lines.find((l) => /Can't initialize ipvs|IPVS unavailable|FATAL|error/i.test(l)) ?? lines.filter(Boolean).at(-1) ?? "no log";
  return line.replace(/^\w{3} \w{3} +\d+ [\d:]+ \d{4}: /, "").trim();
}

async function runOne(c: Ctx, n: number, type: CheckType, impl: Impl): Promise<Run> {
  const res: Run = { n, type, impl, ok: false };
  const name = `${impl}-${type}-${n}`;
  const dir = `${c.state}/runs`;
  mkdirSync(dir, { recursive: true });
  const ns = c.reg.addNamespace(`${c.tag}-c`);
  const layout = layoutFor(n);
  const dump = `${dir}/${name}.arrivals`;
  const serverOut = `${dir}/${name}.servers`;
  const log = `${dir}/${name}.log`;
  let server: ReturnType<typeof spawnIn> | null = null;
  let daemon: ReturnType<typeof spawnIn> | null = null;
  let pids: number[] = [];
  try {
    for (const a of ADDRESSES) sh(["ip", "-n", ns, "addr", "add", `${a}/32`, "dev", "lo"]);
    server = spawnIn(c.reg, ns, [...selfCmd(), "--serve", "--addresses", layout.addresses.join(","), "--first-port", String(layout.firstPort),
      "--ports", String(layout.ports), "--dump", dump], { stdout: serverOut, stderr: serverOut });
    if (!(await waitFor(() => existsSync(serverOut) && readFileSync(serverOut, "utf8").includes("ready"), 120_000))) {
      throw new Error(`servers not ready: ${tail(serverOut, 3)}`);
    }
    const conf = `${dir}/${name}.conf`;
    writeFileSync(conf, checkersConf(n, type));
    const started = performance.now();
    const startedWall = performance.timeOrigin + started;
    const cmd = impl === "vipd"
      ? [c.vipdBin, "run", "-f", conf, "--pid-file", `${dir}/${name}.pid`, "--control", `${dir}/${name}.sock`, "--metrics", METRICS, "--log-console"]
      : [...(c.ipvsStub ? ["env", `LD_PRELOAD=${c.ipvsStub}`] : []), "keepalived", "-n", "-l", "-D", "--check", "-f", conf, "-p", `${dir}/${name}.pid`, "-c", `${dir}/${name}.chk.pid`, "-r", `${dir}/${name}.vrrp.pid`];
    daemon = spawnIn(c.reg, ns, cmd, { stdout: log, stderr: log });
    pids = [daemon.pid];
    if (impl === "keepalived") {
      const child = await readPidFile(`${dir}/${name}.chk.pid`, 30_000);
      c.reg.track(child);
      pids.push(child);
    }
    // Every real server checked at least once (warmup spreads the first checks over 1 s).
    let firstSeen = 0;
    let lastFirst = 0;
    while (performance.now() - started < 240_000 && pids.every(alive)) {
      const a = await arrivals(server.pid, dump);
      firstSeen = a.filter((x) => x.length > 0).length;
      if (firstSeen === n) {
        lastFirst = Math.max(...a.map((x) => x[0]!));
        break;
      }
      await sleep(1000);
    }
    if (!pids.every(alive)) throw new Error(`${impl} exited: ${whyExited(log)}`);
    if (firstSeen < n) throw new Error(`only ${firstSeen} of ${n} real servers were checked within 240 s`);
    res.allCheckedSec = (lastFirst - startedWall) / 1000;
    c.log(`  every real server checked after ${fmt(res.allCheckedSec)} s; settling 5 s, then a ${c.seconds} s window`);
    await sleep(5000);

    const lag0 = impl === "vipd" ? parseLag(scrape(ns)) : null;
    const cpu0 = pids.reduce((s, p) => s + cpuTicks(p), 0);
    const ns0 = pids.reduce((s, p) => s + cpuNs(p), 0);
    const w0 = performance.timeOrigin + performance.now();
    await sleep(c.seconds * 1000);
    const cpu1 = pids.reduce((s, p) => s + cpuTicks(p), 0);
    const ns1 = pids.reduce((s, p) => s + cpuNs(p), 0);
    const w1 = performance.timeOrigin + performance.now();
    const mem = pids.map(memoryKiB);
    const lag1 = impl === "vipd" ? parseLag(scrape(ns)) : null;
    const secs = (w1 - w0) / 1000;
    const st = intervalStats(await arrivals(server.pid, dump), w0, w1);
    Object.assign(res, {
      ok: pids.every(alive) && st.dev !== null,
      cpuPercent: ((cpu1 - cpu0) / CLK_TCK / secs) * 100,
      cpuPercentFine: ((ns1 - ns0) / 1e9 / secs) * 100,
      rssMiB: mem.reduce((s, m) => s + m.rss, 0) / 1024,
      threads: pids.reduce((s, p) => s + threads(p), 0),
      checksPerSec: st.count / secs,
      unchecked: st.unchecked,
    });
    if (st.dev) res.dev = st.dev;
    if (lag0 && lag1 && Number.isFinite(lag1.count)) res.loopLag = lagDelta(lag0, lag1);
    if (!res.ok) res.error = "daemon died or no intervals measured";
  } catch (e) {
    res.error = (e as Error).message;
  } finally {
    if (daemon && alive(daemon.pid)) {
      daemon.kill("SIGTERM");
      await Promise.race([daemon.exited, sleep(30_000)]);
    }
    for (const p of pids) if (alive(p)) process.kill(p, "SIGKILL");
    if (server && alive(server.pid)) {
      server.kill("SIGTERM");
      await Promise.race([server.exited, sleep(5000)]);
      if (alive(server.pid)) server.kill("SIGKILL");
    }
    res.log = tail(log, 3);
    c.reg.deleteNamespace(ns);
  }
  return res;
}

function machine(where: string, vipdBin: string): string[] {
  const model = /^model name\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown CPU";
  const os = /^PRETTY_NAME="?([^"\n]*)/m.exec(existsSync("/etc/os-release") ? readFileSync("/etc/os-release", "utf8") : "")?.[1];
  const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  const kernel = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  const ka = Bun.which("keepalived") ? keepalivedVersion() : "not installed";
  return [
    `date: ${new Date().toISOString().replace(/\.\d+Z$/, "Z")}`,
    `where: ${where === "vm" ? "inside the IPVS VM (QEMU TCG, no KVM: every instruction emulated)" : "on the host"}`,
    `machine: ${cpus().length} × ${model}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM`,
    `os: ${os ? `${os}, ` : ""}kernel ${kernel}`,
    `vipd: ${sh([vipdBin, "version"]).stdout.trim()}; keepalived: ${ka}`,
    `load average at start: ${load}`,
  ];
}

function table(runs: Run[], sizes: number[], types: CheckType[]): string {
  const rows: string[][] = [];
  for (const n of sizes) {
    for (const type of types) {
      const pair = IMPLS.map((impl) => runs.find((r) => r.n === n && r.type === type && r.impl === impl));
      for (const r of pair) {
        if (!r) continue;
        const d = r.dev;
        rows.push([
          r.impl === pair.find((x) => x)!.impl ? `${n} ${type}` : "",
          r.impl,
          r.ok ? fmt(r.cpuPercent, 1) : `failed: ${r.error}`,
          fmt(r.cpuPercentFine, 1),
          fmt(r.rssMiB),
          fmt(r.checksPerSec, 0),
          String(r.unchecked ?? "–"),
          fmt(d?.p50, 1), fmt(d?.p99, 1), fmt(d?.max, 1), fmt(d?.min, 1),
          fmt(r.allCheckedSec, 1),
          r.loopLag ? `${fmt(r.loopLag.meanMs, 2)} / ${fmt(r.loopLag.over25ms * 100, 1)} % / ${r.loopLag.maxBucket}` : "–",
        ]);
      }
      const [v, k] = pair;
      if (v?.ok && k?.ok) {
        rows.push(["", "**vipd/keepalived**", `**${ratio(v.cpuPercent, k.cpuPercent)}**`, `**${ratio(v.cpuPercentFine, k.cpuPercentFine)}**`,
          `**${ratio(v.rssMiB, k.rssMiB)}**`, ratio(v.checksPerSec, k.checksPerSec), "",
          ratio(v.dev?.p50, k.dev?.p50), `**${ratio(v.dev?.p99, k.dev?.p99)}**`, ratio(v.dev?.max, k.dev?.max), "", ratio(v.allCheckedSec, k.allCheckedSec), ""]);
      }
    }
  }
  return markdownTable(["real servers", "implementation", "CPU % (stat)", "CPU % (schedstat)", "RSS MiB", "checks/s", "unchecked",
    "interval − 1 s p50 ms", "p99 ms", "max ms", "min ms", "all checked after s", "vipd loop lag mean ms / > 25 ms / worst"], rows, 2);
}

async function main(): Promise<void> {
  if (opts.help) {
    console.log(USAGE);
    return;
  }
  const sizes = (opts.sizes ?? "1000,5000").split(",").map(Number);
  const types = (opts.types ?? "TCP_CHECK,HTTP_GET").split(",") as CheckType[];
  const impls = (opts.impls ?? "vipd,keepalived").split(",") as Impl[];
  const seconds = Number(opts.seconds ?? (opts.quick ? 15 : 30));
  if (!opts.state || !opts.vipd || sizes.some((n) => !(n >= 10 && n <= 20_000 && n % 10 === 0)) ||
      types.some((t) => t !== "TCP_CHECK" && t !== "HTTP_GET") || impls.some((i) => !IMPLS.includes(i)) || !(seconds >= 3 && seconds <= 600)) {
    console.error(USAGE);
    process.exit(2);
  }
  const state = opts.state;
  mkdirSync(state, { recursive: true });
  const reg = new Registry(state);
  const t0 = performance.now();
  const log = (msg: string): void => console.error(`${((performance.now() - t0) / 1000).toFixed(0).padStart(5)} s  ${msg}`);
  const c: Ctx = { reg, state, vipdBin: opts.vipd, tag: `vipdb-${process.pid}`, seconds, log };
  if (opts["ipvs-stub"]) c.ipvsStub = opts["ipvs-stub"];
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
  const where = opts.where ?? "host";
  try {
    const desc = machine(where, c.vipdBin);
    if (c.ipvsStub) desc.push("keepalived runs with LD_PRELOAD=ipvs-stub.so: its IP_VS_SO_* socket options answered as an empty IPVS table (this kernel has no IP_VS)");
    for (const l of desc) log(l);
    const runs: Run[] = [];
    for (const n of sizes) {
      for (const type of types) {
        for (const impl of impls) {
          log(`${impl}: ${n} real servers with ${type}, delay_loop 1`);
          const r = await runOne(c, n, type, impl);
          runs.push(r);
          log(r.ok
            ? `  CPU ${fmt(r.cpuPercent, 1)} % (schedstat ${fmt(r.cpuPercentFine, 1)} %), RSS ${fmt(r.rssMiB)} MiB, ${fmt(r.checksPerSec, 0)} checks/s, ` +
              `interval − 1 s: p50 ${fmt(r.dev?.p50)} p99 ${fmt(r.dev?.p99)} max ${fmt(r.dev?.max)} ms, ${r.unchecked} unchecked` +
              (r.loopLag ? `; loop lag mean ${fmt(r.loopLag.meanMs, 2)} ms, ${fmt(r.loopLag.over25ms * 100, 1)} % > 25 ms, worst ${r.loopLag.maxBucket}` : "")
            : `  FAILED: ${r.error}`);
        }
      }
    }
    const loadEnd = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
    const out = [
      ...desc.map((l) => `- ${l}`),
      `- ${seconds} s window per run; load average at the end ${loadEnd}; total ${((performance.now() - t0) / 1000).toFixed(0)} s`,
      "",
      table(runs, sizes, types),
      "",
    ];
    writeFileSync(`${state}/results.json`, JSON.stringify({ machine: desc, seconds, runs }, null, 2));
    writeFileSync(`${state}/results.md`, out.join("\n"));
    console.log(out.join("\n"));
  } catch (e) {
    console.error(`bench failed: ${(e as Error).stack ?? e}`);
    process.exitCode = 1;
  } finally {
    reg.cleanup();
  }
}

// ---------------------------------------------------------------- dispatch (after every declaration above)

if (!import.meta.main) {
  // imported (for checkersConf or intervalStats): nothing runs
} else if (opts.serve) {
  serve({ addresses: opts.addresses!.split(","), firstPort: Number(opts["first-port"]), ports: Number(opts.ports) }, opts.dump!);
} else if (opts.fetch) {
  try {
    const r = await fetch(opts.fetch, { signal: AbortSignal.timeout(10_000) });
    process.stdout.write(await r.text());
  } catch (e) {
    console.error(String(e));
    process.exitCode = 1;
  }
} else {
  await main();
}
