/**
 * Helpers for tests that run real daemons inside lab namespaces: the compiled vipd and
 * Debian's keepalived (each with its own temp dir, config, pid files and captured log),
 * a timestamped address monitor (who holds a VIP, and since when), and tcpdump captures
 * decoded into VRRP adverts, gratuitous ARPs and unsolicited NAs.
 *
 * Every process started here is remembered by PID; `killAll()` (and a process-exit hook)
 * SIGKILLs whatever a failing test left running. Every wait is bounded.
 *
 * Times: `wallMs()` is the wall clock in fractional ms, the clock the address monitor
 * (`ip -ts`) and pcap timestamps use, so kill times and events can be subtracted.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import type { Subprocess } from "bun";
import { formatIPv4, formatIPv6 } from "../../src/net/addr.ts";
import { decodeIpv4Advert, decodePdu } from "../../src/vrrp/codec.ts";
import { decodeArp, decodeNa, type ArpPacket, type NaPacket } from "../../src/vrrp/frames.ts";
import type { Advert, RxMeta } from "../../src/vrrp/types.ts";
import { linkFrame, readPcap } from "../unit/pcap.ts";

const root = new URL("../..", import.meta.url).pathname;

/** The compiled vipd under test. */
export const VIPD_BIN = process.env.VIPD_BIN ?? `${root}dist/vipd`;

/** Wall-clock time in fractional milliseconds since the epoch (sub-ms resolution). */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Polls `pred` every `intervalMs` until it returns a truthy value (returned) or `timeoutMs`
 * passes (throws "timed out after N ms waiting for WHAT"; `what` may be a function, called then).
 */
export async function waitFor<T>(
  pred: () => T | Promise<T>,
  timeoutMs: number,
  what: string | (() => string) = "condition",
  intervalMs = 10,
): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  for (let i = 0; i < 100_000; i++) {
    const v = await pred();
    if (v) return v as NonNullable<T>;
    if (performance.now() >= deadline) break;
    await Bun.sleep(Math.min(intervalMs, Math.max(1, deadline - performance.now())));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "function" ? what() : what}`);
}

// ---- processes ----------------------------------------------------------------------------

const live = new Map<number, Subprocess>();
let exitHook = false;

function track(p: Subprocess): void {
  live.set(p.pid, p);
  void p.exited.then(() => live.delete(p.pid));
  if (!exitHook) {
    exitHook = true;
    process.on("exit", () => killAll());
  }
}

/** SIGKILLs every process these helpers started that is still running. */
export function killAll(): void {
  for (const [pid, p] of live) {
    try {
      p.kill("SIGKILL");
    } catch {
      // already gone
    }
    live.delete(pid);
  }
}

/** Sends `signal` to one pid; false when it no longer exists. */
export function signalPid(pid: number, signal: NodeJS.Signals | number): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** A child process whose stdout and stderr are collected as text (each line with its arrival time). */
export class Proc {
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  readonly name: string;
  #text = "";
  readonly lines: Array<{ at: number; line: string }> = [];
  #partial = "";
  exitCode: number | null = null;
  readonly exited: Promise<number>;

  constructor(name: string, cmd: string[], env?: Record<string, string>) {
    this.name = name;
    this.proc = Bun.spawn(cmd, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: env ? { ...process.env, ...env } : undefined });
    track(this.proc);
    const readers = [this.#drain(this.proc.stdout), this.#drain(this.proc.stderr)];
    this.exited = this.proc.exited.then(async (code) => {
      await Promise.race([Promise.all(readers), Bun.sleep(500)]);
      this.exitCode = code;
      return code;
    });
  }

  get pid(): number {
    return this.proc.pid;
  }

  /** Everything the process wrote so far (stdout and stderr interleaved by arrival). */
  get text(): string {
    return this.#text;
  }

  get running(): boolean {
    return this.exitCode === null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async #drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    const dec = new TextDecoder();
    try {
      for await (const chunk of stream) this.#add(dec.decode(chunk, { stream: true }));
    } catch {
      // the stream ends with the process
    }
  }

  #add(s: string): void {
    this.#text += s;
    const at = wallMs();
    const parts = (this.#partial + s).split("\n");
    this.#partial = parts.pop()!;
    for (const line of parts) this.lines.push({ at, line });
  }

  /** Sends a signal (by PID); false when the process is gone. */
  kill(signal: NodeJS.Signals | number = "SIGTERM"): boolean {
    if (!this.running) return false;
    return signalPid(this.pid, signal);
  }

  /** Waits for a log line matching `re` (counting only lines after the first `after` ones). */
  async waitLine(re: RegExp, timeoutMs: number, after = 0): Promise<string> {
    return waitFor(() => this.lines.slice(after).find((l) => re.test(l.line))?.line, timeoutMs, () => `${this.name}: log line ${re}\n--- log so far ---\n${this.#text}`);
  }

  /** Waits for exit up to `timeoutMs`, then SIGKILLs; returns the exit code (or null if killed). */
  async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 3000): Promise<number | null> {
    if (this.running) this.kill(signal);
    const done = await Promise.race([this.exited.then(() => true), Bun.sleep(timeoutMs).then(() => false)]);
    if (!done) {
      this.kill("SIGKILL");
      await Promise.race([this.exited, Bun.sleep(2000)]);
      return null;
    }
    return this.proc.exitCode;
  }
}

