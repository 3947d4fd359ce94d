/**
 * The daemon's tracked objects (reference §1.6 "Tracking", §1.8, §1.10): vrrp_scripts run on
 * their interval with rise/fall, interfaces follow link events, track_files follow their
 * content. Each change is reported to the runtime, which recomputes instance priorities.
 * Processes (vrrp_track_process) plug in through `setProcess`.
 */
import { existsSync, readFileSync, watch, writeFileSync, type FSWatcher } from "node:fs";
import type { Model } from "../config/model.ts";
import type { Doc, Rec, ScriptRef } from "../config/schema/kinds.ts";
import { applyResult, isUp, newRiseFall, type RiseFall } from "../vrrp/tracking.ts";
import type { Host } from "./host.ts";
import type { Logger } from "./logger.ts";
import { ProcessTracker, processTrackerSpecs } from "./process-tracker.ts";
import { defaultScriptIdentity, type PreparedScript, prepareScript, ScriptRunner, type ScriptResult } from "./scripts.ts";

export type TrackKind = "script" | "interface" | "file" | "process" | "bfd";

export interface TrackValue {
  up?: boolean;
  value?: number;
}

/** Runs one script and resolves its result; injectable for tests. */
export type ScriptExec = (key: string, script: PreparedScript, timeoutMs: number) => Promise<ScriptResult> | "skipped";

interface ScriptTracker {
  name: string;
  script: PreparedScript | undefined;
  intervalMs: number;
  timeoutMs: number;
  rf: RiseFall;
  /** undefined until the first result. */
  up: boolean | undefined;
  timer: unknown;
  lastExit?: number | null;
  /** A run is in progress (keepalived's script state "running"). */
  running?: boolean;
}

interface FileTracker {
  name: string;
  path: string;
  value: number | undefined;
  watcher?: FSWatcher;
  poll?: unknown;
}

/** Tracked-object names an instance refers to, by kind (instance and sync-group lists merged). */
export function trackedNames(model: Model): Record<TrackKind, Set<string>> {
  const out: Record<TrackKind, Set<string>> = { script: new Set(), interface: new Set(), file: new Set(), process: new Set(), bfd: new Set() };
  const add = (d: Doc) => {
    for (const t of (d.track_script as Rec[] | undefined) ?? []) out.script.add(String(t.name));
    for (const t of (d.track_interface as Rec[] | undefined) ?? []) out.interface.add(String(t.name));
    for (const t of (d.track_file as Rec[] | undefined) ?? []) out.file.add(String(t.name));
    for (const t of (d.track_process as Rec[] | undefined) ?? []) out.process.add(String(t.name));
    for (const t of (d.track_bfd as Rec[] | undefined) ?? []) out.bfd.add(String(t.name));
  };
  for (const i of model.vrrp_instance) add(i.doc);
  for (const g of Object.values(model.vrrp_sync_group)) add(g);
  return out;
}

/** BFD sessions as track_bfd sees them (src/daemon/bfd-runtime.ts, VRRP side). */
export interface TrackedBfdSource {
  /** Last reported state (true = Up); undefined when there is no such session. */
  state(name: string): boolean | undefined;
  /** Subscribes to state changes delivered to the VRRP side. */
  onVrrpEvent(cb: (name: string, up: boolean) => void): void;
}

/** A read-only view of the tracked objects, for metrics and status. */
export interface TrackerSnapshot {
  /** vrrp_scripts: `up` is undefined until the first result (keepalived's INIT). */
  scripts: Array<{ name: string; up: boolean | undefined; running: boolean }>;
  interfaces: Array<{ name: string; up: boolean }>;
  files: Array<{ name: string; value: number | undefined }>;
  processes: Array<{ name: string; up: boolean }>;
}

export class TrackerHub {
  #scripts = new Map<string, ScriptTracker>();
  #files = new Map<string, FileTracker>();
  #links = new Map<string, boolean>();
  #processes = new Map<string, boolean>();
  #listeners: Array<(kind: TrackKind, name: string) => void> = [];
  #stopped = false;
  #runner = new ScriptRunner();
  #procs: ProcessTracker | undefined;
  #bfd: TrackedBfdSource | undefined;

  constructor(
    private model: Model,
    private readonly host: Host,
    private readonly log: Logger,
    private readonly exec: ScriptExec = (key, s, timeoutMs) => {
      const h = this.#runner.run(key, s.argv, { timeoutMs, ...(s.identity ? { identity: s.identity } : {}) });
      return h === "skipped" ? "skipped" : h.result;
    },
    /** The fd watcher for the proc connector (without one, processes are polled). */
    private readonly watcher?: ConstructorParameters<typeof ProcessTracker>[0]["watcher"],
  ) {}

  onChange(cb: (kind: TrackKind, name: string) => void): void {
    this.#listeners.push(cb);
  }

