/**
 * Runs the configured VRRP instances on a Host: opens the shared channels, feeds received
 * adverts and timer expiries to each VrrpInstance, and carries out the actions it returns
 * (adverts, addresses, GARP/NA, state changes, logs).
 */
import type { AddressEntry, Model, VrrpInstanceModel } from "../config/model.ts";
import { broadcastOf, canonicalIp, formatIPv4, parseIp } from "../net/addr.ts";
import { buildIpv4Advert, buildIpv6Advert, nextIpId, passwordBytes } from "../vrrp/codec.ts";
import { garpFrame, naFrame } from "../vrrp/frames.ts";
import { GarpPacer } from "../vrrp/garp-schedule.ts";
import { compareIp, type InstanceParams, VrrpInstance, type VrrpAction } from "../vrrp/instance.ts";
import { createSyncGroups, type SyncGroup, type SyncGroupAction } from "../vrrp/sync-group.ts";
import { nextAhSeq } from "../vrrp/ah.ts";
import { clampDelays, LinkDebouncer, type LinkDelays } from "../vrrp/link-debounce.ts";
import { roundAdverInt } from "../vrrp/timing.ts";
import { AUTH_AH, AUTH_NONE, AUTH_PASS, newStats, type AuthType, type RxMeta, STATE_NAMES, VrrpState } from "../vrrp/types.ts";
import { parseReceived, type RxConfig, validateAdvert } from "../vrrp/validate.ts";
import { trackOutcome, type TrackedState } from "../vrrp/tracking.ts";
import type { Host, HostAddress, HostAddressSpec, HostLink, NetEvent, VrrpChannel } from "./host.ts";
import type { TrackerHub, TrackKind } from "./trackers.ts";
import type { Logger } from "./logger.ts";
import { addressSpec } from "./address-spec.ts";
import { NetConfig } from "./net-config.ts";
import type { DaemonStatus, VrrpInstanceStatus } from "./status-types.ts";

const IPPROTO_VRRP = 112;
const IPPROTO_AH = 51;
const SCOPES: Record<string, number> = { global: 0, site: 200, link: 253, host: 254, nowhere: 255 };

/** What the runtime tells the outside world about state changes (notify scripts, FIFO, ...). */
export interface StateListener {
  (inst: VrrpInstanceModel, state: "MASTER" | "BACKUP" | "FAULT" | "STOP" | "DELETED", priority: number): void;
}

/** One configured instance with everything the runtime keeps for it. */
interface Runner {
  model: VrrpInstanceModel;
  fsm: VrrpInstance;
  channel: Channel;
  rx: RxConfig;
  /** Source address of our adverts (primary IPv4 of the interface, or its IPv6 link-local). */
  src: string;
  ipId: number;
  /**
   * keepalived's single AH sequence counter: incremented for each advert we send, and set to
   * the sequence number of each AH advert we accept. Sharing it is what lets a restarted
   * router (starting again from 1) be accepted: it continues from its peer's numbers.
   */
  ahSeq: number;
  timer: unknown;
  vipsSet: boolean;
  /** Addresses we installed (so we remove exactly those). */
  installed: InstalledAddress[];
  lastTransition: number;
  /** Drop reasons already logged since the last accepted advert (keepalived's rate limit). */
  loggedDrops: Set<string>;
  /** Tracked objects and the weights this instance gives them. */
  tracks: Array<{ kind: TrackKind; name: string; weight: number; reverse: boolean }>;
  /** Fault reasons currently raised from tracking. */
  trackFaults: Set<string>;
  /** garp_extra_if: the periodic GARP timer while MASTER. */
  extraGarpTimer?: unknown;
}

type InstalledAddress = { spec: HostAddressSpec; text: string; ifname: string; noTrack?: boolean };

interface Channel {
  key: string;
  ifname: string;
  family: "inet" | "inet6";
  group: string;
  io: VrrpChannel;
  byVrid: Map<number, Runner[]>;
}

export interface RuntimeOptions {
  version: string;
  configFile: string;
  onStateChange?: StateListener;
  /** Tracked scripts, interfaces, files and processes (absent: nothing is tracked). */
  trackers?: TrackerHub;
  /** A MASTER heard a lower-priority advert (notify_master_rx_lower_pri, FIFO). */
  onMasterRxLowerPri?: (inst: VrrpInstanceModel, priority: number) => void;
  /** The effective priority changed (FIFO MASTER_PRIORITY / BACKUP_PRIORITY). */
  onPriorityChange?: (inst: VrrpInstanceModel, state: string, priority: number) => void;
  /** A sync group changed state (group notifies, FIFO GROUP lines). */
  onGroupStateChange?: (group: string, state: "MASTER" | "BACKUP" | "FAULT" | "STOP") => void;
}

/** What a reload changed, for the log and the control socket's answer. */
export interface ReloadSummary {
  kept: string[];
  added: string[];
  removed: string[];
}

export class VrrpRuntime {
  #host: Host;
  #log: Logger;
  #model: Model;
  #opts: RuntimeOptions;
  #runners: Runner[] = [];
  #channels = new Map<string, Channel>();
  /** GARP/NA pacers by "IFNAME|kind" or, for a garp_group, "group N|kind"; queued items are "IFNAME\tADDRESS". */
  #pacers = new Map<string, { pacer: GarpPacer; timer: unknown; kind: "arp" | "na" }>();
  /** track_group: instance name → the interfaces of the static entries its track groups follow. */
  #trackGroupIfs = new Map<string, Set<string>>();
  /** garp_group: the group each listed interface paces with, and its intervals (ms; 0 = unpaced). */
  #garpGroups = new Map<string, { id: number; garpMs: number; gnaMs: number }>();
  #links = new Map<string, HostLink>();
  /** interface_up_down_delays: link changes wait here; the newest report and timer of each interface. */
  #debounce: LinkDebouncer;
  #debounceTimers = new Map<string, unknown>();
  #reported = new Map<string, HostLink>();
  /** Sync groups by member name. */
  #groupOf = new Map<string, SyncGroup>();
  #byName = new Map<string, Runner>();
  /** dynamic_interfaces: instances whose interface does not exist yet, started when it appears. */
  #waiting = new Map<string, VrrpInstanceModel>();
  #startedAt = 0;
  #stopped = false;
  /** Routes, rules, VMACs, static entries and no_accept rules beyond the VIPs. */
  #net: NetConfig;

  constructor(model: Model, host: Host, log: Logger, opts: RuntimeOptions) {
    this.#model = model;
    this.#host = host;
    this.#log = log;
    this.#opts = opts;
    this.#net = new NetConfig(model, host, log);
    this.#debounce = new LinkDebouncer(this.#linkDelays(model));
    this.#garpGroups = this.#garpGroupsOf(model);
    this.#trackGroupIfs = trackGroupInterfaces(model);
  }