// ---- vipd -----------------------------------------------------------------------------------

/** The JSON `vipd status --json` prints (see src/daemon/status-types.ts); typed loosely on purpose. */
export interface StatusJson {
  instances: Array<{
    name: string;
    state: string;
    effectivePriority?: number;
    masterAddress?: string;
    vipsSet?: boolean;
    stats: Record<string, number>;
    [k: string]: unknown;
  }>;
  [k: string]: unknown;
}

export interface VipdOptions {
  /** Label for failure messages. */
  name?: string;
  /** Pass --log-detail (debug lines). */
  detail?: boolean;
  /** Reuse this temp dir (a restart keeps its files); default a fresh one. */
  dir?: string;
}

/** A vipd started in a namespace. */
export class Vipd extends Proc {
  readonly ns: string;
  readonly dir: string;
  readonly configPath: string;
  readonly pidFile: string;
  readonly controlPath: string;

  constructor(ns: string, config: string, o: VipdOptions = {}) {
    if (!existsSync(VIPD_BIN)) throw new Error(`${VIPD_BIN} does not exist: run scripts/build (or set VIPD_BIN)`);
    const dir = o.dir ?? mkdtempSync(`${tmpdir()}/vipdt-vipd-`);
    const configPath = `${dir}/keepalived.conf`;
    writeFileSync(configPath, config);
    const pidFile = `${dir}/vipd.pid`;
    const controlPath = `${dir}/vipd.sock`;
    rmSync(pidFile, { force: true });
    const args = [VIPD_BIN, "run", "-f", configPath, "--pid-file", pidFile, "--control", controlPath, "--log-console"];
    if (o.detail) args.push("--log-detail");
    super(o.name ?? `vipd@${ns}`, ["ip", "netns", "exec", ns, ...args]);
    this.ns = ns;
    this.dir = dir;
    this.configPath = configPath;
    this.pidFile = pidFile;
    this.controlPath = controlPath;
  }

  /** True when this build has `vipd status` (false too when the binary is missing: startVipd reports that). */
  static statusSupported(): boolean {
    if (!existsSync(VIPD_BIN)) return false;
    const r = Bun.spawnSync([VIPD_BIN, "help"], { stdout: "pipe", stderr: "pipe" });
    return /^ {2}status\b/m.test(r.stdout.toString());
  }

