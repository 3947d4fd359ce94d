/**
 * What `vipd run` does for its service manager: systemd notifications (READY, RELOADING,
 * STOPPING, STATUS through $NOTIFY_SOCKET) and keepalived's dump signals (USR1, USR2,
 * SIGRTMIN+2, SIGRTMAX-1). The OS pieces are loaded from ffi/ here so run.ts stays small.
 */
import type { FdWatcher } from "../../ffi/fdwatch.ts";
import type { Model } from "../config/model.ts";
import type { Logger } from "./logger.ts";
import { dumpPaths, installDumpSignals } from "./signals.ts";
import type { DaemonStatus } from "./status-types.ts";

export interface ServiceOptions {
  status: () => DaemonStatus;
  /** The running config (changes with reloads: the dump paths follow it). */
  model: () => Model;
  log: Logger;
  fdWatcher: FdWatcher;
  clearStats?: () => void;
}

export interface Service {
  /** A reload starts (SIGHUP). */
  reloading(): void;
  /** A reload ended (accepted or rejected): READY again, with the outcome as STATUS. */
  reloaded(message: string): void;
  /** Shutdown starts. */
  stopping(): void;
  /** Releases signals and sockets. */
  close(): void;
}

/** One line for `systemctl status`: instance states at a glance. */
export function statusLine(s: DaemonStatus): string {
  const counts = new Map<string, number>();
  for (const i of s.instances) counts.set(i.state, (counts.get(i.state) ?? 0) + 1);
  const parts = [...counts].map(([state, n]) => `${n} ${state}`);
  return `${s.instances.length} VRRP instance(s)${parts.length ? `: ${parts.join(", ")}` : ""}`;
}

/** Installs the dump signals and tells systemd the daemon is ready. */
export async function startService(o: ServiceOptions): Promise<Service> {
  const { SdNotifier } = await import("../../ffi/sd-notify.ts");
  const rt = await import("../../ffi/rt-signal.ts");
  const notifier = SdNotifier.fromEnv();
  const dumps = installDumpSignals({
    status: o.status,
    paths: () => dumpPaths(o.model().global),
    log: o.log,
    clearStats: o.clearStats,
    rtmin: rt.sigrtmin(),
    rtmax: rt.sigrtmax(),
    watchRt: (signals, onSignal) => rt.watchRtSignals(signals, onSignal, o.fdWatcher),
  });
  const report = (what: string, err: number) => {
    if (err) o.log.warn(`sd_notify ${what} to ${notifier.socket} failed (errno ${err})`);
  };
  report("READY", notifier.ready(statusLine(o.status())));
  return {
    reloading: () => report("RELOADING", notifier.reloading()),
    reloaded: (message) => report("READY", notifier.ready(`${message.slice(0, 200)}; ${statusLine(o.status())}`)),
    stopping: () => report("STOPPING", notifier.stopping()),
    close: () => {
      dumps.close();
      notifier.close();
    },
  };
}
