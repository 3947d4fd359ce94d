/**
 * Runs every checker of every real server on the event loop: each polled checker has its own
 * CheckScheduler and one deadline timer (never setInterval); checks are async I/O, so a slow
 * server only delays its own next check. Every finished check is reported as
 * (rsRef, checkerIndex, up, detail, latencyMs), with `transition` set when the state changed.
 */
import { readFileSync, watch, type FSWatcher } from "node:fs";
import type { RealServerModel, VirtualServerModel } from "../config/model.ts";
import type { Checker, CheckOutcome } from "./checker.ts";
import { buildChecker, realServerPort, type BuiltChecker, type CheckerDeps } from "./factory.ts";
import { fileCheckStatus, readTrackFileValue } from "./file.ts";
import { CheckScheduler } from "./scheduler.ts";

/** One check result, as the LVS layer consumes it (compatible with src/lvs/manager.ts CheckerReport). */
export interface CheckReport {
  rsRef: string;
  checkerIndex: number;
  type: string;
  /** The checker's state after this check. */
  up: boolean;
  /** Whether this check itself passed (a failure being retried leaves `up` true). */
  ok: boolean;
  /** Set when the state changed with this check. */
  transition?: "up" | "down";
  /** The checker's first report since add(). */
  first: boolean;
  detail: string;
  latencyMs: number;
  /** misc_dynamic / FILE_CHECK: contribution to the real server's weight (relative to its configured weight). */
  weightDelta?: number;
  /** A failure that will be retried. */
  retrying: boolean;
  note?: string;
}

/** What add() says about each checker before anything ran. */
export interface CheckerInfo {
  index: number;
  type: string;
  /** Initial state: down for alpha checkers and for a FILE_CHECK whose file says so. */
  up: boolean;
  polled: boolean;
  problems: string[];
}

/** Timers and time; the default is the real monotonic clock. */
export interface RunnerClock {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(t: unknown): void;
}

export interface CheckRunnerOptions {
  onReport(r: CheckReport): void;
  onLog?(level: "info" | "warn" | "error", message: string): void;
  clock?: RunnerClock;
  /** Warmup jitter source (default Math.random). */
  rng?: () => number;
  /** Period of FILE_CHECK re-reads besides inotify (default 1000 ms). */
  filePollMs?: number;
}

const realClock: RunnerClock = {
  now: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
};

interface Entry {
  rsRef: string;
  index: number;
  label: string;
  built: BuiltChecker;
  sched?: CheckScheduler;
  checker?: Checker;
  timer?: unknown;
  stopped: boolean;
  suspended: boolean;
  reported: boolean;
  /** The last check was a failure being retried (for keepalived's "failed after N retries"). */
  lastRetrying: boolean;
  file?: { value: number | undefined; up: boolean; weightDelta: number; watcher?: FSWatcher; reading: boolean };
}

/** Drives all checkers; add() real servers, consume reports, remove() or stop(). */
export class CheckRunner {
  readonly #entries = new Map<string, Entry[]>();
  readonly #clock: RunnerClock;

  constructor(private readonly opts: CheckRunnerOptions) {
    this.#clock = opts.clock ?? realClock;
  }

  /** Builds and starts the checkers of real server `rs` under `rsRef`; replaces any under the same ref. */
  add(rsRef: string, vs: VirtualServerModel, rs: RealServerModel, deps: CheckerDeps = {}, opts: { port?: number } = {}): CheckerInfo[] {
    this.remove(rsRef);
    const port = opts.port ?? realServerPort(vs, rs);
    const label = `[${rs.ip}]:${vs.protocol.toLowerCase()}:${port}`;
    const entries: Entry[] = [];
    const info: CheckerInfo[] = [];
    rs.checkers.forEach((_, index) => {
      const built = buildChecker(vs, rs, index, deps, port);
      const e: Entry = { rsRef, index, label, built, stopped: false, suspended: false, reported: false, lastRetrying: false };
      for (const p of built.problems) this.#log("warn", `${label} ${p}`);
      let up = true;
      if (built.kind === "polled") {
        e.checker = built.checker;
        e.sched = new CheckScheduler(built.timing, built.mode, this.opts.rng);
        up = e.sched.up;
      } else if (built.kind === "file") {
        const value = readValueNow(built.path);
        const s = fileCheckStatus(value, built.weight, built.reverse);
        e.file = { value, up: s.up, weightDelta: s.weightDelta, reading: false };
        up = s.up;
      } else up = built.up;
      entries.push(e);
      info.push({ index, type: built.type, up, polled: built.kind === "polled", problems: built.problems });
    });
    this.#entries.set(rsRef, entries);
    for (const e of entries) this.#start(e);
    return info;
  }