  /** The daemon serves its control socket (false while `vipd run` does not wire one up). */
  hasControl(): boolean {
    return existsSync(this.controlPath);
  }

  /** `vipd status --control PATH --json`, parsed; throws with the CLI's output on failure. */
  async status(): Promise<StatusJson> {
    const p = Bun.spawn([VIPD_BIN, "status", "--control", this.controlPath, "--json"], { stdout: "pipe", stderr: "pipe" });
    track(p);
    const timer = setTimeout(() => p.kill("SIGKILL"), 3000);
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    clearTimeout(timer);
    if (code !== 0) throw new Error(`vipd status exited ${code}: ${err.trim()}`);
    return JSON.parse(out) as StatusJson;
  }

  /** The state of instance `name` from `vipd status`, or undefined if status fails. */
  async stateOf(name = "VI_1"): Promise<string | undefined> {
    try {
      return (await this.status()).instances.find((i) => i.name === name)?.state;
    } catch {
      return undefined;
    }
  }

  /** Log lines that report a dropped or bad packet, or an error. */
  problemLines(): string[] {
    return this.lines.map((l) => l.line).filter((l) => /WARNING|ERROR|drop|invalid|mismatch|\bbad\b|error|fail|cannot/i.test(l));
  }

  /** Removes the temp dir (call after the process is gone). */
  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Starts vipd in `ns` with `config` (keepalived.conf syntax). */
export function startVipd(ns: string, config: string, o: VipdOptions = {}): Vipd {
  return new Vipd(ns, config, o);
}

// ---- keepalived -------------------------------------------------------------------------------

let jsonSignal: number | undefined;

/** keepalived's JSON-dump signal number (SIGRTMIN+2), as `keepalived --signum=JSON` prints it. */
function keepalivedJsonSignal(): number {
  jsonSignal ??= Number(Bun.spawnSync(["keepalived", "--signum=JSON"], { stdout: "pipe" }).stdout.toString().trim());
  return jsonSignal;
}

/**
 * A keepalived (VRRP only, foreground, console log) started in a namespace. Its files live
 * in a dir under /run; inside the mount namespace `ip netns exec` creates (a slave of the
 * host's, so nothing propagates back) that dir's tmp/ is bind-mounted over /tmp, so the
 * JSON dump (/tmp/keepalived.json) of keepalived's running side by side never collide.
 */
export class Keepalived extends Proc {
  readonly ns: string;
  readonly dir: string;
  readonly vrrpPidFile: string;

  constructor(ns: string, config: string, name?: string) {
    const dir = mkdtempSync("/run/vipdt-kad-");
    mkdirSync(`${dir}/tmp`);
    const conf = `${dir}/keepalived.conf`;
    writeFileSync(conf, config);
    const vrrpPidFile = `${dir}/vrrp.pid`;
    // -n foreground, -l console log, -D detail, --vrrp only; unique pid files so several run
    // side by side; --dont-respawn so killing the VRRP child is a real crash, not a restart.
    super(name ?? `keepalived@${ns}`, [
      "ip", "netns", "exec", ns, "sh", "-c", 'mount --bind "$0" /tmp && exec "$@"', `${dir}/tmp`,
      "keepalived", "-n", "-l", "-D", "--dont-respawn", "-f", conf,
      "-p", `${dir}/keepalived.pid`, "-r", vrrpPidFile, "-c", `${dir}/checkers.pid`, "--vrrp",
    ]);
    this.ns = ns;
    this.dir = dir;
    this.vrrpPidFile = vrrpPidFile;
  }

  /** keepalived's JSON dump (SIGRTMIN+2 → /tmp/keepalived.json in its private /tmp), parsed. */
  async json(timeoutMs = 2000): Promise<unknown> {
    const file = `${this.dir}/tmp/keepalived.json`;
    rmSync(file, { force: true });
    if (!this.kill(keepalivedJsonSignal())) throw new Error(`${this.name} is not running`);
    return waitFor(() => {
      try {
        return JSON.parse(readFileSync(file, "utf8")) as unknown;
      } catch {
        return undefined; // not there yet, or half written
      }
    }, timeoutMs, `${this.name} JSON dump`);
  }

