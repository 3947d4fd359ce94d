/**
 * The network state that comes with VRRP beyond the VIPs, kept as a desired set per
 * instance and applied through the Host: static_ipaddress/static_routes/static_rules (start
 * to stop), virtual_routes/virtual_rules (while MASTER), the no_accept nftables drop set
 * (while a non-owner is MASTER), VMAC macvlans with their sysctls and promote_secondaries
 * (start to stop; sysctls restored at stop).
 * Order follows keepalived: becoming MASTER = drop set, (VIPs), routes, rules; leaving =
 * rules, routes, (VIPs), drop set; stop = static rules, routes, addresses, nft table,
 * VMACs, sysctls.
 */
import { readFileSync } from "node:fs";
import type { AddressEntry, Model, VrrpInstanceModel } from "../config/model.ts";
import { canonicalIp } from "../net/addr.ts";
import {
  RT_NAME_FILES, describeRoute, describeRule, kernelRouteKey, routeContext, routeKey, routeSpecs, ruleIdentity, ruleSpecs,
  type RouteContext, type RouteSpec, type RuleSpec,
} from "../vrrp/routes.ts";
import { DEFAULT_NFT_OPTIONS, type NftOptions, dropAddresses, nftSetupScript, nftSyncScript, nftTeardownScript } from "../vrrp/accept-rules.ts";
import { rpFilterPlan, vmacAddress, vmacLinkLocal, vmacName, vmacSysctls } from "../vrrp/vmac.ts";
import { type Family, VrrpState } from "../vrrp/types.ts";
import { addressSpec } from "./address-spec.ts";
import type { Host, HostAddress, HostAddressSpec, HostBatchResult, HostNftResult, HostRouteKey, HostRuleKey } from "./host.ts";
import type { Logger } from "./logger.ts";

/** iproute2 name-file texts (rt_tables, rt_protos, rt_scopes, rt_realms). */
export type RouteNameFiles = { tables?: string; protocols?: string; scopes?: string; realms?: string };

/** Where iproute2 keeps its name files: distribution defaults, then local overrides. */
const IPROUTE2_USR_DIRS = ["/usr/share/iproute2", "/usr/lib/iproute2"];
const IPROUTE2_ETC_DIR = "/etc/iproute2";
const IPROUTE2_DIRS = [...IPROUTE2_USR_DIRS, IPROUTE2_ETC_DIR];

/** The name-file directories, with global_defs iproute_usr_dir / iproute_etc_dir in place of the defaults. */
export function iprouteDirs(g: Record<string, unknown>): string[] {
  const usr = typeof g.iproute_usr_dir === "string" ? [g.iproute_usr_dir] : IPROUTE2_USR_DIRS;
  return [...usr, typeof g.iproute_etc_dir === "string" ? g.iproute_etc_dir : IPROUTE2_ETC_DIR];
}

/** Reads the system's iproute2 name files (missing files are skipped, later dirs override). */
export function readRouteNameFiles(dirs: readonly string[] = IPROUTE2_DIRS): RouteNameFiles {
  const out: RouteNameFiles = {};
  for (const [key, file] of Object.entries(RT_NAME_FILES) as Array<[keyof RouteNameFiles, string]>) {
    for (const dir of dirs) {
      try {
        out[key] = `${out[key] ?? ""}\n${readFileSync(`${dir}/${file}`, "utf8")}`;
      } catch {
        // absent: iproute2's built-in names still apply
      }
    }
  }
  return out;
}

/** A VMAC an instance runs on. */
export interface VmacPlan {
  name: string;
  parent: string;
  mac: string;
  family: Family;
  /** vmac_xmit_base: adverts go out (and come in) on the parent. */
  xmitBase: boolean;
  /** IPv4 VMAC keeps IPv6 on (IPv6 eVIPs live on it). */
  ipv6On: boolean;
  /** Created by this run (so stop deletes it). */
  created: boolean;
  /** A configured link-local advert source (mcast_src_ip), given to an IPv6 VMAC. */
  source?: string;
}

/** What one instance adds beyond its VIPs. */
export interface InstanceNetPlan {
  name: string;
  routes: RouteSpec[];
  rules: RuleSpec[];
  /** Configured priority; 255 = address owner, never filtered. */
  priority: number;
  accept: boolean;
  addresses: Array<{ address: string; family: Family }>;
  vmac?: VmacPlan;
  /** promote_secondaries: set on this interface (not on a VMAC, where it is always set). */
  promoteSecondaries?: string;
}