  /** Stops and forgets the checkers of `rsRef` (running checks are aborted, their results dropped). */
  remove(rsRef: string): void {
    const list = this.#entries.get(rsRef);
    if (!list) return;
    this.#entries.delete(rsRef);
    for (const e of list) this.#stopEntry(e);
  }

  /** ha_suspend: a suspended real server's checkers skip their turns (state is kept). */
  setSuspended(rsRef: string, suspended: boolean): void {
    for (const e of this.#entries.get(rsRef) ?? []) e.suspended = suspended;
  }

  /** The refs being checked. */
  refs(): string[] {
    return [...this.#entries.keys()];
  }

  /** Each checker's state now, for status output. */
  snapshot(): Array<{ rsRef: string; index: number; type: string; up: boolean; hasRun: boolean; running: boolean; nextDueMs?: number }> {
    const out = [];
    for (const [rsRef, list] of this.#entries)
      for (const e of list) {
        const s = e.sched;
        const row: { rsRef: string; index: number; type: string; up: boolean; hasRun: boolean; running: boolean; nextDueMs?: number } = {
          rsRef, index: e.index, type: e.built.type,
          up: s ? s.up : e.file ? e.file.up : e.built.kind === "fixed" ? e.built.up : true,
          hasRun: s ? s.hasRun : e.reported, running: s?.running ?? false,
        };
        if (s?.dueAtMs !== undefined) row.nextDueMs = s.dueAtMs;
        out.push(row);
      }
    return out;
  }

  /** Stops everything. */
  stop(): void {
    for (const ref of [...this.#entries.keys()]) this.remove(ref);
  }

  // ---- polled checkers ------------------------------------------------------------------------

  #start(e: Entry): void {
    const b = e.built;
    if (b.kind === "polled") {
      e.sched!.start(this.#clock.now());
      this.#arm(e);
    } else if (b.kind === "file") {
      this.#watchFile(e, b.path);
      this.#report(e, { ok: e.file!.up, up: e.file!.up, detail: `track_file ${b.name} value ${e.file!.value}`, latencyMs: 0, retrying: false, weightDelta: e.file!.weightDelta });
    } else {
      // fixed: say it once, on the next turn of the loop, like any other first report
      e.timer = this.#clock.setTimer(() => {
        if (e.stopped) return;
        if (!b.up) this.#log("error", `${e.label} ${b.type}: ${b.detail}`);
        else this.#log("warn", `${e.label} ${b.detail}`);
        this.#report(e, { ok: b.up, up: b.up, detail: b.detail, latencyMs: 0, retrying: false });
      }, 0);
    }
  }

  #arm(e: Entry): void {
    const due = e.sched!.dueAtMs;
    if (due === undefined || e.stopped) return;
    const delay = Math.max(0, Math.ceil(due - this.#clock.now()));
    e.timer = this.#clock.setTimer(() => this.#fire(e), delay);
  }

  #fire(e: Entry): void {
    e.timer = undefined;
    if (e.stopped) return;
    const s = e.sched!;
    const now = this.#clock.now();
    const due = s.dueAtMs;
    if (due === undefined) return;
    if (now < due) return this.#arm(e); // early timer: re-arm for the rest
    if (e.suspended) {
      s.skip(now);
      return this.#arm(e);
    }
    const { url } = s.begin(now);
    let p: Promise<CheckOutcome>;
    try {
      p = e.checker!.run(url);
    } catch (err) {
      p = Promise.resolve({ ok: false, detail: `checker error: ${(err as Error).message}` });
    }
    p.catch((err: unknown) => ({ ok: false, detail: `checker error: ${(err as Error)?.message ?? String(err)}` }) as CheckOutcome).then((o) => {
      if (e.stopped) return;
      const v = s.finish(this.#clock.now(), o.ok);
      if (o.note) this.#log("info", `${e.label} ${e.built.type}: ${o.note}`);
      const afterRetries = e.lastRetrying;
      e.lastRetrying = v.retrying;
      if (v.transition === "up") this.#log("info", `${e.built.type} on service ${e.label} succeeded: ${o.detail}`);
      else if (v.transition === "down") this.#log("info", `${e.built.type} on service ${e.label} failed${afterRetries ? ` after ${e.sched!.timing.retry} retries` : ""}: ${o.detail}`);
      else if (v.logFailure) this.#log("info", `${e.built.type} on service ${e.label} failed: ${o.detail}`);
      const r: Omit<CheckReport, "rsRef" | "checkerIndex" | "type" | "first"> = { ok: o.ok, up: v.up, detail: o.detail, latencyMs: v.latencyMs, retrying: v.retrying };
      if (v.transition) r.transition = v.transition;
      if (o.weightDelta !== undefined) r.weightDelta = o.weightDelta;
      if (o.note) r.note = o.note;
      this.#report(e, r);
      this.#arm(e);
    });
  }

  // ---- FILE_CHECK -----------------------------------------------------------------------------

  #watchFile(e: Entry, path: string): void {
    const reread = () => {
      const f = e.file!;
      if (e.stopped || f.reading) return;
      f.reading = true;
      void readTrackFileValue(path).then((value) => {
        f.reading = false;
        if (e.stopped || value === f.value) return;
        const b = e.built as Extract<BuiltChecker, { kind: "file" }>;
        const s = fileCheckStatus(value, b.weight, b.reverse);
        const transition = s.up !== f.up ? (s.up ? "up" : "down") : undefined;
        f.value = value;
        f.up = s.up;
        f.weightDelta = s.weightDelta;
        if (transition) this.#log("info", `${e.label} tracked file ${b.name} ${s.up ? "leaving" : "now"} FAULT state`);
        const r: Omit<CheckReport, "rsRef" | "checkerIndex" | "type" | "first"> = { ok: s.up, up: s.up, detail: `track_file ${b.name} value ${value}`, latencyMs: 0, retrying: false, weightDelta: s.weightDelta };
        if (transition) r.transition = transition;
        this.#report(e, r);
      });
    };
    try {
      e.file!.watcher = watch(path, reread);
    } catch {
      // not there yet: the poll below picks it up
    }
    const poll = () => {
      if (e.stopped) return;
      reread();
      e.timer = this.#clock.setTimer(poll, this.opts.filePollMs ?? 1000);
    };
    e.timer = this.#clock.setTimer(poll, this.opts.filePollMs ?? 1000);
  }

  // ---- common ---------------------------------------------------------------------------------

  #report(e: Entry, r: Omit<CheckReport, "rsRef" | "checkerIndex" | "type" | "first">): void {
    const first = !e.reported;
    e.reported = true;
    this.opts.onReport({ rsRef: e.rsRef, checkerIndex: e.index, type: e.built.type, first, ...r });
  }

  #stopEntry(e: Entry): void {
    e.stopped = true;
    if (e.timer !== undefined) this.#clock.clearTimer(e.timer);
    e.timer = undefined;
    e.checker?.close();
    e.file?.watcher?.close();
  }

  #log(level: "info" | "warn" | "error", message: string): void {
    this.opts.onLog?.(level, message);
  }
}

/** A track_file's value read at once (startup only: keepalived knows a FILE_CHECK's state before IPVS is programmed). */
function readValueNow(path: string): number {
  try {
    const m = /^\s*([-+]?(?:0x[0-9a-f]+|\d+))/i.exec(readFileSync(path, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}
