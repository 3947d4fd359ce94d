// The demo's lab: two network namespaces joined by a veth pair, vipd (the compiled binary) on
// each with examples/keepalived-pair-{a,b}.conf, then an election, a crash failover, the
// return of the preferred router and a graceful stop — printed as a timeline.
// Run through scripts/demo (which sets up and builds first). Root only.
import { chmodSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";

const BIN = process.env.VIPD_BIN ?? "dist/vipd";
const DIR = "/tmp/vipd-demo";
const VIP = "192.0.2.100";
const NS = { a: `vipd-demo-a-${process.pid}`, b: `vipd-demo-b-${process.pid}` };
const t0 = performance.now();
const procs = new Map<string, ReturnType<typeof Bun.spawn>>();

function sh(cmd: string[], allowFail = false): string {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0 && !allowFail) throw new Error(`${cmd.join(" ")}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}
const stamp = () => `${((performance.now() - t0) / 1000).toFixed(3).padStart(7)} s`;
const say = (msg: string) => console.log(`${stamp()}  ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Who holds the VIP: "A", "B", "A+B" (both: a stale address or a split brain) or "nobody". */
function holder(): string {
  const on = Object.entries(NS).filter(([, ns]) => sh(["ip", "-n", ns, "-br", "addr", "show", "veth0"], true).includes(`${VIP}/`));
  return on.length ? on.map(([n]) => n.toUpperCase()).join("+") : "nobody";
}

/** Polls (every 10 ms, bounded) until the VIP holder is `want`; returns the time it took. */
async function waitHolder(want: string, maxMs = 5000): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < maxMs) {
    if (holder() === want) return performance.now() - start;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${want} to hold ${VIP} (holder: ${holder()})`);
}

function start(node: "a" | "b"): void {
  rmSync(`${DIR}/${node}.pid`, { force: true });
  const p = Bun.spawn(["ip", "netns", "exec", NS[node], BIN, "run", "-f", `examples/keepalived-pair-${node}.conf`,
    "--pid-file", `${DIR}/${node}.pid`, "--control", `${DIR}/${node}.sock`, "--log-console"],
    { stdout: "ignore", stderr: openSync(`${DIR}/${node}.log`, "a") });
  procs.set(node, p);
}

async function stop(node: "a" | "b", signal: "SIGKILL" | "SIGTERM"): Promise<void> {
  const p = procs.get(node);
  if (!p) return;
  const pidFile = `${DIR}/${node}.pid`;
  for (let i = 0; i < 300 && !existsSync(pidFile); i++) await sleep(10);
  const pid = Number(readFileSync(pidFile, "utf8"));
  process.kill(pid, signal);
  await Promise.race([p.exited, sleep(3000)]);
  procs.delete(node);
}

function cleanup(): void {
  for (const node of procs.keys()) {
    try {
      process.kill(Number(readFileSync(`${DIR}/${node}.pid`, "utf8")), "SIGKILL");
    } catch {}
  }
  for (const ns of Object.values(NS)) sh(["ip", "netns", "del", ns], true);
}

async function main(): Promise<void> {
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  writeFileSync(`${DIR}/notify.sh`, `#!/bin/sh\necho "$(date +%T.%N | cut -c1-12) notify $*" >> ${DIR}/notify.log\n`);
  chmodSync(`${DIR}/notify.sh`, 0o755);
  sh(["ip", "netns", "add", NS.a]);
  sh(["ip", "netns", "add", NS.b]);
  sh(["ip", "link", "add", "veth0", "netns", NS.a, "type", "veth", "peer", "name", "veth0", "netns", NS.b]);
  for (const [i, ns] of [NS.a, NS.b].entries()) {
    sh(["ip", "-n", ns, "addr", "add", `192.0.2.${i + 1}/24`, "dev", "veth0"]);
    sh(["ip", "-n", ns, "link", "set", "veth0", "up"]);
    sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
  }
  console.log(`Lab: namespaces A (${NS.a}, 192.0.2.1, priority 150) and B (${NS.b}, 192.0.2.2, priority 100)`);
  console.log(`joined by veth0; VRRPv3 VRID 51, advert_int 0.1 s, VIP ${VIP}/24.\n`);

  say("starting vipd on A and B");
  start("a");
  start("b");
  let took = await waitHolder("A");
  say(`A is MASTER and holds ${VIP} (election took ${took.toFixed(0)} ms after start)`);
  await sleep(1000);
  say(`steady: holder ${holder()}`);

  say("SIGKILL vipd on A (crash: no priority-0 advert, VIP left behind on A)");
  await stop("a", "SIGKILL");
  took = await waitHolder("A+B");
  say(`B took over ${VIP} ${took.toFixed(0)} ms after the kill (Master_Down_Interval = 360.9 ms); A still has the stale copy`);

  say("restarting vipd on A: it removes the stale VIP, then preempts B");
  start("a");
  took = await waitHolder("A");
  say(`A is MASTER again (${took.toFixed(0)} ms after restart)`);

  say("SIGTERM vipd on A (graceful: priority-0 advert, VIP removed)");
  const g = performance.now();
  await stop("a", "SIGTERM");
  await waitHolder("B");
  say(`B took over ${(performance.now() - g).toFixed(0)} ms after SIGTERM (skew time = 60.9 ms)`);
  await stop("b", "SIGTERM");
  say("stopped B");

  console.log("\nvipd's own log (A):");
  console.log(readFileSync(`${DIR}/a.log`, "utf8").trimEnd().replace(/^/gm, "  "));
  console.log("\nvipd's own log (B):");
  console.log(readFileSync(`${DIR}/b.log`, "utf8").trimEnd().replace(/^/gm, "  "));
  if (existsSync(`${DIR}/notify.log`)) {
    console.log("\nnotify script calls (both routers):");
    console.log(readFileSync(`${DIR}/notify.log`, "utf8").trimEnd().replace(/^/gm, "  "));
  }
}

try {
  await main();
} catch (e) {
  console.error(`demo failed: ${(e as Error).message}`);
  process.exitCode = 1;
} finally {
  cleanup();
}