  /** PID of the VRRP child process (the one that sends adverts), once it wrote its pid file. */
  vrrpPid(): number | undefined {
    try {
      const n = Number(readFileSync(this.vrrpPidFile, "utf8").trim());
      return Number.isInteger(n) && n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  }

  /** Crash: SIGKILL the VRRP child (no priority-0 advert), then the parent. */
  async crash(): Promise<void> {
    const child = this.vrrpPid();
    if (child !== undefined) signalPid(child, "SIGKILL");
    this.kill("SIGKILL");
    await Promise.race([this.exited, Bun.sleep(2000)]);
    if (child !== undefined) await waitFor(() => !existsSync(`/proc/${child}`) || /Z/.test(procState(child)), 2000, "keepalived VRRP child to die");
  }

  /** The most recent "(INST) Entering X STATE" of this keepalived, or undefined. */
  lastState(inst = "VI_1"): string | undefined {
    const re = new RegExp(`\\(${inst}\\) Entering (MASTER|BACKUP|FAULT) STATE`);
    let s: string | undefined;
    for (const l of this.lines) {
      const m = re.exec(l.line);
      if (m) s = m[1];
    }
    return s;
  }

  /** Log lines that report a packet keepalived did not like, or any other error. */
  problemLines(): string[] {
    return this.lines.map((l) => l.line).filter((l) =>
      /\bbad\b|error|invalid|mismatch|incorrect|unknown|fail|too short|\bttl\b|checksum|authentication|not present|drop|wrong|passwd|IPSEC/i.test(l) &&
      !/IPSEC-AH : Syncing seq_num/.test(l)); // a master resyncing to a lower-priority peer: normal
  }

  /** Removes the temp dir. */
  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function hasSocket(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:");
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

function procState(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] ?? "";
  } catch {
    return "";
  }
}

/** Starts keepalived in `ns` with `config`. */
export function startKeepalived(ns: string, config: string, name?: string): Keepalived {
  return new Keepalived(ns, config, name);
}

// ---- configs -------------------------------------------------------------------------------

export interface InstanceConfig {
  name?: string;
  state?: "MASTER" | "BACKUP";
  ifname?: string;
  version?: 2 | 3;
  vrid?: number;
  priority: number;
  advertInt?: number;
  vips: string[];
  nopreempt?: boolean;
  auth?: { type: "PASS" | "AH"; pass: string };
  /** Path of a generic `notify` script. */
  notify?: string;
  /** Extra lines inside the instance block. */
  extra?: string[];
}

/** A keepalived.conf with one vrrp_instance (both vipd and keepalived read it). */
export function instanceConfig(c: InstanceConfig): string {
  const ifname = c.ifname ?? "eth0";
  const lines = [
    "global_defs {",
    `    router_id r${c.priority}`,
    c.notify ? "    script_user root" : "",
    c.notify ? "    enable_script_security" : "",
    "}",
    `vrrp_instance ${c.name ?? "VI_1"} {`,
    `    state ${c.state ?? (c.nopreempt ? "BACKUP" : "MASTER")}`,
    `    interface ${ifname}`,
    `    version ${c.version ?? 3}`,
    `    virtual_router_id ${c.vrid ?? 51}`,
    `    priority ${c.priority}`,
    `    advert_int ${c.advertInt ?? 0.1}`,
    c.nopreempt ? "    nopreempt" : "",
    c.auth ? `    authentication {\n        auth_type ${c.auth.type}\n        auth_pass ${c.auth.pass}\n    }` : "",
    "    virtual_ipaddress {",
    ...c.vips.map((v) => `        ${v} dev ${ifname}`),
    "    }",
    c.notify ? `    notify ${c.notify}` : "",
    ...(c.extra ?? []).map((l) => `    ${l}`),
    "}",
  ];
  return lines.filter((l) => l !== "").join("\n") + "\n";
}

/** Writes an executable notify script at `path` that appends its arguments, one call per line, to `log`. */
export function notifyScript(path: string, log: string): string {
  writeFileSync(path, `#!/bin/sh\necho "$*" >> ${log}\n`);
  chmodSync(path, 0o755);
  return path;
}

// ---- address monitor -------------------------------------------------------------------

export interface AddrEvent {
  /** Wall-clock ms (from `ip -ts`, µs resolution). */
  at: number;
  kind: "add" | "del";
  ifname: string;
  /** Address without prefix length. */
  address: string;
  prefixlen: number;
}

/** `ip -ts -n NS monitor address`, parsed: who gained or lost which address, and when. */
export class AddrMonitor {
  readonly ns: string;
  readonly events: AddrEvent[] = [];
  readonly #proc: Proc;
  #consumed = 0;

