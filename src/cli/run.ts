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
    trackers: new TrackerHub(loaded.model, host, log),
  });
  try {
    runtime.start();
  } catch (e) {
    log.error(`cannot start: ${(e as Error).message}`);
    host.close();
    return 1;
  }
  writePid(pidFile, log);
  const control = await startControl(controlPath, runtime, log);

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
    process.on("SIGHUP", () => log.warn("SIGHUP: reload is not implemented yet; keeping the running configuration"));
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

async function startControl(path: string, runtime: VrrpRuntime, log: Logger): Promise<{ close(): void } | undefined> {
  try {
    const { startControlServer, statusHandlers } = await import("../daemon/control-server.ts");
    return await startControlServer(path, statusHandlers(runtime), { log: (m: string) => log.warn(m) });
  } catch (e) {
    log.error(`control socket ${path}: ${(e as Error).message}`);
    return undefined;
  }
}
