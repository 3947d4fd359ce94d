/**
 * The lab for the end-to-end LVS cases inside the ipvs-vm (test/ipvs/lvs-*.vm.ts): a client
 * namespace and two directors on an "outside" bridge, the directors, three busybox httpd real
 * servers and a sorry server on an "inside" bridge (NAT: the real servers' gateway is
 * 203.0.113.1 on the active director), and the compiled vipd run as a daemon in a director
 * namespace. Built once, lazily, by the first case that needs it; torn down in afterAll.
 *
 *   client 198.51.100.2 ── lvsout ── d1 out0 198.51.100.11 / d2 out0 198.51.100.12
 *   d1 in0 203.0.113.2 / d2 in0 203.0.113.3 ── lvsin ── rs1..3 203.0.113.11..13, sorry .19
 *   VIP 198.51.100.100 (out0), gateway 203.0.113.1 (in0): static on d1, or held by VRRP.
 */
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import type { Subprocess } from "bun";
import { request } from "../../src/daemon/control-client.ts";
import type { DaemonStatus } from "../../src/daemon/status-types.ts";
import type { LvsStatus } from "../../src/lvs/manager.ts";
import { afterAll } from "./harness.ts";

export const VIP = "198.51.100.100";
export const GATEWAY = "203.0.113.1";
export const CLIENT = "vipdt-lc";
export const D1 = "vipdt-ld1";
export const D2 = "vipdt-ld2";
/** Real server namespaces and addresses; each httpd answers its name ("rs1", …, "sorry"). */
export const SERVERS = [
  { name: "rs1", ns: "vipdt-lr1", ip: "203.0.113.11" },
  { name: "rs2", ns: "vipdt-lr2", ip: "203.0.113.12" },
  { name: "rs3", ns: "vipdt-lr3", ip: "203.0.113.13" },
  { name: "sorry", ns: "vipdt-lsorry", ip: "203.0.113.19" },
] as const;
export type ServerName = (typeof SERVERS)[number]["name"];

/** The compiled vipd under test (scripts/ipvs-vm-tests ships it as /host/vipd). */
export const VIPD_BIN = process.env.VIPD_BIN ?? "/host/vipd";
const WORK = "/tmp/vipdt-lvs";
const LOGS = process.env.OUT ?? WORK;

/** Runs a shell command; returns stdout, throws with stderr on a non-zero exit. */
export function sh(cmd: string): string {
  const r = Bun.spawnSync(["/bin/sh", "-c", cmd], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`\`${cmd.trim().slice(0, 200)}\` exited ${r.exitCode}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

/** Runs a command inside namespace `ns`. */
export const nsh = (ns: string, cmd: string): string => sh(`ip netns exec ${ns} sh -c '${cmd.replaceAll("'", "'\\''")}'`);

/** `ipvsadm -S -n` in a namespace, as sorted lines (the kernel's hash order is not ours). */
export const savedRules = (ns: string): string[] => sh(`ip netns exec ${ns} ipvsadm -S -n`).split("\n").filter((l) => l !== "").sort();

/** Polls `pred` every `intervalMs` until truthy (returned) or `timeoutMs` passes (throws, naming `what`). */
export async function waitFor<T>(pred: () => T | Promise<T>, timeoutMs: number, what: string | (() => string), intervalMs = 50): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  for (let i = 0; i < 100_000; i++) {
    const v = await pred();
    if (v) return v as NonNullable<T>;
    if (performance.now() >= deadline) break;
    await Bun.sleep(Math.min(intervalMs, Math.max(1, deadline - performance.now())));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "function" ? what() : what}`);
}

// ---- the network ----------------------------------------------------------------------------

let built = false;
const httpd = new Map<string, number>();

