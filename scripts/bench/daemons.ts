/**
 * Starting, crashing and stopping the two implementations under test — the vipd binary and
 * Debian's keepalived (parent + VRRP child) — inside a namespace, by PID.
 */
import { type Registry, alive, readPidFile, sleep, spawnIn } from "./lab.ts";

export type Impl = "vipd" | "keepalived";
export const IMPLS: readonly Impl[] = ["vipd", "keepalived"];

export interface Daemon {
  impl: Impl;
  /** The process we spawned: vipd itself, or keepalived's parent. */
  pid: number;
  exited: Promise<number>;
  /** Every PID of the daemon (keepalived: parent and VRRP child); waits for the child's PID file. */
  allPids(): Promise<number[]>;
  /** Node crash, as far as the daemon goes: no priority-0 advert, nothing cleaned up. */
  crash(): Promise<void>;
  /** Graceful stop (SIGTERM); resolves once exited (SIGKILL after `maxMs`). */
  stop(maxMs?: number): Promise<void>;
}

export interface StartOptions {
  reg: Registry;
  ns: string;
  conf: string;
  /** Directory for PID files, control socket and the log. */
  dir: string;
  /** Unique name of this run (used in file names). */
  name: string;
  vipdBin: string;
}

/** Starts one daemon; returns at once (use the VIP or the wire to know when it is up). */
export function startDaemon(impl: Impl, o: StartOptions): Daemon {
  const log = `${o.dir}/${o.name}.log`;
  const vrrpPidFile = `${o.dir}/${o.name}.vrrp.pid`;
  const cmd = impl === "vipd"
    ? [o.vipdBin, "run", "-f", o.conf, "--pid-file", `${o.dir}/${o.name}.pid`, "--control", `${o.dir}/${o.name}.sock`, "--log-console"]
    : ["keepalived", "-n", "-l", "-D", "--vrrp", "-f", o.conf, "-p", `${o.dir}/${o.name}.pid`, "-r", vrrpPidFile,
       "-c", `${o.dir}/${o.name}.chk.pid`];
  const p = spawnIn(o.reg, o.ns, cmd, { stdout: log, stderr: log });
  let child: number | null = null;
  const allPids = async (): Promise<number[]> => {
    if (impl === "vipd") return [p.pid];
    if (child === null) {
      child = await readPidFile(vrrpPidFile);
      o.reg.track(child);
    }
    return [p.pid, child];
  };
  const waitExit = async (maxMs: number): Promise<boolean> =>
    (await Promise.race([p.exited.then(() => true), sleep(maxMs).then(() => false)]));
  return {
    impl,
    pid: p.pid,
    exited: p.exited,
    allPids,
    async crash() {
      if (impl === "vipd") {
        process.kill(p.pid, "SIGKILL");
      } else {
        // Freeze the parent first so it can neither respawn the child nor, by dying first,
        // make the child (PDEATHSIG=SIGTERM) send a priority-0 advert.
        const [parent, vrrp] = await allPids();
        process.kill(parent!, "SIGSTOP");
        process.kill(vrrp!, "SIGKILL");
        process.kill(parent!, "SIGKILL");
      }
    },
    async stop(maxMs = 5000) {
      if (!alive(p.pid)) return;
      process.kill(p.pid, "SIGTERM");
      if (!(await waitExit(maxMs))) {
        for (const pid of await allPids().catch(() => [p.pid])) if (alive(pid)) process.kill(pid, "SIGKILL");
        await waitExit(1000);
      }
    },
  };
}

/** keepalived's version line, e.g. "Keepalived v2.2.7 (01/16,2022)". */
export function keepalivedVersion(): string {
  const r = Bun.spawnSync(["keepalived", "-v"], { stdout: "pipe", stderr: "pipe" });
  return (r.stderr.toString() + r.stdout.toString()).split("\n")[0]!.trim();
}
