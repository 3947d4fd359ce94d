/**
 * MISC_CHECK: runs misc_path; exit 0 passes. With misc_dynamic, exit 1 fails and 2..255 pass
 * with the real server's weight set to status − 2. A run longer than misc_timeout (default: the
 * virtual server's delay_loop) gets SIGTERM, then SIGKILL 2 s later, and counts as a failure.
 */
import type { PreparedScript, RunOptions, ScriptHandle, ScriptRunner } from "../daemon/scripts.ts";
import type { Checker, CheckOutcome } from "./checker.ts";

/** An exit status read as keepalived's check_misc.c does; `weightDelta` is relative to the configured weight. */
export function miscOutcome(exitCode: number, dynamic: boolean, configuredWeight: number): CheckOutcome {
  if (exitCode === 0) return dynamic ? { ok: true, detail: "succeeded", weightDelta: 0 } : { ok: true, detail: "succeeded" };
  if (dynamic && exitCode >= 2 && exitCode <= 255)
    return { ok: true, detail: `succeeded (exit ${exitCode}: weight ${exitCode - 2})`, weightDelta: exitCode - 2 - configuredWeight };
  return { ok: false, detail: `failed (exited with status ${exitCode})` };
}

/** keepalived's MISC_CHECK. */
export class MiscChecker implements Checker {
  readonly type = "MISC_CHECK";
  #running: ScriptHandle | undefined;

  constructor(
    readonly script: PreparedScript,
    readonly opts: { timeoutMs: number; dynamic: boolean; configuredWeight: number; runner: ScriptRunner; key: string },
  ) {}

  /** Runs the script once (never two at a time for one checker). */
  async run(): Promise<CheckOutcome> {
    const o: RunOptions = { timeoutMs: this.opts.timeoutMs, timeoutSignal: "SIGTERM", killIntervalMs: 2000 };
    if (this.script.identity) o.identity = this.script.identity;
    const h = this.opts.runner.run(this.opts.key, this.script.argv, o);
    if (h === "skipped") return { ok: false, detail: "previous run still active" };
    this.#running = h;
    const r = await h.result;
    this.#running = undefined;
    if (r.timedOut) return { ok: false, detail: "timed out" };
    if (r.error && r.exitCode === null) return { ok: false, detail: `failed (${r.error})` };
    if (r.signal) return { ok: false, detail: `failed (due to signal ${r.signal})` };
    return miscOutcome(r.exitCode ?? 1, this.opts.dynamic, this.opts.configuredWeight);
  }

  close(): void {
    this.#running?.terminate(2000);
  }
}
