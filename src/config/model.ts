/**
 * The resolved config model: what the daemon runs on. Built by resolve.ts from the document
 * (the literal content of keepalived.conf or YAML), with keepalived's defaults applied and
 * cross-references checked. Field names follow keepalived's keywords.
 */
import type { SourcePos } from "./diagnostics.ts";
import type { Doc, Rec, ScriptRef } from "./schema/kinds.ts";

export type Family = "inet" | "inet6";

/** One virtual (or excluded, or static) address line. */
export interface AddressEntry {
  address: string;
  prefixlen: number;
  family: Family;
  dev?: string;
  brd?: string;
  scope?: string;
  label?: string;
  peer?: string;
  preferred_lft?: string;
  home?: boolean;
  nodad?: boolean;
  noprefixroute?: boolean;
  no_track?: boolean;
  /** track_group NAME: the group's instances go to FAULT while this entry's interface is down. */
  track_group?: string;
  pos?: SourcePos;
}

export interface TrackRef {
  name: string;
  weight?: number;
  reverse: boolean;
}

export interface GarpSettings {
  garp_master_delay: number;
  garp_master_repeat: number;
  garp_master_refresh: number;
  garp_master_refresh_repeat: number;
  garp_lower_prio_delay: number;
  garp_lower_prio_repeat: number;
  garp_interval: number;
  gna_interval: number;
}

export interface VrrpInstanceModel {
  name: string;
  pos: SourcePos;
  /** The configured wish; keepalived's wantstate. */
  state: "MASTER" | "BACKUP";
  interface?: string;
  virtual_router_id: number;
  priority: number;
  /** Seconds, rounded as the version requires (v2: whole seconds, v3: centiseconds). */
  advert_int: number;
  version: 2 | 3;
  family: Family;
  virtual_ipaddress: AddressEntry[];
  virtual_ipaddress_excluded: AddressEntry[];
  auth_type?: "PASS" | "AH";
  /** Password as the 8 bytes on the wire (zero-padded). */
  auth_pass?: string;
  nopreempt: boolean;
  preempt_delay: number;
  mcast_src_ip?: string;
  mcast_dst_ip: string;
  unicast_peer: Array<{ address: string; min_ttl?: number; max_ttl?: number }>;
  strict_mode: boolean;
  accept: boolean;
  dont_track_primary: boolean;
  skip_check_adv_addr: boolean;
  v3_checksum_as_v2: boolean;
  down_timer_adverts: number;
  lower_prio_no_advert: boolean;
  higher_prio_send_advert: boolean;
  owner_ignore_adverts: boolean;
  garp: GarpSettings;
  track_interface: TrackRef[];
  track_script: TrackRef[];
  track_file: TrackRef[];
  track_process: TrackRef[];
  notify_master?: ScriptRef;
  notify_backup?: ScriptRef;
  notify_fault?: ScriptRef;
  notify_stop?: ScriptRef;
  notify?: ScriptRef;
  /** The rest of the instance's document, for features not modelled yet. */
  doc: Doc;
}

export interface RealServerModel {
  ip: string;
  port?: number;
  weight: number;
  checkers: Array<{ type: string; doc: Doc }>;
  doc: Doc;
  pos?: SourcePos;
}

export interface VirtualServerModel {
  /** `ip port`, `fwmark N` or `group NAME`, as keepalived prints it. */
  id: string;
  ip?: string;
  port?: number;
  fwmark?: number;
  group?: string;
  protocol: "TCP" | "UDP" | "SCTP";
  lvs_sched: string;
  lvs_method: string;
  delay_loop: number;
  real_servers: RealServerModel[];
  doc: Doc;
  pos?: SourcePos;
}

export interface GlobalModel {
  router_id: string;
  vrrp_version: 2 | 3;
  vrrp_strict: boolean;
  vrrp_mcast_group4: string;
  vrrp_mcast_group6: string;
  enable_script_security: boolean;
  script_user?: { user: string; group?: string };
  garp: GarpSettings;
  doc: Doc;
}

export interface Model {
  global: GlobalModel;
  vrrp_instance: VrrpInstanceModel[];
  vrrp_script: Record<string, Doc>;
  vrrp_sync_group: Record<string, Doc>;
  vrrp_track_process: Record<string, Doc>;
  track_file: Record<string, Doc>;
  bfd_instance: Record<string, Doc>;
  /** The root SSL { } block: the client context of every SSL_GET. */
  ssl?: Doc;
  virtual_server: VirtualServerModel[];
  virtual_server_group: Record<string, Rec[]>;
  /** Root static_ipaddress lines: installed at start, removed at stop. */
  static_ipaddress: AddressEntry[];
  /** Root static_routes / static_rules lines (routeLines/ruleLines records, mapped by src/vrrp/routes.ts). */
  static_routes: Rec[];
  static_rules: Rec[];
  /** Root interface_up_down_delays lines: { interface, down_delay, up_delay? } in seconds. */
  interface_up_down_delays: Rec[];
  /** Root garp_group blocks (garp_interval, gna_interval, interface, interfaces). */
  garp_group: Doc[];
  /** Root track_group blocks by name: { group: [instance names] }. */
  track_group: Record<string, Doc>;
  /** Every script the config would run (notify, vrrp_script, MISC_CHECK, …), for security checks. */
  scripts: Array<{ what: string; script: ScriptRef; pos?: SourcePos }>;
}
