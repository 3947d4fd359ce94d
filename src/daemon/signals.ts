/**
 * keepalived's dump signals: USR1 writes the data dump, USR2 the stats dump, SIGRTMIN+2 the
 * JSON dump and SIGRTMAX-1 clears the stats — to keepalived's files (state_dump_file,
 * stats_dump_file, json_dump_file, json_version), so tools written for keepalived (OpenWrt's
 * rpcd plugin, Prometheus exporters) keep working. HUP/TERM/INT stay with `vipd run`.
 */
import { openSync, closeSync, renameSync, rmSync, writeSync } from "node:fs";
import type { GlobalModel } from "../config/model.ts";
import { renderDataDump, renderStatsDump } from "./keepalived-dumps.ts";
import { renderKeepalivedJson, toKeepalivedJson } from "./keepalived-json.ts";
import type { Logger } from "./logger.ts";
import type { DaemonStatus } from "./status-types.ts";

/** keepalived's names for `--signum=NAME`. TDUMP only exists in keepalived debug builds. */
export const SIGNAL_FUNCS = ["STOP", "RELOAD", "DATA", "STATS", "STATS_CLEAR", "JSON"] as const;
export type SignalFunc = (typeof SIGNAL_FUNCS)[number];

/** The signal numbers keepalived uses, given libc's SIGRTMIN/SIGRTMAX (glibc 34/64: JSON 36, STATS_CLEAR 63). */
export function signalNumbers(rtmin: number, rtmax: number): Record<SignalFunc, number> {
  return { STOP: 15, RELOAD: 1, DATA: 10, STATS: 12, STATS_CLEAR: rtmax - 1, JSON: rtmin + 2 };
}

/** Where the dumps go and which JSON layout, from global_defs (keepalived's defaults otherwise). */
export interface DumpPaths {
  data: string;
  stats: string;
  json: string;
  jsonVersion: 1 | 2;
}

/** The dump paths a config asks for. */
export function dumpPaths(global: GlobalModel): DumpPaths {
  const doc = global.doc as Record<string, unknown>;
  const str = (k: string, d: string) => (typeof doc[k] === "string" && doc[k] ? (doc[k] as string) : d);
  return {
    data: str("state_dump_file", "/tmp/keepalived.data"),
    stats: str("stats_dump_file", "/tmp/keepalived.stats"),
    json: str("json_dump_file", "/tmp/keepalived.json"),
    jsonVersion: doc.json_version === 2 ? 2 : 1,
  };
}

/**
 * Replaces `path` with `text`, mode 0600. Written to a fresh sibling opened O_EXCL and renamed
 * over the target: readers never see half a dump, and a symlink planted at either name in /tmp
 * is replaced, not followed (keepalived's CVE-2018-19044..19046).
 */
export function writeDumpFile(path: string, text: string): void {
  const tmp = `${path}.vipd-${process.pid}`;
  rmSync(tmp, { force: true });
  const fd = openSync(tmp, "wx", 0o600);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export interface DumpSignalOptions {
  status: () => DaemonStatus;
  /** Called at each dump, so a reload that changes the paths takes effect. */
  paths: () => DumpPaths;
  log: Logger;
  /** Zeroes the VRRP counters (SIGRTMAX-1); without it the signal is logged and ignored. */
  clearStats?: () => void;
  /** libc's SIGRTMIN and SIGRTMAX (ffi/rt-signal.ts). */
  rtmin: number;
  rtmax: number;
  /** Subscribes to real-time signals (ffi/rt-signal.ts watchRtSignals bound to the daemon's fd watcher). */
  watchRt?: (signals: number[], onSignal: (sig: number) => void) => { close(): void };
  /** Wall clock in seconds (tests pass their own). */
  nowSeconds?: () => number;
}

export interface DumpSignals {
  /** Performs one signal function now, as if its signal had arrived. */
  run(func: "DATA" | "STATS" | "JSON" | "STATS_CLEAR"): void;
  /** Stops listening (the RT signals are ignored from then on). */
  close(): void;
}

/** Listens for USR1, USR2, SIGRTMIN+2 and SIGRTMAX-1 and writes keepalived's dumps. */
export function installDumpSignals(o: DumpSignalOptions): DumpSignals {
  const nums = signalNumbers(o.rtmin, o.rtmax);
  const now = o.nowSeconds ?? (() => Date.now() / 1000);
  const write = (what: string, path: string, render: () => string) => {
    try {
      writeDumpFile(path, render());
      o.log.info(`Printing VRRP ${what} for process(${process.pid}) on signal`);
    } catch (e) {
      o.log.error(`cannot write ${what} dump to ${path}: ${(e as Error).message}`);
    }
  };
  const run: DumpSignals["run"] = (func) => {
    const p = o.paths();
    if (func === "DATA") write("data", p.data, () => renderDataDump(o.status(), now()));
    else if (func === "STATS") write("stats", p.stats, () => renderStatsDump(o.status()));
    else if (func === "JSON") write("as json", p.json, () => renderKeepalivedJson(toKeepalivedJson(o.status(), p.jsonVersion)));
    else if (o.clearStats) {
      o.clearStats();
      o.log.info("Clearing VRRP stats on signal");
    } else o.log.warn("STATS_CLEAR signal: clearing statistics is not supported by this vipd; ignored");
  };
  const onUsr1 = () => run("DATA");
  const onUsr2 = () => run("STATS");
  process.on("SIGUSR1", onUsr1);
  process.on("SIGUSR2", onUsr2);
  let rt: { close(): void } | undefined;
  if (o.watchRt) {
    try {
      rt = o.watchRt([nums.JSON, nums.STATS_CLEAR], (sig) => run(sig === nums.JSON ? "JSON" : "STATS_CLEAR"));
    } catch (e) {
      o.log.warn(`signals ${nums.JSON} (JSON) and ${nums.STATS_CLEAR} (STATS_CLEAR) unavailable: ${(e as Error).message}; 'vipd status --keepalived-json' still works`);
    }
  }
  return {
    run,
    close: () => {
      process.off("SIGUSR1", onUsr1);
      process.off("SIGUSR2", onUsr2);
      rt?.close();
    },
  };
}
