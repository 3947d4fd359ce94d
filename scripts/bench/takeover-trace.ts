/**
 * Where a backup's crash takeover time goes, for vipd and keepalived side by side: the pair
 * lab of scripts/bench/failover with the backup's process under `strace -f -ttt`, so that
 * the old master's last advert on the wire (tcpdump), the backup's last recvmsg of it, the
 * SIGIO that woke it (vipd), its first advert send and that advert on the wire line up on
 * one clock. strace slows every syscall a little, in both daemons alike.
 *
 *   node_modules/.bin/bun scripts/bench/takeover-trace.ts [--trials N] [--advert-int 0.1|1] [--syscalls all|LIST]
 *
 * Root only; builds nothing (uses dist/vipd, or $VIPD_BIN); removes its namespaces and processes.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type Daemon, type Impl, startDaemon } from "./daemons.ts";
import { Registry, alive, sh, sleep, spawnIn } from "./lab.ts";
import { readWire } from "./measure.ts";
import { ADDR, BACKUP_PRIO, MASTER_PRIO, type PairLab, hasVip, pairConf, pairLab, resetPair, scenario, until } from "./pair.ts";
import { fmt, markdownTable, summarize } from "./report.ts";

const { values: opts } = parseArgs({
  args: Bun.argv.slice(2),
  options: { trials: { type: "string" }, "advert-int": { type: "string" }, syscalls: { type: "string" } },
});
const TRIALS = Math.min(50, Math.max(1, Number(opts.trials ?? 5)));
const ADVERT_INT = Number(opts["advert-int"] ?? 0.1);
// Which syscalls strace reports ("all" shows where a slow takeover spends its time, at more overhead).
const SYSCALLS = opts.syscalls ?? "recvmsg,recvfrom,sendmsg,sendto,epoll_wait,epoll_pwait,epoll_pwait2,timerfd_settime";
const S = scenario(ADVERT_INT < 1 ? 3 : 2, ADVERT_INT, "crash");
const STATE = `/tmp/vipd-takeover-trace.${process.pid}`;
mkdirSync(STATE, { recursive: true });
const reg = new Registry(STATE);
const VIPD_BIN = `${STATE}/vipd`;
copyFileSync(process.env.VIPD_BIN ?? "dist/vipd", VIPD_BIN);
sh(["chmod", "755", VIPD_BIN]);

/** One line of strace -f -ttt output that we care about. */
interface TraceLine {
  t: number;
  text: string;
}

function readTrace(path: string): TraceLine[] {
  const out: TraceLine[] = [];
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = /^(?:\[pid\s+)?\d+\]?\s+(\d+\.\d+) (.*)$/.exec(line);
    if (m) out.push({ t: Number(m[1]), text: m[2]! });
  }
  return out;
}

interface Breakdown {
  impl: Impl;
  /** Wire gap: old master's last advert → backup's first advert (ms). */
  wire: number;
  /** Last advert on the wire → the backup's recvmsg that returned it (ms). */
  rx: number;
  /** Last advert on the wire → the SIGIO that preceded that recvmsg (vipd only). */
  sig: number | null;
  /** That recvmsg → the backup's first advert send, minus Master_Down_Interval (ms). */
  timerLate: number;
  /** The send syscall → the advert on the wire (ms). */
  tx: number;
  /** The backup's last wait (epoll/timerfd) call before it sent, for a look at timeouts. */
  lastWait: string;
}

