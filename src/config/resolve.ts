/**
 * Document → model: applies keepalived's defaults and checks what one keyword alone cannot
 * (required fields, cross-references, duplicate VRIDs, vrrp_strict implications, known traps).
 */
import type { Diagnostics, SourcePos } from "./diagnostics.ts";
import type {
  AddressEntry, Family, GarpSettings, GlobalModel, Model, RealServerModel, TrackRef, VirtualServerModel, VrrpInstanceModel,
} from "./model.ts";
import type { Doc, PosMap, Rec, ScriptRef } from "./schema/kinds.ts";
import { canonicalIp } from "../net/addr.ts";
import { ipFamily } from "./schema/scalar.ts";
import { checkers as CHECKER_SPECS } from "./schema/lvs.ts";
import { parseUmask } from "./umask.ts";

export interface ResolveOptions {
  /** Host name, for router_id's default. */
  hostname: string;
  /** Position used when nothing better is known (the main file, line 1). */
  origin: SourcePos;
}

interface R {
  diags: Diagnostics;
  pos: PosMap;
  origin: SourcePos;
}

const at = (r: R, obj: object | undefined, key?: string): SourcePos => (obj && r.pos.get(obj, key)) || r.origin;

const bool = (v: unknown): boolean => v === true;

function garpFromGlobal(g: Doc): GarpSettings {
  const min = bool(g.vrrp_min_garp);
  const num = (k: string, dflt: number, minDflt = dflt): number => (typeof g[k] === "number" ? (g[k] as number) : min ? minDflt : dflt);
  const delay = num("vrrp_garp_master_delay", 5, 0);
  const repeat = num("vrrp_garp_master_repeat", 5, 1);
  return {
    garp_master_delay: delay,
    garp_master_repeat: repeat,
    garp_master_refresh: num("vrrp_garp_master_refresh", 0),
    garp_master_refresh_repeat: num("vrrp_garp_master_refresh_repeat", 1),
    garp_lower_prio_delay: num("vrrp_garp_lower_prio_delay", delay),
    garp_lower_prio_repeat: num("vrrp_garp_lower_prio_repeat", repeat),
    garp_interval: num("vrrp_garp_interval", 0),
    gna_interval: num("vrrp_gna_interval", 0),
  };
}

function resolveGlobal(g: Doc, opts: ResolveOptions): GlobalModel {
  return {
    router_id: (g.router_id as string) ?? opts.hostname,
    vrrp_version: ((g.vrrp_version as number) ?? 2) as 2 | 3,
    vrrp_strict: bool(g.vrrp_strict),
    vrrp_mcast_group4: (g.vrrp_mcast_group4 as string) ?? "224.0.0.18",
    vrrp_mcast_group6: (g.vrrp_mcast_group6 as string) ?? "ff02::12",
    enable_script_security: bool(g.enable_script_security),
    script_user: g.script_user as GlobalModel["script_user"],
    garp: garpFromGlobal(g),
    doc: g,
  };
}

function addressEntries(list: unknown, r: R): AddressEntry[] {
  const out: AddressEntry[] = [];
  for (const e of (list as Rec[] | undefined) ?? []) {
    const [raw, plen] = String(e.address).split("/");
    const addr = canonicalIp(raw) ?? raw;
    const family = ipFamily(addr) as Family;
    const entry: AddressEntry = { ...(e as object), address: addr, family, prefixlen: plen !== undefined ? Number(plen) : family === "inet" ? 32 : 128, pos: at(r, e) } as AddressEntry;
    out.push(entry);
  }
  return out;
}

function trackRefs(list: unknown): TrackRef[] {
  return ((list as Rec[] | undefined) ?? []).map((t) => ({
    name: String(t.name),
    weight: t.weight as number | undefined,
    reverse: bool(t.reverse) && !bool(t.noreverse),
  }));
}

const isLinkLocal6 = (a: string): boolean => /^fe[89ab][0-9a-f]:/i.test(a);

