/**
 * The daemon side of LVS: owns the IpvsApi, keeps the kernel's IPVS table equal to what the
 * config and the real servers' health say (at start, after every lifecycle change, and every
 * few seconds to repair outside changes such as `ipvsadm -C`), runs notify and quorum
 * scripts, writes LVS FIFO lines, sends alert mail, steers the sync daemon and answers status.
 * When IPVS is unavailable it says so once and does nothing else: VRRP keeps running.
 */
import type { Model } from "../config/model.ts";
import type { ScriptRef } from "../config/schema/kinds.ts";
import {
  type AlertGlobals, type CheckerKind, alertGlobalsFromDoc, checkerEmail, realServerAlertEnabled, realServerRemovedEmail,
  shouldMailChecker, virtualServerAlertEnabled, virtualServerEmail,
} from "../daemon/alerts.ts";
import type { VirtualServerId } from "../daemon/fifo.ts";
import type { Logger } from "../daemon/logger.ts";
import { type Identity, ScriptRunner, defaultScriptIdentity, prepareScript, waitBounded } from "../daemon/scripts.ts";
import type { Email } from "../daemon/smtp.ts";
import { type DesiredLvs, type RealServerSpec, type VirtualServerSpec, desiredFromModel, serviceId } from "./desired.ts";
import { type AutoFwmarks, type NftIpvsTable, nftIpvsConfig, nftIpvsScript, nftIpvsTables, nftIpvsTeardownScript } from "./nft-ipvs.ts";
import {
  type IpvsApi, type IpvsDaemonState, type IpvsDestinationEntry, type IpvsSyncDaemon, type IpvsTimeouts, serviceKeyString,
} from "./ipvs-types.ts";
import { type DesiredService, type LifecycleAction, LvsLifecycle, haSuspended } from "./lifecycle.ts";
import { type IpvsOp, type ObservedService, applyOps, describeOp, destId, observe, planReconcile, planStop } from "./reconcile.ts";
import { type SyncDaemonConfig, desiredSyncDaemons, planSyncDaemons, syncDaemonConfig } from "./sync-daemon.ts";

/** What opening IPVS gave: the table, or why not (ffi/ipvs.ts's Ipvs.open has this shape). */
export type IpvsOpen = { ok: true; ipvs: IpvsApi } | { ok: false; reason: string; message: string };

/** Where LVS FIFO lines go (daemon/fifo.ts's NotifyFifos fits). */
export interface LvsFifoSink {
  virtualServer(vs: VirtualServerId, up: boolean): void;
  realServer(rs: { ip: string; port?: number }, vs: VirtualServerId, up: boolean): void;
}

/** Applies nftables scripts (ffi/nft.ts's Nft fits): for nftables_ipvs. */
export interface LvsNft {
  /** Whether an nft binary is there. */
  readonly available: boolean;
  apply(script: string, what: string): Promise<{ ok: true } | { ok: false; missing: boolean; error: string }>;
}

/** The one error when nftables_ipvs is configured but nft cannot be run. */
export const NFT_IPVS_MISSING_MESSAGE =
  "nftables_ipvs: the 'nft' command was not found; virtual_server_group addresses are programmed as one IPVS service each instead (install the nftables package)";

/** Runs a notify/quorum script (the default uses daemon/scripts.ts). */
export type LvsScriptRun = (what: string, ref: ScriptRef, opts: { stopping: boolean }) => Promise<unknown> | void;

export interface LvsManagerDeps {
  log: Logger;
  /** Opens the kernel's IPVS table (e.g. `() => Ipvs.open()` from ffi/ipvs.ts). */
  openIpvs: () => IpvsOpen;
  /** Monotonic clock in ms (status "since" stamps). */
  now?: () => number;
  fifo?: LvsFifoSink;
  /** Queues an alert email. */
  mail?: (e: Email) => void;
  runScript?: LvsScriptRun;
  /** Period of the repair reconcile (default 5000 ms; 0 disables). */
  repairIntervalMs?: number;
  /** ha_suspend: the checkers of virtual server `vsKey` must stop (true) or run again (false). */
  onSuspend?: (vsKey: string, suspended: boolean) => void;
  /** nftables for nftables_ipvs; without one (or without nft) groups fall back to per-address services. */
  nft?: LvsNft;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
}

