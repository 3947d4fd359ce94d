/**
 * VRRP notify scripts: turns an instance's (or sync group's) state change into the scripts
 * keepalived would run, in keepalived's order — the state's own `notify_*` script with no extra
 * arguments, then the generic `notify` with `INSTANCE|GROUP <name> <STATE> <priority>` — and
 * runs them with scripts.ts, fire-and-forget, logging start and failure.
 *
 * Timeouts, as keepalived: ordinary notifies have none (they may run as long as they like);
 * STOP notifies get a 1 s timer after which their process group is SIGKILLed. At daemon exit
 * shutdown() waits (bounded) for the STOP notifies and then SIGTERMs whatever notify is still
 * running (SIGKILL 1 s later) — keepalived gets that from PR_SET_PDEATHSIG, Bun.spawn cannot
 * set it. keepalived runs a sync group's own notify_stop without a timer; vipd gives every
 * STOP notify the timer so shutdown stays bounded.
 */
import type { Model, VrrpInstanceModel } from "../config/model.ts";
import type { Doc, ScriptRef } from "../config/schema/kinds.ts";
import type { Logger } from "./logger.ts";
import {
  ScriptRunner,
  SYSTEM_ACCOUNT_FILES,
  defaultScriptIdentity,
  prepareScript,
  releaseLingeringPipes,
  waitBounded,
  type AccountFiles,
  type Identity,
  type PreparedScript,
  type ScriptHandle,
  type ScriptResult,
} from "./scripts.ts";

export type NotifyState = "MASTER" | "BACKUP" | "FAULT" | "STOP" | "DELETED";
export type NotifyKeyword = "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify_deleted" | "notify";

/** The notify keywords of an instance or sync group, as configured. */
export interface NotifyRefs {
  notify_master?: ScriptRef;
  notify_backup?: ScriptRef;
  notify_fault?: ScriptRef;
  notify_stop?: ScriptRef;
  notify_deleted?: ScriptRef;
  notify?: ScriptRef;
  /** `notify_deleted` present (with or without a command): DELETED is reported as DELETED. */
  notifyDeleted?: boolean;
}

/** An instance's or group's notify scripts, split and resolved once. */
export interface NotifyScripts {
  kind: "INSTANCE" | "GROUP";
  name: string;
  specific: Partial<Record<Exclude<NotifyKeyword, "notify">, PreparedScript>>;
  generic?: PreparedScript;
  notifyDeleted: boolean;
}

/** One command to run for a state change. */
export interface NotifyCommand {
  keyword: NotifyKeyword;
  argv: string[];
  identity?: Identity;
  /** Kill timer (SIGKILL to the group) — set for STOP notifies only. */
  timeoutMs?: number;
}

const SPECIFIC: Record<NotifyState, Exclude<NotifyKeyword, "notify">> = {
  MASTER: "notify_master",
  BACKUP: "notify_backup",
  FAULT: "notify_fault",
  STOP: "notify_stop",
  DELETED: "notify_deleted",
};

/** keepalived's log prefix: `(VI_1)` for instances, `VRRP_Group(G1)` for sync groups. */
export function notifyLogPrefix(kind: "INSTANCE" | "GROUP", name: string): string {
  return kind === "INSTANCE" ? `(${name})` : `VRRP_Group(${name})`;
}

/**
 * Prepares the notify scripts of one instance or group; a script that cannot be parsed or
 * whose user is unknown is logged and dropped, as keepalived ignores it.
 */
export function prepareNotifyScripts(
  kind: "INSTANCE" | "GROUP",
  name: string,
  refs: NotifyRefs,
  defaultIdentity: Identity | undefined | { error: string },
  log: Logger,
  files: AccountFiles = SYSTEM_ACCOUNT_FILES,
): NotifyScripts {
  const out: NotifyScripts = { kind, name, specific: {}, notifyDeleted: refs.notifyDeleted ?? refs.notify_deleted !== undefined };
  const prefix = notifyLogPrefix(kind, name);
  const keywords: NotifyKeyword[] = ["notify_master", "notify_backup", "notify_fault", "notify_stop", "notify_deleted", "notify"];
  for (const kw of keywords) {
    const ref = refs[kw];
    if (!ref || typeof ref.cmd !== "string" || ref.cmd === "") continue;
    let id: Identity | undefined;
    if (ref.user === undefined && defaultIdentity && "error" in defaultIdentity) {
      log.error(`${prefix} Failed to set default user for ${kw} script ${ref.cmd} - ignoring`);
      continue;
    } else if (defaultIdentity && !("error" in defaultIdentity)) {
      id = defaultIdentity;
    }
    const p = prepareScript(ref, id, files);
    if ("error" in p) {
      log.error(`${prefix} ${kw}: ${p.error} - ignoring`);
      continue;
    }
    if (kw === "notify") out.generic = p;
    else out.specific[kw] = p;
  }
  return out;
}

