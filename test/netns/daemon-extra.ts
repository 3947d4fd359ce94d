/**
 * More helpers for the issue-4 netns tests (test/netns/vrrp-complete*.test.ts, vrrp-mixed,
 * vrrp-reload-storm): waiting on a vipd instance's state through `vipd status`, extra links
 * (veth pairs, dummies) between lab namespaces, copies of /bin/sleep under unique names,
 * advert spacing from a capture, and `vipd reload`.
 */
import { chmodSync, copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { run } from "./lab.ts";
import { adverts, Keepalived, Proc, type StatusJson, type Vipd, VIPD_BIN, waitFor, type WireFrame } from "./daemon.ts";

/** One instance of `vipd status --json` (loosely typed, as StatusJson). */
export type InstanceStatus = StatusJson["instances"][number];

/** The instance `name` from vipd's status, or undefined when status fails or it is absent. */
export async function instanceStatus(v: Vipd, name = "VI_1"): Promise<InstanceStatus | undefined> {
  try {
    return (await v.status()).instances.find((i) => i.name === name);
  } catch {
    return undefined;
  }
}

/** Waits until vipd's status reports instance `name` in `state`; returns that status. */
export async function waitStatus(v: Vipd, state: string, timeoutMs: number, name = "VI_1"): Promise<InstanceStatus> {
  let last: InstanceStatus | undefined;
  return waitFor(async () => {
    last = await instanceStatus(v, name);
    return last?.state === state ? last : undefined;
  }, timeoutMs, () => `${v.name} (${name}) to report ${state} (last: ${last?.state}, faults ${JSON.stringify(last?.faults)})\n--- log ---\n${v.text}`, 25);
}

/** The last "(NAME) Entering X STATE" a vipd or keepalived logged, or undefined. */
export function loggedState(d: Proc, name = "VI_1"): string | undefined {
  const re = new RegExp(`\\(${name}\\) Entering (MASTER|BACKUP|FAULT) STATE`);
  let s: string | undefined;
  for (const l of d.lines) s = re.exec(l.line)?.[1] ?? s;
  return s;
}

/** Waits until a daemon's log says instance `name` entered `state` (the last such line); for keepalived too. */
export async function waitLogged(d: Proc, state: string, timeoutMs: number, name = "VI_1"): Promise<void> {
  await waitFor(() => loggedState(d, name) === state, timeoutMs, () => `${d.name} to log (${name}) ${state}\n--- log ---\n${d.text}`, 20);
}

/** Adds a veth pair `ifA`@nsA — `ifB`@nsB, with optional "addr/len" on each end, both up. */
export function addVeth(nsA: string, ifA: string, nsB: string, ifB: string, addrA?: string, addrB?: string): void {
  run(["ip", "-n", nsA, "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", nsB]);
  if (addrA) run(["ip", "-n", nsA, "addr", "add", addrA, "dev", ifA]);
  if (addrB) run(["ip", "-n", nsB, "addr", "add", addrB, "dev", ifB]);
  run(["ip", "-n", nsA, "link", "set", ifA, "up"]);
  run(["ip", "-n", nsB, "link", "set", ifB, "up"]);
}

/**
 * Adds a stand-alone interface (up) in `ns`: a veth whose peer `<name>p` stays in the same
 * namespace (the dummy driver is not available on every test kernel).
 */
export function addDummy(ns: string, name: string): void {
  run(["ip", "-n", ns, "link", "add", name, "type", "veth", "peer", "name", `${name}p`]);
  run(["ip", "-n", ns, "link", "set", `${name}p`, "up"]);
  run(["ip", "-n", ns, "link", "set", name, "up"]);
}

/** Sets a link up or down in `ns`. */
export function setLink(ns: string, name: string, up: boolean): void {
  run(["ip", "-n", ns, "link", "set", name, up ? "up" : "down"]);
}

/** A private temp dir for one test's files. */
export function tempDir(tag: string): string {
  return mkdtempSync(`${tmpdir()}/vipdt-${tag}-`);
}

/**
 * Copies /bin/sleep to `dir/name` (name ≤ 15 characters, so it is the process's comm), so a
 * process tracker or pgrep can follow exactly the processes this test starts.
 */
export function sleepCopy(dir: string, name: string): string {
  if (name.length > 15) throw new Error(`process name ${name} is longer than 15 characters`);
  const path = `${dir}/${name}`;
  copyFileSync("/bin/sleep", path);
  chmodSync(path, 0o755);
  return path;
}

/** Writes an executable shell script. */
export function shellScript(path: string, body: string): string {
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** PIDs of processes whose comm is exactly `name` (host-wide: PIDs are not per network namespace). */
export function pidsNamed(name: string): number[] {
  const r = run(["pgrep", "-x", name], true);
  return r.stdout.split("\n").filter(Boolean).map(Number);
}

/** Gaps (ms) between consecutive non-zero-priority adverts from `src` (of `vrid`) in [from, to]. */
export function advertGaps(frames: WireFrame[], src: string, from: number, to: number, vrid?: number): number[] {
  const at = adverts(frames, vrid).filter((f) => f.src === src && f.advert.priority > 0 && f.at >= from && f.at <= to).map((f) => f.at);
  const gaps: number[] = [];
  for (let i = 1; i < at.length; i++) gaps.push(at[i]! - at[i - 1]!);
  return gaps;
}

/** `vipd reload --control PATH`; resolves to its exit code (killed after 5 s). */
export async function vipdReload(v: Vipd): Promise<{ code: number; out: string }> {
  const p = Bun.spawn([VIPD_BIN, "reload", "--control", v.controlPath], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), 5000);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  return { code, out: out + err };
}

/** Starts a long-running command in `ns` as a tracked Proc (stopped by its owner). */
export function startIn(ns: string, name: string, cmd: string[]): Proc {
  return new Proc(name, ["ip", "netns", "exec", ns, ...cmd]);
}

/** Whether keepalived is installed. */
export function haveKeepalived(): boolean {
  return process.getuid?.() === 0 && Bun.spawnSync(["sh", "-c", "command -v keepalived"]).exitCode === 0;
}

/** Type guard: a keepalived process (rather than a vipd). */
export function isKeepalived(d: Proc): d is Keepalived {
  return d instanceof Keepalived;
}