  /** garp_group blocks → interface → group (keepalived: an interface belongs to the first group naming it). */
  #garpGroupsOf(model: Model): Map<string, { id: number; garpMs: number; gnaMs: number }> {
    const out = new Map<string, { id: number; garpMs: number; gnaMs: number }>();
    model.garp_group.forEach((g, id) => {
      const group = { id, garpMs: Number(g.garp_interval ?? 0) * 1000, gnaMs: Number(g.gna_interval ?? 0) * 1000 };
      const names = [...(typeof g.interface === "string" ? [g.interface] : []), ...((g.interfaces as string[] | undefined) ?? [])];
      if (!names.length) this.#log.warn("garp_group without interface or interfaces - ignoring");
      for (const n of names) {
        if (out.has(n)) this.#log.warn(`garp_group already specified for ${n} - ignoring`);
        else out.set(n, group);
      }
    });
    return out;
  }

  /** interface_up_down_delays in ms, clamped to what the instances on each interface allow (logged). */
  #linkDelays(model: Model): Map<string, LinkDelays> {
    const configured = new Map<string, LinkDelays>();
    for (const l of model.interface_up_down_delays) {
      const down = Number(l.down_delay ?? 0), up = l.up_delay === undefined ? 0 : Number(l.up_delay);
      configured.set(String(l.interface), { downMs: down * 1000, upMs: up * 1000 });
    }
    if (!configured.size) return configured;
    const { delays, logs } = clampDelays(configured, model.vrrp_instance.filter((m) => m.interface).map((m) => ({
      name: m.name, ifname: m.interface!, downTimerAdverts: m.down_timer_adverts, adverIntMs: m.advert_int * 1000,
    })));
    for (const l of logs) this.#log.info(l);
    return delays;
  }

  /** Opens sockets, removes VIPs a crashed predecessor left behind, and starts every instance. */
  start(): void {
    this.#startedAt = this.#host.wallNow();
    this.#net.start(); // VMACs first: channels and VIPs may live on them
    for (const l of this.#host.links()) {
      this.#links.set(l.name, l);
      this.#debounce.report(l.name, l.up, this.#host.now(), true);
    }
    const addrs = this.#host.addresses();
    for (const m of this.#model.vrrp_instance) {
      const r = this.#makeRunner(m, addrs);
      if (r) this.#runners.push(r);
    }
    this.#buildGroups();
    this.#removeStaleAddresses(addrs);
    this.#host.onNetEvent((ev) => this.#onNetEvent(ev), { routes: this.#net.tracksRoutes() });
    const now = this.#host.now();
    const hub = this.#opts.trackers;
    if (hub) {
      hub.onChange((kind, name) => {
        for (const r of this.#runners) if (r.tracks.some((t) => t.kind === kind && t.name === name)) this.#retrack(r);
      });
      hub.start();
    }
    // vrrp_delay_after_boot: hold until that long after the system booted, if later than the startup delay
    const afterBoot = (this.#model.global.doc.vrrp_delay_after_boot as number | undefined) ?? 0;
    const delay = Math.max((this.#model.global.doc.vrrp_startup_delay as number | undefined) ?? 0, afterBoot > 0 ? afterBoot - this.#host.uptime() : 0);
    if (delay > 0) {
      // vrrp_startup_delay: instances stay in INIT (adverts are ignored) until the delay is over
      this.#log.info(`Delaying startup for ${delay} seconds`);
      this.#host.setTimer(delay * 1000, () => {
        if (!this.#stopped) this.#startRunners(this.#runners, this.#host.now());
      });
    } else this.#startRunners(this.#runners, now);
  }

  /** Raises the faults known before start, then starts ungrouped instances and whole groups. */
  #startRunners(runners: Runner[], now: number): void {
    for (const r of runners) {
      this.#retrack(r);
      const link = r.model.interface ? this.#links.get(r.model.interface) : undefined;
      if (link && !link.up && !r.model.dont_track_primary) this.#setFault(r, "interface down", true);
      for (const ifname of this.#trackGroupIfs.get(r.model.name) ?? []) {
        if (!this.#links.get(ifname)?.up) this.#setFault(r, `track_group interface ${ifname} down`, true);
      }
      if (!r.src) this.#setFault(r, "no source address", true);
      if (r.model.doc.unicast_fault_no_peer === true && !r.rx.unicast) this.#setFault(r, "unicast_fault_no_peer: no unicast peers", true);
    }
    const started = new Set<SyncGroup>();
    for (const r of runners) {
      const g = this.#groupOf.get(r.model.name);
      if (!g) this.#apply(r, r.fsm.start(now));
      else if (!started.has(g)) {
        started.add(g);
        this.#applyGroup(g, g.start(now));
      }
    }
  }

  /**
   * dynamic_interfaces: an instance may wait for its interface, unless it is in a sync group or
   * on a VMAC (both are set up once, at start).
   */
  #canWait(m: VrrpInstanceModel): boolean {
    if (this.#model.global.doc.dynamic_interfaces === undefined || m.doc.use_vmac !== undefined) return false;
    return !Object.values(this.#model.vrrp_sync_group).some((g) => ((g.group as string[] | undefined) ?? []).includes(m.name));
  }

  /** Interface `ifname` appeared: the instances waiting for it start now. */
  #adoptWaiting(ifname: string): void {
    const ready = [...this.#waiting.values()].filter((m) => m.interface === ifname);
    if (!ready.length || this.#stopped) return;
    const addrs = this.#host.addresses();
    const started: Runner[] = [];
    for (const m of ready) {
      this.#waiting.delete(m.name);
      const r = this.#makeRunner(m, addrs);
      if (!r) continue;
      this.#log.info(`(${m.name}) interface ${ifname} appeared - starting`);
      this.#runners.push(r);
      this.#byName.set(m.name, r);
      started.push(r);
    }
    if (started.length) this.#startRunners(started, this.#host.now());
  }

  /** Builds the sync groups over the current runners (keepalived's rules; warnings logged). */
  #buildGroups(): void {
    this.#byName = new Map(this.#runners.map((r) => [r.model.name, r]));
    const set = createSyncGroups(this.#model.vrrp_sync_group, new Map(this.#runners.map((r) => [r.model.name, r.fsm])));
    for (const w of set.warnings) this.#log.warn(w);
    this.#groupOf = set.byMember;
  }

  /**
   * Reload (SIGHUP, `vipd reload`): instances are matched as keepalived matches them (VRID,
   * family, interface, unicast source or multicast group). A matched instance keeps its state
   * and only its deltas are applied (priority, interval, addresses); an unchanged one is not
   * touched at all. Removed instances stop (FAULT or DELETED notify); new ones start as BACKUP.
   */
  reload(model: Model): ReloadSummary {
    const now = this.#host.now();
    const addrs = this.#host.addresses();
    this.#waiting.clear(); // the new model decides who waits
    const oldGroups = JSON.stringify(this.#model.vrrp_sync_group);
    const groupsChanged = oldGroups !== JSON.stringify(model.vrrp_sync_group);
    const oldByKey = new Map(this.#runners.map((r) => [this.#matchKey(r.model, addrs), r]));
    const summary: ReloadSummary = { kept: [], added: [], removed: [] };
    const keep: Runner[] = [];
    const fresh: Runner[] = [];
    const grouped = (name: string, m: Model) => Object.values(m.vrrp_sync_group).some((g) => ((g.group as string[] | undefined) ?? []).includes(name));
    this.#model = model;
    const pairs: Array<[Runner, VrrpInstanceModel]> = [];
    const news: VrrpInstanceModel[] = [];
    for (const m of model.vrrp_instance) {
      const key = this.#matchKey(m, addrs);
      const old = oldByKey.get(key);
      // a changed sync-group layout restarts the instances involved (their group state cannot carry over)
      if (old && !(groupsChanged && (this.#groupOf.has(old.model.name) || grouped(m.name, model)))) {
        oldByKey.delete(key);
        pairs.push([old, m]);
      } else news.push(m);
    }
    this.#net.reload(model, new Map(pairs.map(([r, m]) => [r.model.name, m.name])));
    if (this.#net.tracksRoutes()) this.#host.watchRoutes?.();
    this.#debounce.setDelays(this.#linkDelays(model));
    const garpGroups = this.#garpGroupsOf(model);
    if (JSON.stringify([...garpGroups]) !== JSON.stringify([...this.#garpGroups])) {
      // new pacing: queued announcements are dropped, the next rounds use the new groups
      for (const p of this.#pacers.values()) this.#host.clearTimer(p.timer);
      this.#pacers.clear();
    }
    this.#garpGroups = garpGroups;
    this.#trackGroupIfs = trackGroupInterfaces(model);
    for (const [old, m] of pairs) {
      this.#reconfigure(old, m, addrs, now);
      keep.push(old);
      summary.kept.push(m.name);
    }
    for (const m of news) {
      const r = this.#makeRunner(m, addrs);
      if (r) {
        fresh.push(r);
        summary.added.push(m.name);
      }
    }
    for (const r of oldByKey.values()) {
      this.#retire(r, now);
      summary.removed.push(r.model.name);
    }
    this.#runners = [...keep, ...fresh];
    for (const c of [...this.#channels.values()]) {
      if ([...c.byVrid.values()].some((l) => l.length)) continue;
      c.io.close();
      this.#channels.delete(c.key);
    }
    if (groupsChanged || fresh.length) this.#buildGroups();
    else this.#byName = new Map(this.#runners.map((r) => [r.model.name, r]));
    this.#opts.trackers?.reload(model);
    for (const r of keep) {
      // an instance whose tracking was removed must drop its old faults and weights too
      const wasTracked = r.tracks.length > 0 || r.trackFaults.size > 0;
      r.tracks = this.#tracksOf(r.model);
      this.#retrack(r, wasTracked);
    }
    this.#startRunners(fresh, now);
    return summary;
  }

  /** keepalived's reload match: VRID, family, interface and multicast group or unicast source. */
  #matchKey(m: VrrpInstanceModel, addrs: ReturnType<Host["addresses"]>): string {
    const ifname = m.interface ?? this.#interfaceOf(m.mcast_src_ip, addrs) ?? "";
    const channel = m.unicast_peer.length ? `unicast:${m.mcast_src_ip ?? ""}` : `mcast:${m.mcast_dst_ip}`;
    return `${m.virtual_router_id}|${m.family}|${ifname}|${channel}`;
  }

  /** Applies a matched instance's new configuration, keeping its state. */
  #reconfigure(r: Runner, m: VrrpInstanceModel, addrs: ReturnType<Host["addresses"]>, now: number): void {
    const fresh = this.#makeRunner(m, addrs, r);
    if (!fresh) return;
    const before = r.installed;
    r.model = m;
    r.rx = fresh.rx;
    r.src = fresh.src;
    if (fresh.channel !== r.channel) {
      this.#detach(r);
      r.channel = fresh.channel;
    }
    this.#attach(r);
    if (r.vipsSet) {
      // only the address delta: unchanged VIPs are never removed, so traffic to them never stops
      const want = this.#addressesOf(r);
      const same = (a: { spec: HostAddressSpec }, b: { spec: HostAddressSpec }) => JSON.stringify(a.spec) === JSON.stringify(b.spec);
      const gone = before.filter((v) => !want.some((w) => same(v, w)));
      const added = want.filter((w) => !before.some((v) => same(v, w)));
      for (const v of gone) this.#deleteAddress(r, v);
      const ok = added.filter((v) => this.#addAddress(r, v));
      r.installed = [...before.filter((v) => !gone.includes(v)), ...ok];
      if (ok.length) this.#announceAddresses(r, ok, r.model.garp.garp_master_repeat);
    }
    this.#apply(r, r.fsm.reconfigure(now, fresh.fsm.params as InstanceParams));
  }

  /** Stops an instance the new configuration no longer has. */
  #retire(r: Runner, now: number): void {
    this.#host.clearTimer(r.timer);
    const acts = r.fsm.stop(now);
    this.#apply(r, acts.filter((a) => a.type !== "state-change"), true);
    const deleted = r.model.doc.notify_deleted !== undefined;
    this.#opts.onStateChange?.(r.model, deleted ? "DELETED" : "FAULT", r.fsm.effectivePriority);
    this.#log.info(`(${r.model.name}) removed by reload`);
    this.#detach(r);
  }

  #attach(r: Runner): void {
    const list = r.channel.byVrid.get(r.model.virtual_router_id) ?? [];
    if (!list.includes(r)) list.push(r);
    r.channel.byVrid.set(r.model.virtual_router_id, list);
  }

  #detach(r: Runner): void {
    for (const [vrid, list] of r.channel.byVrid) {
      const rest = list.filter((x) => x !== r);
      if (rest.length) r.channel.byVrid.set(vrid, rest);
      else r.channel.byVrid.delete(vrid);
    }
  }

  /** Graceful stop: masters send priority 0 and remove their addresses; sockets are closed. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    const now = this.#host.now();
    for (const t of this.#debounceTimers.values()) this.#host.clearTimer(t);
    this.#debounceTimers.clear();
    this.#opts.trackers?.stop();
    const stopped = new Set<SyncGroup>();
    for (const r of this.#runners) {
      this.#host.clearTimer(r.timer);
      const g = this.#groupOf.get(r.model.name);
      if (!g) this.#apply(r, r.fsm.stop(now), true);
      else if (!stopped.has(g)) {
        stopped.add(g);
        this.#applyGroup(g, g.stop(now), true);
      }
    }
    for (const p of this.#pacers.values()) this.#host.clearTimer(p.timer);
    for (const c of this.#channels.values()) c.io.close();
    this.#net.stop();
  }

  /** keepalived's STATS_CLEAR signal: every instance's counters back to zero. */
  clearStats(): void {
    for (const r of this.#runners) Object.assign(r.fsm.stats, newStats());
  }

  status(): DaemonStatus {
    return {
      version: this.#opts.version,
      pid: process.pid,
      configFile: this.#opts.configFile,
      startedAt: this.#startedAt / 1000,
      routerId: this.#model.global.router_id,
      instances: this.#runners.map((r) => this.#instanceStatus(r)),
    };
  }

  // ---- setup ------------------------------------------------------------------------------

  /** Builds a runner for `m`; with `reusing`, only computes the new parameters (reload). */
  #makeRunner(m: VrrpInstanceModel, addrs: ReturnType<Host["addresses"]>, reusing?: Runner): Runner | undefined {
    const ifname = m.interface ?? this.#interfaceOf(m.mcast_src_ip, addrs);
    if (!ifname) {
      this.#log.error(`(${m.name}) has no interface and unicast_src_ip ${m.mcast_src_ip ?? "(none)"} is not on any interface - instance ignored`);
      return undefined;
    }
    const link = this.#links.get(ifname);
    if (!link) {
      if (this.#canWait(m)) {
        this.#waiting.set(m.name, m);
        this.#log.info(`(${m.name}) interface ${ifname} does not exist yet - waiting for it (dynamic_interfaces)`);
      } else this.#log.error(`(${m.name}) interface ${ifname} does not exist - instance ignored`);
      return undefined;
    }
    const src = m.mcast_src_ip ?? this.#sourceAddress(link.ifindex, m.family, addrs, m);
    const authType: AuthType = m.auth_type === "AH" ? AUTH_AH : m.auth_type === "PASS" ? AUTH_PASS : AUTH_NONE;
    const protocol = authType === AUTH_AH ? IPPROTO_AH : IPPROTO_VRRP;
    const unicast = m.unicast_peer.length > 0;
    if (unicast && !src) this.#log.error(`(${m.name}) unicast needs a source address on ${ifname}`);
    const unicastTtl = m.doc.unicast_ttl as number | undefined;
    const channel = this.#channel(this.#net.channelInterface(m.name) ?? ifname, m.family, protocol, m.mcast_dst_ip, unicast ? (src ?? "") : undefined, m.family === "inet6" ? unicastTtl : undefined);
    const adverIntCs = roundAdverInt(m.version, m.advert_int).cs;
    const params: InstanceParams = {
      name: m.name,
      version: m.version,
      vrid: m.virtual_router_id,
      family: m.family,
      basePriority: m.priority,
      adverIntCs,
      wantState: m.state,
      nopreempt: m.nopreempt,
      preemptDelayMs: m.preempt_delay * 1000,
      downTimerAdverts: m.down_timer_adverts,
      sourceAddress: src ?? (m.family === "inet" ? "0.0.0.0" : "::"),
      lowerPrioNoAdvert: m.lower_prio_no_advert,
      higherPrioSendAdvert: m.higher_prio_send_advert,
      ownerIgnoreAdverts: m.owner_ignore_adverts,
      garp: {
        masterRepeat: m.garp.garp_master_repeat,
        masterDelayMs: m.garp.garp_master_delay * 1000,
        masterRefreshMs: m.garp.garp_master_refresh * 1000,
        masterRefreshRepeat: m.garp.garp_master_refresh_repeat,
        lowerPrioRepeat: m.garp.garp_lower_prio_repeat,
        lowerPrioDelayMs: m.garp.garp_lower_prio_delay * 1000,
      },
      // timer_expired_backup [PRIO]: the highest priority of the other routers (default 254, the
      // fastest possible takeover); it only applies to nopreempt instances, as in keepalived
      timerExpiredBackupPrio: m.doc.timer_expired_backup !== undefined && m.nopreempt
        ? ((m.doc.timer_expired_backup as { priority?: number }).priority ?? 254)
        : 0,
    };
    const rx: RxConfig = {
      iname: m.name,
      family: m.family,
      version: m.version,
      vrid: m.virtual_router_id,
      authType,
      authKey: passwordBytes(m.auth_pass ?? ""),
      adverIntCs,
      vips: m.virtual_ipaddress.map((v) => v.address),
      unicast,
      peers: m.unicast_peer.map((p) => ({ address: p.address, minTtl: p.min_ttl, maxTtl: p.max_ttl })),
      checkUnicastSrc: m.doc.check_unicast_src === true || this.#model.global.doc.vrrp_check_unicast_src === true,
      v3ChecksumAsV2: m.v3_checksum_as_v2,
      ownerIgnoreAdverts: m.owner_ignore_adverts,
      checkVipAddrs: true,
    };
    const r: Runner = {
      model: m, fsm: new VrrpInstance(params), channel, rx, src: src ?? "", ipId: 0, ahSeq: 0,
      timer: undefined, vipsSet: false, installed: [], lastTransition: this.#host.wallNow(), loggedDrops: new Set(),
      tracks: this.#tracksOf(m), trackFaults: new Set(),
    };
    if (!reusing) this.#attach(r);
    return r;
  }

  /** The interface that holds `address` (unicast instances without `interface`). */
  #interfaceOf(address: string | undefined, addrs: ReturnType<Host["addresses"]>): string | undefined {
    if (!address) return undefined;
    const a = addrs.find((x) => x.address === address);
    return a ? [...this.#links.values()].find((l) => l.ifindex === a.ifindex)?.name : undefined;
  }

  /** keepalived's default source: the primary IPv4 address, or the first IPv6 link-local. */
  #sourceAddress(ifindex: number, family: "inet" | "inet6", addrs: ReturnType<Host["addresses"]>, m: VrrpInstanceModel): string | undefined {
    const vips = new Set([...m.virtual_ipaddress, ...m.virtual_ipaddress_excluded].map((v) => v.address));
    const mine = addrs.filter((a) => a.ifindex === ifindex && a.family === family && !vips.has(a.address));
    if (family === "inet") return (mine.find((a) => !a.secondary) ?? mine[0])?.address;
    return mine.find((a) => a.address.toLowerCase().startsWith("fe80:"))?.address;
  }

  /** The shared channel for multicast `group`, or the unicast channel bound to `unicastSrc`. */
  #channel(ifname: string, family: "inet" | "inet6", protocol: number, group: string, unicastSrc?: string, unicastHops?: number): Channel {
    const key = `${ifname}|${family}|${protocol}|${unicastSrc !== undefined ? `unicast:${unicastSrc}` : group}`;
    let c = this.#channels.get(key);
    if (c) return c;
    // The channel exists before its socket: the fd watcher drains already-queued packets
    // synchronously inside openVrrp, and the handler must find it then.
    const channel: Channel = { key, ifname, family, group, io: undefined as unknown as VrrpChannel, byVrid: new Map() };
    const opts = unicastSrc !== undefined
      ? { family, ifname, protocol, group, unicast: true, bindAddress: unicastSrc || undefined, unicastHops }
      : { family, ifname, protocol, group };
    channel.io = this.#host.openVrrp(opts, (data, meta) => this.#onPacket(channel, data, meta));
    this.#channels.set(key, channel);
    return channel;
  }

  /** Addresses of ours still on an interface at start came from an unclean exit: remove them. */
  #removeStaleAddresses(addrs: ReturnType<Host["addresses"]>): void {
    for (const r of this.#runners) {
      for (const v of this.#addressesOf(r)) {
        const present = addrs.some((a) => a.ifindex === v.spec.ifindex && a.family === v.spec.family && a.address === v.spec.address && a.prefixlen === v.spec.prefixlen);
        if (!present) continue;
        try {
          this.#host.deleteAddress(v.spec);
          this.#log.info(`(${r.model.name}) removed ${v.text} from ${v.ifname} left by a previous run`);
        } catch (e) {
          this.#log.warn(`(${r.model.name}) cannot remove stale ${v.text} from ${v.ifname}: ${(e as Error).message}`);
        }
      }
    }
  }

  /** The netlink specs of an instance's VIPs and eVIPs. */
  #addressesOf(r: Runner): InstalledAddress[] {
    const out: InstalledAddress[] = [];
    for (const v of [...r.model.virtual_ipaddress, ...r.model.virtual_ipaddress_excluded]) {
      const ifname = v.dev ?? this.#net.vipInterface(r.model.name) ?? r.model.interface!;
      const link = this.#links.get(ifname);
      if (!link) continue;
      out.push({ spec: addressSpec(v, link.ifindex), text: `${v.address}/${v.prefixlen}`, ifname, ...(v.no_track ? { noTrack: true } : {}) });
    }
    return out;
  }

  /** The instance's track_* lists (its own, then its sync group's), with effective weights. */
  #tracksOf(m: VrrpInstanceModel): Runner["tracks"] {
    const hub = this.#opts.trackers;
    if (!hub) return [];
    const out: Runner["tracks"] = [];
    const group = Object.values(this.#model.vrrp_sync_group).find((g) => ((g.group as string[] | undefined) ?? []).includes(m.name));
    const lists: Array<[TrackKind, string]> = [["script", "track_script"], ["interface", "track_interface"], ["file", "track_file"], ["process", "track_process"], ["bfd", "track_bfd"]];
    for (const doc of [m.doc, ...(group ? [group] : [])]) {
      for (const [kind, key] of lists) {
        for (const t of (doc[key] as Array<Record<string, unknown>> | undefined) ?? []) {
          const name = String(t.name);
          // a bfd_instance with `checker` only sends nothing to VRRP: keepalived drops the track_bfd
          const b = kind === "bfd" ? this.#model.bfd_instance[name] : undefined;
          if (b && b.checker === true && b.vrrp !== true) continue;
          const d = hub.defaults(kind, name);
          const reverse = t.noreverse === true ? false : t.reverse === true ? true : d.reverse;
          out.push({ kind, name, weight: (t.weight as number | undefined) ?? (kind === "interface" ? 0 : d.weight), reverse });
        }
      }
    }
    return out;
  }

  /**
   * Recomputes an instance's total priority and tracking faults from its tracked objects
   * (`force`: even when it tracks nothing now, to undo what its former trackers did).
   */
  #retrack(r: Runner, force = false): void {
    const hub = this.#opts.trackers;
    if (!hub || (!r.tracks.length && !force)) return;
    const states: TrackedState[] = r.tracks.map((t) => ({ label: `${t.kind} ${t.name}`, weight: t.weight, reverse: t.reverse, ...hub.get(t.kind, t.name) }));
    const outcome = trackOutcome(r.model.priority, states);
    this.#exec(r, (f, now) => f.setTotalPriority(now, outcome.total), (g, now, name) => g.setTotalPriority(now, name, outcome.total));
    const next = new Set(outcome.faults);
    const old = r.trackFaults;
    r.trackFaults = next;
    // new reasons first: swapping one reason for another must not leave FAULT for a moment
    for (const f of next) if (!old.has(f)) this.#setFault(r, f, true);
    for (const f of old) if (!next.has(f)) this.#setFault(r, f, false);
  }

  #setFault(r: Runner, reason: string, on: boolean): void {
    this.#exec(r, (f, now) => f.setFault(now, reason, on), (g, now, name) => g.setFault(now, name, reason, on));
  }

  /**
   * Feeds one event to an instance — through its sync group when it has one — applies every
   * resulting action and re-arms the timers. Returns the instance's own actions.
   */
  #exec(
    r: Runner,
    alone: (fsm: VrrpInstance, now: number) => VrrpAction[],
    grouped: (g: SyncGroup, now: number, member: string) => SyncGroupAction[],
  ): VrrpAction[] {
    const now = this.#host.now();
    const g = this.#groupOf.get(r.model.name);
    if (!g) {
      const acts = alone(r.fsm, now);
      this.#apply(r, acts);
      return acts;
    }
    const acts = grouped(g, now, r.model.name);
    this.#applyGroup(g, acts);
    return acts.filter((a): a is VrrpAction & { member: string } => "member" in a && a.member === r.model.name);
  }

  /** Applies a sync group's actions to its members, then re-arms every member's timer. */
  #applyGroup(g: SyncGroup, acts: SyncGroupAction[], stopping = false): void {
    for (const a of acts) {
      if (a.type === "group-state-change") {
        const state = a.to === VrrpState.INIT ? "STOP" : (STATE_NAMES[a.to] as "MASTER" | "BACKUP" | "FAULT");
        this.#opts.onGroupStateChange?.(g.name, state);
      } else if (a.type === "group-log") {
        this.#log.info(a.message);
      } else {
        const r = this.#byName.get(a.member);
        if (r) this.#apply(r, [a], stopping);
      }
    }
    // forced transitions move other members' deadlines too
    if (!this.#stopped) for (const m of g.members) {
      const r = this.#byName.get(m.params.name);
      if (r) this.#arm(r);
    }
  }

  // ---- events -----------------------------------------------------------------------------

  #onPacket(c: Channel, data: Uint8Array, meta: RxMeta): void {
    if (this.#stopped) return;
    const parsed = parseReceived(data, meta);
    if (!parsed.ok) {
      this.#log.debug(`${c.ifname}: dropped packet from ${meta.src}: ${parsed.message}`);
      return;
    }
    const runners = c.byVrid.get(parsed.packet.vrid);
    if (!runners) return; // another router's VRID (log_unknown_vrids is not implemented)
    const now = this.#host.now();
    for (const r of runners) {
      const res = validateAdvert(parsed.packet, meta, r.rx, { effectivePriority: r.fsm.effectivePriority, lastAhSeq: r.ahSeq });
      for (const k of res.counters) r.fsm.stats[k]++;
      if (res.ahSeq !== undefined) r.ahSeq = res.ahSeq;
      if (!res.ok) {
        if (!r.loggedDrops.has(res.reason)) {
          r.loggedDrops.add(res.reason);
          this.#log.warn(res.message);
        }
        continue;
      }
      r.loggedDrops.clear();
      for (const w of res.warnings) this.#log.info(w);
      // INIT and FAULT ignore adverts (reference §2.6)
      if (r.fsm.state === VrrpState.FAULT || r.fsm.state === VrrpState.INIT) continue;
      const adv = { src: meta.src, priority: res.advert.priority, adverIntCs: res.advert.adverIntCs };
      // keepalived: a MASTER hearing a lower-priority AH advert resyncs its counter to the
      // peer's seq + 1 before it answers, so the peer accepts what it sends next.
      const peerSeq = res.ahSeq;
      const ours = r.fsm.effectivePriority;
      const lower = adv.priority < ours || (adv.priority === ours && compareIp(adv.src, r.src) < 0);
      const resync = peerSeq !== undefined && r.fsm.state === VrrpState.MASTER && adv.priority > 0 && lower;
      if (resync) r.ahSeq = peerSeq + 1;
      void now;
      this.#exec(r, (f, t) => f.onAdvert(t, adv), (g, t, name) => g.onAdvert(t, name, adv));
    }
  }

  #onTimer(r: Runner): void {
    r.timer = undefined;
    if (this.#stopped) return;
    this.#exec(r, (f, now) => f.onTimer(now), (g, now, name) => g.onTimer(now, name));
  }

  #onNetEvent(ev: NetEvent): void {
    if (this.#stopped) return;
    if (ev.kind === "resync") {
      for (const l of this.#host.links()) this.#linkReported(l, false, true);
      return;
    }
    if (ev.kind === "link") this.#linkReported(ev.link, ev.deleted, ev.deleted);
    if (ev.kind === "route") this.#stepDown(this.#net.routeRemoved(ev.route));
    if (ev.kind === "rule") this.#stepDown(this.#net.ruleRemoved(ev.rule));
    if (ev.kind === "address") {
      this.#addressChanged(ev.addr.address, ev.deleted);
      if (!ev.deleted) this.#sourceAppeared(ev.addr);
      if (ev.deleted) {
        this.#vipRemoved(ev.addr);
        this.#net.addressRemoved(ev.addr);
      }
    }
  }

  /** MASTER instances named by NetConfig (a tracked virtual route or rule went away) step down. */
  #stepDown(names: string[]): void {
    for (const name of names) {
      const r = this.#byName.get(name);
      if (!r || r.fsm.state !== VrrpState.MASTER) continue;
      this.#log.info(`(${name}) leaving MASTER: a new election re-installs its routes and rules`);
      this.#leaveMaster(r);
    }
  }

  /** keepalived's set_vrrp_backup: a MASTER steps down (its sync group follows) so an election runs. */
  #leaveMaster(r: Runner): void {
    this.#exec(r, (f, now) => f.forceBackup(now, "address-removed"), (g, now, n) => g.stepDown(now, n));
  }

  /**
   * Someone else deleted a VIP of a MASTER instance: it steps down to BACKUP (keepalived's
   * set_vrrp_backup), so an election runs and the master that wins re-adds the VIP. VIPs
   * marked no_track are left to the operator.
   */
  #vipRemoved(addr: HostAddress): void {
    const address = canonicalIp(addr.address) ?? addr.address;
    for (const r of this.#runners) {
      if (r.fsm.state !== VrrpState.MASTER) continue;
      const v = r.installed.find((i) => i.spec.ifindex === addr.ifindex && (canonicalIp(i.spec.address) ?? i.spec.address) === address);
      if (!v || v.noTrack) continue;
      this.#log.info(`(${r.model.name}) virtual address ${v.text} was removed from ${v.ifname} by someone else: leaving MASTER`);
      r.installed = r.installed.filter((i) => i !== v);
      this.#leaveMaster(r);
    }
  }

  /**
   * An address was added: a multicast instance that had no source address on its interface
   * (an interface that just appeared, or was configured late) takes it and leaves FAULT.
   */
  #sourceAppeared(addr: HostAddress): void {
    let addrs: HostAddress[] | undefined; // one dump, only if some instance needs it
    for (const r of this.#runners) {
      if (r.src || r.rx.unicast || r.model.mcast_src_ip || addr.family !== r.model.family) continue;
      const link = this.#links.get(r.model.interface ?? "");
      if (!link || link.ifindex !== addr.ifindex) continue;
      const src = this.#sourceAddress(link.ifindex, r.model.family, (addrs ??= this.#host.addresses()), r.model);
      if (!src) continue;
      r.src = src;
      this.#log.info(`(${r.model.name}) source address ${src} on ${link.name}`);
      this.#apply(r, r.fsm.reconfigure(this.#host.now(), { ...r.fsm.params, sourceAddress: src }));
      this.#setFault(r, "no source address", false);
    }
  }

  /** track_src_ip: an instance whose configured source address disappears goes to FAULT. */
  #addressChanged(address: string, deleted: boolean): void {
    for (const r of this.#runners) {
      if (r.model.doc.track_src_ip !== true || r.src !== address) continue;
      this.#log.info(`(${r.model.name}) source address ${address} ${deleted ? "removed" : "restored"}`);
      this.#setFault(r, "source address missing", deleted);
    }
  }

  /** A link report from the kernel, through interface_up_down_delays' debounce. */
  #linkReported(link: HostLink, deleted: boolean, immediate: boolean): void {
    const name = link.name;
    this.#reported.set(name, link);
    const d = this.#debounce.report(name, link.up && !deleted, this.#host.now(), immediate);
    if (d.kind !== "none") {
      this.#host.clearTimer(this.#debounceTimers.get(name));
      this.#debounceTimers.delete(name);
    }
    if (d.kind === "delay") {
      this.#log.info(d.log);
      this.#debounceTimers.set(name, this.#host.setTimer(d.dueMs - this.#host.now(), () => {
        this.#debounceTimers.delete(name);
        const up = this.#debounce.fire(name);
        if (up !== undefined && !this.#stopped) this.#linkChanged({ ...(this.#reported.get(name) ?? link), up });
      }));
    } else if (d.kind === "cancel") {
      this.#log.info(d.log);
    } else if (d.kind === "apply" || !this.#debounceTimers.has(name)) {
      this.#linkChanged(link, deleted);
    }
  }

  #linkChanged(link: HostLink, deleted = false): void {
    const prev = this.#links.get(link.name);
    if (deleted) this.#links.delete(link.name);
    else this.#links.set(link.name, link);
    if (!deleted && !prev) this.#adoptWaiting(link.name);
    const up = link.up && !deleted;
    this.#opts.trackers?.linkChanged(link.name, up);
    if (prev && prev.up === up) return;
    // keepalived's interface_up: static addresses and routes on it are put back (the kernel drops routes with the link)
    if (up && prev) this.#net.linkUp(link.name);
    for (const r of this.#runners) {
      if (r.model.interface !== link.name || r.model.dont_track_primary) continue;
      this.#log.info(`(${r.model.name}) interface ${link.name} is ${up ? "up" : "down"}`);
      this.#setFault(r, "interface down", !up);
    }
    for (const r of this.#runners) {
      if (!this.#trackGroupIfs.get(r.model.name)?.has(link.name)) continue;
      this.#log.info(`(${r.model.name}) track_group interface ${link.name} is ${up ? "up" : "down"}`);
      this.#setFault(r, `track_group interface ${link.name} down`, !up);
    }
  }

  // ---- actions ----------------------------------------------------------------------------

  #apply(r: Runner, actions: VrrpAction[], stopping = false): void {
    for (const a of actions) {
      try {
        this.#do(r, a, stopping);
      } catch (e) {
        this.#log.error(`(${r.model.name}) ${a.type} failed: ${(e as Error).message}`);
      }
    }
    if (this.#stopped) return;
    this.#arm(r);
  }

  /** Arms the one timer of an instance at its next deadline. */
  #arm(r: Runner): void {
    this.#host.clearTimer(r.timer);
    const due = r.fsm.nextDeadline();
    r.timer = due === undefined ? undefined : this.#host.setTimer(due - this.#host.now(), () => this.#onTimer(r));
  }

  #do(r: Runner, a: VrrpAction, stopping: boolean): void {
    switch (a.type) {
      case "send-advert":
        return this.#sendAdvert(r, a.priority, a.adverIntCs);
      case "add-addresses":
        return this.#addAddresses(r);
      case "remove-addresses":
        return this.#removeAddresses(r);
      case "announce":
        return this.#announce(r, a.rounds);
      case "state-change": {
        r.lastTransition = this.#host.wallNow();
        const to = STATE_NAMES[a.to];
        if (a.to === VrrpState.MASTER || a.to === VrrpState.BACKUP || a.to === VrrpState.FAULT)
          this.#opts.onStateChange?.(r.model, to as "MASTER" | "BACKUP" | "FAULT", r.fsm.effectivePriority);
        else if (a.to === VrrpState.INIT && stopping) this.#opts.onStateChange?.(r.model, "STOP", r.fsm.effectivePriority);
        return;
      }
      case "log":
        if (a.level === "warning") this.#log.warn(a.message);
        else if (a.level === "debug") this.#log.debug(a.message);
        else this.#log.info(a.message);
        return;
      case "master-rx-lower-prio":
        return this.#opts.onMasterRxLowerPri?.(r.model, a.priority);
      case "priority-change":
        return this.#opts.onPriorityChange?.(r.model, STATE_NAMES[r.fsm.state], a.to);
    }
  }

  #sendAdvert(r: Runner, priority: number, adverIntCs: number): void {
    if (!r.src) return;
    const m = r.model;
    const fields = {
      version: m.version,
      vrid: m.virtual_router_id,
      priority,
      adverIntCs,
      addresses: m.virtual_ipaddress.map((v) => v.address),
      authType: r.rx.authType === AUTH_PASS ? AUTH_PASS : undefined,
      authData: r.rx.authType === AUTH_PASS ? r.rx.authKey : undefined,
    };
    // Unicast: one packet per peer (the v3 IPv4 checksum and the AH ICV depend on the destination).
    const dsts = r.rx.unicast ? m.unicast_peer.map((p) => p.address) : [r.channel.group];
    if (m.family === "inet") {
      r.ipId = nextIpId(r.ipId);
      if (r.rx.authType === AUTH_AH) r.ahSeq = nextAhSeq(r.ahSeq);
      const ttl = r.rx.unicast ? ((m.doc.unicast_ttl as number | undefined) ?? 255) : 255;
      for (const dst of dsts) {
        const ah = r.rx.authType === AUTH_AH ? { key: r.rx.authKey, seq: r.ahSeq, unicast: r.rx.unicast } : undefined;
        r.channel.io.send(buildIpv4Advert(fields, { src: r.src, dst, id: r.ipId, ttl, v3ChecksumAsV2: m.v3_checksum_as_v2, ah }), dst);
      }
    } else {
      const pdu = buildIpv6Advert(fields);
      for (const dst of dsts) r.channel.io.send(pdu, dst, r.src);
    }
  }

  #addAddresses(r: Runner): void {
    for (const v of this.#addressesOf(r)) if (this.#addAddress(r, v)) r.installed.push(v);
    r.vipsSet = true;
    this.#net.masterUp(r.model.name);
    this.#startExtraGarp(r);
  }

  /**
   * garp_extra_if [all] SECS: while MASTER, one GARP/NA every SECS on each interface other
   * than the instance's own that carries its addresses — VMACs only, or all with `all`
   * (keepalived's vrrp_send_vmac_update). The first comes garp_master_delay + SECS after
   * becoming MASTER.
   */
  #startExtraGarp(r: Runner): void {
    const cfg = (r.model.doc.garp_extra_if ?? this.#model.global.doc.vrrp_garp_extra_if) as { all?: boolean; interval?: number } | undefined;
    if (!cfg?.interval) return;
    const own = this.#net.vipInterface(r.model.name) ?? r.model.interface;
    const vmacs = new Set(this.#runners.map((x) => this.#net.vmacOf(x.model.name)?.name).filter((n): n is string => !!n));
    const byIf = new Map<string, InstalledAddress>();
    for (const v of r.installed) if (v.ifname !== own && (cfg.all || vmacs.has(v.ifname)) && !byIf.has(v.ifname)) byIf.set(v.ifname, v);
    if (!byIf.size) return;
    const tick = (delayMs: number) => {
      r.extraGarpTimer = this.#host.setTimer(delayMs, () => {
        if (!r.vipsSet || this.#stopped) return;
        this.#announceAddresses(r, [...byIf.values()], 1);
        tick(cfg.interval! * 1000);
      });
    };
    tick((r.model.garp.garp_master_delay + cfg.interval) * 1000);
  }

  #removeAddresses(r: Runner): void {
    this.#host.clearTimer(r.extraGarpTimer);
    r.extraGarpTimer = undefined;
    this.#net.masterDown(r.model.name);
    for (const v of r.installed) this.#deleteAddress(r, v);
    r.installed = [];
    r.vipsSet = false;
  }

  /** Adds one address (already present counts as added); false if the kernel refused. */
  #addAddress(r: Runner, v: InstalledAddress): boolean {
    try {
      this.#host.addAddress(v.spec);
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") {
        this.#log.error(`(${r.model.name}) cannot add ${v.text} to ${v.ifname}: ${(e as Error).message}`);
        return false;
      }
    }
    return true;
  }

  /** Removes one address and drops its queued GARP/NA. */
  #deleteAddress(r: Runner, v: InstalledAddress): void {
    try {
      this.#host.deleteAddress(v.spec);
    } catch (e) {
      if ((e as { code?: string }).code !== "EADDRNOTAVAIL")
        this.#log.error(`(${r.model.name}) cannot remove ${v.text} from ${v.ifname}: ${(e as Error).message}`);
    }
    for (const p of this.#pacers.values()) p.pacer.cancel([`${v.ifname}\t${v.spec.address}`]);
  }

  /** Queues `rounds` GARP/NA rounds for every installed address, paced per interface. */
  #announce(r: Runner, rounds: number): void {
    this.#announceAddresses(r, r.installed, rounds);
  }

  #announceAddresses(r: Runner, list: InstalledAddress[], rounds: number): void {
    const byPacer = new Map<string, { kind: "arp" | "na"; intervalMs: number; items: string[] }>();
    for (const v of list) {
      const link = this.#links.get(v.ifname);
      if (!link || (v.spec.family === "inet" && link.noarp)) continue;
      const kind = v.spec.family === "inet" ? "arp" : "na";
      // an interface of a garp_group shares the group's pacing; the others pace alone with the global intervals
      const group = this.#garpGroups.get(v.ifname);
      const key = group ? `group ${group.id}|${kind}` : `${v.ifname}|${kind}`;
      const intervalMs = group ? (kind === "arp" ? group.garpMs : group.gnaMs) : (kind === "arp" ? r.model.garp.garp_interval : r.model.garp.gna_interval) * 1000;
      const e = byPacer.get(key) ?? { kind, intervalMs, items: [] };
      e.items.push(`${v.ifname}\t${v.spec.address}`);
      byPacer.set(key, e);
    }
    const now = this.#host.now();
    for (const [key, e] of byPacer) {
      let p = this.#pacers.get(key);
      if (!p) this.#pacers.set(key, (p = { pacer: new GarpPacer(e.intervalMs), timer: undefined, kind: e.kind }));
      for (const item of p.pacer.request(now, e.items, rounds)) this.#sendAnnouncement(p.kind, item);
      this.#armPacer(key);
    }
  }

  #armPacer(key: string): void {
    const p = this.#pacers.get(key)!;
    this.#host.clearTimer(p.timer);
    const due = p.pacer.nextDeadline();
    p.timer = due === undefined ? undefined : this.#host.setTimer(due - this.#host.now(), () => {
      p.timer = undefined;
      for (const item of p.pacer.due(this.#host.now())) this.#sendAnnouncement(p.kind, item);
      this.#armPacer(key);
    });
  }

  /** Sends one GARP/NA for a pacer item "IFNAME\tADDRESS". */
  #sendAnnouncement(kind: "arp" | "na", item: string): void {
    const [ifname, address] = item.split("\t") as [string, string];
    try {
      const mac = this.#host.mac(ifname);
      // The Router flag: keepalived sets it when the interface forwards; vipd leaves it off (see README).
      this.#host.sendFrame(ifname, kind === "arp" ? garpFrame(mac, address) : naFrame(mac, address, false));
    } catch (e) {
      this.#log.warn(`cannot send ${kind === "arp" ? "gratuitous ARP" : "unsolicited NA"} for ${address} on ${ifname}: ${(e as Error).message}`);
    }
  }

  #instanceStatus(r: Runner): VrrpInstanceStatus {
    const s = r.fsm.snapshot();
    const m = r.model;
    const state = s.state;
    return {
      name: m.name,
      interface: m.interface,
      family: m.family,
      vrid: m.virtual_router_id,
      version: m.version,
      state,
      wantState: m.state,
      basePriority: s.basePriority,
      effectivePriority: s.effectivePriority,
      advertInt: s.adverIntCs / 100,
      masterAdvertInt: s.masterAdverIntCs / 100,
      masterAddress: state === "MASTER" ? r.src : s.masterAddress,
      masterPriority: state === "MASTER" ? s.effectivePriority : s.masterPriority,
      sourceAddress: r.src || undefined,
      vips: m.virtual_ipaddress.map(addrText),
      evips: m.virtual_ipaddress_excluded.map(addrText),
      vipsSet: r.vipsSet,
      authType: m.auth_type ?? "NONE",
      nopreempt: m.nopreempt,
      preemptDelay: m.preempt_delay,
      accept: m.accept,
      faults: s.faults,
      lastTransition: r.lastTransition / 1000,
      stats: s.stats,
      extra: {
        dont_track_primary: m.dont_track_primary,
        skip_check_adv_addr: m.skip_check_adv_addr,
        strict_mode: m.strict_mode,
        garp_delay: m.garp.garp_master_delay,
        garp_refresh: m.garp.garp_master_refresh,
        garp_rep: m.garp.garp_master_repeat,
        garp_refresh_rep: m.garp.garp_master_refresh_repeat,
        garp_lower_prio_delay: m.garp.garp_lower_prio_delay,
        garp_lower_prio_rep: m.garp.garp_lower_prio_repeat,
        lower_prio_no_advert: m.lower_prio_no_advert,
        higher_prio_send_advert: m.higher_prio_send_advert,
        script_master: m.notify_master?.cmd,
        script_backup: m.notify_backup?.cmd,
        script_fault: m.notify_fault?.cmd,
        script_stop: m.notify_stop?.cmd,
        script: m.notify?.cmd,
      },
    };
  }
}