function resolveInstance(name: string, d: Doc, g: GlobalModel, r: R): VrrpInstanceModel | undefined {
  const { diags } = r;
  const here = at(r, d);
  const strict = d.strict_mode !== undefined ? bool(d.strict_mode) : g.vrrp_strict;

  // priority and state depend on each other (reference §1.6 "Initial state")
  let priority = d.priority as number | undefined;
  let state = d.state as "MASTER" | "BACKUP" | undefined;
  if (priority === undefined) priority = state === "MASTER" ? 255 : 100;
  if (state === undefined) state = priority === 255 ? "MASTER" : "BACKUP";

  const vips = addressEntries(d.virtual_ipaddress, r);
  const evips = addressEntries(d.virtual_ipaddress_excluded, r);
  let family: Family = vips[0]?.family ?? (d.mcast_src_ip ? (ipFamily(String(d.mcast_src_ip)) as Family) : "inet");
  for (const v of vips) {
    if (v.family !== family)
      diags.error(v.pos ?? here, `mixed address families in virtual_ipaddress of ${name}: ${v.address} is not ${family === "inet" ? "IPv4" : "IPv6"}`, `an ${family === "inet" ? "IPv4" : "IPv6"} address like the first one (put other families in virtual_ipaddress_excluded)`);
  }
  if (d.mcast_src_ip && ipFamily(String(d.mcast_src_ip)) !== family && vips.length)
    diags.error(at(r, d, "mcast_src_ip"), `${name}: mcast_src_ip/unicast_src_ip ${d.mcast_src_ip} is not the family of the virtual addresses`);
  if (vips.length === 0 && evips.length) family = family ?? evips[0].family;

  let version = d.version as 2 | 3 | undefined;
  if (version === undefined) version = family === "inet6" ? 3 : g.vrrp_version;
  if (family === "inet6" && version === 2) {
    if (strict) {
      diags.error(at(r, d, "version"), `${name}: VRRPv2 does not support IPv6 in strict mode; using version 3`);
      version = 3;
    } else diags.warning(at(r, d, "version"), `${name}: VRRPv2 over IPv6 is non-standard (keepalived allows it only when set explicitly)`);
  }

  let advert = (d.advert_int as number | undefined) ?? 1;
  if (version === 2) {
    const rounded = Math.max(1, Math.round(advert));
    if (rounded !== advert) diags.warning(at(r, d, "advert_int"), `${name}: VRRPv2 advert_int must be whole seconds; ${advert} rounded to ${rounded}`);
    advert = rounded;
  } else {
    const cs = Math.round(advert * 100);
    if (cs > 4095) {
      diags.error(at(r, d, "advert_int"), `${name}: advert_int ${advert} out of range for VRRPv3`, "0.01..40.95 seconds");
      advert = 40.95;
    } else advert = Math.max(1, cs) / 100;
  }

  const vrid = d.virtual_router_id as number | undefined;
  if (vrid === undefined) {
    diags.error(here, `vrrp_instance ${name}: missing virtual_router_id`, "virtual_router_id 1..255", true);
    return undefined;
  }

  const peers = ((d.unicast_peer as Rec[] | undefined) ?? []).map((p) => ({ address: String(p.address), min_ttl: p.min_ttl as number | undefined, max_ttl: p.max_ttl as number | undefined }));
  for (const p of ((d.unicast_peer as Rec[] | undefined) ?? []))
    if (ipFamily(String(p.address)) !== family) diags.error(at(r, p), `${name}: mixed address families: unicast_peer ${p.address} is not ${family === "inet" ? "IPv4" : "IPv6"} like the instance`);
  const iface = d.interface as string | undefined;
  if (!iface) {
    const src = d.mcast_src_ip as string | undefined;
    if (!(src && peers.length && !isLinkLocal6(src)))
      diags.error(here, `vrrp_instance ${name} requires interface (only unicast instances with a non-link-local unicast_src_ip may omit it)`, "interface IFNAME", true);
  }

  // authentication
  let auth_type: "PASS" | "AH" | undefined;
  let auth_pass: string | undefined;
  const auth = d.authentication as Doc | undefined;
  if (auth) {
    auth_type = auth.auth_type as "PASS" | "AH" | undefined;
    auth_pass = auth.auth_pass as string | undefined;
    if (!auth_type) diags.error(at(r, auth), `${name}: authentication needs auth_type`, "auth_type PASS|AH");
    if (auth_pass === undefined) diags.error(at(r, auth), `${name}: authentication needs auth_pass`, "auth_pass PASSWORD");
    else if (auth_pass.length > 8)
      diags.warning(at(r, auth, "auth_pass"), `${name}: auth_pass is longer than 8 characters; only '${auth_pass.slice(0, 8)}' is used`);
    if (strict) {
      diags.warning(at(r, auth), `${name}: authentication is ignored with vrrp_strict (RFC 5798 removed it). keepalived's sample config has both, and the peers then disagree: remove the authentication block or vrrp_strict`);
      auth_type = undefined;
    } else if (version === 3) {
      diags.warning(at(r, auth), `${name}: authentication is ignored for VRRPv3`);
      auth_type = undefined;
    } else if (auth_type === "AH" && family === "inet6") {
      diags.error(at(r, auth, "auth_type"), `${name}: AH authentication is IPv4 only`);
      auth_type = undefined;
    }
    if (auth_type === "AH" && state === "MASTER" && priority !== 255)
      diags.warning(at(r, d, "state"), `${name}: state MASTER is not allowed with AH authentication unless priority is 255; starting as BACKUP`);
    if (!auth_type) auth_pass = undefined;
    else if (auth_pass !== undefined) auth_pass = auth_pass.slice(0, 8);
  }

  // preemption
  let nopreempt = bool(d.nopreempt);
  let preempt_delay = (d.preempt_delay as number | undefined) ?? 0;
  if (nopreempt && state === "MASTER" && priority !== 255)
    diags.warning(at(r, d, "nopreempt"), `${name}: nopreempt with state MASTER: the instance still starts as BACKUP, and it will not take over from a lower-priority master; set state BACKUP on every node for nopreempt to work`);
  if (nopreempt && priority === 255) {
    diags.error(at(r, d, "nopreempt"), `${name}: nopreempt is invalid for an address owner (priority 255); ignored`);
    nopreempt = false;
  }
  if (preempt_delay && nopreempt) {
    diags.warning(at(r, d, "preempt_delay"), `${name}: preempt_delay has no effect with nopreempt`);
    preempt_delay = 0;
  }

  // vrrp_strict implications (reference §1.3)
  let accept = d.no_accept ? false : d.accept !== undefined ? bool(d.accept) : !strict || priority === 255;
  let lower_prio_no_advert = d.lower_prio_no_advert !== undefined ? bool(d.lower_prio_no_advert) : bool(g.doc.vrrp_lower_prio_no_advert);
  let higher_prio_send_advert = d.higher_prio_send_advert !== undefined ? bool(d.higher_prio_send_advert) : bool(g.doc.vrrp_higher_prio_send_advert);
  let down_timer_adverts = (d.down_timer_adverts as number | undefined) ?? (g.doc.vrrp_down_timer_adverts as number | undefined) ?? 3;
  const garp: GarpSettings = { ...g.garp };
  for (const k of ["garp_master_delay", "garp_master_repeat", "garp_master_refresh", "garp_master_refresh_repeat", "garp_lower_prio_delay", "garp_lower_prio_repeat"] as const)
    if (typeof d[k] === "number") garp[k] = d[k] as number;
  if (strict) {
    if (!vips.length && !bool(d.no_virtual_ipaddress)) diags.error(here, `${name}: vrrp_strict requires at least one virtual_ipaddress`);
    if (peers.length) diags.error(at(r, d, "unicast_peer"), `${name}: vrrp_strict does not allow unicast_peer`);
    if (family === "inet6" && vips.length && !isLinkLocal6(vips[0].address))
      diags.error(vips[0].pos ?? here, `${name}: vrrp_strict requires the first IPv6 virtual address to be link-local`);
    if ((state === "MASTER") !== (priority === 255))
      diags.warning(at(r, d, "state"), `${name}: vrrp_strict expects state MASTER exactly when priority is 255`);
    if (preempt_delay) {
      diags.warning(at(r, d, "preempt_delay"), `${name}: preempt_delay is not allowed with vrrp_strict; ignored`);
      preempt_delay = 0;
    }
    if (version === 2 && d.accept) {
      diags.warning(at(r, d, "accept"), `${name}: accept is not allowed for VRRPv2 with vrrp_strict; ignored`);
      accept = priority === 255;
    }
    if (down_timer_adverts !== 3) {
      diags.warning(at(r, d, "down_timer_adverts"), `${name}: vrrp_strict requires down_timer_adverts 3`);
      down_timer_adverts = 3;
    }
    lower_prio_no_advert = true;
    higher_prio_send_advert = false;
    garp.garp_lower_prio_repeat = 0;
    garp.garp_lower_prio_delay = 0;
    if (!accept && d.accept === undefined && priority !== 255)
      diags.info(here, `${name}: with vrrp_strict and no 'accept', packets to the virtual addresses are dropped on the master (keepalived installs firewall drop rules); add 'accept' if services listen on them`);
  }
  if (!vips.length && !bool(d.no_virtual_ipaddress))
    diags.warning(here, `${name}: no virtual_ipaddress (add 'no_virtual_ipaddress' if this is intended)`);

  const tracks = {
    track_interface: trackRefs(d.track_interface),
    track_script: trackRefs(d.track_script),
    track_file: trackRefs(d.track_file),
    track_process: trackRefs(d.track_process),
  };
  if (priority === 255)
    for (const [k, list] of Object.entries(tracks))
      for (const t of list)
        if (t.weight) diags.warning(at(r, d, k), `${name}: an address owner (priority 255) is never adjusted by ${k} weights; use weight 0 (FAULT) instead`);

  return {
    name, pos: here, state, interface: iface, virtual_router_id: vrid, priority, advert_int: advert, version, family,
    virtual_ipaddress: vips, virtual_ipaddress_excluded: evips, auth_type, auth_pass, nopreempt, preempt_delay,
    mcast_src_ip: d.mcast_src_ip as string | undefined,
    mcast_dst_ip: (d.mcast_dst_ip as string | undefined) ?? (family === "inet" ? g.vrrp_mcast_group4 : g.vrrp_mcast_group6),
    unicast_peer: peers, strict_mode: strict, accept,
    dont_track_primary: bool(d.dont_track_primary),
    skip_check_adv_addr: d.skip_check_adv_addr !== undefined ? true : bool(g.doc.vrrp_skip_check_adv_addr), // keepalived sets it even for "false"
    v3_checksum_as_v2: d.v3_checksum_as_v2 !== undefined ? bool(d.v3_checksum_as_v2) : bool(g.doc.v3_checksum_as_v2),
    down_timer_adverts, lower_prio_no_advert, higher_prio_send_advert,
    owner_ignore_adverts: d.owner_ignore_adverts !== undefined ? bool(d.owner_ignore_adverts) : g.doc.vrrp_owner_ignore_adverts !== undefined ? bool(g.doc.vrrp_owner_ignore_adverts) : strict && priority === 255,
    garp,
    ...tracks,
    notify_master: d.notify_master as ScriptRef | undefined,
    notify_backup: d.notify_backup as ScriptRef | undefined,
    notify_fault: d.notify_fault as ScriptRef | undefined,
    notify_stop: d.notify_stop as ScriptRef | undefined,
    notify: d.notify as ScriptRef | undefined,
    doc: d,
  };
}

