/**
 * vrrp_track_process on the real host: which configured trackers have quorum. An initial
 * /proc scan builds a table of matching pids; then the kernel's proc connector (fork,
 * exec, comm, exit events) keeps it current. Where the connector is unavailable (inside a
 * network namespace, CONFIG_PROC_EVENTS off, no CAP_NET_ADMIN) the table is rebuilt by
 * polling /proc every `pollIntervalMs` (default 1000). Quorum and delays are decided by
 * src/vrrp/process-quorum.ts; matching by src/vrrp/process-match.ts.
 *
 * Cost, measured by test/netns/track-process.test.ts and a 1000-extra-process run on the
 * 2-vCPU dev VM (kernel 6.18, Bun 1.4.5) while other suites ran (load average 15–22, so
 * the spread is wide). "Busy" is the time spent reading /proc, i.e. what the loop pays:
 * - ~90–120 processes: 1.0–1.9 ms busy per scan reading /proc/PID/stat (11–18 µs per
 *   process); 1.5–3 ms when a full_command tracker also needs /proc/PID/cmdline (18–26 µs).
 * - ~1100 processes: 20–140 ms busy per scan (18–130 µs per process, stat or stat+cmdline).
 *   Polling every 1000 ms (the default) thus costs ~0.2 % of a CPU on a ~100-process
 *   appliance and several % with ~1000 processes; the connector costs nothing while idle.
 * - The loop is never held for a whole scan: reading is cut into slices of `sliceMs`
 *   (default 4 ms) with a setImmediate yield between them (5–10 slices for 1100 processes;
 *   the longest measured slice 8–28 ms, when the VM preempted us mid-slice).
 * - Connector: 7–60 µs per event applied on a quiet moment, up to ~120 µs under the load
 *   above (150–620 events, most of them other processes' fork/exec/exit; each exec of any
 *   process reads its /proc/PID/comm, plus cmdline with full_command). A tracked process is
 *   seen 3–8 ms after spawn, its exit in ~1 ms; polling sees both within one interval. The
 *   kernel sends every process event on the host, so a fork storm costs CPU in proportion
 *   to the fork rate; dropped events (ENOBUFS) cause a rescan after `resyncDelayMs`.
 */
import { readdirSync } from "node:fs";
import type { Model } from "../config/model.ts";
import type { FdWatcher } from "../../ffi/fdwatch.ts";
import { SysError, alloc, close, openReadOnly, readRaw } from "../../ffi/libc.ts";
import { ProcConnector, ProcConnectorUnavailable, type ProcConnectorOptions, type ProcEvent } from "../../ffi/proc-connector.ts";
import {
  cmdlineBytesNeeded, matchSpecFromDoc, processMatches, specWarning, type ProcessMatchSpec,
} from "../vrrp/process-match.ts";
import {
  ProcessQuorum, quorumConfigError, quorumConfigFromDoc, type QuorumChange, type QuorumConfig,
} from "../vrrp/process-quorum.ts";

/** One vrrp_track_process, ready to run. */
export interface ProcessTrackerSpec {
  name: string;
  match: ProcessMatchSpec;
  quorum: QuorumConfig;
}

/**
 * Specs for the model's vrrp_track_process blocks (all, or only the names in `only`),
 * plus warnings for trackers that can never match or are misconfigured (those are skipped
 * only when unusable: an empty name or quorum > quorum_max).
 */
export function processTrackerSpecs(model: Pick<Model, "vrrp_track_process">, only?: ReadonlySet<string>):
  { specs: ProcessTrackerSpec[]; warnings: string[] } {
  const specs: ProcessTrackerSpec[] = [];
  const warnings: string[] = [];
  for (const [name, doc] of Object.entries(model.vrrp_track_process)) {
    if (only && !only.has(name)) continue;
    const match = matchSpecFromDoc(doc);
    const quorum = quorumConfigFromDoc(doc);
    const w = specWarning(name, match);
    if (w) warnings.push(w);
    const qe = quorumConfigError(quorum);
    if (qe) warnings.push(`vrrp_track_process ${name}: ${qe} - ignoring the tracker`);
    if (match.path === "" || qe) continue;
    specs.push({ name, match, quorum });
  }
  return { specs, warnings };
}