/** A checker's report (the check runner's transition or dynamic-weight event). */
export interface CheckerReport {
  /** realServerRef(vs, rs) as listed by realServers(). */
  rsRef: string;
  checkerIndex: number;
  up: boolean;
  detail?: string;
  latencyMs?: number;
  /** misc_dynamic / FILE_CHECK contribution to the weight (see miscDynamicDelta). */
  weightDelta?: number;
}

export interface CheckerStatus {
  index: number;
  type: string;
  up: boolean;
  hasRun: boolean;
  weightDelta: number;
  detail?: string;
  latencyMs?: number;
}

export interface RealServerStatus {
  ref: string;
  address: string;
  port: number;
  fwdMethod: string;
  alive: boolean;
  configuredWeight: number;
  effectiveWeight: number;
  /** Weight in the kernel (first service of the virtual server); null when not there or unknown. */
  ipvsWeight: number | null;
  inhibitOnFailure: boolean;
  checkers: CheckerStatus[];
}

export interface VirtualServerStatus {
  key: string;
  label: string;
  services: string[];
  scheduler: string;
  quorum: number;
  hysteresis: number;
  quorumUp: boolean;
  weightSum: number;
  sorryServer?: { address: string; port: number; active: boolean; ipvsWeight: number | null };
  /** ha_suspend in effect: checkers are off. */
  suspended: boolean;
  realServers: RealServerStatus[];
}

export interface LvsStatus {
  available: boolean;
  /** Why not, when unavailable. */
  reason?: string;
  virtualServers: VirtualServerStatus[];
  syncDaemons: IpvsSyncDaemon[];
}

/** What a check runner needs to know about each real server. */
export interface RealServerRef {
  ref: string;
  vs: VirtualServerSpec;
  rs: RealServerSpec;
}

export interface LvsManager {
  /** False when IPVS could not be opened (after start). */
  readonly available: boolean;
  /** Opens IPVS, flushes when lvs_flush, sets lvs_timeouts, programs everything, starts the repair timer. */
  start(): void;
  /** Undoes vipd's entries (per lvs_flush_on_stop), runs omega notifies (bounded wait), stops sync daemons. */
  stop(): Promise<void>;
  /** Applies a new model: only the differences reach the kernel; unchanged servers keep their state. */
  reload(model: LvsModel): void;
  /** A checker changed state (or reported a dynamic weight). */
  checkerReport(r: CheckerReport): void;
  /** A VRRP instance changed state (for lvs_sync_daemon). */
  vrrpState(instance: string, state: string): void;
  /** The addresses now configured locally (for ha_suspend). */
  setLocalAddresses(addresses: Iterable<string>): void;
  /** Whether a virtual server's checkers are suspended by ha_suspend now. */
  checkersSuspended(vsKey: string): boolean;
  /** Every real server with its ref, for the check runner. */
  realServers(): RealServerRef[];
  /** Brings the kernel to the desired state now (full dump); returns the operations applied. */
  reconcile(): IpvsOp[];
  /** Resolves once every nftables_ipvs change queued so far has been applied. */
  nftSettled(): Promise<void>;
  status(): LvsStatus;
}

/** The parts of the model LVS reads. */
export type LvsModel = Pick<Model, "virtual_server" | "virtual_server_group" | "global" | "vrrp_instance">;

/** The ref a checker report names a real server by: "<vs key>|<rs key>". */
export function realServerRef(vsKey: string, rsKey: string): string {
  return `${vsKey}|${rsKey}`;
}

/** Splits a realServerRef (the real server key never contains "|"). */
export function parseRealServerRef(ref: string): { vsKey: string; rsKey: string } {
  const i = ref.lastIndexOf("|");
  return { vsKey: ref.slice(0, i), rsKey: ref.slice(i + 1) };
}

const CHECKER_KINDS: Record<string, CheckerKind> = {
  TCP_CHECK: "TCP", HTTP_GET: "HTTP", SSL_GET: "SSL", SMTP_CHECK: "SMTP", DNS_CHECK: "DNS",
  UDP_CHECK: "UDP", PING_CHECK: "PING", MISC_CHECK: "MISC", BFD_CHECK: "BFD",
};