/** Duplicate VRIDs: keepalived needs them unique per interface, family and multicast group (or peer set). */
function checkDuplicateVrids(list: VrrpInstanceModel[], r: R): void {
  const seen = new Map<string, VrrpInstanceModel>();
  for (const i of list) {
    const channel = i.unicast_peer.length ? `unicast:${i.unicast_peer.map((p) => p.address).sort().join(",")}` : `mcast:${i.mcast_dst_ip}`;
    const key = `${i.interface ?? ""}|${i.family}|${channel}|${i.virtual_router_id}`;
    const prev = seen.get(key);
    if (prev)
      r.diags.error(at(r, i.doc, "virtual_router_id"), `duplicate virtual_router_id ${i.virtual_router_id} on ${i.interface ?? "(no interface)"} (${i.family === "inet" ? "IPv4" : "IPv6"}): already used by ${prev.name} at line ${prev.pos.line}`, "a VRID unique per interface and family");
    else seen.set(key, i);
  }
}

function checkTrackRefs(owner: string, d: Doc, model: Model, r: R): void {
  const targets: Array<[string, Record<string, unknown>, string]> = [
    ["track_script", model.vrrp_script, "vrrp_script"],
    ["track_process", model.vrrp_track_process, "vrrp_track_process"],
    ["track_file", model.track_file, "track_file"],
    ["track_bfd", model.bfd_instance, "bfd_instance"],
  ];
  for (const [kwd, defined, what] of targets) {
    for (const t of (d[kwd] as Rec[] | undefined) ?? []) {
      if (!(String(t.name) in defined))
        r.diags.error(at(r, t), `${owner}: ${kwd} refers to unknown ${what} '${t.name}'`, `the name of a ${what} block`);
    }
  }
}