/** Current state of one tracker. */
export interface ProcessTrackerStatus {
  name: string;
  ok: boolean;
  count: number;
  /** A fork/terminate delay running, if any. */
  pending: "fork" | "terminate" | null;
}

/** Measured costs (ms unless named otherwise). */
export interface ProcessTrackerStats {
  mode: "connector" | "poll" | "stopped";
  /** Why the connector is not used, when polling. */
  fallbackReason?: string;
  scans: number;
  /** ms: wall time including yields; busyMs: time spent reading (the loop's cost). */
  lastScan: { ms: number; busyMs: number; processes: number; slices: number; maxSliceMs: number; cmdline: boolean } | null;
  /** Connector events applied and the time spent applying them. */
  events: number;
  eventMs: number;
  overruns: number;
}

export interface ProcessTrackerOptions {
  specs: ProcessTrackerSpec[];
  /** Called once per tracker with its initial state when start() finishes, then on every change. */
  onChange: (trackerName: string, ok: boolean, count: number) => void;
  /** Needed for the connector; without one the tracker polls. */
  watcher?: FdWatcher;
  /** "auto" (default): connector, else polling. */
  mode?: "auto" | "connector" | "poll";
  /** Poll period when polling (default 1000 ms). */
  pollIntervalMs?: number;
  /** Longest stretch of /proc reading before yielding to the loop (default 4 ms). */
  sliceMs?: number;
  /** Rescan delay after the kernel dropped events (default 1000 ms, as keepalived). */
  resyncDelayMs?: number;
  /** Connector socket options (receive buffer, ack timeout). */
  connector?: ProcConnectorOptions;
  /** Log lines (connector fallback, overruns). */
  log?: (msg: string) => void;
  /** Monotonic ms clock (default performance.now). */
  now?: () => number;
}

/** One process as read from /proc; null when it is gone or a zombie. */
interface ProcInfo {
  comm: string;
  cmdline: string;
}

const latin1 = new TextDecoder("latin1");

/** Reads /proc/PID files through libc with one reused buffer (cheaper than node:fs here). */
class ProcReader {
  #buf: Uint8Array;

  constructor(cmdlineBytes: number) {
    this.#buf = alloc(Math.max(512, cmdlineBytes));
  }

  /** comm and state from /proc/PID/stat; null when gone, a zombie or dead. */
  stat(pid: string): { comm: string } | null {
    const s = this.#read(`/proc/${pid}/stat`, 512);
    if (s === null) return null;
    // "pid (comm) S ...": comm may hold spaces and ')', so take the last ')'.
    const open = s.indexOf("(");
    const close = s.lastIndexOf(")");
    if (open < 0 || close < open || close + 2 >= s.length) return null;
    const state = s[close + 2];
    if (state === "Z" || state === "X" || state === "x") return null;
    return { comm: s.slice(open + 1, close) };
  }

  /** /proc/PID/comm without its newline; null when gone. */
  comm(pid: string): string | null {
    const s = this.#read(`/proc/${pid}/comm`, 64);
    return s === null ? null : s.endsWith("\n") ? s.slice(0, -1) : s;
  }

  /** The first `max` bytes of /proc/PID/cmdline; null when gone. */
  cmdline(pid: string, max: number): string | null {
    return this.#read(`/proc/${pid}/cmdline`, max);
  }