/** The default script runner: keepalived's notify_exec (no wait) or, stopping, a 1 s bounded run. */
function defaultRunner(model: LvsModel, log: Logger): { run: LvsScriptRun; runner: ScriptRunner } {
  const runner = new ScriptRunner();
  let def: Identity | undefined;
  const d = defaultScriptIdentity(model.global);
  if (d && "error" in d) log.warn(`LVS scripts: ${d.error}`);
  else def = d;
  const run: LvsScriptRun = (what, ref, { stopping }) => {
    const p = prepareScript(ref, def);
    if ("error" in p) {
      log.error(`${what}: ${p.error}`);
      return;
    }
    const h = runner.run(undefined, p.argv, { ...(p.identity ? { identity: p.identity } : {}), ...(stopping ? { timeoutMs: 1000 } : {}) });
    if (h === "skipped") return;
    return h.result.then((r) => {
      if (!r.ok) log.warn(`${what} script ${p.cmd} ${r.timedOut ? "timed out" : r.error ? `failed: ${r.error}` : `exited with status ${r.exitCode}`}`);
    });
  };
  return { run, runner };
}

/** Creates the LVS manager for a model (nothing happens until start()). */
export function createLvsManager(model: LvsModel, deps: LvsManagerDeps): LvsManager {
  return new Manager(model, deps);
}

class Manager implements LvsManager {
  private desired: DesiredLvs;
  private lifecycle: LvsLifecycle;
  private alerts: AlertGlobals;
  private sync: SyncDaemonConfig | undefined;
  private syncInstanceState: string | undefined;
  private managedDaemons = new Set<IpvsDaemonState>();
  private api: IpvsApi | undefined;
  private unavailable: string | undefined;
  /** serviceIds vipd programs or programmed (deleted on reload when dropped). */
  private owned = new Set<string>();
  /** What we believe the kernel holds for our services after the last successful apply. */
  private cache: ObservedService[] | undefined;
  private timer: unknown;
  private started = false;
  private local = new Set<string>();
  private savedTimeouts: IpvsTimeouts | undefined;
  private readonly run: LvsScriptRun;
  private readonly runner: ScriptRunner | undefined;
  private readonly pending = new Set<Promise<unknown>>();
  private readonly now: () => number;
  /** nftables_ipvs: marks handed out so far, the tables vipd made, the last script applied. */
  private fwmarks: AutoFwmarks | undefined;
  private nftTables: NftIpvsTable[] = [];
  private nftApplied = "";
  private nftTail: Promise<unknown> = Promise.resolve();
  private nftMissingLogged = false;

  constructor(private model: LvsModel, private readonly deps: LvsManagerDeps) {
    this.desired = this.desiredOf(model);
    this.lifecycle = new LvsLifecycle(this.desired.virtualServers, { rsInitNotifies: model.global.doc.rs_init_notifies === true });
    this.alerts = alertGlobalsFromDoc(model.global.router_id, model.global.doc);
    this.now = deps.now ?? (() => performance.now());
    const s = syncDaemonConfig(model);
    if (s.error) deps.log.error(s.error);
    this.sync = s.config;
    if (deps.runScript) this.run = deps.runScript;
    else {
      const r = defaultRunner(model, deps.log);
      this.run = r.run;
      this.runner = r.runner;
    }
  }

  get available(): boolean {
    return this.api !== undefined;
  }

  /** The desired state; nftables_ipvs without nft falls back (one error) to per-address services, as keepalived built without nftables. */
  private desiredOf(model: LvsModel): DesiredLvs {
    let nftIpvs = true;
    if (nftIpvsConfig(model.global.doc) && !this.deps.nft?.available) {
      nftIpvs = false;
      if (!this.nftMissingLogged) this.deps.log.error(NFT_IPVS_MISSING_MESSAGE);
      this.nftMissingLogged = true;
    }
    const d = desiredFromModel(model, { nftIpvs, ...(this.fwmarks ? { previousFwmarks: this.fwmarks } : {}) });
    if (d.nftIpvs) this.fwmarks = d.nftIpvs.fwmarks;
    return d;
  }

