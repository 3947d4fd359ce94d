/**
 * The benchmark's process and namespace bookkeeping: every namespace created and every
 * process started is recorded (in memory and in a state directory the shell wrapper reads),
 * so that `cleanup()` — or the wrapper, if this process dies — can remove them by name/PID.
 */
import { appendFileSync, closeSync, existsSync, openSync, readFileSync } from "node:fs";

export interface Cmd {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; throws with its stderr on failure unless allowFail. */
export function sh(cmd: string[], allowFail = false): Cmd {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  const out = { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  if (out.code !== 0 && !allowFail) throw new Error(`${cmd.join(" ")} failed (${out.code}): ${out.stderr.trim()}`);
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** True while a process with this PID exists (and is not a zombie). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Reads a PID file written by a daemon, waiting (bounded) for it to appear. */
export async function readPidFile(path: string, maxMs = 5000): Promise<number> {
  const start = performance.now();
  while (performance.now() - start < maxMs) {
    if (existsSync(path)) {
      const pid = Number(readFileSync(path, "utf8").trim());
      if (pid > 0) return pid;
    }
    await sleep(5);
  }
  throw new Error(`no PID in ${path} after ${maxMs} ms`);
}

/** Tracks namespaces and processes so they can all be removed at the end, whatever happens. */
export class Registry {
  readonly namespaces: string[] = [];
  readonly pids = new Set<number>();

  constructor(readonly stateDir: string) {}

  /** Creates a namespace with lo up (a leftover of the same name is removed first). */
  addNamespace(ns: string): string {
    sh(["ip", "netns", "del", ns], true);
    sh(["ip", "netns", "add", ns]);
    this.namespaces.push(ns);
    appendFileSync(`${this.stateDir}/netns`, `${ns}\n`);
    sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
    return ns;
  }

  /** Deletes one namespace created by addNamespace. */
  deleteNamespace(ns: string): void {
    sh(["ip", "netns", "del", ns], true);
    const i = this.namespaces.indexOf(ns);
    if (i >= 0) this.namespaces.splice(i, 1);
  }

  /** Records a PID we started (the wrapper kills whatever is left of these). */
  track(pid: number): void {
    this.pids.add(pid);
    appendFileSync(`${this.stateDir}/pids`, `${pid}\n`);
  }

  /** Kills (SIGKILL) every recorded process still alive and deletes every namespace. */
  cleanup(): void {
    for (const pid of this.pids) {
      if (alive(pid)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
      }
    }
    this.pids.clear();
    for (const ns of this.namespaces.splice(0)) sh(["ip", "netns", "del", ns], true);
  }
}

/** Spawns `cmd` inside namespace `ns` (ip netns exec execs, so the PID is the command's own); output goes to files (appended) or nowhere. */
export function spawnIn(reg: Registry, ns: string, cmd: string[], files: { stdout?: string; stderr?: string } = {}) {
  const fds = { stdout: files.stdout ? openSync(files.stdout, "a") : null, stderr: files.stderr ? openSync(files.stderr, "a") : null };
  try {
    const p = Bun.spawn(["ip", "netns", "exec", ns, ...cmd], {
      stdin: "ignore",
      stdout: fds.stdout ?? "ignore",
      stderr: fds.stderr ?? "ignore",
    });
    reg.track(p.pid);
    return p;
  } finally {
    for (const fd of Object.values(fds)) if (fd !== null) closeSync(fd);
  }
}