/** The notify keywords of an instance model (notify_deleted comes from the document until it is modelled). */
export function instanceNotifyRefs(inst: NotifyInstance): NotifyRefs {
  const refs: NotifyRefs = {};
  for (const kw of ["notify_master", "notify_backup", "notify_fault", "notify_stop", "notify"] as const) {
    const r = inst[kw];
    if (r) refs[kw] = r;
  }
  const del = inst.doc?.notify_deleted;
  if (del !== undefined) {
    refs.notifyDeleted = true;
    if (isScriptRef(del)) refs.notify_deleted = del;
  }
  return refs;
}

/** The notify keywords found in a sync group's document. */
export function groupNotifyRefs(doc: Doc): NotifyRefs {
  const refs: NotifyRefs = {};
  for (const kw of ["notify_master", "notify_backup", "notify_fault", "notify_stop", "notify"] as const) {
    const r = doc[kw];
    if (isScriptRef(r)) refs[kw] = r;
  }
  return refs;
}

function isScriptRef(v: unknown): v is ScriptRef {
  return typeof v === "object" && v !== null && typeof (v as { cmd?: unknown }).cmd === "string";
}

/**
 * The commands for a state change, in keepalived's order: the state's own script (no extra
 * arguments), then the generic `notify` with TYPE NAME STATE PRIORITY (priority 0 for groups).
 * Without notify_deleted an instance's DELETED is reported as FAULT, as keepalived does.
 */
export function notifyCommands(scripts: NotifyScripts, state: NotifyState, priority: number, stopTimeoutMs = 1000): NotifyCommand[] {
  const reported: NotifyState = state === "DELETED" && !scripts.notifyDeleted ? "FAULT" : state;
  const timeout = reported === "STOP" ? { timeoutMs: stopTimeoutMs } : {};
  const cmds: NotifyCommand[] = [];
  const specific = scripts.specific[SPECIFIC[reported]];
  if (specific) {
    cmds.push({ keyword: SPECIFIC[reported], argv: [...specific.argv], ...(specific.identity ? { identity: specific.identity } : {}), ...timeout });
  }
  if (scripts.generic) {
    const g = scripts.generic;
    const prio = scripts.kind === "GROUP" ? 0 : priority;
    cmds.push({
      keyword: "notify",
      argv: [...g.argv, scripts.kind, scripts.name, reported, String(prio)],
      ...(g.identity ? { identity: g.identity } : {}),
      ...timeout,
    });
  }
  return cmds;
}

/** What an instance needs to have for its notifies (a VrrpInstanceModel has all of it). */
export type NotifyInstance = Pick<VrrpInstanceModel, "name" | "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify"> & { doc?: Doc };

export interface NotifierOptions {
  log: Logger;
  /** Identity for scripts without their own user (see defaultScriptIdentity). */
  defaultIdentity?: Identity | { error: string };
  runner?: ScriptRunner;
  /** STOP notifies' kill timer (keepalived: 1 s). */
  stopTimeoutMs?: number;
  files?: AccountFiles;
}

/** Runs notify scripts for state changes and keeps track of them until they finish. */
export class VrrpNotifier {
  readonly #log: Logger;
  readonly #runner: ScriptRunner;
  readonly #defaultIdentity: Identity | { error: string } | undefined;
  readonly #stopTimeoutMs: number;
  readonly #files: AccountFiles;
  /** Prepared scripts per model object, so a reloaded model is prepared afresh. */
  readonly #prepared = new WeakMap<object, NotifyScripts>();
  readonly #groups = new Map<string, NotifyScripts>();
  readonly #live = new Set<{ handle: ScriptHandle; stop: boolean }>();

  constructor(o: NotifierOptions) {
    this.#log = o.log;
    this.#runner = o.runner ?? new ScriptRunner();
    this.#defaultIdentity = o.defaultIdentity;
    this.#stopTimeoutMs = o.stopTimeoutMs ?? 1000;
    this.#files = o.files ?? SYSTEM_ACCOUNT_FILES;
  }

  /** Registers the sync groups' notify scripts (from the model's vrrp_sync_group documents). */
  setGroups(groups: Record<string, Doc>): void {
    this.#groups.clear();
    for (const [name, doc] of Object.entries(groups)) {
      this.#groups.set(name, prepareNotifyScripts("GROUP", name, groupNotifyRefs(doc), this.#defaultIdentity, this.#log, this.#files));
    }
  }

  /** Fire-and-forget: the notifies for instance `inst` entering `state` at effective `priority`. */
  instance(inst: NotifyInstance, state: NotifyState, priority: number): void {
    void this.fireInstance(inst, state, priority);
  }