  /** Brings vipd's nftables_ipvs tables to the desired ruleset (atomic replace; nothing when unchanged). */
  private syncNft(): void {
    const nft = this.deps.nft;
    const ruleset = this.desired.nftIpvs?.ruleset;
    if (!nft || (!ruleset && !this.nftTables.length)) return;
    let script: string;
    try {
      script = nftIpvsScript(ruleset, this.nftTables);
    } catch (e) {
      this.deps.log.error(`nftables_ipvs: ${(e as Error).message}`);
      return;
    }
    if (script === this.nftApplied) return;
    const want = nftIpvsTables(ruleset);
    // Until nft answers, teardown must cover both the old and the new tables.
    this.nftTables = [...want, ...this.nftTables.filter((t) => !want.some((w) => w.family === t.family && w.name === t.name))];
    this.nftApplied = script;
    const run = nft.apply(script, "ipvs").then((r) => {
      if (r.ok) {
        if (this.nftApplied === script) this.nftTables = want;
        this.deps.log.info(want.length ? `nftables_ipvs: marking rules in ${want.map((t) => `${t.family} ${t.name}`).join(", ")}` : "nftables_ipvs: tables removed");
      } else {
        this.nftApplied = "";
        this.deps.log.error(r.missing ? NFT_IPVS_MISSING_MESSAGE : r.error);
      }
    });
    this.nftTail = run.catch(() => undefined);
  }

  /** Resolves when every nftables change queued so far has been applied (tests). */
  nftSettled(): Promise<void> {
    return this.nftTail.then(() => undefined);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    const needed = this.desired.virtualServers.length > 0 || this.sync !== undefined || this.desired.globals.flush || this.desired.globals.timeouts;
    if (!needed) return;
    const r = this.deps.openIpvs();
    if (!r.ok) {
      this.unavailable = r.message;
      this.deps.log.error(r.message);
      return;
    }
    this.api = r.ipvs;
    for (const w of this.desired.warnings) this.deps.log.warn(w);
    if (this.desired.globals.flush) this.exec([{ op: "flush" }], "lvs_flush");
    this.applyTimeouts();
    this.handle(this.lifecycle.start(this.now()));
    this.initSuspension();
    this.reconcile();
    this.syncNft();
    this.applySyncDaemons();
    this.armRepair();
  }

  private applyTimeouts(): void {
    const t = this.desired.globals.timeouts;
    if (!t || !this.api) return;
    try {
      this.savedTimeouts ??= this.api.timeouts();
      this.api.setTimeouts(t);
    } catch (e) {
      this.deps.log.warn(`Failed to set ipvs timeouts: ${(e as Error).message}`);
    }
  }

  private initSuspension(): void {
    for (const vs of this.desired.virtualServers) {
      const s = haSuspended(vs, this.local);
      this.lifecycle.setSuspended(vs.key, s);
      if (s) this.deps.onSuspend?.(vs.key, true);
    }
  }

  private armRepair(): void {
    const period = this.deps.repairIntervalMs ?? 5000;
    if (!period || !this.api) return;
    const set = this.deps.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    const tick = () => {
      this.timer = undefined;
      if (!this.started || !this.api) return;
      const ops = this.reconcile();
      if (ops.length) this.deps.log.info(`IPVS: repaired ${ops.length} change(s) made outside vipd`);
      this.timer = set(tick, period);
    };
    this.timer = set(tick, period);
  }

  private disarm(): void {
    if (this.timer !== undefined) (this.deps.clearTimer ?? ((t) => clearTimeout(t as ReturnType<typeof setTimeout>)))(this.timer);
    this.timer = undefined;
  }

  /** Runs ops, logs them; a failure invalidates the cache so the next pass re-reads the kernel. */
  private exec(ops: IpvsOp[], why: string): void {
    if (!this.api || !ops.length) return;
    for (const op of ops) this.deps.log.debug(`IPVS (${why}): ${describeOp(op)}`);
    const res = applyOps(this.api, ops);
    for (const f of res.failed) this.deps.log.error(`IPVS: ${describeOp(f.op)} failed: ${f.error}`);
    if (res.failed.length) this.cache = undefined;
  }

  private desiredNow(): DesiredService[] {
    return this.lifecycle.desiredServices();
  }

  reconcile(): IpvsOp[] {
    if (!this.api) return [];
    const desired = this.desiredNow();
    const ids = new Set(desired.map((d) => serviceId(d.service)));
    let observed: ObservedService[];
    try {
      observed = observe(this.api, new Set([...ids, ...this.owned]));
    } catch (e) {
      this.deps.log.error(`IPVS: cannot read the table: ${(e as Error).message}`);
      return [];
    }
    return this.applyDesired(desired, observed, "reconcile");
  }