  #read(path: string, max: number): string | null {
    let fd: number;
    try {
      fd = openReadOnly(path);
    } catch (e) {
      if (e instanceof SysError) return null;
      throw e;
    }
    try {
      const n = readRaw(fd, max < this.#buf.length ? this.#buf.subarray(0, max) : this.#buf);
      return n < 0 ? null : latin1.decode(this.#buf.subarray(0, n));
    } finally {
      close(fd);
    }
  }
}

const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

/** Follows every configured vrrp_track_process and reports quorum changes. */
export class ProcessTracker {
  readonly #specs: ProcessTrackerSpec[];
  readonly #opts: ProcessTrackerOptions;
  readonly #now: () => number;
  readonly #reader: ProcReader;
  readonly #cmdlineBytes: number;
  readonly #needCmdline: boolean;
  #quorums: ProcessQuorum[] = [];
  /** Connector mode: pid → indexes of the trackers it counts for (only matching pids). */
  #table = new Map<number, Set<number>>();
  #connector: ProcConnector | null = null;
  /** Events that arrived while a scan was running, applied after it. */
  #queued: ProcEvent[] = [];
  #scanning = false;
  #closed = false;
  #started = false;
  #pollTimer: ReturnType<typeof setTimeout> | null = null;
  #quorumTimer: ReturnType<typeof setTimeout> | null = null;
  #resyncTimer: ReturnType<typeof setTimeout> | null = null;
  #stats: ProcessTrackerStats = { mode: "stopped", scans: 0, lastScan: null, events: 0, eventMs: 0, overruns: 0 };

  constructor(opts: ProcessTrackerOptions) {
    this.#opts = opts;
    this.#specs = opts.specs;
    this.#now = opts.now ?? (() => performance.now());
    this.#needCmdline = opts.specs.some((s) => s.match.fullCommand);
    this.#cmdlineBytes = Math.min(4096, Math.max(64, ...opts.specs.map((s) => cmdlineBytesNeeded(s.match))));
    this.#reader = new ProcReader(this.#cmdlineBytes);
  }

  /**
   * Subscribes to process events (or starts polling), scans /proc once, sets every
   * tracker's initial state (reported through onChange) and resolves.
   */
  async start(): Promise<void> {
    if (this.#started) throw new Error("ProcessTracker already started");
    this.#started = true;
    if (this.#specs.length === 0) return; // nothing to follow: no socket, no polling
    const mode = this.#opts.mode ?? "auto";
    if (mode !== "poll") {
      if (!this.#opts.watcher) {
        if (mode === "connector") throw new Error("ProcessTracker: connector mode needs an FdWatcher");
        this.#stats.fallbackReason = "no fd watcher given";
      } else {
        try {
          this.#scanning = true; // queue events until the initial scan is done
          this.#connector = await ProcConnector.open(this.#opts.watcher, {
            onEvents: (evs) => this.#onEvents(evs),
            onOverrun: () => this.#onOverrun(),
          }, this.#opts.connector);
        } catch (e) {
          this.#scanning = false;
          if (mode === "connector" || !(e instanceof ProcConnectorUnavailable)) throw e;
          this.#stats.fallbackReason = e.message;
          this.#opts.log?.(`track_process: ${e.message}; polling /proc every ${this.#pollInterval()} ms instead`);
        }
      }
    }
    if (this.#closed) return;
    this.#stats.mode = this.#connector ? "connector" : "poll";
    const table = await this.#scan();
    if (this.#closed || !table) return;
    const counts = this.#counts(table);
    const now = this.#now();
    this.#quorums = this.#specs.map((s, i) => new ProcessQuorum(s.quorum, counts[i]!));
    if (this.#connector) {
      this.#table = table;
      this.#scanning = false;
      this.#drainQueue(now);
    } else {
      this.#schedulePoll(now);
    }
    for (let i = 0; i < this.#specs.length; i++) {
      const q = this.#quorums[i]!;
      this.#emit(i, { ok: q.ok, count: q.count, at: now });
    }
    this.#armQuorumTimer();
  }

  /** Every tracker's state now. */
  status(): ProcessTrackerStatus[] {
    return this.#specs.map((s, i) => {
      const q = this.#quorums[i];
      return { name: s.name, ok: q?.ok ?? false, count: q?.count ?? 0, pending: q?.pending() ?? null };
    });
  }

  /** Measured costs and the mode in use. */
  stats(): ProcessTrackerStats {
    return structuredClone(this.#stats);
  }

  /** Stops events, polling and timers. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#connector?.close();
    this.#connector = null;
    for (const t of [this.#pollTimer, this.#quorumTimer, this.#resyncTimer]) if (t) clearTimeout(t);
    this.#stats.mode = "stopped";
  }

  #pollInterval(): number {
    return Math.max(10, this.#opts.pollIntervalMs ?? 1000);
  }

  /**
   * Reads every /proc/PID in slices of at most sliceMs and returns pid → matching tracker
   * indexes; null when closed meanwhile.
   */
  async #scan(): Promise<Map<number, Set<number>> | null> {
    const t0 = this.#now();
    const slice = this.#opts.sliceMs ?? 4;
    const table = new Map<number, Set<number>>();
    let pids: string[];
    try {
      pids = readdirSync("/proc").filter((d) => d.charCodeAt(0) >= 49 && d.charCodeAt(0) <= 57);
    } catch (e) {
      this.#opts.log?.(`track_process: cannot list /proc: ${String(e)}`);
      pids = [];
    }
    let slices = 1;
    let sliceStart = this.#now();
    let maxSlice = 0;
    let busy = 0;
    for (const pid of pids) {
      const t = this.#now();
      if (t - sliceStart >= slice) {
        maxSlice = Math.max(maxSlice, t - sliceStart);
        busy += t - sliceStart;
        await yieldToLoop();
        if (this.#closed) return null;
        slices++;
        sliceStart = this.#now();
      }
      const st = this.#reader.stat(pid);
      if (!st) continue;
      let cmdline = "";
      if (this.#needCmdline) {
        const c = this.#reader.cmdline(pid, this.#cmdlineBytes);
        if (c === null) continue;
        cmdline = c;
      }
      const m = this.#matches(st.comm, cmdline);
      if (m.size > 0) table.set(Number(pid), m);
    }
    const end = this.#now();
    maxSlice = Math.max(maxSlice, end - sliceStart);
    busy += end - sliceStart;
    this.#stats.scans++;
    this.#stats.lastScan = { ms: end - t0, busyMs: busy, processes: pids.length, slices, maxSliceMs: maxSlice, cmdline: this.#needCmdline };
    return table;
  }

  #matches(comm: string, cmdline: string, onlyComm = false): Set<number> {
    const out = new Set<number>();
    for (let i = 0; i < this.#specs.length; i++) {
      const s = this.#specs[i]!.match;
      if (onlyComm && s.fullCommand) continue;
      if (processMatches(s, comm, cmdline)) out.add(i);
    }
    return out;
  }

  #counts(table: Map<number, Set<number>>): number[] {
    const counts = this.#specs.map(() => 0);
    for (const set of table.values()) for (const i of set) counts[i]!++;
    return counts;
  }

