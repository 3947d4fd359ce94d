/**
 * `lvs_sync_daemon IFACE [[inst] VRRP_INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group ADDR]`:
 * which kernel connection-sync daemons should run. Tied to a VRRP instance, the master daemon
 * runs while that instance is MASTER and the backup daemon otherwise (keepalived's
 * ipvs_syncd_master/ipvs_syncd_backup); untied, both run. Pure.
 */
import type { Model } from "../config/model.ts";
import type { Rec } from "../config/schema/kinds.ts";
import type { IpvsDaemonState, IpvsSyncDaemon } from "./ipvs-types.ts";

/** The resolved lvs_sync_daemon settings. */
export interface SyncDaemonConfig {
  interface: string;
  /** The VRRP instance it follows, if any. */
  instance?: string;
  /** Sync id: `id`, else the instance's VRID, else 0. */
  syncId: number;
  maxLen?: number;
  port?: number;
  ttl?: number;
  group?: string;
}

/** Reads lvs_sync_daemon from global_defs; an unknown instance drops the setting with an error, as keepalived does. */
export function syncDaemonConfig(model: Pick<Model, "global" | "vrrp_instance">): { config?: SyncDaemonConfig; error?: string } {
  const r = model.global.doc.lvs_sync_daemon as Rec | undefined;
  if (!r || r.interface === undefined) return {};
  const instance = r.instance as string | undefined;
  let syncId = r.id as number | undefined;
  if (instance !== undefined) {
    const inst = model.vrrp_instance.find((i) => i.name === instance);
    if (!inst) return { error: `Unable to find vrrp instance ${instance} for lvs_syncd - clearing lvs_syncd config` };
    syncId ??= inst.virtual_router_id;
  }
  const config: SyncDaemonConfig = { interface: String(r.interface), syncId: syncId ?? 0 };
  if (instance !== undefined) config.instance = instance;
  if (r.maxlen !== undefined) config.maxLen = r.maxlen as number;
  if (r.port !== undefined) config.port = r.port as number;
  if (r.ttl !== undefined) config.ttl = r.ttl as number;
  if (r.group !== undefined) config.group = String(r.group);
  return { config };
}

/** The daemon of one state with these settings. */
export function syncDaemon(cfg: SyncDaemonConfig, state: IpvsDaemonState): IpvsSyncDaemon {
  const d: IpvsSyncDaemon = { state, mcastIfn: cfg.interface, syncId: cfg.syncId };
  if (cfg.maxLen !== undefined) d.syncMaxLen = cfg.maxLen;
  if (cfg.group !== undefined) d.mcastGroup = cfg.group;
  if (cfg.port !== undefined) d.mcastPort = cfg.port;
  if (cfg.ttl !== undefined) d.mcastTtl = cfg.ttl;
  return d;
}

/**
 * The daemons that should run: none without config or while stopping; both when untied;
 * tied, master while the instance's state is MASTER, else backup (INIT, BACKUP, FAULT).
 */
export function desiredSyncDaemons(cfg: SyncDaemonConfig | undefined, instanceState: string | undefined, stopping = false): IpvsSyncDaemon[] {
  if (!cfg || stopping) return [];
  if (cfg.instance === undefined) return [syncDaemon(cfg, "master"), syncDaemon(cfg, "backup")];
  return [syncDaemon(cfg, instanceState === "MASTER" ? "master" : "backup")];
}

const sameDaemon = (a: IpvsSyncDaemon, b: IpvsSyncDaemon): boolean =>
  a.state === b.state && a.mcastIfn === b.mcastIfn && a.syncId === b.syncId &&
  (a.syncMaxLen === undefined || b.syncMaxLen === undefined || a.syncMaxLen === b.syncMaxLen) &&
  (a.mcastGroup === undefined || b.mcastGroup === undefined || a.mcastGroup === b.mcastGroup) &&
  (a.mcastPort === undefined || b.mcastPort === undefined || a.mcastPort === b.mcastPort) &&
  (a.mcastTtl === undefined || b.mcastTtl === undefined || a.mcastTtl === b.mcastTtl);

/**
 * What to stop and start to get from `running` to `desired`: stops first (the kernel runs one
 * daemon per state), a daemon with other settings is restarted. Only states vipd manages
 * (`managed`: those it ever wanted) are stopped, so a daemon started by hand with no config is left alone.
 */
export function planSyncDaemons(desired: readonly IpvsSyncDaemon[], running: readonly IpvsSyncDaemon[], managed: ReadonlySet<IpvsDaemonState>): { stop: IpvsDaemonState[]; start: IpvsSyncDaemon[] } {
  const stop: IpvsDaemonState[] = [];
  const start: IpvsSyncDaemon[] = [];
  for (const r of running) {
    const want = desired.find((d) => d.state === r.state);
    if (want ? !sameDaemon(want, r) : managed.has(r.state)) stop.push(r.state);
  }
  for (const d of desired) {
    const r = running.find((x) => x.state === d.state);
    if (!r || !sameDaemon(d, r)) start.push(d);
  }
  return { stop, start };
}