function addrText(v: AddressEntry): string {
  return `${v.address}/${v.prefixlen}${v.dev ? ` dev ${v.dev}` : ""}`;
}

/** The netlink form of one virtual_ipaddress line (kept here for existing importers). */
export { addressSpec };

/**
 * track_group: for each instance, the interfaces of the static addresses (dev, else
 * default_interface), routes (dev) and rules (iif) that name one of its track groups
 * (keepalived's static_track_group_init: weight-0 interface tracking). no_track entries are not tracked.
 */
export function trackGroupInterfaces(model: Model): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const defaultIf = (model.global.doc.default_interface as string | undefined) ?? "eth0";
  const add = (group: unknown, ifname: unknown, noTrack: unknown) => {
    const g = typeof group === "string" ? model.track_group[group] : undefined;
    if (!g || typeof ifname !== "string" || noTrack === true) return;
    for (const name of (g.group as string[] | undefined) ?? []) {
      const set = out.get(name) ?? new Set<string>();
      set.add(ifname);
      out.set(name, set);
    }
  };
  for (const a of model.static_ipaddress) add(a.track_group, a.dev ?? defaultIf, a.no_track);
  for (const r of model.static_routes) add(r.track_group, r.dev, r.no_track);
  for (const r of model.static_rules) add(r.track_group, r.iif, r.no_track);
  return out;
}
