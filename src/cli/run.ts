/**
 * `vipd run`: the daemon in the foreground. Loads the config, starts the VRRP runtime on the
 * real host, serves the control socket, and stops cleanly on SIGTERM/SIGINT.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { formatDiagnostic } from "../config/diagnostics.ts";
import { loadConfig } from "../config/load.ts";
import { consoleLogger, type Logger } from "../daemon/logger.ts";
import { VrrpRuntime } from "../daemon/vrrp-runtime.ts";
import { versionLine } from "../version.ts";
import { configOptions, configPath, parseCommandArgs } from "./config-args.ts";

export const DEFAULT_PID_FILE = "/run/vipd.pid";

const USAGE = "[-f FILE] [--config-id ID] [--pid-file P] [--control PATH] [--log-console] [--log-detail]";

export async function main(argv: string[]): Promise<number> {
  const args = parseCommandArgs("run", argv, {
    ...configOptions,
    "pid-file": { type: "string", short: "p" },
    control: { type: "string" },
    "log-console": { type: "boolean", short: "l" },
    "log-detail": { type: "boolean", short: "D" },
  }, USAGE);
  if (typeof args === "number") return args;
  const log = consoleLogger({ detail: args.values["log-detail"] === true });
  const path = configPath(args.values);
  const loaded = loadConfig(path, { configId: args.values["config-id"] as string | undefined });
  for (const d of loaded.diagnostics.items) {
    if (d.severity === "error") log.error(formatDiagnostic(d));
    else if (d.severity === "warning") log.warn(formatDiagnostic(d));
    else log.debug(formatDiagnostic(d));
  }
  if (loaded.missing) return 6;
  if (loaded.diagnostics.errors.some((d) => d.fatal)) {
    log.error("configuration cannot run; not starting");
    return 2;
  }
  log.info(`Starting ${versionLine()} with ${path}`);

  // Imported here so `vipd check` and friends never load bun:ffi.
  const { RealHost } = await import("../../ffi/host.ts");
  const { DEFAULT_CONTROL_PATH } = await import("../daemon/control-client.ts");
  const pidFile = (args.values["pid-file"] as string | undefined) ?? DEFAULT_PID_FILE;
  const controlPath = (args.values.control as string | undefined) ?? DEFAULT_CONTROL_PATH;

  let host: InstanceType<typeof RealHost>;
  try {
    host = new RealHost();
  } catch (e) {
    log.error(`cannot open netlink: ${(e as Error).message}`);
    return 1;
  }
  const { VrrpEvents } = await import("../daemon/vrrp-events.ts");
  const events = new VrrpEvents(loaded.model, log);
  const { TrackerHub } = await import("../daemon/trackers.ts");
  const runtime = new VrrpRuntime(loaded.model, host, log, {
    version: versionLine(),
    configFile: path,
    onStateChange: (inst, state, prio) => events.instance(inst, state, prio),
    onMasterRxLowerPri: (inst, prio) => events.masterRxLowerPri(inst, prio),
    onPriorityChange: (inst, state, prio) => events.priorityChange(inst, state, prio),
    trackers: new TrackerHub(loaded.model, host, log, undefined, host.fdWatcher),
    onGroupStateChange: (group, state) => events.group(group, state),
  });
  try {
    runtime.start();
  } catch (e) {
    log.error(`cannot start: ${(e as Error).message}`);
    host.close();
    return 1;
  }
  writePid(pidFile, log);
  const configId = args.values["config-id"] as string | undefined;
  /** Reload: a config that fails validation is rejected and the running one kept. */
  const reload = (): { ok: boolean; message: string } => {
    const next = loadConfig(path, { configId });
    const errors = next.diagnostics.errors;
    if (next.missing || errors.length) {
      for (const d of errors) log.error(formatDiagnostic(d));
      const message = `reload rejected: ${errors.length} error(s) in ${path}; still running the previous configuration`;
      log.error(message);
      return { ok: false, message };
    }
    for (const d of next.diagnostics.warnings) log.warn(formatDiagnostic(d));
    const t0 = performance.now();
    events.reconfigure(next.model);
    const s = runtime.reload(next.model);
    const message = `Reloaded ${path} in ${(performance.now() - t0).toFixed(1)} ms: ${s.kept.length} kept, ${s.added.length} added, ${s.removed.length} removed`;
    log.info(message);
    return { ok: true, message };
  };
  const control = await startControl(controlPath, runtime, log, reload);

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (sig: string) => {
      if (stopping) return;
      stopping = true;
      log.info(`Stopping (${sig})`);
      runtime.stop();
      await events.close();
      control?.close();
      host.close();
      rmSync(pidFile, { force: true });
      log.info("Stopped");
      resolve(0);
    };
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
    process.on("SIGHUP", () => {
      log.info("Reloading (SIGHUP)");
      reload();
    });
  });
}

function writePid(path: string, log: Logger): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${process.pid}\n`);
  } catch (e) {
    log.warn(`cannot write pid file ${path}: ${(e as Error).message}`);
  }
}

async function startControl(path: string, runtime: VrrpRuntime, log: Logger, reload: () => { ok: boolean; message: string }): Promise<{ close(): void } | undefined> {
  try {
    const { startControlServer, statusHandlers } = await import("../daemon/control-server.ts");
    const handlers = {
      ...statusHandlers(runtime),
      reload: () => {
        const r = reload();
        if (!r.ok) throw new Error(r.message);
        return r.message;
      },
    };
    return await startControlServer(path, handlers, { log: (m: string) => log.warn(m) });
  } catch (e) {
    log.error(`control socket ${path}: ${(e as Error).message}`);
    return undefined;
  }
}