  // ---- polling

  #schedulePoll(from: number): void {
    if (this.#closed) return;
    const deadline = from + this.#pollInterval();
    this.#pollTimer = setTimeout(() => void this.#poll(), Math.max(0, Math.ceil(deadline - this.#now())));
  }

  async #poll(): Promise<void> {
    this.#pollTimer = null;
    const started = this.#now();
    const table = await this.#scan();
    if (!table || this.#closed) return;
    const counts = this.#counts(table);
    const now = this.#now();
    this.#quorums.forEach((q, i) => this.#emit(i, q.rescan(counts[i]!, now)));
    this.#armQuorumTimer();
    this.#schedulePoll(started);
  }

  // ---- connector events

  #onEvents(events: ProcEvent[]): void {
    if (this.#closed) return;
    if (this.#scanning) {
      for (const ev of events) if (ev.what !== "ack" && ev.what !== "other") this.#queued.push(ev);
      return;
    }
    const t0 = this.#now();
    for (const ev of events) this.#apply(ev, t0);
    this.#stats.events += events.length;
    this.#stats.eventMs += this.#now() - t0;
    this.#armQuorumTimer();
  }

  #drainQueue(now: number): void {
    const q = this.#queued;
    this.#queued = [];
    for (const ev of q) this.#apply(ev, now);
    this.#stats.events += q.length;
  }