export interface NetConfigOptions {
  /** iproute2 name files (default: read from the system). */
  routeNames?: RouteNameFiles;
}

/** Desired routes/rules/VMACs/nft state for a model, applied through a Host. */
export class NetConfig {
  readonly #host: Host;
  readonly #log: Logger;
  #instances = new Map<string, InstanceNetPlan>();
  #staticRoutes: RouteSpec[];
  #staticRules: RuleSpec[];
  readonly #routeNames: RouteNameFiles | undefined;
  readonly #staticAddresses: AddressEntry[];
  readonly #defaultInterface: string;
  readonly #vmacPrefix: string;
  readonly #nftOptions: NftOptions;
  readonly #nftWanted: boolean;
  #nftReady = false;
  #nftWarned = false;
  #masters = new Set<string>();
  #installedStatic: { routes: RouteSpec[]; rules: RuleSpec[]; addresses: Array<{ spec: HostAddressSpec; text: string; ifname: string; noTrack?: boolean }> } = { routes: [], rules: [], addresses: [] };
  #started = false;
  #stopped = false;
  /** The last nft sync, for tests and orderly shutdown. */
  #nftTail: Promise<unknown> = Promise.resolve();

  /** global_defs disable_local_igmp: no IGMP reports for link-local groups (224.0.0.18 on VMACs) while running. */
  readonly #disableLocalIgmp: boolean;

