/**
 * keepalived's notify FIFOs: an ordered stream of one-line events (`INSTANCE "VI_1" MASTER 100`,
 * `RS [192.0.2.2]:tcp:80 [192.0.2.1]:tcp:80 DOWN`) written to named pipes that a reader script
 * consumes. notify scripts run concurrently and can be seen out of order; the FIFO cannot.
 *
 * Writes never block the event loop: the FIFO is opened O_RDWR|O_NONBLOCK (so opening does not
 * wait for a reader and a missing reader is not an error), and a line that does not fit in a
 * full pipe is dropped and counted, never queued. Lines are shorter than PIPE_BUF, so each
 * write is atomic: a line arrives whole or not at all.
 *
 * The FIFO is created with mkfifo(3) called through bun:ffi from libc (Bun has no mkfifo),
 * mode 0644 less the umask as keepalived does, and chowned to the configured (or default
 * script) user when that differs from ours.
 *
 * Differences from keepalived, on purpose:
 * - keepalived writes a trailing NUL byte after every LVS (VS/RS) line (it passes the buffer
 *   size, not the string length, to write(2)). vipd writes the line without it: every reader
 *   that copes with keepalived's NUL (bash `read` drops it) copes with its absence, and new
 *   readers get clean text.
 * - keepalived's checker and VRRP processes each open notify_fifo and each start its
 *   notify_fifo_script; vipd is one process, so the script runs once.
 */
import { closeSync, fstatSync, openSync, unlinkSync, writeSync, chownSync, constants as fsc } from "node:fs";
import { resolve } from "node:path";
import { dlopen, FFIType, read } from "bun:ffi";
import type { Logger } from "./logger.ts";
import { prepareScript, runScript, type Identity, type ScriptHandle } from "./scripts.ts";
import type { ScriptRef } from "../config/schema/kinds.ts";

// --- line formats ------------------------------------------------------------------------------

/** What an INSTANCE or GROUP line can report (keepalived's vrrp_notify.c names). */
export type VrrpFifoState =
  | "MASTER"
  | "BACKUP"
  | "FAULT"
  | "STOP"
  | "DELETED"
  | "MASTER_RX_LOWER_PRI"
  | "MASTER_PRIORITY"
  | "BACKUP_PRIORITY";

/** `INSTANCE "VI_1" MASTER 100` / `GROUP "G" BACKUP 0` (groups always report priority 0), with the newline. */
export function vrrpFifoLine(kind: "INSTANCE" | "GROUP", name: string, state: VrrpFifoState, priority: number): string {
  return `${kind} "${name}" ${state} ${kind === "GROUP" ? 0 : priority}\n`;
}

/** IPVS protocol as keepalived's inet_sockaddrtotrio names it. */
export type LvsProtocol = "TCP" | "UDP" | "SCTP" | "NONE";

/** `[192.0.2.1]:tcp:80`, `[2001:db8::1]:udp:53`: an address, protocol and port as keepalived prints them. */
export function formatServiceTrio(ip: string, protocol: LvsProtocol, port: number): string {
  return `[${ip}]:${protocol.toLowerCase()}:${port}`;
}

/** Identity of a virtual server: an address, a firewall mark, or a virtual_server_group. */
export interface VirtualServerId {
  ip?: string;
  port?: number;
  protocol: LvsProtocol;
  fwmark?: number;
  group?: string;
}

/**
 * A virtual server as keepalived's format_vs prints it: `[group]:port` for a group,
 * `FWM 5` for a firewall mark, else `[ip]:proto:port`.
 */
export function formatVirtualServer(vs: VirtualServerId): string {
  if (vs.group !== undefined) return `[${vs.group}]:${vs.port ?? 0}`;
  if (vs.fwmark !== undefined) return `FWM ${vs.fwmark}`;
  return formatServiceTrio(vs.ip ?? "(none)", vs.protocol, vs.port ?? 0);
}

/** A real server as keepalived's format_rs prints it: its address with the virtual server's protocol. */
export function formatRealServer(rs: { ip: string; port?: number }, vs: Pick<VirtualServerId, "protocol">): string {
  return formatServiceTrio(rs.ip, vs.protocol, rs.port ?? 0);
}