  #apply(ev: ProcEvent, now: number): void {
    switch (ev.what) {
      case "fork": {
        if (ev.childPid !== ev.childTgid) return; // a new thread, not a process
        const parent = this.#table.get(ev.parentTgid);
        if (!parent) return;
        const old = this.#table.get(ev.childTgid);
        const set = new Set(parent);
        this.#table.set(ev.childTgid, set);
        for (const i of set) if (!old?.has(i)) this.#emit(i, this.#quorums[i]!.increment("fork", now));
        return;
      }
      case "exec": {
        if (ev.pid !== ev.tgid) return;
        const pid = String(ev.tgid);
        // A process that is already gone keeps its entry until its exit event.
        const comm = this.#reader.comm(pid);
        if (comm === null) return;
        let cmdline = "";
        if (this.#needCmdline) {
          const c = this.#reader.cmdline(pid, this.#cmdlineBytes);
          if (c === null) return;
          cmdline = c;
        }
        this.#replace(ev.tgid, this.#matches(comm, cmdline), now);
        return;
      }
      case "comm": {
        if (ev.pid !== ev.tgid) return;
        // Only name-matched trackers look at comm; full_command ones keep their verdict.
        const old = this.#table.get(ev.tgid) ?? new Set<number>();
        const next = this.#matches(ev.comm, "", true);
        for (const i of old) if (this.#specs[i]!.match.fullCommand) next.add(i);
        this.#replace(ev.tgid, next, now);
        return;
      }
      case "exit": {
        if (ev.pid !== ev.tgid) return;
        const old = this.#table.get(ev.tgid);
        if (!old) return;
        this.#table.delete(ev.tgid);
        for (const i of old) this.#emit(i, this.#quorums[i]!.decrement("exit", now));
        return;
      }
      default:
        return;
    }
  }

  /** Sets a pid's matching trackers after an exec or rename, counting the differences. */
  #replace(pid: number, next: Set<number>, now: number): void {
    const old = this.#table.get(pid) ?? new Set<number>();
    if (next.size > 0) this.#table.set(pid, next);
    else this.#table.delete(pid);
    for (const i of old) if (!next.has(i)) this.#emit(i, this.#quorums[i]!.decrement("mismatch", now));
    for (const i of next) if (!old.has(i)) this.#emit(i, this.#quorums[i]!.increment("exec", now));
  }

  /** Events were lost: settle for a moment, then rebuild the table from /proc (keepalived waits 1 s). */
  #onOverrun(): void {
    this.#stats.overruns++;
    if (this.#resyncTimer || this.#closed) return;
    this.#opts.log?.("track_process: the kernel dropped process events; rescanning /proc");
    this.#resyncTimer = setTimeout(() => void this.#resync(), this.#opts.resyncDelayMs ?? 1000);
  }

  async #resync(): Promise<void> {
    this.#resyncTimer = null;
    if (this.#scanning || this.#closed) return;
    this.#scanning = true;
    this.#queued = [];
    const table = await this.#scan();
    if (!table || this.#closed) return;
    this.#table = table;
    const counts = this.#counts(table);
    const now = this.#now();
    this.#quorums.forEach((q, i) => this.#emit(i, q.rescan(counts[i]!, now)));
    this.#scanning = false;
    this.#drainQueue(now);
    this.#armQuorumTimer();
  }

  // ---- quorum delays and output

  #emit(i: number, ch: QuorumChange | null): void {
    if (!ch) return;
    try {
      this.#opts.onChange(this.#specs[i]!.name, ch.ok, ch.count);
    } catch (e) {
      // A failing consumer must not stop process tracking (this may run from a timer or the fd watcher).
      this.#opts.log?.(`track_process: onChange for ${this.#specs[i]!.name} threw: ${String(e)}`);
    }
  }

  #armQuorumTimer(): void {
    if (this.#closed) return;
    let next = Infinity;
    for (const q of this.#quorums) next = Math.min(next, q.nextDeadline() ?? Infinity);
    if (this.#quorumTimer) clearTimeout(this.#quorumTimer);
    this.#quorumTimer = null;
    if (next === Infinity) return;
    this.#quorumTimer = setTimeout(() => {
      this.#quorumTimer = null;
      const now = this.#now();
      this.#quorums.forEach((q, i) => this.#emit(i, q.poll(now)));
      this.#armQuorumTimer();
    }, Math.max(0, Math.ceil(next - this.#now())));
  }
}