  /** Like instance(), returning the scripts' results (in start order) once all have finished. */
  fireInstance(inst: NotifyInstance, state: NotifyState, priority: number): Promise<ScriptResult[]> {
    let scripts = this.#prepared.get(inst);
    if (!scripts) {
      scripts = prepareNotifyScripts("INSTANCE", inst.name, instanceNotifyRefs(inst), this.#defaultIdentity, this.#log, this.#files);
      this.#prepared.set(inst, scripts);
    }
    return this.fire(scripts, state, priority);
  }

  /** Fire-and-forget: the notifies for sync group `name` entering `state` (priority reported as 0). */
  group(name: string, state: NotifyState): void {
    void this.fireGroup(name, state);
  }

  /** Like group(), returning the results; an unknown group runs nothing. */
  fireGroup(name: string, state: NotifyState): Promise<ScriptResult[]> {
    const scripts = this.#groups.get(name);
    return scripts ? this.fire(scripts, state, 0) : Promise.resolve([]);
  }

  /** Starts the commands for `state` in order and logs how each one ends. */
  fire(scripts: NotifyScripts, state: NotifyState, priority: number): Promise<ScriptResult[]> {
    const prefix = notifyLogPrefix(scripts.kind, scripts.name);
    const results: Array<Promise<ScriptResult>> = [];
    for (const cmd of notifyCommands(scripts, state, priority, this.#stopTimeoutMs)) {
      const text = cmd.argv.join(" ");
      this.#log.info(`${prefix} Executing ${cmd.keyword} script ${text}`);
      const h = this.#runner.run(undefined, cmd.argv, {
        ...(cmd.timeoutMs !== undefined ? { timeoutMs: cmd.timeoutMs, timeoutSignal: "SIGKILL" as const } : {}),
        ...(cmd.identity ? { identity: cmd.identity } : {}),
      });
      if (h === "skipped") continue; // unkeyed runs are never skipped
      const entry = { handle: h, stop: cmd.timeoutMs !== undefined };
      this.#live.add(entry);
      results.push(
        h.result.then((r) => {
          this.#live.delete(entry);
          this.#logResult(prefix, cmd.keyword, text, r);
          return r;
        }),
      );
    }
    return Promise.all(results);
  }

  /** How many notify scripts are running now. */
  get runningCount(): number {
    return this.#live.size;
  }

  /** Waits at most `ms` for every running notify script; true if they all finished. */
  async waitAll(ms: number): Promise<boolean> {
    return waitBounded([...this.#live].map((e) => e.handle.result), ms);
  }

  /** Waits at most `ms` for every running notify script (notify-hook's interface). */
  async settle(ms: number): Promise<void> {
    await this.waitAll(ms);
  }

  /**
   * At daemon exit: waits (at most `maxWaitMs`) for the STOP notifies, then SIGTERMs every
   * notify script still running (SIGKILL `killAfterMs` later) and waits for them, bounded.
   */
  async shutdown(maxWaitMs = 2000, killAfterMs = 1000): Promise<boolean> {
    await waitBounded([...this.#live].filter((e) => e.stop).map((e) => e.handle.result), maxWaitMs);
    const rest = [...this.#live];
    if (rest.length > 0) this.#log.info(`Terminating ${rest.length} notify script(s) still running`);
    for (const e of rest) e.handle.terminate(killAfterMs);
    const done = await waitBounded(rest.map((e) => e.handle.result), 2 * killAfterMs + 500);
    releaseLingeringPipes();
    return done;
  }

  #logResult(prefix: string, keyword: NotifyKeyword, text: string, r: ScriptResult): void {
    if (r.ok) {
      this.#log.debug(`${prefix} ${keyword} script ${text} exited with status 0 after ${Math.round(r.durationMs)} ms`);
      return;
    }
    const stderr = r.stderrTail ? ` (stderr: ${r.stderrTail.split("\n").pop()})` : "";
    if (r.exitCode === null && r.signal === null) {
      this.#log.error(`${prefix} ${keyword} script ${text} could not be run: ${r.error ?? "unknown error"}`);
    } else if (r.timedOut) {
      this.#log.warn(`${prefix} ${keyword} script ${text} timed out after ${Math.round(r.durationMs)} ms and was killed (${r.signal ?? `exit status ${r.exitCode}`})`);
    } else if (r.signal !== null) {
      this.#log.warn(`${prefix} ${keyword} script ${text} killed by ${r.signal}${stderr}`);
    } else {
      const why = r.error ? ` - ${r.error}` : "";
      this.#log.warn(`${prefix} ${keyword} script ${text} failed with exit status ${r.exitCode}${why}${stderr}`);
    }
  }
}

/**
 * A notifier for a loaded model: default script user from global_defs (script_user, else
 * keepalived_script, else the daemon's user) and the sync groups' scripts registered.
 * Has the shape daemon/notify-hook.ts expects: instance(), settle(), plus group()/shutdown().
 */
export function createNotifier(model: Pick<Model, "global" | "vrrp_sync_group">, log: Logger, opts: Omit<NotifierOptions, "log" | "defaultIdentity"> = {}): VrrpNotifier {
  const def = defaultScriptIdentity(model.global, opts.files ?? SYSTEM_ACCOUNT_FILES);
  const n = new VrrpNotifier({ ...opts, log, ...(def ? { defaultIdentity: def } : {}) });
  n.setGroups(model.vrrp_sync_group ?? {});
  return n;
}