async function traceTrial(lab: PairLab, impl: Impl, i: number): Promise<Breakdown | string> {
  const name = `${impl}-${i}`;
  const dir = `${STATE}/t`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/${name}-a.conf`, pairConf(S, MASTER_PRIO, "trace-a"));
  writeFileSync(`${dir}/${name}-b.conf`, pairConf(S, BACKUP_PRIO, "trace-b"));
  const pcap = `${dir}/${name}.pcap`;
  const trace = `${dir}/${name}.strace`;
  let a: Daemon | null = null;
  let b: Daemon | null = null;
  const side: { pid: number; exited: Promise<number>; kill(signal?: NodeJS.Signals): void }[] = [];
  try {
    b = startDaemon(impl, { reg, ns: lab.ns.b, conf: `${dir}/${name}-b.conf`, dir, name: `${name}-b`, vipdBin: VIPD_BIN });
    a = startDaemon(impl, { reg, ns: lab.ns.a, conf: `${dir}/${name}-a.conf`, dir, name: `${name}-a`, vipdBin: VIPD_BIN });
    if (!(await until(() => hasVip(lab.ns.a) && !hasVip(lab.ns.b), 3 * ADVERT_INT * 1000 + 3000))) return "A did not become master";
    const bPids = await b.allPids();
    const tracee = bPids.at(-1)!; // keepalived: the VRRP child
    const st = Bun.spawn(["strace", "-f", "-ttt", "-T", "-o", trace, "-e", `trace=${SYSCALLS}`,
      "-p", String(tracee)], { stdout: "ignore", stderr: "ignore" });
    reg.track(st.pid);
    side.push(st);
    const td = spawnIn(reg, lab.ns.c, ["tcpdump", "-i", "eth0", "-n", "-U", "--immediate-mode", "--time-stamp-precision=nano", "-w", pcap, "ip proto 112"],
      { stderr: `${pcap}.err` });
    side.push(td);
    await until(() => readFileSync(`${pcap}.err`, "utf8").includes("listening on"), 3000, 10);
    await sleep(ADVERT_INT * 1000 * (2 + Math.random()));
    await a.crash();
    sh(["ip", "-n", lab.ns.sw, "link", "set", "pa", "down"]);
    if (!(await until(() => hasVip(lab.ns.b), S.expectedMs + 3000))) return "B never took over";
    await sleep(200);
    for (const p of side) p.kill("SIGINT");
    await Promise.race([Promise.all(side.map((p) => p.exited)), sleep(3000)]);

    const wire = readWire(pcap).filter((e) => e.kind === "advert");
    const lastA = wire.filter((e) => e.kind === "advert" && e.src === ADDR.a).at(-1);
    const firstB = lastA && wire.find((e) => e.kind === "advert" && e.src === ADDR.b && e.t > lastA.t);
    if (!lastA || !firstB) return "capture incomplete";
    const lines = readTrace(trace);
    const recvA = lines.filter((l) => /^recv(msg|from)\(/.test(l.text) && l.text.includes(`"${ADDR.a}"`) && !/= -1/.test(l.text)).at(-1);
    if (!recvA) return "no recvmsg of A's advert in the trace";
    const send = lines.find((l) => l.t > recvA.t && /^send(msg|to)\(/.test(l.text) && l.text.includes("224.0.0.18"));
    if (!send) return "no advert send in the trace";
    const sig = lines.filter((l) => l.t <= recvA.t && l.text.startsWith("--- SIGIO")).at(-1);
    const wait = lines.filter((l) => l.t < send.t && /epoll|timerfd/.test(l.text)).at(-1);
    return {
      impl,
      wire: (firstB.t - lastA.t) * 1000,
      rx: (recvA.t - lastA.t) * 1000,
      sig: sig && sig.t >= lastA.t ? (sig.t - lastA.t) * 1000 : null,
      timerLate: (send.t - recvA.t) * 1000 - S.expectedMs,
      tx: (firstB.t - send.t) * 1000,
      lastWait: wait ? wait.text.slice(0, 110) : "–",
    };
  } finally {
    for (const p of side) if (alive(p.pid)) p.kill("SIGKILL");
    await b?.stop();
    if (a && alive(a.pid)) await a.crash().catch(() => {});
    await a?.exited;
    resetPair(lab);
  }
}

for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => { reg.cleanup(); process.exit(130); });
try {
  const lab = pairLab(reg, `vipdt-${process.pid}`);
  const results: Breakdown[] = [];
  for (let i = 0; i < TRIALS; i++) {
    for (const impl of (i % 2 ? ["keepalived", "vipd"] : ["vipd", "keepalived"]) as Impl[]) {
      const r = await traceTrial(lab, impl, i);
      if (typeof r === "string") {
        console.error(`${impl} #${i + 1}: ${r}`);
        continue;
      }
      results.push(r);
      console.error(`${impl.padEnd(10)} #${i + 1}: wire ${fmt(r.wire, 2)}  rx ${fmt(r.rx, 3)}  sigio ${fmt(r.sig, 3)}  timer late ${fmt(r.timerLate, 3)}  tx ${fmt(r.tx, 3)}  | ${r.lastWait}`);
    }
  }
  const rows = (["vipd", "keepalived"] as Impl[]).map((impl) => {
    const rs = results.filter((r) => r.impl === impl);
    const med = (f: (r: Breakdown) => number | null) => fmt(summarize(rs.flatMap((r) => (f(r) === null ? [] : [f(r)!])))?.median, 3);
    return [impl, String(rs.length), med((r) => r.wire), med((r) => r.rx), med((r) => r.sig), med((r) => r.timerLate), med((r) => r.tx)];
  });
  console.log(`Crash takeover, v${S.version} advert_int ${ADVERT_INT} s, backup under strace; medians in ms (Master_Down_Interval ${S.expectedMs.toFixed(1)} ms).`);
  console.log(markdownTable(["implementation", "trials", "wire gap", "wire → recvmsg", "wire → SIGIO", "recvmsg → send − MDI", "send → wire"], rows));
  console.log(`Traces and captures: ${STATE}/t`);
} finally {
  reg.cleanup();
}