/** bfd_instance problems keepalived reports (bfd_parser.c), and track_bfd of instances that only feed checkers. */
/** track_group: its instances must exist, and static entries must name a group that does (keepalived warns and ignores). */
function checkTrackGroups(model: Model, r: R): void {
  const instances = new Set(model.vrrp_instance.map((i) => i.name));
  for (const [name, g] of Object.entries(model.track_group)) {
    for (const i of (g.group as string[] | undefined) ?? [])
      if (!instances.has(i)) r.diags.warning(at(r, g, "group"), `vrrp instance ${i} specified in track group ${name} doesn't exist - ignoring`);
  }
  const entries: Array<[string, Rec]> = [
    ...model.static_ipaddress.map((e): [string, Rec] => ["address", e as unknown as Rec]),
    ...model.static_routes.map((e): [string, Rec] => ["route", e]),
    ...model.static_rules.map((e): [string, Rec] => ["rule", e]),
  ];
  for (const [kind, e] of entries) {
    if (typeof e.track_group !== "string") continue;
    const pos = (e.pos as SourcePos | undefined) ?? at(r, e);
    if (!model.track_group[e.track_group]) r.diags.warning(pos, `static ${kind}: track_group ${e.track_group} not found - not tracking`);
    else if (e.no_track === true) r.diags.warning(pos, `Static ${kind} has both track_group and no_track set - not tracking`);
  }
}