  /** Cheap path after a lifecycle change: plan against what we last programmed, no dump. */
  private update(): void {
    if (!this.api) return;
    if (!this.cache) {
      this.reconcile();
      return;
    }
    this.applyDesired(this.desiredNow(), this.cache, "update");
  }

  private applyDesired(desired: DesiredService[], observed: ObservedService[], why: string): IpvsOp[] {
    const ops = planReconcile(desired, observed, this.owned);
    this.cache = desired.map((d) => ({ service: { ...d.service }, dests: d.dests.map((x) => ({ ...x, activeConns: 0, inactConns: 0, persistConns: 0 })) }));
    this.exec(ops, why);
    this.owned = new Set(desired.map((d) => serviceId(d.service)));
    return ops;
  }

  private applySyncDaemons(stopping = false): void {
    if (!this.api || (!this.sync && !this.managedDaemons.size)) return;
    const want = desiredSyncDaemons(this.sync, this.syncInstanceState, stopping);
    for (const d of want) this.managedDaemons.add(d.state);
    let running: IpvsSyncDaemon[];
    try {
      running = this.api.daemons();
    } catch (e) {
      this.deps.log.error(`IPVS: cannot list sync daemons: ${(e as Error).message}`);
      return;
    }
    const plan = planSyncDaemons(want, running, this.managedDaemons);
    for (const s of plan.stop) {
      try {
        this.api.stopDaemon(s);
        this.deps.log.info(`IPVS: stopped the ${s} sync daemon`);
      } catch (e) {
        this.deps.log.error(`IPVS: stopping the ${s} sync daemon failed: ${(e as Error).message}`);
      }
    }
    for (const d of plan.start) {
      try {
        this.api.startDaemon(d);
        this.deps.log.info(`IPVS: started the ${d.state} sync daemon on ${d.mcastIfn} (syncid ${d.syncId})`);
      } catch (e) {
        this.deps.log.error(`IPVS: starting the ${d.state} sync daemon failed: ${(e as Error).message}`);
      }
    }
  }

  private script(what: string, ref: ScriptRef | undefined, stopping: boolean): void {
    if (!ref) return;
    try {
      const p = this.run(what, ref, { stopping });
      if (p && stopping) {
        const q = Promise.resolve(p).finally(() => this.pending.delete(q));
        this.pending.add(q);
      }
    } catch (e) {
      this.deps.log.error(`${what}: ${(e as Error).message}`);
    }
  }

  private handle(actions: LifecycleAction[]): void {
    for (const a of actions) {
      if (a.type === "log") this.deps.log.info(a.message);
      else if (a.type === "rs") {
        const rsId = { ip: a.rs.ip, port: a.rs.port };
        this.script(`real_server ${a.rs.key} of VS ${a.vs.label} notify_${a.up ? "up" : "down"}`, a.up ? a.rs.notifyUp : a.rs.notifyDown, a.stopping);
        this.deps.fifo?.realServer(rsId, a.vs.id, a.up);
        if (a.removed && this.deps.mail && realServerAlertEnabled(a.rs.smtpAlert, this.alerts))
          this.deps.mail(realServerRemovedEmail(this.alerts.router_id, rsId, a.vs.id, a.removed === "stop"));
      } else {
        this.script(`VS ${a.vs.label} quorum_${a.up ? "up" : "down"}`, a.up ? a.vs.quorumUp : a.vs.quorumDown, a.stopping);
        this.deps.fifo?.virtualServer(a.vs.id, a.up);
        if (this.deps.mail && virtualServerAlertEnabled(a.vs.smtpAlert, this.alerts))
          this.deps.mail(virtualServerEmail(this.alerts.router_id, a.vs.id, {
            up: a.up, init: a.init, quorum: a.vs.quorum, hysteresis: a.vs.hysteresis, weightSum: a.weightSum, threshold: a.threshold, ...(a.stopping ? { stopping: true } : {}),
          }));
      }
    }
  }

  /** rsRef → its virtual and real server, rebuilt when the desired state changes (one lookup per check result). */
  private refIndex: { for: DesiredLvs; map: Map<string, { vs: VirtualServerSpec; rs: RealServerSpec }> } | undefined;