/** `VS [192.0.2.1]:tcp:80 UP` (quorum state), with the newline and without keepalived's NUL. */
export function vsFifoLine(vs: string, up: boolean): string {
  return `VS ${vs} ${up ? "UP" : "DOWN"}\n`;
}

/** `RS [192.0.2.2]:tcp:80 [192.0.2.1]:tcp:80 DOWN`, with the newline and without keepalived's NUL. */
export function rsFifoLine(rs: string, vs: string, up: boolean): string {
  return `RS ${rs} ${vs} ${up ? "UP" : "DOWN"}\n`;
}

// --- mkfifo through libc -----------------------------------------------------------------------

type MkfifoFn = (path: string, mode: number) => { ok: true } | { ok: false; errno: number };
let mkfifoImpl: MkfifoFn | undefined;

/** mkfifo(3) from libc, loaded on first use ("libc.so.6" also resolves on musl). */
function mkfifo(path: string, mode: number): { ok: true } | { ok: false; errno: number } {
  if (!mkfifoImpl) {
    const lib = dlopen("libc.so.6", {
      mkfifo: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
      __errno_location: { args: [], returns: FFIType.ptr },
    }).symbols;
    mkfifoImpl = (p, m) => {
      const buf = new TextEncoder().encode(`${p}\0`);
      if (lib.mkfifo(buf, m) === 0) return { ok: true };
      const e = lib.__errno_location();
      return { ok: false, errno: e ? read.i32(e, 0) : 0 };
    };
  }
  return mkfifoImpl(path, mode);
}

const EEXIST = 17;
const FIFO_MODE = 0o644; // S_IRUSR|S_IWUSR|S_IRGRP|S_IROTH, as keepalived
const O_CLOEXEC = 0x80000;

// --- one FIFO ----------------------------------------------------------------------------------

export interface NotifyFifoOptions {
  path: string;
  /** Owner a newly created FIFO is given, and an existing FIFO may have (besides us). */
  owner?: Identity;
  /** Reader script: started (FIFO path appended as the last argument) before the FIFO is opened. */
  script?: { argv: readonly string[]; identity?: Identity };
  /** "", "vrrp_" or "lvs_": which FIFO, for log lines (keepalived's wording). */
  label?: string;
  log: Logger;
}

/** One open notify FIFO: non-blocking, ordered, line-atomic writes; drops (counted) when full. */
export class NotifyFifo {
  /** Lines written whole. */
  written = 0;
  /** Lines dropped because the pipe was full (or a write failed). */
  dropped = 0;
  private fd: number | undefined;
  private dropping = false;
  private closing = false;

  private constructor(
    readonly path: string,
    fd: number,
    private readonly created: boolean,
    private readonly script: ScriptHandle | undefined,
    private readonly label: string,
    private readonly log: Logger,
  ) {
    this.fd = fd;
    if (script) {
      void script.result.then((r) => {
        if (!this.closing) log.info(`${label || ""}notify fifo script terminated${r.error ? ` (${r.error})` : ""}`);
      });
    }
  }