function checkBfd(model: Model, r: R): void {
  for (const [name, d] of Object.entries(model.bfd_instance)) {
    const nbr = typeof d.neighbor_ip === "string" ? d.neighbor_ip : undefined;
    const src = typeof d.source_ip === "string" ? d.source_ip : undefined;
    if (!nbr) r.diags.error(at(r, d), `bfd_instance ${name} has no neighbor_ip; the instance is disabled`, "neighbor_ip ADDRESS");
    else if (src && src.includes(":") !== nbr.includes(":"))
      r.diags.error(at(r, d, "source_ip"), `bfd_instance ${name}: source_ip ${src} and neighbor_ip ${nbr} are not of the same family; the instance is disabled`);
    if (typeof d.idle_tx === "number" && d.idle_tx < 1000)
      r.diags.warning(at(r, d, "idle_tx"), `bfd_instance ${name}: idle_tx ${d.idle_tx} is below 1000 ms; 1000 is used, as keepalived`, "idle_tx 1000..4294967");
  }
  const owners: Array<[string, Doc]> = [...model.vrrp_instance.map((i): [string, Doc] => [`vrrp_instance ${i.name}`, i.doc]), ...Object.entries(model.vrrp_sync_group).map(([n, g]): [string, Doc] => [`vrrp_sync_group ${n}`, g])];
  for (const [owner, d] of owners)
    for (const t of (d.track_bfd as Rec[] | undefined) ?? []) {
      const b = model.bfd_instance[String(t.name)];
      if (b && b.checker === true && b.vrrp !== true)
        r.diags.warning(at(r, t), `${owner}: track_bfd ${t.name} is ignored: bfd_instance ${t.name} sends its events to checkers only`);
    }
}