/** Runs `ip -batch` (in namespace `ns` when given): one process for many commands (each costs under TCG). */
function ipBatch(lines: string[], ns?: string): void {
  const r = Bun.spawnSync(["ip", ...(ns ? ["-n", ns] : []), "-batch", "-"], { stdin: Buffer.from(lines.join("\n") + "\n"), stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`ip ${ns ? `-n ${ns} ` : ""}-batch exited ${r.exitCode}: ${r.stderr.toString().trim()}`);
}

/** Builds the lab (once): namespaces, bridges, addresses, httpd on every server. Idempotent. */
export function lab(): void {
  if (built) return;
  built = true;
  const t0 = performance.now();
  // Each node: [namespace, [interface, bridge end, bridge, address]…, gateway?]
  const nodes: [string, [string, string, string, string][], string?][] = [
    [CLIENT, [["eth0", "lc-b", "lvsout", "198.51.100.2"]]],
    [D1, [["out0", "ld1o-b", "lvsout", "198.51.100.11"], ["in0", "ld1i-b", "lvsin", "203.0.113.2"]]],
    [D2, [["out0", "ld2o-b", "lvsout", "198.51.100.12"], ["in0", "ld2i-b", "lvsin", "203.0.113.3"]]],
    ...SERVERS.map((s): [string, [string, string, string, string][], string] => [s.ns, [["eth0", `${s.ns.slice(6)}-b`, "lvsin", s.ip]], GATEWAY]),
  ];
  const root = ["link add lvsout type bridge", "link set lvsout up", "link add lvsin type bridge", "link set lvsin up"];
  for (const [ns, links] of nodes) {
    root.push(`netns add ${ns}`);
    for (const [ifname, peer, br] of links) root.push(`link add ${peer} type veth peer name ${ifname} netns ${ns}`, `link set ${peer} master ${br} up`);
  }
  ipBatch(root);
  for (const [ns, links, gw] of nodes) {
    ipBatch(["link set lo up", ...links.flatMap(([ifname, , , addr]) => [`addr add ${addr}/24 dev ${ifname}`, `link set ${ifname} up`]),
      ...(gw ? [`route add default via ${gw}`] : [])], ns);
  }
  sh(`ip netns exec ${D1} sysctl -qw net.ipv4.ip_forward=1 && ip netns exec ${D2} sysctl -qw net.ipv4.ip_forward=1`);
  for (const s of SERVERS) {
    mkdirSync(`${WORK}/www-${s.name}`, { recursive: true });
    writeFileSync(`${WORK}/www-${s.name}/index.html`, `${s.name}\n`);
    startHttpd(s.name);
  }
  console.log(`    lab built in ${Math.round(performance.now() - t0)} ms`);
}

/** Starts (or restarts) the httpd of server `name` on port 80. */
export function startHttpd(name: ServerName): void {
  const s = SERVERS.find((x) => x.name === name)!;
  stopHttpd(name);
  const pid = Number(sh(`ip netns exec ${s.ns} httpd -f -p ${s.ip}:80 -h ${WORK}/www-${s.name} >/dev/null 2>&1 & echo $!`).trim());
  httpd.set(name, pid);
}

/** Waits (bounded) until server `name`'s httpd answers when fetched directly from namespace `from`. */
export async function waitHttpd(name: ServerName, from: string): Promise<void> {
  const s = SERVERS.find((x) => x.name === name)!;
  const answers = () => Bun.spawnSync(["ip", "netns", "exec", from, "timeout", "2", "wget", "-q", "-O", "-", `http://${s.ip}/`], { stdout: "pipe", stderr: "ignore" }).stdout.toString().trim() === name;
  await waitFor(answers, 10_000, `${name}'s httpd to answer`, 20);
}

/** Kills the httpd of server `name` (its port then refuses connections). */
export function stopHttpd(name: ServerName): void {
  const pid = httpd.get(name);
  if (pid) sh(`kill ${pid} 2>/dev/null; true`);
  httpd.delete(name);
}

/** The director's service addresses as static addresses (for the cases without VRRP). */
export function staticVip(ns: string, on: boolean): void {
  if (on) sh(`ip -n ${ns} addr replace ${VIP}/24 dev out0 && ip -n ${ns} addr replace ${GATEWAY}/24 dev in0`);
  else sh(`ip -n ${ns} addr del ${VIP}/24 dev out0 2>/dev/null; ip -n ${ns} addr del ${GATEWAY}/24 dev in0 2>/dev/null; true`);
}

/** Removes everything lab() made and stops every daemon and httpd it started. */
export async function teardownLab(): Promise<void> {
  for (const d of directors) await d.stop().catch(() => undefined);
  for (const name of [...httpd.keys()]) stopHttpd(name as ServerName);
  if (!built) return;
  built = false;
  sh(`for n in ${CLIENT} ${D1} ${D2} ${SERVERS.map((s) => s.ns).join(" ")}; do ip netns del $n 2>/dev/null; done
      ip link del lvsout 2>/dev/null; ip link del lvsin 2>/dev/null; true`);
}
afterAll(teardownLab);

// ---- the client -----------------------------------------------------------------------------

/** `n` sequential GETs of http://VIP:port/ from the client namespace in one shell; the answers in order ("" for a failure). */
export function fetchMany(n: number, port = 80): string[] {
  const out = sh(`ip netns exec ${CLIENT} sh -c 'for i in $(seq ${n}); do timeout 3 wget -q -O - http://${VIP}:${port}/ || echo; done'`);
  return out.split("\n").slice(0, n).map((l) => l.trim());
}

/** How many times each answer occurs. */
export function tally(answers: string[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const a of answers) t[a] = (t[a] ?? 0) + 1;
  return t;
}

// ---- vipd -----------------------------------------------------------------------------------

const directors = new Set<Vipd>();

/** The compiled vipd running as `vipd run` in a namespace, with its own config, control socket and log. */
export class Vipd {
  readonly conf: string;
  readonly sock: string;
  readonly logFile: string;
  private proc: Subprocess | undefined;

  constructor(readonly ns: string, readonly name: string) {
    mkdirSync(WORK, { recursive: true });
    this.conf = `${WORK}/${name}.conf`;
    this.sock = `${WORK}/${name}.sock`;
    this.logFile = `${LOGS}/vipd-${name}.log`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Writes `config`, starts vipd and waits until its control socket answers (bounded). */
  async start(config: string): Promise<void> {
    if (!existsSync(VIPD_BIN)) throw new Error(`no vipd binary at ${VIPD_BIN} (scripts/build, then scripts/ipvs-vm-tests ships dist/vipd)`);
    writeFileSync(this.conf, config);
    const fd = openSync(this.logFile, "a");
    try {
      this.proc = Bun.spawn(["ip", "netns", "exec", this.ns, VIPD_BIN, "run", "-f", this.conf, "--pid-file", `${WORK}/${this.name}.pid`,
        "--control", this.sock, "-l", "-D", "-G"], { stdin: "ignore", stdout: fd, stderr: fd });
    } finally {
      closeSync(fd);
    }
    directors.add(this);
    appendFileSync(this.logFile, `${new Date().toISOString()} (test) spawned vipd pid ${this.proc.pid} in ${this.ns}\n`);
    await waitFor(async () => {
      if (this.proc?.exitCode !== null) throw new Error(`vipd ${this.name} exited ${this.proc?.exitCode}:\n${this.logTail()}`);
      return await this.status().catch(() => undefined);
    }, 30_000, () => `vipd ${this.name}'s control socket:\n${this.logTail()}`, 100);
  }

  /** The daemon's status over its control socket (what `vipd status --json` prints). */
  async status(): Promise<DaemonStatus> {
    return (await request(this.sock, "status", 3000)) as DaemonStatus;
  }

  /** The LVS part of the status (throws when missing). */
  async lvs(): Promise<LvsStatus> {
    const s = await this.status();
    if (!s.lvs) throw new Error(`vipd ${this.name}'s status has no lvs: ${JSON.stringify(s).slice(0, 300)}`);
    return s.lvs;
  }

  /** Rewrites the config and sends SIGHUP. */
  reload(config: string): void {
    writeFileSync(this.conf, config);
    this.proc?.kill("SIGHUP");
  }

  /** Rewrites the config, sends SIGHUP and waits (bounded) for the daemon's "Reloaded" log line. */
  async reloadAndWait(config: string): Promise<void> {
    const count = () => (this.logTail(100_000).match(/: Reloaded /g) ?? []).length;
    const before = count();
    this.reload(config);
    await waitFor(() => count() > before, 15_000, () => `vipd ${this.name} to reload:\n${this.logTail()}`, 100);
  }

  /** SIGTERM, bounded wait for a clean exit (SIGKILL after 10 s). Returns the exit code. */
  async stop(): Promise<number | null> {
    const p = this.proc;
    if (!p) return null;
    this.proc = undefined;
    directors.delete(this);
    if (p.exitCode !== null) return p.exitCode;
    p.kill("SIGTERM");
    const code = await Promise.race([p.exited, Bun.sleep(10_000).then(() => null)]);
    if (code === null) {
      p.kill("SIGKILL");
      await p.exited;
    }
    return code;
  }

  /** SIGKILL (a crash): nothing is cleaned up. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    this.proc = undefined;
    directors.delete(this);
    p.kill("SIGKILL");
    await p.exited;
  }

  /** Writes a "(test)" line into the daemon's log, so its own lines can be read against the test's steps. */
  note(text: string): void {
    appendFileSync(this.logFile, `${new Date().toISOString()} (test) ${text}\n`);
  }

  /**
   * Milliseconds from the "(test) `note`" line to the first later log line matching `pattern`
   * (by the lines' own timestamps: the daemon's view, free of our polling), or undefined.
   */
  logDelay(note: string, pattern: RegExp): number | undefined {
    const lines = this.logTail(100_000).split("\n");
    const at = (l: string) => Date.parse(l.slice(0, l.indexOf(" ")));
    const i = lines.findLastIndex((l) => l.endsWith(`(test) ${note}`));
    const hit = i < 0 ? undefined : lines.slice(i + 1).find((l) => pattern.test(l));
    return hit === undefined ? undefined : at(hit) - at(lines[i]!);
  }

  /** The last lines of the daemon's log, for failure messages. */
  logTail(lines = 25): string {
    try {
      return readFileSync(this.logFile, "utf8").split("\n").slice(-lines - 1).join("\n");
    } catch {
      return "(no log)";
    }
  }
}