  /** Current state of one tracked object (undefined fields while unknown). */
  get(kind: TrackKind, name: string): TrackValue {
    switch (kind) {
      case "script":
        return { up: this.#scripts.get(name)?.up };
      case "interface":
        return { up: this.#links.get(name) };
      case "file":
        return { value: this.#files.get(name)?.value };
      case "process":
        return { up: this.#processes.get(name) };
      case "bfd":
        return { up: this.#bfd?.state(name) }; // undefined without a BFD runtime: unknown
    }
  }

  /** The current state of every tracked object (copies; changing them changes nothing). */
  snapshot(): TrackerSnapshot {
    return {
      scripts: [...this.#scripts.values()].map((t) => ({ name: t.name, up: t.up, running: t.running === true })),
      interfaces: [...this.#links].map(([name, up]) => ({ name, up })),
      files: [...this.#files.values()].map((f) => ({ name: f.name, value: f.value })),
      processes: [...this.#processes].map(([name, up]) => ({ name, up })),
    };
  }

  /** Feeds track_bfd from the BFD runtime; each session event re-evaluates the instances tracking it. */
  attachBfd(source: TrackedBfdSource): void {
    this.#bfd = source;
    source.onVrrpEvent((name, up) => {
      if (trackedNames(this.model).bfd.has(name)) this.log.info(`Tracked BFD instance ${name} is ${up ? "UP" : "DOWN"}`);
      this.#emit("bfd", name);
    });
  }

  /** Default weight and reverse of a tracked object (the block's own `weight` keyword). */
  defaults(kind: TrackKind, name: string): { weight: number; reverse: boolean } {
    const doc = kind === "script" ? this.model.vrrp_script[name] : kind === "file" ? this.model.track_file[name] : kind === "process" ? this.model.vrrp_track_process[name] : kind === "bfd" ? this.model.bfd_instance[name] : undefined;
    const w = doc?.weight as { weight?: number; reverse?: boolean } | undefined;
    return { weight: w?.weight ?? (kind === "file" ? 1 : 0), reverse: w?.reverse === true };
  }

  /** Starts every tracked script, file and interface the configuration refers to. */
  start(): void {
    const names = trackedNames(this.model);
    for (const name of names.script) this.#startScript(name);
    for (const l of this.host.links()) this.#links.set(l.name, l.up);
    for (const name of names.interface)
      if (!this.#links.has(name)) this.log.warn(`track_interface ${name} does not exist; treated as down`);
    for (const name of names.file) {
      const doc = this.model.track_file[name];
      if (doc) this.#startFile(name, doc);
    }
    this.#startProcesses(names.process);
  }

  /**
   * Reload: trackers whose definition is unchanged keep running with their state (so a reload
   * never flaps an instance); changed or new ones start afresh; removed ones stop.
   */
  reload(model: Model): void {
    const old = this.model;
    this.model = model;
    const names = trackedNames(model);
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    // weight only matters to the instances (read through defaults()): a weight change keeps the
    // tracker and its state, so the new weight applies at once, with no "not yet reported" gap
    const sameDef = (a: Doc | undefined, b: Doc | undefined) => same(a && { ...a, weight: undefined }, b && { ...b, weight: undefined });
    for (const [name, t] of this.#scripts) {
      if (names.script.has(name) && sameDef(old.vrrp_script[name], model.vrrp_script[name])) continue;
      this.host.clearTimer(t.timer);
      this.#scripts.delete(name);
    }
    for (const name of names.script) if (!this.#scripts.has(name)) this.#startScript(name);
    for (const [name, f] of this.#files) {
      if (names.file.has(name) && sameDef(old.track_file[name], model.track_file[name])) continue;
      f.watcher?.close();
      this.host.clearTimer(f.poll);
      this.#files.delete(name);
    }
    for (const name of names.file) if (!this.#files.has(name) && model.track_file[name]) this.#startFile(name, model.track_file[name]!);
    const procDefs = (m: Model) => Object.fromEntries(Object.entries(m.vrrp_track_process).map(([k, d]) => [k, { ...d, weight: undefined }]));
    if (!same(procDefs(old), procDefs(model)) || !same([...trackedNames(old).process], [...names.process])) {
      this.#procs?.close();
      this.#procs = undefined;
      this.#startProcesses(names.process);
    }
  }

  #startScript(name: string): void {
    const doc = this.model.vrrp_script[name];
    if (!doc) return;
    const ident = defaultScriptIdentity(this.model.global);
    const prepared = prepareScript(doc.script as ScriptRef, ident && !("error" in ident) ? ident : undefined);
    if ("error" in prepared) this.log.error(`VRRP_Script(${name}) ${prepared.error}; it is treated as failing`);
    const intervalMs = ((doc.interval as number | undefined) ?? 1) * 1000;
    const t: ScriptTracker = {
      name,
      script: "error" in prepared ? undefined : prepared,
      intervalMs,
      timeoutMs: ((doc.timeout as number | undefined) ?? intervalMs / 1000) * 1000,
      rf: newRiseFall((doc.rise as number | undefined) ?? 1, (doc.fall as number | undefined) ?? 1, doc.init_fail === true),
      up: doc.init_fail === true ? false : undefined,
      timer: undefined,
    };
    this.#scripts.set(name, t);
    this.#runScript(t);
  }

  /** vrrp_track_process: the proc connector where the kernel allows it, else /proc polling. */
  #startProcesses(names: Set<string>): void {
    if (!names.size) return;
    const { specs, warnings } = processTrackerSpecs(this.model, names);
    for (const w of warnings) this.log.warn(w);
    if (!specs.length) return;
    const procs = new ProcessTracker({
      specs,
      ...(this.watcher ? { watcher: this.watcher } : {}),
      onChange: (name, ok, count) => {
        this.log.info(`Track_process ${name} is ${ok ? "up" : "down"} (${count} process${count === 1 ? "" : "es"})`);
        this.setProcess(name, ok);
      },
      log: (m) => this.log.info(m),
    });
    this.#procs = procs;
    procs.start().catch((e) => this.log.error(`process tracking failed: ${(e as Error).message}`));
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#scripts.values()) this.host.clearTimer(t.timer);
    for (const f of this.#files.values()) {
      f.watcher?.close();
      this.host.clearTimer(f.poll);
    }
    this.#procs?.close();
    void this.#runner.shutdown(500);
  }

  /** A link changed (from the host's net events). */
  linkChanged(name: string, up: boolean): void {
    if (this.#links.get(name) === up) return;
    this.#links.set(name, up);
    this.#emit("interface", name);
  }

  /** A process tracker's quorum state changed. */
  setProcess(name: string, ok: boolean): void {
    if (this.#processes.get(name) === ok) return;
    this.#processes.set(name, ok);
    this.#emit("process", name);
  }

  #emit(kind: TrackKind, name: string): void {
    if (this.#stopped) return;
    for (const l of this.#listeners) l(kind, name);
  }

  // ---- scripts ----------------------------------------------------------------------------

  #runScript(t: ScriptTracker): void {
    if (this.#stopped) return;
    const started = this.host.now();
    // Schedule the next run first: a hung script must not stretch the interval.
    t.timer = this.host.setTimer(t.intervalMs, () => this.#runScript(t));
    if (!t.script) {
      this.#result(t, false, null);
      return;
    }
    const r = this.exec(`vrrp_script:${t.name}`, t.script, t.timeoutMs);
    if (r === "skipped") {
      this.log.warn(`VRRP_Script(${t.name}) previous run still active after ${Math.round(this.host.now() - started + t.intervalMs)} ms; skipping this run`);
      return;
    }
    t.running = true;
    void r.then((res) => {
      t.running = false;
      if (res.timedOut) this.log.warn(`VRRP_Script(${t.name}) timed out after ${Math.round(res.durationMs)} ms`);
      this.#result(t, res.ok, res.exitCode);
    });
  }

  #result(t: ScriptTracker, ok: boolean, exit: number | null): void {
    if (this.#stopped) return;
    applyResult(t.rf, ok);
    const up = isUp(t.rf);
    if (exit !== t.lastExit && t.lastExit !== undefined) this.log.info(`Script ${t.name} now returning ${exit ?? "a signal"}`);
    t.lastExit = exit;
    if (t.up === up) return; // unchanged (the first result always counts: up starts unknown)
    t.up = up;
    this.log.info(`VRRP_Script(${t.name}) ${up ? "succeeded" : "failed"}`);
    this.#emit("script", t.name);
  }

  // ---- files ------------------------------------------------------------------------------

  #startFile(name: string, doc: Doc): void {
    const path = String(doc.file ?? "");
    const f: FileTracker = { name, path, value: undefined };
    this.#files.set(name, f);
    const init = doc.init_file as { value?: number; overwrite?: boolean } | undefined;
    if (init && (init.overwrite || !existsSync(path))) {
      try {
        writeFileSync(path, `${init.value ?? 0}\n`);
      } catch (e) {
        this.log.error(`track_file ${name}: cannot create ${path}: ${(e as Error).message}`);
      }
    }
    this.#readFile(f);
    try {
      // inotify through fs.watch; a rewritten file (new inode) is caught by the periodic re-read
      f.watcher = watch(path, () => this.#readFile(f));
    } catch {
      this.log.warn(`track_file ${name}: cannot watch ${path}; polling it every second`);
    }
    const poll = () => {
      this.#readFile(f);
      f.poll = this.host.setTimer(1000, poll);
    };
    f.poll = this.host.setTimer(1000, poll);
  }

  #readFile(f: FileTracker): void {
    let value = 0;
    try {
      const m = /^\s*(-?\d+)/.exec(readFileSync(f.path, "utf8"));
      value = m ? Number(m[1]) : 0;
    } catch {
      value = 0; // keepalived treats a missing or unreadable file as 0
    }
    if (value === f.value) return;
    f.value = value;
    this.log.info(`track_file ${f.name} is now ${value}`);
    this.#emit("file", f.name);
  }
}