function checkSyncGroups(model: Model, r: R): void {
  const memberOf = new Map<string, string>();
  const names = new Set(model.vrrp_instance.map((i) => i.name));
  for (const [gname, g] of Object.entries(model.vrrp_sync_group)) {
    const members = (g.group as string[] | undefined) ?? [];
    // keepalived warns and drops such a group (its own lvs_syncd sample lists members without `group { }`)
    if (!members.length) {
      r.diags.warning(at(r, g), `vrrp_sync_group ${gname} has no group { } members; it is ignored, as keepalived does`, "group { VI_1 VI_2 }");
      delete model.vrrp_sync_group[gname];
      continue;
    }
    if (members.length === 1) r.diags.warning(at(r, g, "group"), `vrrp_sync_group ${gname} has only one member`);
    members.forEach((m, idx) => {
      const mpos = r.pos.get(members, String(idx)) ?? at(r, g, "group");
      if (!names.has(m)) r.diags.error(mpos, `vrrp_sync_group ${gname}: unknown vrrp_instance '${m}'`, "the name of a vrrp_instance");
      else if (memberOf.has(m)) r.diags.error(mpos, `vrrp_instance ${m} is in two sync groups (${memberOf.get(m)} and ${gname})`);
      else memberOf.set(m, gname);
    });
    checkTrackRefs(`vrrp_sync_group ${gname}`, g, model, r);
  }
}

function resolveRealServer(d: Doc, vs: Doc, r: R): RealServerModel {
  const checkers: RealServerModel["checkers"] = [];
  for (const type of Object.keys(CHECKER_SPECS)) for (const c of (d[type] as Doc[] | undefined) ?? []) checkers.push({ type, doc: c });
  return { ip: String(d.ip), port: d.port as number | undefined, weight: (d.weight as number | undefined) ?? 1, checkers, doc: d, pos: at(r, d) };
}