  constructor(model: Model, host: Host, log: Logger, o: NetConfigOptions = {}) {
    this.#host = host;
    this.#log = log;
    this.#routeNames = o.routeNames;
    const ctx: RouteContext = routeContext(o.routeNames ?? readRouteNameFiles(iprouteDirs(model.global.doc)));
    this.#staticRoutes = this.#mapRoutes("static_routes", model.static_routes, ctx);
    this.#staticRules = this.#mapRules("static_rules", model.static_rules, ctx);
    this.#staticAddresses = model.static_ipaddress;
    const g = model.global.doc;
    this.#disableLocalIgmp = g.disable_local_igmp === true;
    this.#defaultInterface = (g.default_interface as string | undefined) ?? "eth0";
    this.#vmacPrefix = (g.vmac_prefix as string | undefined) ?? "vrrp";
    this.#nftOptions = nftOptionsOf(g);
    for (const m of model.vrrp_instance) {
      const who = `(${m.name})`;
      this.#instances.set(m.name, {
        name: m.name,
        routes: this.#mapRoutes(`${who} virtual_routes`, (m.doc.virtual_routes as Record<string, unknown>[] | undefined) ?? [], ctx),
        rules: this.#mapRules(`${who} virtual_rules`, (m.doc.virtual_rules as Record<string, unknown>[] | undefined) ?? [], ctx),
        priority: m.priority,
        accept: m.accept,
        addresses: [...m.virtual_ipaddress, ...m.virtual_ipaddress_excluded].map((v) => ({ address: v.address, family: v.family })),
      });
    }
    this.#nftWanted = [...this.#instances.values()].some((i) => !i.accept && i.priority < 255);
    this.#planVmacs(model.vrrp_instance);
    for (const m of model.vrrp_instance) {
      if (m.doc.promote_secondaries !== true || !m.interface) continue;
      const p = this.#instances.get(m.name)!;
      if (p.vmac) this.#log.info(`(${m.name}) promote_secondaries is automatically set for VMACs - ignoring`);
      else p.promoteSecondaries = m.interface;
    }
  }

  #mapRoutes(what: string, recs: readonly Record<string, unknown>[], ctx: RouteContext): RouteSpec[] {
    const r = routeSpecs(recs, ctx);
    for (const e of r.errors) this.#log.error(`${what} line ${e.index + 1}: ${e.error} - route ignored`);
    for (const w of r.warnings) this.#log.warn(`${what} line ${w.index + 1}: ${w.warning}`);
    return r.specs;
  }

  #mapRules(what: string, recs: readonly Record<string, unknown>[], ctx: RouteContext): RuleSpec[] {
    const r = ruleSpecs(recs, ctx);
    for (const e of r.errors) this.#log.error(`${what} line ${e.index + 1}: ${e.error} - rule ignored`);
    for (const w of r.warnings) this.#log.info(`${what} line ${w.index + 1}: ${w.warning}`);
    return r.specs;
  }

  /** Names and MACs of every use_vmac instance (names are chosen against the links present now). */
  #planVmacs(instances: readonly VrrpInstanceModel[]): void {
    const wanted = instances.filter((m) => m.doc.use_vmac !== undefined && m.doc.use_vmac !== false);
    if (!wanted.length) return;
    const links = new Map(this.#host.links().map((l) => [l.name, l]));
    const chosen = new Set<string>();
    for (const m of wanted) {
      const cfg = (typeof m.doc.use_vmac === "object" ? m.doc.use_vmac : {}) as { ifname?: string; mac?: string };
      if (!m.interface) {
        this.#log.error(`(${m.name}) use_vmac needs an interface - running without a VMAC`);
        continue;
      }
      if (m.unicast_peer.length && m.doc.vmac_xmit_base !== true) {
        this.#log.warn(`(${m.name}) unicast with use_vmac sends on the base interface (vmac_xmit_base implied, as keepalived requires it)`);
      }
      let mac: string;
      try {
        mac = vmacAddress(m.family, m.virtual_router_id, cfg.mac);
      } catch (e) {
        this.#log.error(`(${m.name}) ${(e as Error).message} - running without a VMAC`);
        continue;
      }
      // An interface of that name with the VRRP MAC is a VMAC a previous run left: reuse the name.
      const ours = (name: string) => links.get(name)?.mac?.toLowerCase() === mac;
      let name = cfg.ifname;
      if (name) {
        if (chosen.has(name) || (links.has(name) && !ours(name))) {
          this.#log.error(`(${m.name}) VMAC interface ${name} already exists and is not a VMAC of this instance - running without a VMAC`);
          continue;
        }
      } else {
        name = vmacName(m.virtual_router_id, m.family, (n) => chosen.has(n) || (links.has(n) && !ours(n)), this.#vmacPrefix);
      }
      chosen.add(name);
      const plan = this.#instances.get(m.name)!;
      plan.vmac = {
        name, parent: m.interface, mac, family: m.family,
        xmitBase: m.doc.vmac_xmit_base === true || m.unicast_peer.length > 0,
        ipv6On: m.family === "inet" && m.virtual_ipaddress_excluded.some((v) => v.family === "inet6" && !v.dev),
        created: false,
      };
      if (m.mcast_src_ip?.toLowerCase().startsWith("fe80:")) plan.vmac.source = m.mcast_src_ip;
    }
  }

  /** The VMAC plan of an instance, if it runs on one. */
  vmacOf(instance: string): VmacPlan | undefined {
    return this.#instances.get(instance)?.vmac;
  }

  /** Where VIPs without `dev` go: the instance's VMAC when it has one. */
  vipInterface(instance: string): string | undefined {
    const v = this.vmacOf(instance);
    return v?.created ? v.name : undefined;
  }

  /** The interface the instance's VRRP socket sends and receives on: its VMAC unless vmac_xmit_base. */
  channelInterface(instance: string): string | undefined {
    const v = this.vmacOf(instance);
    return v?.created && !v.xmitBase ? v.name : undefined;
  }

  // ---- start --------------------------------------------------------------------------------

  /** Installs static addresses, routes and rules, creates the nft table and the VMACs. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#startStaticAddresses();
    this.#installedStatic.routes = this.#routes("static_routes", this.#staticRoutes, "add");
    this.#installedStatic.rules = this.#rules("static_rules", this.#staticRules, "add");
    if (this.#nftWanted) {
      const r = this.#host.nftBlocking(nftSetupScript(this.#nftOptions), "setup");
      if (r.ok) this.#nftReady = true;
      else this.#nftFailed(r);
    }
    this.#startVmacs();
    // keepalived's set_disable_local_igmp: the kernel-wide switch, put back at stop (sysctl journal)
    if (this.#disableLocalIgmp && !this.#host.setSysctl({ proto: "ipv4", key: "igmp_link_local_mcast_reports", value: 0 }))
      this.#log.warn("disable_local_igmp: the kernel has no net.ipv4.igmp_link_local_mcast_reports; IGMP reports are not suppressed");
    for (const p of this.#instances.values()) {
      if (!p.promoteSecondaries) continue;
      try {
        this.#host.setSysctl({ proto: "ipv4", ifname: p.promoteSecondaries, key: "promote_secondaries", value: 1 });
      } catch (e) {
        this.#log.warn(`(${p.name}) promote_secondaries: ${(e as Error).message}`);
      }
    }
  }

  #startStaticAddresses(): void {
    const links = new Map(this.#host.links().map((l) => [l.name, l]));
    for (const a of this.#staticAddresses) {
      const ifname = a.dev ?? this.#defaultInterface;
      const text = `${a.address}/${a.prefixlen}`;
      const link = links.get(ifname);
      if (!link) {
        this.#log.error(`static_ipaddress ${text}: interface ${ifname} does not exist`);
        continue;
      }
      const spec = addressSpec(a, link.ifindex);
      try {
        this.#host.addAddress(spec);
      } catch (e) {
        if ((e as { code?: string }).code !== "EEXIST") {
          this.#log.error(`static_ipaddress: cannot add ${text} to ${ifname}: ${(e as Error).message}`);
          continue;
        }
      }
      this.#installedStatic.addresses.push({ spec, text: `${text} dev ${ifname}`, ifname, ...(a.no_track ? { noTrack: true } : {}) });
    }
  }

  /**
   * Interface `ifname` came back up: its tracked static addresses and routes are put back
   * (keepalived's interface_up → static_track_group_reinstate_config); ones still there are left.
   */
  linkUp(ifname: string): void {
    if (this.#stopped || !this.#started) return;
    for (const a of this.#installedStatic.addresses) {
      if (a.noTrack || a.ifname !== ifname) continue;
      this.#reinstateAddress(a, `Restoring deleted static address ${a.text}`);
    }
    const routes = this.#installedStatic.routes.filter((r) => !r.noTrack && r.dev === ifname);
    if (routes.length) this.#routes("static_routes", routes, "add");
  }

  /**
   * An address was deleted: a static_ipaddress vipd installed (not no_track) is put back, as
   * keepalived's reinstate_static_address does.
   */
  addressRemoved(addr: HostAddress): void {
    if (this.#stopped) return;
    const address = canonicalIp(addr.address) ?? addr.address;
    const a = this.#installedStatic.addresses.find((x) => x.spec.ifindex === addr.ifindex && x.spec.prefixlen === addr.prefixlen && (canonicalIp(x.spec.address) ?? x.spec.address) === address);
    if (!a || a.noTrack) return;
    this.#reinstateAddress(a, `static_ipaddress ${a.text} was removed by someone else: reinstated`);
  }

  /** Adds a static address back; logs `done` when it was added (already there: nothing to say). */
  #reinstateAddress(a: { spec: HostAddressSpec; text: string }, done: string): void {
    try {
      this.#host.addAddress(a.spec);
      this.#log.info(done);
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") this.#log.error(`static_ipaddress: cannot reinstate ${a.text}: ${(e as Error).message}`);
    }
  }

  #startVmacs(): void {
    const plans = [...this.#instances.values()].filter((p) => p.vmac);
    if (!plans.length) return;
    if (plans.some((p) => p.vmac!.family === "inet")) this.#clearRpFilter();
    for (const p of plans) {
      const v = p.vmac!;
      try {
        this.#host.deleteLink(v.name); // a leftover of ours (checked by MAC when the name was chosen)
        this.#host.createMacvlan({ name: v.name, parent: v.parent, mac: v.mac });
        v.created = true;
        this.#host.setAddrGenModeNone(v.name);
        for (const s of vmacSysctls(v.name, v.parent, v.family, { ipv6OnIpv4Vmac: v.ipv6On })) {
          try {
            if (!this.#host.setSysctl(s)) this.#log.debug(`(${p.name}) sysctl ${s.proto}.conf.${s.ifname}.${s.key} does not exist`);
          } catch (e) {
            this.#log.warn(`(${p.name}) ${(e as Error).message}`);
          }
        }
        this.#host.setLinkUp(v.name, true);
        if (v.family === "inet6" && !v.xmitBase) this.#addVmacLinkLocal(p.name, v);
        this.#log.info(`(${p.name}) VMAC ${v.name} (${v.mac}) created on ${v.parent}${v.xmitBase ? ", adverts on the base interface" : ""}`);
      } catch (e) {
        this.#log.error(`(${p.name}) cannot create VMAC ${v.name} on ${v.parent}: ${(e as Error).message} - running on ${v.parent}`);
        if (v.created) {
          try {
            this.#host.deleteLink(v.name);
          } catch {
            // it may never have existed
          }
        }
        v.created = false;
      }
    }
  }

  /** keepalived's clear_rp_filter: all.rp_filter 0 with every interface raised so none loses filtering. */
  #clearRpFilter(): void {
    const all = this.#host.readSysctl({ proto: "ipv4", ifname: "all", key: "rp_filter" });
    const dflt = this.#host.readSysctl({ proto: "ipv4", ifname: "default", key: "rp_filter" });
    if (all === null || dflt === null || all === 0) return;
    const ifs = new Map<string, number>();
    for (const l of this.#host.links()) {
      const v = this.#host.readSysctl({ proto: "ipv4", ifname: l.name, key: "rp_filter" });
      if (v !== null) ifs.set(l.name, v);
    }
    for (const s of rpFilterPlan(all, dflt, ifs)) {
      try {
        this.#host.setSysctl(s);
      } catch (e) {
        this.#log.warn(`rp_filter: ${(e as Error).message}`);
      }
    }
  }

  /** An IPv6 VMAC sends from a link-local it holds: the configured source, else the parent's. */
  #addVmacLinkLocal(name: string, v: VmacPlan): void {
    const links = this.#host.links();
    const parent = links.find((l) => l.name === v.parent);
    const vmac = links.find((l) => l.name === v.name);
    if (!parent || !vmac) return;
    const parentLinkLocal = this.#host.addresses()
      .find((a) => a.ifindex === parent.ifindex && a.family === "inet6" && a.address.toLowerCase().startsWith("fe80:"))?.address;
    const address = vmacLinkLocal({ configured: v.source, parentLinkLocal, parentMac: parent.mac });
    try {
      this.#host.addAddress({ ifindex: vmac.ifindex, family: "inet6", address, prefixlen: 64, noDad: true });
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") this.#log.warn(`(${name}) cannot add ${address}/64 to ${v.name}: ${(e as Error).message}`);
    }
  }

  /**
   * Reload: new virtual/static route and rule plans. For instances that are MASTER (matched
   * old name → new name in `renamed`), only the route/rule delta is applied; static entries
   * likewise. VMAC changes need a restart (logged).
   */
  reload(model: Model, renamed: ReadonlyMap<string, string>): void {
    const next = new NetConfig(model, this.#host, this.#log, this.#routeNames ? { routeNames: this.#routeNames } : {});
    if (next.#disableLocalIgmp !== this.#disableLocalIgmp) this.#log.info("Cannot change disable_local_igmp at a reload - please restart vipd");
    const key = (x: unknown) => JSON.stringify(x);
    const delta = <T>(before: readonly T[], after: readonly T[]) => ({
      gone: before.filter((b) => !after.some((a) => key(a) === key(b))),
      added: after.filter((a) => !before.some((b) => key(a) === key(b))),
    });
    const masters = new Set<string>();
    for (const old of this.#masters) {
      const name = renamed.get(old);
      const before = this.#instances.get(old);
      const after = name ? next.#instances.get(name) : undefined;
      if (!before) continue;
      if (before.vmac?.name !== after?.vmac?.name) this.#log.warn(`(${name ?? old}) use_vmac changes take effect after a restart`);
      const r = delta(before.rules, after?.rules ?? []);
      const t = delta(before.routes, after?.routes ?? []);
      this.#rules(`(${old}) virtual_rules`, r.gone, "delete");
      this.#routes(`(${old}) virtual_routes`, t.gone, "delete");
      if (!after || !name) continue;
      this.#routes(`(${name}) virtual_routes`, t.added, "add");
      this.#rules(`(${name}) virtual_rules`, r.added, "add");
      masters.add(name);
    }
    if (this.#started) {
      const r = delta(this.#installedStatic.rules, next.#staticRules);
      const t = delta(this.#installedStatic.routes, next.#staticRoutes);
      this.#rules("static_rules", r.gone, "delete");
      this.#routes("static_routes", t.gone, "delete");
      this.#installedStatic.routes = [...this.#installedStatic.routes.filter((x) => !t.gone.includes(x)), ...this.#routes("static_routes", t.added, "add")];
      this.#installedStatic.rules = [...this.#installedStatic.rules.filter((x) => !r.gone.includes(x)), ...this.#rules("static_rules", r.added, "add")];
    }
    // VMAC plans stay as started; everything else follows the new configuration
    for (const [name, p] of next.#instances) {
      const old = [...renamed].find(([, n]) => n === name)?.[0];
      const vmac = old ? this.#instances.get(old)?.vmac : undefined;
      if (vmac) p.vmac = vmac;
    }
    this.#instances = next.#instances;
    this.#staticRoutes = next.#staticRoutes;
    this.#staticRules = next.#staticRules;
    this.#masters = masters;
    this.#syncNft();
  }

  // ---- MASTER -------------------------------------------------------------------------------

  /** The instance became MASTER and its VIPs are on: drop set, virtual routes, virtual rules. */
  masterUp(instance: string): void {
    const p = this.#instances.get(instance);
    if (!p || this.#masters.has(instance) || this.#stopped) return;
    this.#masters.add(instance);
    if (!p.accept && p.priority < 255) this.#syncNft();
    this.#routes(`(${instance}) virtual_routes`, p.routes, "add");
    this.#rules(`(${instance}) virtual_rules`, p.rules, "add");
  }

  /** The instance is leaving MASTER (before its VIPs go): virtual rules, virtual routes, drop set. */
  masterDown(instance: string): void {
    const p = this.#instances.get(instance);
    if (!p || !this.#masters.delete(instance)) return;
    this.#rules(`(${instance}) virtual_rules`, p.rules, "delete");
    this.#routes(`(${instance}) virtual_routes`, p.routes, "delete");
    if (!p.accept && p.priority < 255) this.#syncNft();
  }

  /**
   * A route with protocol keepalived was deleted by someone else. A tracked static route is
   * reinstated; a tracked virtual route of a MASTER instance makes that instance step down
   * (keepalived's netlink_route_filter): the names of those instances are returned.
   */
  routeRemoved(route: HostRouteKey): string[] {
    const key = routeKey(route);
    return this.#removed("route", (s: RouteSpec) => kernelRouteKey(s) === key, this.#installedStatic.routes, (p) => p.routes, describeRoute,
      (s) => this.#routes("static_routes", [s], "add"));
  }

  /** As routeRemoved, for rules (keepalived's netlink_rule_filter). */
  ruleRemoved(rule: HostRuleKey): string[] {
    const key = ruleIdentity(rule);
    return this.#removed("rule", (s: RuleSpec) => ruleIdentity(s) === key, this.#installedStatic.rules, (p) => p.rules, describeRule,
      (s) => this.#rules("static_rules", [s], "add"));
  }

  #removed<T extends { noTrack: boolean }>(kind: string, same: (s: T) => boolean, statics: readonly T[], virtuals: (p: InstanceNetPlan) => readonly T[],
    text: (s: T) => string, reinstate: (s: T) => void): string[] {
    if (this.#stopped) return [];
    const hit = (s: T) => !s.noTrack && same(s);
    const stat = statics.find(hit);
    if (stat) {
      this.#log.info(`static ${kind} ${text(stat)} was removed by someone else: reinstated`);
      reinstate(stat);
    }
    return [...this.#masters].filter((name) => {
      const plan = this.#instances.get(name);
      const v = plan && virtuals(plan).find(hit);
      if (v) this.#log.info(`(${name}) virtual ${kind} ${text(v)} was removed by someone else`);
      return v !== undefined;
    });
  }

  /** Whether any static or virtual route or rule is tracked (so their deletions must be watched). */
  tracksRoutes(): boolean {
    const tracked = (l: ReadonlyArray<{ noTrack: boolean }>) => l.some((x) => !x.noTrack);
    return tracked(this.#staticRoutes) || tracked(this.#staticRules) || [...this.#instances.values()].some((p) => tracked(p.routes) || tracked(p.rules));
  }

  /** Instances whose virtual routes/rules are installed now. */
  masters(): string[] {
    return [...this.#masters];
  }

  /** Resolves once every nft change queued so far has been applied. */
  settled(): Promise<void> {
    return this.#nftTail.then(() => undefined);
  }

  #syncNft(): void {
    if (!this.#nftReady) return;
    const drop = dropAddresses([...this.#instances.values()].map((i) => ({
      state: this.#masters.has(i.name) ? VrrpState.MASTER : VrrpState.BACKUP,
      priority: i.priority, accept: i.accept, addresses: i.addresses,
    })));
    const run = this.#host.nft(nftSyncScript(this.#nftOptions, drop.vips4, drop.vips6), "sync").then((r) => {
      // After stop the table is gone on purpose; a sync still queued then fails harmlessly.
      if (!r.ok && !this.#stopped) this.#nftFailed(r);
    });
    this.#nftTail = run.catch(() => undefined);
  }

  #nftFailed(r: Exclude<HostNftResult, { ok: true }>): void {
    if (r.missing) {
      if (!this.#nftWarned) this.#log.warn(r.error);
      this.#nftWarned = true;
    } else this.#log.error(r.error);
  }

  // ---- stop ---------------------------------------------------------------------------------

  /** Removes everything start and masterUp installed, then restores sysctls. */
  stop(): void {
    if (this.#stopped || !this.#started) return;
    for (const name of [...this.#masters]) this.masterDown(name);
    this.#stopped = true;
    this.#rules("static_rules", this.#installedStatic.rules, "delete");
    this.#routes("static_routes", this.#installedStatic.routes, "delete");
    for (const a of this.#installedStatic.addresses) {
      try {
        this.#host.deleteAddress(a.spec);
      } catch (e) {
        if ((e as { code?: string }).code !== "EADDRNOTAVAIL") this.#log.error(`static_ipaddress: cannot remove ${a.text}: ${(e as Error).message}`);
      }
    }
    this.#installedStatic = { routes: [], rules: [], addresses: [] };
    if (this.#nftReady) {
      const r = this.#host.nftBlocking(nftTeardownScript(this.#nftOptions), "teardown");
      if (!r.ok) this.#log.error(r.error);
      this.#nftReady = false;
    }
    for (const p of this.#instances.values()) {
      const v = p.vmac;
      if (!v?.created) continue;
      try {
        this.#host.deleteLink(v.name);
        v.created = false;
      } catch (e) {
        this.#log.error(`(${p.name}) cannot delete VMAC ${v.name}: ${(e as Error).message}`);
      }
    }
    for (const e of this.#host.restoreSysctls()) this.#log.warn(`sysctl restore: ${e}`);
  }

  // ---- batches ------------------------------------------------------------------------------

  /** Applies routes; returns those that are in place (added or already present). */
  #routes(what: string, specs: readonly RouteSpec[], op: "add" | "delete"): RouteSpec[] {
    if (!specs.length) return [];
    return this.#report(what, "route", specs, this.#host.applyRoutes(specs, op), op, describeRoute);
  }

  #rules(what: string, specs: readonly RuleSpec[], op: "add" | "delete"): RuleSpec[] {
    if (!specs.length) return [];
    return this.#report(what, "rule", specs, this.#host.applyRules(specs, op), op, describeRule);
  }

  #report<T>(what: string, kind: string, specs: readonly T[], results: HostBatchResult[], op: "add" | "delete", text: (s: T) => string): T[] {
    const kept: T[] = [];
    specs.forEach((s, i) => {
      const r = results[i];
      if (r?.outcome === "failed") this.#log.error(`${what}: cannot ${op} ${kind} ${text(s)}: ${r.error ?? "failed"}`);
      else if (op === "add") kept.push(s);
    });
    return kept;
  }
}

/** global_defs nftables TABLE / nftables_priority / nftables_counters, keepalived's defaults when named. */
export function nftOptionsOf(g: Record<string, unknown>): NftOptions {
  const nft = g.nftables as { table?: string } | true | undefined;
  const table = typeof nft === "object" && nft.table ? nft.table : nft !== undefined ? "keepalived" : DEFAULT_NFT_OPTIONS.table;
  return {
    table,
    priority: (g.nftables_priority as number | undefined) ?? DEFAULT_NFT_OPTIONS.priority,
    counters: g.nftables_counters === true,
  };
}