  private lookupRef(ref: string): { vs: VirtualServerSpec; rs: RealServerSpec } | undefined {
    if (this.refIndex?.for !== this.desired) {
      const map = new Map<string, { vs: VirtualServerSpec; rs: RealServerSpec }>();
      for (const vs of this.desired.virtualServers) for (const rs of vs.realServers) map.set(realServerRef(vs.key, rs.key), { vs, rs });
      this.refIndex = { for: this.desired, map };
    }
    return this.refIndex.map.get(ref);
  }

  checkerReport(r: CheckerReport): void {
    const hit = this.lookupRef(r.rsRef);
    if (!hit) return;
    const { vs, rs } = hit;
    const vsKey = vs.key;
    const rsKey = rs.key;
    const res = this.lifecycle.checkerResult(vsKey, rsKey, r.checkerIndex, {
      up: r.up, ...(r.weightDelta !== undefined ? { weightDelta: r.weightDelta } : {}),
      ...(r.detail !== undefined ? { detail: r.detail } : {}), ...(r.latencyMs !== undefined ? { latencyMs: r.latencyMs } : {}),
    }, this.now());
    const kind = CHECKER_KINDS[rs.checkers[r.checkerIndex]?.type ?? ""];
    if (kind && this.deps.mail) {
      const input = { enabled: realServerAlertEnabled(rs.smtpAlert, this.alerts), checkerWasUp: res.checkerWasUp, checkerIsUp: r.up, rsWasAlive: res.rsWasAlive, rsIsAlive: res.rsIsAlive };
      if (shouldMailChecker(input, this.alerts)) this.deps.mail(checkerEmail(this.alerts, { ip: rs.ip, port: rs.port }, vs.id, res.rsIsAlive, kind, r.up, r.detail));
    }
    this.handle(res.actions);
    if (res.actions.length) this.update();
  }

  vrrpState(instance: string, state: string): void {
    if (!this.sync || this.sync.instance !== instance) return;
    this.syncInstanceState = state;
    if (this.started) this.applySyncDaemons();
  }

  setLocalAddresses(addresses: Iterable<string>): void {
    this.local = new Set(addresses);
    for (const vs of this.desired.virtualServers) {
      const s = haSuspended(vs, this.local);
      if (!this.lifecycle.setSuspended(vs.key, s)) continue;
      this.deps.log.info(`${s ? "Suspending" : "Activating"} healthchecker for service ${vs.label}`);
      this.deps.onSuspend?.(vs.key, s);
    }
  }

  checkersSuspended(vsKey: string): boolean {
    return this.lifecycle.state(vsKey)?.suspended ?? false;
  }

  realServers(): RealServerRef[] {
    return this.desired.virtualServers.flatMap((vs) => vs.realServers.map((rs) => ({ ref: realServerRef(vs.key, rs.key), vs, rs })));
  }

  reload(model: LvsModel): void {
    this.model = model;
    this.desired = this.desiredOf(model);
    this.alerts = alertGlobalsFromDoc(model.global.router_id, model.global.doc);
    const s = syncDaemonConfig(model);
    if (s.error) this.deps.log.error(s.error);
    this.sync = s.config;
    if (!this.started) {
      this.lifecycle = new LvsLifecycle(this.desired.virtualServers, { rsInitNotifies: model.global.doc.rs_init_notifies === true });
      return;
    }
    if (!this.api) {
      // IPVS was not needed (or not there) before: try again if the new config needs it.
      this.started = false;
      this.lifecycle = new LvsLifecycle(this.desired.virtualServers, { rsInitNotifies: model.global.doc.rs_init_notifies === true });
      if (this.unavailable === undefined) this.start();
      else this.started = true;
      return;
    }
    for (const w of this.desired.warnings) this.deps.log.warn(w);
    this.applyTimeouts();
    this.handle(this.lifecycle.reload(this.desired.virtualServers, this.now()));
    for (const vs of this.desired.virtualServers) {
      const sus = haSuspended(vs, this.local);
      if (this.lifecycle.setSuspended(vs.key, sus)) this.deps.onSuspend?.(vs.key, sus);
    }
    this.reconcile();
    this.syncNft();
    this.applySyncDaemons();
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.disarm();
    const mode = this.desired.globals.flushOnStop;
    if (this.api) {
      let observed: ObservedService[] = [];
      try {
        observed = observe(this.api, this.owned);
      } catch (e) {
        this.deps.log.error(`IPVS: cannot read the table: ${(e as Error).message}`);
      }
      this.handle(this.lifecycle.stop(mode));
      this.exec(planStop(this.owned, observed, mode), "stop");
      this.owned.clear();
      this.cache = undefined;
      this.applySyncDaemons(true);
      await this.teardownNft();
      if (this.savedTimeouts) {
        try {
          this.api.setTimeouts(this.savedTimeouts);
        } catch {
          // nothing more to do at exit
        }
      }
    }
    this.started = false;
    await waitBounded([...this.pending], 2500);
    if (this.runner) await this.runner.shutdown(1000);
    this.api?.close();
    this.api = undefined;
  }