function resolveVirtualServer(d: Doc, r: R, groups: Record<string, Rec[]>): VirtualServerModel | undefined {
  const here = at(r, d);
  const kinds = [d.ip !== undefined, d.fwmark !== undefined, d.group !== undefined].filter(Boolean).length;
  if (kinds !== 1) {
    r.diags.error(here, "virtual_server needs exactly one of IP [PORT], fwmark N or group NAME", "virtual_server IP PORT { ... }", true);
    return undefined;
  }
  const id = d.ip !== undefined ? `${d.ip}${d.port !== undefined ? ` ${d.port}` : ""}` : d.fwmark !== undefined ? `fwmark ${d.fwmark}` : `group ${d.group}`;
  if (d.group !== undefined && !(String(d.group) in groups))
    r.diags.error(at(r, d, "group"), `virtual_server refers to unknown virtual_server_group '${d.group}'`, "the name of a virtual_server_group");
  let protocol = d.protocol as VirtualServerModel["protocol"] | undefined;
  const onlyMarks = d.fwmark !== undefined || (d.group !== undefined && (groups[String(d.group)] ?? []).every((e) => e.fwmark !== undefined));
  if (!protocol) {
    if (!onlyMarks)
      r.diags.warning(here, `virtual_server ${id}: missing protocol; keepalived then uses UDP (the kernel's default), which is rarely what was meant. Add 'protocol TCP'`, "protocol TCP|UDP|SCTP");
    protocol = onlyMarks ? "TCP" : "UDP";
  } else if (d.fwmark !== undefined) {
    r.diags.warning(at(r, d, "protocol"), `virtual_server ${id}: protocol is ignored for a fwmark virtual server`);
  }
  if (d.ip !== undefined && d.port === undefined && d.persistence_timeout === undefined)
    r.diags.warning(here, `virtual_server ${id}: no port, so the service is made persistent (persistence_timeout 360)`);
  const method = ((d.lvs_method as Rec | undefined)?.method as string | undefined) ?? "NAT";
  const rss: RealServerModel[] = [];
  for (const rsd of (d.real_server as Doc[] | undefined) ?? []) {
    const rs = resolveRealServer(rsd, d, r);
    const rsMethod = ((rsd.lvs_method as Rec | undefined)?.method as string | undefined) ?? method;
    if ((rsMethod === "DR" || rsMethod === "TUN") && d.port !== undefined && rs.port !== undefined && rs.port !== d.port)
      r.diags.warning(rs.pos ?? here, `real_server ${rs.ip} ${rs.port}: with ${rsMethod} the port must equal the virtual server's (${d.port}); using ${d.port}`);
    if (ipFamily(rs.ip) !== (d.ip !== undefined ? ipFamily(String(d.ip)) : ipFamily(rs.ip)) && rsMethod !== "TUN")
      r.diags.error(rs.pos ?? here, `real_server ${rs.ip}: mixed address families with virtual_server ${id} (only TUN allows it)`);
    rss.push(rs);
  }
  const q = (d.quorum as number | undefined) ?? 1;
  const h = (d.hysteresis as number | undefined) ?? 0;
  if (h >= q && d.hysteresis !== undefined)
    r.diags.warning(at(r, d, "hysteresis"), `virtual_server ${id}: hysteresis ${h} must be below quorum ${q}; using ${q - 1}`);
  return {
    id, ip: d.ip as string | undefined, port: d.port as number | undefined, fwmark: d.fwmark as number | undefined, group: d.group as string | undefined,
    protocol, lvs_sched: (d.lvs_sched as string | undefined) ?? "wlc", lvs_method: method,
    delay_loop: (d.delay_loop as number | undefined) ?? 60, real_servers: rss, doc: d, pos: here,
  };
}

function collectScripts(model: Model, root: Doc, r: R): void {
  const add = (what: string, s: unknown, owner?: object, key?: string) => {
    if (s && typeof s === "object" && typeof (s as Rec).cmd === "string")
      model.scripts.push({ what, script: s as ScriptRef, pos: owner ? at(r, owner, key) : undefined });
  };
  const notifies = ["notify_master", "notify_backup", "notify_fault", "notify_stop", "notify", "notify_deleted", "notify_master_rx_lower_pri"];
  for (const i of model.vrrp_instance) for (const k of notifies) add(`${i.name} ${k}`, i.doc[k], i.doc, k);
  for (const [n, g] of Object.entries(model.vrrp_sync_group)) for (const k of notifies) add(`${n} ${k}`, g[k], g, k);
  for (const [n, s] of Object.entries(model.vrrp_script)) add(`vrrp_script ${n}`, s.script, s, "script");
  const g = model.global.doc;
  for (const k of ["notify_fifo_script", "vrrp_notify_fifo_script", "lvs_notify_fifo_script", "startup_script", "shutdown_script"]) add(k, g[k], g, k);
  for (const vs of model.virtual_server) {
    for (const k of ["quorum_up", "quorum_down"]) add(`virtual_server ${vs.id} ${k}`, vs.doc[k], vs.doc, k);
    for (const rs of vs.real_servers) {
      for (const k of ["notify_up", "notify_down"]) add(`real_server ${rs.ip} ${k}`, rs.doc[k], rs.doc, k);
      for (const c of rs.checkers) if (c.type === "MISC_CHECK") add(`real_server ${rs.ip} MISC_CHECK`, c.doc.misc_path, c.doc, "misc_path");
    }
  }
  void root;
}