  private constructor(ns: string) {
    this.ns = ns;
    this.#proc = new Proc(`ip monitor@${ns}`, ["ip", "-ts", "-n", ns, "monitor", "address"]);
  }

  /** Starts monitoring and returns once `ip monitor` is listening (probed with a dummy event-free delay). */
  static async start(ns: string): Promise<AddrMonitor> {
    const m = new AddrMonitor(ns);
    // ip prints nothing when ready: wait for its netlink socket, then a little for the bind.
    await waitFor(() => hasSocket(m.#proc.pid), 2000, "ip monitor to open its netlink socket", 2);
    await Bun.sleep(20);
    return m;
  }

  #parse(): void {
    const lines = this.#proc.lines;
    for (; this.#consumed < lines.length; this.#consumed++) {
      const line = lines[this.#consumed]!.line;
      const m = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?\] (Deleted )?\d+: (\S+)\s+inet6? ([0-9a-fA-F:.]+)\/(\d+)/.exec(line);
      if (!m) continue;
      const at = new Date(m[1]!).getTime() + Number(m[2] ?? "0") * 1000; // local time, like ip's
      this.events.push({ at, kind: m[3] ? "del" : "add", ifname: m[4]!, address: m[5]!, prefixlen: Number(m[6]) });
    }
  }

  /** Events so far, optionally only for one address. */
  list(address?: string): AddrEvent[] {
    this.#parse();
    return address ? this.events.filter((e) => e.address === address) : this.events;
  }

  /** The first event of `kind` for `address` at or after `since` (wall ms). */
  first(address: string, kind: "add" | "del", since = 0): AddrEvent | undefined {
    return this.list(address).find((e) => e.kind === kind && e.at >= since);
  }

  /** Waits for such an event. */
  async waitEvent(address: string, kind: "add" | "del", since: number, timeoutMs: number): Promise<AddrEvent> {
    return waitFor(() => this.first(address, kind, since), timeoutMs, `${kind} of ${address} in ${this.ns}`);
  }

  async stop(): Promise<void> {
    await this.#proc.stop("SIGTERM", 1000);
  }
}

/** Whether `address` is configured in `ns` right now (any interface). */
export function hasAddress(ns: string, address: string): boolean {
  const r = Bun.spawnSync(["ip", "-n", ns, "-j", "addr", "show"], { stdout: "pipe" });
  const links = JSON.parse(r.stdout.toString() || "[]") as Array<{ addr_info?: Array<{ local?: string }> }>;
  return links.some((l) => l.addr_info?.some((a) => a.local === address));
}

// ---- capture ---------------------------------------------------------------------------

/** One frame of interest decoded from a capture. */
export type WireFrame =
  | { at: number; kind: "vrrp"; family: "inet" | "inet6"; src: string; dst: string; ttl: number; srcMac: string; proto: number; advert: Advert; raw: Uint8Array; meta: RxMeta }
  | { at: number; kind: "arp"; srcMac: string; arp: ArpPacket }
  | { at: number; kind: "na"; srcMac: string; na: NaPacket }
  | { at: number; kind: "other"; srcMac: string; etherType: number };

function macText(b: Uint8Array | null): string {
  return b ? [...b].map((x) => x.toString(16).padStart(2, "0")).join(":") : "";
}

/** Decodes every frame of a pcap file (Ethernet link type) into WireFrames. */
export function decodeCapture(path: string): WireFrame[] {
  const pcap = readPcap(path);
  const out: WireFrame[] = [];
  for (const rec of pcap.records) {
    const at = rec.tsSec * 1000 + rec.tsFrac / (pcap.nanosecond ? 1e6 : 1e3);
    const f = linkFrame(pcap.linkType, rec.data);
    const srcMac = macText(f.src);
    const p = f.payload;
    if (f.etherType === 0x0806) {
      const arp = decodeArp(p);
      if (arp) { out.push({ at, kind: "arp", srcMac, arp }); continue; }
    } else if (f.etherType === 0x0800 && p.length >= 20 && (p[9] === 112 || p[9] === 51)) {
      const d = decodeIpv4Advert(p);
      if (d.ok) {
        const totalLength = d.value.ip.totalLength;
        const raw = p.slice(0, Math.min(totalLength, p.length));
        const src = formatIPv4(d.value.ip.src);
        const dst = formatIPv4(d.value.ip.dst);
        out.push({ at, kind: "vrrp", family: "inet", src, dst, ttl: d.value.ip.ttl, srcMac, proto: d.value.ip.protocol, advert: d.value.advert, raw,
          meta: { family: "inet", src, dst, ifindex: 0, ttl: d.value.ip.ttl } });
        continue;
      }
    } else if (f.etherType === 0x86dd && p.length >= 40) {
      const next = p[6];
      if (next === 112) {
        const plen = (p[4]! << 8) | p[5]!;
        const pdu = p.slice(40, 40 + plen);
        const d = decodePdu(pdu, "inet6");
        if (d.ok) {
          const src = formatIPv6(p, 8);
          const dst = formatIPv6(p, 24);
          out.push({ at, kind: "vrrp", family: "inet6", src, dst, ttl: p[7]!, srcMac, proto: 112, advert: d.value, raw: pdu,
            meta: { family: "inet6", src, dst, ifindex: 0, ttl: p[7]! } });
          continue;
        }
      } else if (next === 58) {
        const na = decodeNa(p);
        if (na) { out.push({ at, kind: "na", srcMac, na }); continue; }
      }
    }
    out.push({ at, kind: "other", srcMac, etherType: f.etherType });
  }
  return out;
}

/** A running `tcpdump -w` in a namespace. */
export class Capture {
  readonly file: string;
  readonly #proc: Proc;
  readonly #dir: string;