  /** Removes vipd's nftables_ipvs tables (keepalived's nft_ipvs_end), after any queued change. */
  private async teardownNft(): Promise<void> {
    const nft = this.deps.nft;
    await this.nftTail;
    if (!nft || !this.nftTables.length) return;
    const r = await nft.apply(nftIpvsTeardownScript(this.nftTables), "ipvs teardown");
    if (!r.ok) this.deps.log.error(r.error);
    else this.deps.log.info(`nftables_ipvs: removed ${this.nftTables.map((t) => `${t.family} ${t.name}`).join(", ")}`);
    this.nftTables = [];
    this.nftApplied = "";
  }

  status(): LvsStatus {
    const weights = new Map<string, Map<string, IpvsDestinationEntry>>();
    if (this.api) {
      try {
        for (const o of observe(this.api, this.owned)) {
          if (o.dests) weights.set(serviceId(o.service), new Map(o.dests.map((d) => [destId(d), d])));
        }
      } catch {
        // status without kernel weights
      }
    }
    const ipvsWeight = (vs: VirtualServerSpec, rs: RealServerSpec): number | null => {
      const svc = vs.services[0];
      if (!svc) return null;
      const port = rs.fwdMethod === "NAT" ? rs.port || (svc.port ?? 0) : svc.fwmark !== undefined ? 0 : svc.port!;
      return weights.get(serviceId(svc))?.get(destId({ address: rs.ip, port }))?.weight ?? null;
    };
    const virtualServers = this.desired.virtualServers.map((vs): VirtualServerStatus => {
      const st = this.lifecycle.state(vs.key);
      const out: VirtualServerStatus = {
        key: vs.key, label: vs.label, services: vs.services.map(serviceKeyString), scheduler: vs.services[0]?.scheduler ?? "",
        quorum: vs.quorum, hysteresis: vs.hysteresis, quorumUp: st?.quorumUp ?? false, weightSum: this.lifecycle.weightSum(vs.key),
        suspended: st?.suspended ?? false,
        realServers: vs.realServers.map((rs) => {
          const r = st?.rs.get(rs.key);
          return {
            ref: realServerRef(vs.key, rs.key), address: rs.ip, port: rs.port, fwdMethod: rs.fwdMethod, alive: r?.alive ?? false,
            configuredWeight: rs.weight, effectiveWeight: this.lifecycle.effectiveWeight(vs.key, rs.key), ipvsWeight: ipvsWeight(vs, rs),
            inhibitOnFailure: rs.inhibit,
            checkers: rs.checkers.map((c) => {
              const cs = r?.checkers[c.index];
              return {
                index: c.index, type: c.type, up: cs?.up ?? false, hasRun: cs?.hasRun ?? false, weightDelta: cs?.weightDelta ?? 0,
                ...(cs?.detail !== undefined ? { detail: cs.detail } : {}), ...(cs?.latencyMs !== undefined ? { latencyMs: cs.latencyMs } : {}),
              };
            }),
          };
        }),
      };
      if (vs.sorry) out.sorryServer = { address: vs.sorry.ip, port: vs.sorry.port, active: st?.sorryActive ?? false, ipvsWeight: ipvsWeight(vs, vs.sorry) };
      return out;
    });
    let syncDaemons: IpvsSyncDaemon[] = [];
    if (this.api) {
      try {
        syncDaemons = this.api.daemons();
      } catch {
        // leave empty
      }
    }
    return { available: this.api !== undefined, ...(this.unavailable ? { reason: this.unavailable } : {}), virtualServers, syncDaemons };
  }
}