  /**
   * Creates the FIFO if absent, starts the reader script, opens the FIFO and checks it is a
   * FIFO we (or the configured owner) own. Returns undefined, after logging why, on failure.
   */
  static open(o: NotifyFifoOptions): NotifyFifo | undefined {
    const label = o.label ?? "";
    const log = o.log;
    let created = false;
    try {
      const r = mkfifo(o.path, FIFO_MODE);
      if (r.ok) {
        created = true;
        const uid = process.getuid?.() ?? 0;
        const gid = process.getgid?.() ?? 0;
        if (o.owner && (o.owner.uid !== uid || o.owner.gid !== gid)) {
          try {
            chownSync(o.path, o.owner.uid !== uid ? o.owner.uid : -1, o.owner.gid !== gid ? o.owner.gid : -1);
          } catch {
            log.info(`Failed to set uid:gid for fifo ${o.path}`);
          }
        }
      } else if (r.errno !== EEXIST) {
        log.info(`Unable to create ${label}notify fifo ${o.path} - errno ${r.errno}`);
        return undefined;
      }
    } catch (e) {
      log.info(`Unable to create ${label}notify fifo ${o.path}: ${(e as Error).message}`);
      return undefined;
    }

    // keepalived starts the reader before opening, so it is there for the first line.
    const script = o.script ? runScript([...o.script.argv, o.path], o.script.identity ? { identity: o.script.identity } : {}) : undefined;
    if (script && !script.isRunning()) {
      void script.result.then((r) => log.info(`${label}notify fifo script failed to start: ${r.error ?? "exited"}`));
    }

    let fd: number;
    try {
      fd = openSync(o.path, fsc.O_RDWR | fsc.O_NONBLOCK | fsc.O_NOFOLLOW | O_CLOEXEC);
    } catch (e) {
      log.info(`Unable to open ${label}notify fifo ${o.path} - ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      if (created) tryUnlink(o.path);
      script?.terminate();
      return undefined;
    }
    // An existing path may be something an attacker planted: only a FIFO we own will do.
    const st = fstatSync(fd);
    const uid = process.getuid?.() ?? 0;
    if (!st.isFIFO() || (st.uid !== uid && st.uid !== o.owner?.uid)) {
      log.info(`${label}notify fifo ${o.path} is not a fifo we own - not using`);
      closeSync(fd);
      script?.terminate();
      return undefined;
    }
    return new NotifyFifo(o.path, fd, created, script, label, log);
  }

  /** Whether the FIFO is open. */
  get isOpen(): boolean {
    return this.fd !== undefined;
  }

  /**
   * Writes one line (with its newline) without blocking. A full pipe drops the line, counts it
   * and warns once per run of drops. Returns whether the line was written.
   */
  write(line: string): boolean {
    if (this.fd === undefined) return false;
    const bytes = Buffer.from(line, "utf8");
    try {
      const n = writeSync(this.fd, bytes);
      if (n !== bytes.length) {
        // Only possible for lines over PIPE_BUF; the reader sees a torn line.
        this.log.warn(`${this.label}notify fifo ${this.path}: short write (${n} of ${bytes.length} bytes)`);
      }
      this.written++;
      if (this.dropping) {
        this.dropping = false;
        this.log.info(`${this.label}notify fifo ${this.path}: writing again after ${this.dropped} dropped line(s) in total`);
      }
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      this.dropped++;
      if (!this.dropping) {
        this.dropping = true;
        if (code === "EAGAIN") this.log.warn(`${this.label}notify fifo ${this.path} is full (reader too slow or absent): dropping lines`);
        else this.log.warn(`${this.label}notify fifo write error: ${code ?? (e as Error).message}`);
      }
      return false;
    }
  }

  /**
   * Unlinks the FIFO if we created it (first, so a reader looping on reopen cannot reopen it),
   * closes it, and stops the reader script (SIGTERM, SIGKILL after `killAfterMs`).
   */
  close(killAfterMs = 1000): void {
    this.#shut();
    this.script?.terminate(killAfterMs);
  }

  /**
   * Like close(), but lets the reader script finish first: with our descriptor closed it reads
   * what is buffered (the STOP lines of a shutdown) and then sees end of file. A script still
   * running after `graceMs` is stopped as close() does.
   */
  async drainAndClose(graceMs = 500, killAfterMs = 1000): Promise<void> {
    this.#shut();
    const script = this.script;
    if (!script?.isRunning()) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([script.result, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    if (script.isRunning()) script.terminate(killAfterMs);
  }

  /** Unlinks the FIFO if we created it and closes our descriptor (once). */
  #shut(): void {
    if (this.closing) return;
    this.closing = true;
    if (this.created) tryUnlink(this.path);
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch {
        // already closed
      }
      this.fd = undefined;
    }
  }

  /** The reader script's handle, if one was started (for tests and shutdown waits). */
  get scriptHandle(): ScriptHandle | undefined {
    return this.script;
  }
}

function tryUnlink(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // gone already
  }
}

// --- the three FIFOs ---------------------------------------------------------------------------

/** One configured FIFO: `notify_fifo PATH [USER [GROUP]]` plus its `*_fifo_script`. */
export interface FifoSpec {
  path: string;
  /** Owner of a created FIFO (already resolved); keepalived's default is the default script user. */
  owner?: Identity;
  script?: { argv: readonly string[]; identity?: Identity };
}

export interface NotifyFifosConfig {
  notify_fifo?: FifoSpec;
  vrrp_notify_fifo?: FifoSpec;
  lvs_notify_fifo?: FifoSpec;
}

/**
 * Which FIFOs to open for which events, by keepalived's rules: notify_fifo receives every
 * line; a vrrp_ or lvs_ FIFO with the same path as notify_fifo is ignored (it would get every
 * line twice); when the vrrp_ and lvs_ FIFOs share a path they share one open FIFO, and if
 * both have a script the LVS one is ignored. Pure: returns the plan and the log messages.
 */
export function planFifos(cfg: NotifyFifosConfig): {
  fifos: Array<{ spec: FifoSpec; label: string; vrrp: boolean; lvs: boolean }>;
  messages: string[];
} {
  const messages: string[] = [];
  const same = (a?: FifoSpec, b?: FifoSpec) => a !== undefined && b !== undefined && resolve(a.path) === resolve(b.path);
  const fifos: Array<{ spec: FifoSpec; label: string; vrrp: boolean; lvs: boolean }> = [];
  let vrrp = cfg.vrrp_notify_fifo;
  let lvs = cfg.lvs_notify_fifo;
  if (same(cfg.notify_fifo, vrrp)) {
    messages.push(`notify FIFO ${vrrp!.path} has been specified for global and vrrp FIFO - ignoring vrrp FIFO`);
    vrrp = undefined;
  }
  if (same(cfg.notify_fifo, lvs)) {
    messages.push(`notify FIFO ${lvs!.path} has been specified for global and LVS FIFO - ignoring LVS FIFO`);
    lvs = undefined;
  }
  if (cfg.notify_fifo) fifos.push({ spec: cfg.notify_fifo, label: "", vrrp: true, lvs: true });
  if (vrrp && lvs && same(vrrp, lvs)) {
    let script = vrrp.script ?? lvs.script;
    if (vrrp.script && lvs.script) {
      messages.push("LVS notify FIFO and vrrp FIFO are the same both with scripts - ignoring LVS FIFO script");
      script = vrrp.script;
    }
    fifos.push({ spec: script ? { ...vrrp, script } : { path: vrrp.path, ...(vrrp.owner ? { owner: vrrp.owner } : {}) }, label: "vrrp_", vrrp: true, lvs: true });
  } else {
    if (vrrp) fifos.push({ spec: vrrp, label: "vrrp_", vrrp: true, lvs: false });
    if (lvs) fifos.push({ spec: lvs, label: "lvs_", vrrp: false, lvs: true });
  }
  return { fifos, messages };
}

/**
 * Resolves the global_defs FIFO keywords (`notify_fifo PATH [USER [GROUP]]`,
 * `notify_fifo_script CMD [USER [GROUP]]`, and the vrrp_/lvs_ pairs) into FifoSpecs. Owners
 * and scripts without their own user take `defaultIdentity` (the default script user), as in
 * keepalived. Unusable entries are left out and reported in `errors`.
 */
export function fifoSpecsFromGlobal(
  globalDoc: Record<string, unknown>,
  defaultIdentity: Identity | undefined,
  lookup: (user: string, group?: string) => Identity | { error: string },
): { config: NotifyFifosConfig; errors: string[] } {
  const errors: string[] = [];
  const config: NotifyFifosConfig = {};
  for (const prefix of ["", "vrrp_", "lvs_"] as const) {
    const fifo = globalDoc[`${prefix}notify_fifo`] as { path: string; user?: string; group?: string } | undefined;
    if (!fifo) continue;
    let owner = defaultIdentity;
    if (fifo.user !== undefined) {
      const id = lookup(fifo.user, fifo.group);
      if ("error" in id) {
        errors.push(`Invalid user/group for ${prefix} fifo ${fifo.path} - ignoring: ${id.error}`);
        continue;
      }
      owner = id;
    }
    const spec: FifoSpec = owner ? { path: fifo.path, owner } : { path: fifo.path };
    const ref = globalDoc[`${prefix}notify_fifo_script`] as ScriptRef | undefined;
    if (ref) {
      const p = prepareScript(ref, defaultIdentity);
      if ("error" in p) errors.push(`${prefix}notify_fifo_script: ${p.error}`);
      else spec.script = p.identity ? { argv: p.argv, identity: p.identity } : { argv: p.argv };
    }
    const key = `${prefix}notify_fifo` as keyof NotifyFifosConfig;
    config[key] = spec;
  }
  return { config, errors };
}

/** The daemon's notify FIFOs: routes VRRP lines and LVS lines to the FIFOs that take them. */
export class NotifyFifos {
  private constructor(
    private readonly vrrpTargets: NotifyFifo[],
    private readonly lvsTargets: NotifyFifo[],
    private readonly all: NotifyFifo[],
  ) {}

  /** Opens every configured FIFO (see planFifos for the routing); FIFOs that fail are logged and skipped. */
  static open(cfg: NotifyFifosConfig, log: Logger): NotifyFifos {
    const plan = planFifos(cfg);
    for (const m of plan.messages) log.info(m);
    const vrrp: NotifyFifo[] = [];
    const lvs: NotifyFifo[] = [];
    const all: NotifyFifo[] = [];
    for (const f of plan.fifos) {
      const fifo = NotifyFifo.open({ path: f.spec.path, label: f.label, log, ...(f.spec.owner ? { owner: f.spec.owner } : {}), ...(f.spec.script ? { script: f.spec.script } : {}) });
      if (!fifo) continue;
      all.push(fifo);
      if (f.vrrp) vrrp.push(fifo);
      if (f.lvs) lvs.push(fifo);
    }
    return new NotifyFifos(vrrp, lvs, all);
  }

  /** Whether any FIFO wants VRRP lines (callers may skip formatting otherwise). */
  get wantsVrrp(): boolean {
    return this.vrrpTargets.length > 0;
  }

  /** Whether any FIFO wants LVS lines. */
  get wantsLvs(): boolean {
    return this.lvsTargets.length > 0;
  }

  /** `INSTANCE "name" STATE prio` to notify_fifo and vrrp_notify_fifo. */
  instance(name: string, state: VrrpFifoState, priority: number): void {
    this.writeAll(this.vrrpTargets, vrrpFifoLine("INSTANCE", name, state, priority));
  }

  /** `GROUP "name" STATE 0` to notify_fifo and vrrp_notify_fifo. */
  group(name: string, state: VrrpFifoState): void {
    this.writeAll(this.vrrpTargets, vrrpFifoLine("GROUP", name, state, 0));
  }

  /** `VS <vs> UP|DOWN` to notify_fifo and lvs_notify_fifo. */
  virtualServer(vs: VirtualServerId, up: boolean): void {
    if (this.lvsTargets.length) this.writeAll(this.lvsTargets, vsFifoLine(formatVirtualServer(vs), up));
  }

  /** `RS <rs> <vs> UP|DOWN` to notify_fifo and lvs_notify_fifo. */
  realServer(rs: { ip: string; port?: number }, vs: VirtualServerId, up: boolean): void {
    if (this.lvsTargets.length) this.writeAll(this.lvsTargets, rsFifoLine(formatRealServer(rs, vs), formatVirtualServer(vs), up));
  }

  /** Lines dropped so far, per FIFO path. */
  dropped(): Record<string, number> {
    return Object.fromEntries(this.all.map((f) => [f.path, f.dropped]));
  }

  /** PIDs of the reader scripts started (for tests and status). */
  scriptPids(): number[] {
    return this.all.flatMap((f) => (f.scriptHandle?.pid !== undefined ? [f.scriptHandle.pid] : []));
  }

  /** Closes every FIFO and stops the reader scripts. */
  close(killAfterMs = 1000): void {
    for (const f of this.all) f.close(killAfterMs);
  }

  /** At shutdown: closes every FIFO and gives the reader scripts `graceMs` to read the last lines and end. */
  async drainAndClose(graceMs = 500, killAfterMs = 1000): Promise<void> {
    await Promise.all(this.all.map((f) => f.drainAndClose(graceMs, killAfterMs)));
  }

  private writeAll(targets: NotifyFifo[], line: string): void {
    for (const f of targets) f.write(line);
  }
}