  private constructor(ns: string, ifname: string, filter: string[]) {
    this.#dir = mkdtempSync(`${tmpdir()}/vipdt-pcap-`);
    this.file = `${this.#dir}/cap.pcap`;
    this.#proc = new Proc(`tcpdump@${ns}`, [
      "ip", "netns", "exec", ns, "tcpdump", "-i", ifname, "-n", "-U", "--immediate-mode", "-s", "256",
      "--time-stamp-precision=nano", "-w", this.file, ...filter,
    ]);
  }

  /** Starts tcpdump on `ifname` in `ns` and waits until it is listening. */
  static async start(ns: string, ifname = "eth0", filter: string[] = []): Promise<Capture> {
    const c = new Capture(ns, ifname, filter);
    await c.#proc.waitLine(/listening on/, 5000);
    return c;
  }

  /** Frames captured so far (tcpdump -U flushes every packet). */
  frames(): WireFrame[] {
    try {
      return decodeCapture(this.file);
    } catch {
      return []; // a record half-written right now
    }
  }

  /** Stops tcpdump and returns every frame. */
  async stop(): Promise<WireFrame[]> {
    await this.#proc.stop("SIGINT", 2000);
    const frames = existsSync(this.file) ? decodeCapture(this.file) : [];
    rmSync(this.#dir, { recursive: true, force: true });
    return frames;
  }
}

/** VRRP adverts among frames (optionally of one VRID). */
export function adverts(frames: WireFrame[], vrid?: number): Array<Extract<WireFrame, { kind: "vrrp" }>> {
  return frames.filter((f): f is Extract<WireFrame, { kind: "vrrp" }> => f.kind === "vrrp" && (vrid === undefined || f.advert.vrid === vrid));
}

/** Distinct source addresses of non-zero-priority adverts in [from, to] (wall ms). */
export function advertSenders(frames: WireFrame[], from: number, to: number): string[] {
  return [...new Set(adverts(frames).filter((f) => f.at >= from && f.at <= to && f.advert.priority > 0).map((f) => f.src))];
}

// ---- status -------------------------------------------------------------------------------

/** One instance's state as any status source reports it. */
export interface InstanceView {
  state: string;
  priority?: number;
  masterAddress?: string;
  vipsSet?: boolean;
  /** Wall-clock seconds since the epoch of the last state change. */
  lastTransition?: number;
  stats: Record<string, number>;
}

const STATE_BY_NUMBER = ["INIT", "BACKUP", "MASTER", "FAULT"];

/**
 * Finds instance `name` in `vipd status --json` output, whether it is vipd's DaemonStatus
 * (`instances[]`) or keepalived's JSON-dump shape (`[{data: {iname, state: 2}, stats}]`).
 */
export function instanceView(json: unknown, name = "VI_1"): InstanceView | undefined {
  const obj = json as Record<string, unknown>;
  const list: unknown[] = Array.isArray(json) ? json : Array.isArray(obj?.instances) ? obj.instances as unknown[] : Array.isArray(obj?.vrrp) ? obj.vrrp as unknown[] : [];
  for (const item of list) {
    const it = item as Record<string, unknown>;
    const data = (it.data ?? it) as Record<string, unknown>;
    if ((data.name ?? data.iname) !== name) continue;
    const st = data.state;
    return {
      state: typeof st === "number" ? STATE_BY_NUMBER[st] ?? String(st) : String(st),
      priority: (data.effectivePriority ?? data.effective_priority) as number | undefined,
      masterAddress: (data.masterAddress ?? data.master_address) as string | undefined,
      vipsSet: (data.vipsSet ?? data.vipset) as boolean | undefined,
      lastTransition: (data.lastTransition ?? data.last_transition) as number | undefined,
      stats: (it.stats ?? data.stats ?? {}) as Record<string, number>,
    };
  }
  return undefined;
}

/** Receive-error counters: keepalived's JSON names, then vipd's own drop reasons (absent from keepalived's dump). */
export const ERROR_STATS = [
  "packet_len_err", "advert_interval_err", "ip_ttl_err", "invalid_type_rcvd", "addr_list_err", "invalid_authtype",
  "authtype_mismatch", "auth_failure", "version_err", "checksum_err", "vrid_err", "mcast_mode_err", "unicast_src_err",
  "ah_seq_err", "ah_next_header_err",
];

/** The error counters of `v` that are not zero, as "name=value" (empty when all are 0 or absent). */
export function nonZeroErrors(v: InstanceView): string[] {
  return ERROR_STATS.filter((k) => (v.stats[k] ?? 0) !== 0).map((k) => `${k}=${v.stats[k]}`);
}

// ---- one test's resources ---------------------------------------------------------------

/**
 * Everything one test starts — daemons, monitors, captures — so `close()` (in `finally`)
 * stops them all by PID, removes their temp dirs and the lab.
 */
export class TestEnv {
  readonly lab: import("./lab.ts").Lab;
  readonly #procs: Array<Vipd | Keepalived> = [];
  readonly #monitors: AddrMonitor[] = [];
  readonly #captures: Capture[] = [];

