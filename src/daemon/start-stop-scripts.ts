/**
 * global_defs startup_script / shutdown_script (keepalived's run_startup_script and the
 * shutdown script in stop_keepalived): run once before anything starts and once after
 * everything stopped, each bounded by its timeout (TERM to the process group, then KILL). A
 * failure is logged and the daemon goes on, as keepalived does.
 */
import type { Model } from "../config/model.ts";
import type { ScriptRef } from "../config/schema/kinds.ts";
import type { Logger } from "./logger.ts";
import { defaultScriptIdentity, prepareScript, runScript } from "./scripts.ts";

/** Runs the configured startup or shutdown script to completion (or its timeout); never throws. */
export async function runStartStopScript(which: "startup" | "shutdown", model: Pick<Model, "global">, log: Logger): Promise<void> {
  const doc = model.global.doc;
  const ref = doc[`${which}_script`] as ScriptRef | undefined;
  if (!ref) return;
  const timeoutS = (doc[`${which}_script_timeout`] as number | undefined) ?? 10;
  const ident = defaultScriptIdentity(model.global);
  if (ident && "error" in ident) {
    log.error(`${which} script ${ref.cmd}: ${ident.error}`);
    return;
  }
  const prepared = prepareScript(ref, ident);
  if ("error" in prepared) {
    log.error(`${which} script: ${prepared.error}`);
    return;
  }
  log.info(`Running ${which} script ${prepared.cmd}`);
  const r = await runScript(prepared.argv, { timeoutMs: timeoutS * 1000, timeoutSignal: "SIGTERM", ...(prepared.identity ? { identity: prepared.identity } : {}) }).result;
  if (r.timedOut) log.warn(`${which} script ${prepared.cmd} timed out after ${timeoutS} s and was killed`);
  else if (r.error) log.error(`${which} script ${prepared.cmd} failed: ${r.error}`);
  else if (r.exitCode) log.info(`${which} script failed, status ${r.exitCode}`);
  else if (r.signal) log.info(`${which} script killed by ${r.signal}`);
  else log.debug(`${which} script succeeded`);
}
