/**
 * `vipd run`: the daemon in the foreground. Loads the config, starts the VRRP runtime on the
 * real host, serves the control socket, and stops cleanly on SIGTERM/SIGINT.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { formatDiagnostic } from "../config/diagnostics.ts";
import { loadConfig } from "../config/load.ts";
import type { Logger } from "../daemon/logger.ts";
import { VrrpRuntime } from "../daemon/vrrp-runtime.ts";
import { versionLine } from "../version.ts";
import { configOptions, configPath, parseCommandArgs } from "./config-args.ts";
import { LOG_USAGE, logOptions, loggerFromOptions } from "./log-options.ts";
import { parseUmask } from "../config/umask.ts";

export const DEFAULT_PID_FILE = "/run/vipd.pid";

const USAGE = "[-f FILE] [--config-id ID] [--pid-file P] [--control PATH] [--metrics ADDR:PORT] [--dry-run] " + LOG_USAGE;

export async function main(argv: string[]): Promise<number> {
  const args = parseCommandArgs("run", argv, {
    ...configOptions,
    "pid-file": { type: "string", short: "p" },
    control: { type: "string" },
    metrics: { type: "string" },
    "dry-run": { type: "boolean" },
    ...logOptions,
  }, USAGE);
  if (typeof args === "number") return args;
  const log = await loggerFromOptions(args.values);
  if (typeof log === "string") {
    process.stderr.write(`vipd run: ${log}\nusage: vipd run ${USAGE}\n`);
    return 2;
  }
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
  // --dry-run: print what start would change, change nothing (src/cli/dry-run.ts)
  if (args.values["dry-run"] === true) return await (await import("./dry-run.ts")).dryRun(loaded.model, path, log);
  log.info(`Starting ${versionLine()} with ${path}`);
  applyConfigUmask(loaded.model.global.doc.umask, log);

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
  const { setScriptSecurity } = await import("../daemon/scripts.ts");
  setScriptSecurity(loaded.model.global.enable_script_security);
  const { runStartStopScript } = await import("../daemon/start-stop-scripts.ts");
  await runStartStopScript("startup", loaded.model, log); // before anything starts, as keepalived
  const { VrrpEvents } = await import("../daemon/vrrp-events.ts");
  const events = new VrrpEvents(loaded.model, log);
  const { TrackerHub } = await import("../daemon/trackers.ts");
  const trackers = new TrackerHub(loaded.model, host, log, undefined, host.fdWatcher);
  const bfd = await startBfd(loaded.model, log, host.fdWatcher);
  if (bfd) trackers.attachBfd({ state: (n) => (bfd.delivers(n, "vrrp") ? bfd.state(n) : undefined), onVrrpEvent: (cb) => bfd.onVrrpEvent(cb) });
  const { VipdCounters } = await import("../daemon/metrics.ts");
  const counters = new VipdCounters();
  const lvs = await startLvs(loaded.model, log, events, host, bfd);
  const runtime = new VrrpRuntime(loaded.model, host, log, {
    version: versionLine(),
    configFile: path,
    onStateChange: (inst, state, prio) => {
      counters.transition(inst.name, state);
      events.instance(inst, state, prio);
      lvs?.vrrpState(inst.name, state);
    },
    onMasterRxLowerPri: (inst, prio) => events.masterRxLowerPri(inst, prio),
    onPriorityChange: (inst, state, prio) => events.priorityChange(inst, state, prio),
    trackers,
    onGroupStateChange: (group, state) => events.group(group, state),
  });
  try {
    runtime.start();
  } catch (e) {
    log.error(`cannot start: ${(e as Error).message}`);
    host.close();
    return 1;
  }
  let metrics: { stop(): void } | undefined;
  if (typeof args.values.metrics === "string") {
    try {
      const { startDaemonMetrics } = await import("../daemon/metrics-server.ts");
      const m = startDaemonMetrics(args.values.metrics, { status: () => runtime.status(), trackers: () => trackers.snapshot(), counters, ...(lvs ? { lvs } : {}) });
      metrics = m;
      log.info(`Serving metrics on http://${m.hostname.includes(":") ? `[${m.hostname}]` : m.hostname}:${m.port}/metrics`);
    } catch (e) {
      log.error((e as Error).message);
    }
  }
  writePid(pidFile, log);
  const configId = args.values["config-id"] as string | undefined;
  let model = loaded.model;
  removeReloadFile(reloadFileOf(model)); // a stale one from a crash mid-reload
  /** Reload: a config that fails validation is rejected and the running one kept. */
  const reload = (): { ok: boolean; message: string } => {
    // reload_file exists while the configuration is being read (keepalived's create/remove_reload_file)
    const reloadFile = reloadFileOf(model);
    createReloadFile(reloadFile, log);
    let next: ReturnType<typeof loadConfig>;
    try {
      next = loadConfig(path, { configId });
    } finally {
      removeReloadFile(reloadFile);
    }
    const errors = next.diagnostics.errors;
    if (next.missing || errors.length) {
      for (const d of errors) log.error(formatDiagnostic(d));
      const message = `reload rejected: ${errors.length} error(s) in ${path}; still running the previous configuration`;
      counters.reload(false, 0, Date.now() / 1000);
      log.error(message);
      return { ok: false, message };
    }
    for (const d of next.diagnostics.warnings) log.warn(formatDiagnostic(d));
    const t0 = performance.now();
    model = next.model;
    setScriptSecurity(next.model.global.enable_script_security);
    events.reconfigure(next.model);
    const s = runtime.reload(next.model);
    bfd?.reload(next.model.bfd_instance);
    lvs?.reload(next.model);
    counters.reload(true, (performance.now() - t0) / 1000, Date.now() / 1000);
    const message = `Reloaded ${path} in ${(performance.now() - t0).toFixed(1)} ms: ${s.kept.length} kept, ${s.added.length} added, ${s.removed.length} removed`;
    log.info(message);
    return { ok: true, message };
  };
  const status = { status: () => ({ ...runtime.status(), ...(lvs ? { lvs: lvs.status() } : {}), ...(bfd ? { bfd: bfd.status() } : {}) }) };
  const control = await startControl(controlPath, status, log, reload);

  const { startService } = await import("../daemon/service.ts");
  const service = await startService({ status: () => runtime.status(), model: () => model, log, fdWatcher: host.fdWatcher, clearStats: () => runtime.clearStats() });

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (sig: string) => {
      if (stopping) return;
      stopping = true;
      log.info(`Stopping (${sig})`);
      service.stopping();
      runtime.stop();
      await lvs?.stop();
      bfd?.stop();
      await events.close();
      control?.close();
      metrics?.stop();
      host.close();
      await runStartStopScript("shutdown", model, log); // after everything stopped
      rmSync(pidFile, { force: true });
      log.info("Stopped");
      service.close();
      log.close?.();
      resolve(0);
    };
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
    process.on("SIGHUP", () => {
      log.info("Reloading (SIGHUP)");
      service.reloading();
      service.reloaded(reload().message);
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

/** The BFD sessions when the config has bfd_instance blocks (no socket: logged, the rest runs on). */
async function startBfd(model: import("../config/model.ts").Model, log: Logger, watcher: import("../../ffi/fdwatch.ts").FdWatcher) {
  if (!Object.keys(model.bfd_instance).length) return undefined;
  const { BfdRuntime } = await import("../daemon/bfd-runtime.ts");
  const { createBfdNet } = await import("../../ffi/bfd-socket.ts");
  const bfd = new BfdRuntime(model.bfd_instance, { net: createBfdNet(watcher), log });
  try {
    bfd.start();
  } catch (e) {
    log.error(`BFD: ${(e as Error).message}`);
  }
  return bfd;
}

/** The LVS manager when the config has virtual servers (IPVS unavailable: one log line, VRRP runs on). */
async function startLvs(model: import("../config/model.ts").Model, log: Logger, events: import("../daemon/vrrp-events.ts").VrrpEvents, host: import("../../ffi/host.ts").RealHost, bfd?: import("../daemon/bfd-runtime.ts").BfdRuntime) {
  if (!model.virtual_server.length) return undefined;
  const watcher = host.fdWatcher;
  // ha_suspend follows the host's address notifications (as keepalived), not a poll
  const localAddresses = {
    list: () => host.addresses().map((a) => a.address),
    watch(onChange: () => void) {
      let watching = true;
      host.onNetEvent((ev) => {
        if (watching && (ev.kind === "address" || ev.kind === "resync")) onChange();
      });
      return () => void (watching = false);
    },
  };
  const { startLvsDaemon } = await import("../daemon/lvs-daemon.ts");
  const { Ipvs } = await import("../../ffi/ipvs.ts");
  const { createPingTransport } = await import("../../ffi/ping-socket.ts");
  const bfdSide = bfd && { state: (n: string) => (bfd.delivers(n, "checker") ? bfd.state(n) : undefined), onEvent: (cb: (name: string, up: boolean) => void) => bfd.onCheckerEvent(cb) };
  return startLvsDaemon(model, { log, events, openIpvs: () => Ipvs.open(), ping: createPingTransport(watcher), localAddresses, ...(bfdSide ? { bfd: bfdSide } : {}) });
}

async function startControl(path: string, runtime: import("../daemon/status-types.ts").StatusProvider, log: Logger, reload: () => { ok: boolean; message: string }): Promise<{ close(): void } | undefined> {
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

/** global_defs umask (ignored, as keepalived does, when -u/--umask was given on the command line). */
function applyConfigUmask(text: unknown, log: Logger): void {
  const fromCommandLine = process.env.VIPD_UMASK_FROM_CMDLINE === "1";
  delete process.env.VIPD_UMASK_FROM_CMDLINE; // not for the scripts vipd runs
  if (typeof text !== "string") return;
  if (fromCommandLine) {
    log.info("umask command line option specified, ignoring config option");
    return;
  }
  const u = parseUmask(text);
  if ("value" in u) process.umask(u.value);
}

/** global_defs reload_file [PATH]: the file, keepalived's default /run/keepalived.reload without a path. */
function reloadFileOf(model: import("../config/model.ts").Model): string | undefined {
  const r = model.global.doc.reload_file as { path?: string } | true | undefined;
  if (r === undefined) return undefined;
  return typeof r === "object" && r.path ? r.path : "/run/keepalived.reload";
}

function createReloadFile(file: string | undefined, log: Logger): void {
  if (!file) return;
  try {
    writeFileSync(file, "", { mode: 0o644 });
  } catch (e) {
    log.info(`Failed to create reload file (${file}): ${(e as Error).message}`);
  }
}

function removeReloadFile(file: string | undefined): void {
  if (file) rmSync(file, { force: true });
}