  constructor(lab: import("./lab.ts").Lab) {
    this.lab = lab;
  }

  ns(node: string): string {
    return this.lab.node(node).ns;
  }

  vipd(node: string, config: string, o: VipdOptions = {}): Vipd {
    const v = startVipd(this.ns(node), config, { name: `vipd@${node}`, ...o });
    this.#procs.push(v);
    return v;
  }

  keepalived(node: string, config: string): Keepalived {
    const k = startKeepalived(this.ns(node), config, `keepalived@${node}`);
    this.#procs.push(k);
    return k;
  }

  async monitor(node: string): Promise<AddrMonitor> {
    const m = await AddrMonitor.start(this.ns(node));
    this.#monitors.push(m);
    return m;
  }

  async capture(node: string, filter: string[] = []): Promise<Capture> {
    const c = await Capture.start(this.ns(node), this.lab.node(node).ifname, filter);
    this.#captures.push(c);
    return c;
  }

  /** Stops everything (SIGTERM, then SIGKILL after a bound) and deletes the lab. */
  async close(): Promise<void> {
    await Promise.all(this.#procs.map(async (p) => {
      if (p instanceof Keepalived && p.running) {
        p.kill("SIGTERM");
        await Promise.race([p.exited, Bun.sleep(3000)]);
        const child = p.vrrpPid();
        if (child !== undefined && existsSync(`/proc/${child}`)) signalPid(child, "SIGKILL");
      }
      await p.stop("SIGTERM", 3000);
    }));
    await Promise.all([...this.#monitors.map((m) => m.stop()), ...this.#captures.map((c) => c.stop().catch(() => []))]);
    for (const p of this.#procs) p.cleanup();
    this.lab.destroy();
  }
}

/** The last non-zero-priority advert from `src` at or before `t` (wall ms), if captured. */
export function lastAdvertBefore(frames: WireFrame[], src: string, t: number): Extract<WireFrame, { kind: "vrrp" }> | undefined {
  return adverts(frames).filter((f) => f.src === src && f.at <= t && f.advert.priority > 0).at(-1);
}

/** When a router took over: its VIP appearing, its first advert on the wire, and the earlier of the two. */
export interface Takeover {
  at: number;
  vipAt: number;
  advertAt?: number;
}

/**
 * Waits until `src` holds `vip` (an add after `since`) and reports when it took over: the earlier
 * of the address event (stamped when `ip monitor` reads it, late if `ip` was not scheduled) and
 * its first non-zero-priority advert in the capture (stamped by the kernel). The daemon adds the
 * VIP and sends that advert in one step, and either observer can only be late.
 */
export async function waitTakeover(mon: AddrMonitor, cap: Capture, vip: string, src: string, since: number, timeoutMs: number): Promise<Takeover> {
  const add = await mon.waitEvent(vip, "add", since, timeoutMs);
  const first = () => adverts(cap.frames()).find((f) => f.src === src && f.at >= since && f.advert.priority > 0);
  const adv = await waitFor(first, 500, "first advert").catch(() => undefined);
  return { at: Math.min(add.at, adv?.at ?? Infinity), vipAt: add.at, advertAt: adv?.at };
}

/** "312.4 ms (VIP +312.4, advert +312.9)": a takeover relative to `since`, for test output. */
export function formatTakeover(t: Takeover, since: number): string {
  const adv = t.advertAt === undefined ? "none" : `+${(t.advertAt - since).toFixed(1)}`;
  return `${(t.at - since).toFixed(1)} ms (VIP +${(t.vipAt - since).toFixed(1)}, first advert ${adv})`;
}