/** Builds the model from a root document, reporting every semantic problem to `diags`. */
export function resolve(root: Doc, diags: Diagnostics, pos: PosMap, opts: ResolveOptions): Model {
  const r: R = { diags, pos, origin: opts.origin };
  const global = resolveGlobal((root.global_defs as Doc | undefined) ?? {}, opts);
  const model: Model = {
    global,
    vrrp_instance: [],
    vrrp_script: { ...((root.vrrp_script as Record<string, Doc>) ?? {}) },
    vrrp_sync_group: { ...((root.vrrp_sync_group as Record<string, Doc>) ?? {}) },
    vrrp_track_process: (root.vrrp_track_process as Record<string, Doc>) ?? {},
    track_file: (root.track_file as Record<string, Doc>) ?? {},
    bfd_instance: (root.bfd_instance as Record<string, Doc>) ?? {},
    ...(root.SSL ? { ssl: root.SSL as Doc } : {}),
    virtual_server: [],
    virtual_server_group: (root.virtual_server_group as Record<string, Rec[]>) ?? {},
    static_ipaddress: addressEntries(root.static_ipaddress, r),
    static_routes: (root.static_routes as Rec[] | undefined) ?? [],
    static_rules: (root.static_rules as Rec[] | undefined) ?? [],
    interface_up_down_delays: (root.interface_up_down_delays as Rec[] | undefined) ?? [],
    garp_group: (root.garp_group as Doc[] | undefined) ?? [],
    track_group: (root.track_group as Record<string, Doc> | undefined) ?? {},
    scripts: [],
  };
  for (const [name, d] of Object.entries((root.vrrp_instance as Record<string, Doc>) ?? {})) {
    const inst = resolveInstance(name, d, global, r);
    if (inst) model.vrrp_instance.push(inst);
  }
  checkDuplicateVrids(model.vrrp_instance, r);
  for (const i of model.vrrp_instance) checkTrackRefs(`vrrp_instance ${i.name}`, i.doc, model, r);
  checkSyncGroups(model, r);
  checkBfd(model, r);
  checkTrackGroups(model, r);
  const dyn = model.global.doc.dynamic_interfaces as { allow_if_changes?: boolean } | true | undefined;
  if (typeof dyn === "object" && dyn.allow_if_changes)
    r.diags.warning(at(r, model.global.doc, "dynamic_interfaces"), "dynamic_interfaces allow_if_changes: vipd does not follow an interface deleted and created again under a running instance (restart vipd after that)");
  if (typeof model.global.doc.umask === "string") {
    const u = parseUmask(model.global.doc.umask);
    if ("error" in u) r.diags.error(at(r, model.global.doc, "umask"), `umask: ${u.error}`, "a number (022) or bits (IWGRP|IWOTH)");
  }
  for (const [n, s] of Object.entries(model.vrrp_script)) {
    if (!s.script) diags.error(at(r, s), `vrrp_script ${n} has no script`, 'script "COMMAND"');
    if (s.timeout === undefined) {
      // a copy: the document is what the file says (convert prints it), the model has defaults
      const withDefault: Doc = { ...s, timeout: (s.interval as number | undefined) ?? 1 };
      pos.set(withDefault, "", at(r, s));
      pos.set(withDefault, "script", at(r, s, "script"));
      model.vrrp_script[n] = withDefault;
    }
  }
  for (const [n, p] of Object.entries(model.vrrp_track_process))
    if (!p.process) diags.error(at(r, p), `vrrp_track_process ${n} has no process`, "process NAME [ARGS]");
  for (const [n, f] of Object.entries(model.track_file))
    if (!f.file) diags.error(at(r, f), `track_file ${n} has no file`, 'file "PATH"');
  for (const d of (root.virtual_server as Doc[] | undefined) ?? []) {
    const vs = resolveVirtualServer(d, r, model.virtual_server_group);
    if (vs) model.virtual_server.push(vs);
  }
  collectScripts(model, root, r);
  return model;
}
