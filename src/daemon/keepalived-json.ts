/**
 * keepalived's JSON dump (what `SIGRTMIN+2` writes to /tmp/keepalived.json) built from vipd's status,
 * so that exporters written for keepalived (mehdy/keepalived-exporter and friends) read vipd unchanged.
 *
 * Field names, order and types follow keepalived/vrrp/vrrp_json.c (keepalived 2.4): unsigned fields
 * are integers, flags written with `jsonw_bool_field` are booleans, intervals are float seconds,
 * optional scripts/lists are omitted when unset or empty. Version 1 is a bare array of
 * `{data, stats}`; version 2 (`json_version 2`, keepalived ≥ 2.2.8) wraps it as `{"vrrp": [...]}`.
 *
 * Values `VrrpInstanceStatus` does not carry are read from its `extra` map under keepalived's own
 * key (e.g. `extra.garp_delay`, `extra.script_master`, `extra.track_script`); when absent, keepalived's
 * defaults are used: garp_delay 5, garp_rep 5, garp_refresh 0, garp_refresh_rep 1,
 * garp_lower_prio_delay = garp_delay, garp_lower_prio_rep = garp_rep, every other flag 0/false,
 * vmac_ifname "", every auth_ext_* counter 0. Script extras (script_*, track_script entries) may be
 * argv arrays, printed the way keepalived's cmd_str quotes them, or ready-made strings.
 * VIPs may be "ADDR[/LEN]" with config-style options (dev/brd/scope/label/preferred_lft); they are
 * printed in keepalived's format_ipaddress layout.
 */
import type { DaemonStatus, VrrpInstanceStatus } from "./status-types.ts";

/** keepalived's state numbers (vrrp.h VRRP_STATE_*), as the JSON writes them. */
export const KEEPALIVED_STATE_NUMBERS: Readonly<Record<string, number>> = {
  INIT: 0,
  BACKUP: 1,
  MASTER: 2,
  FAULT: 3,
  DELETED: 97,
  STOP: 98,
};

/** The `data` object of one instance. Optional members are omitted exactly when keepalived omits them. */
export interface KeepalivedVrrpData {
  iname: string;
  dont_track_primary: number;
  skip_check_adv_addr: number;
  strict_mode: number;
  vmac_ifname: string;
  ifp_ifname?: string;
  master_priority: number;
  last_transition: number;
  garp_delay: number;
  garp_refresh: number;
  garp_rep: number;
  garp_refresh_rep: number;
  garp_lower_prio_delay: number;
  garp_lower_prio_rep: number;
  lower_prio_no_advert: number;
  higher_prio_send_advert: number;
  vrid: number;
  base_priority: number;
  effective_priority: number;
  vipset: boolean;
  promote_secondaries: boolean;
  adver_int: number;
  master_adver_int: number;
  accept: number;
  nopreempt: boolean;
  preempt_delay: number;
  state: number;
  wantstate: number;
  version: number;
  smtp_alert: boolean;
  notify_deleted: boolean;
  script_backup?: string;
  script_master?: string;
  script_fault?: string;
  script_stop?: string;
  script_deleted?: string;
  script?: string;
  script_master_rx_lower_pri?: string;
  vips?: string[];
  evips?: string[];
  vroutes?: string[];
  vrules?: string[];
  track_ifp?: string[];
  track_script?: string[];
  track_process?: string[];
  auth_type: number;
  auth_data?: string;
}

/** The `stats` object of one instance, in keepalived's order. */
export interface KeepalivedVrrpStats {
  advert_rcvd: number;
  advert_sent: number;
  become_master: number;
  release_master: number;
  packet_len_err: number;
  advert_interval_err: number;
  ip_ttl_err: number;
  invalid_type_rcvd: number;
  addr_list_err: number;
  invalid_authtype: number;
  authtype_mismatch: number;
  auth_failure: number;
  auth_ext_missing: number;
  auth_ext_malformed: number;
  auth_ext_unknown_key: number;
  auth_ext_invalid_hmac: number;
  auth_ext_stale: number;
  auth_ext_replay: number;
  pri_zero_rcvd: number;
  pri_zero_sent: number;
}

/** One element of the dump's array. */
export interface KeepalivedVrrpEntry {
  data: KeepalivedVrrpData;
  stats: KeepalivedVrrpStats;
}

/** `json_version 1` (the default): a bare array. */
export type KeepalivedJsonV1 = KeepalivedVrrpEntry[];

/** `json_version 2`: the array under "vrrp", plus "track_process" when `DaemonStatus.extra.track_process` is set. */
export interface KeepalivedJsonV2 {
  vrrp: KeepalivedVrrpEntry[];
  track_process?: unknown[];
}

const AUTH_TYPE_NUMBERS = { NONE: 0, PASS: 1, AH: 2 } as const;

/** Converts a daemon status to keepalived's JSON dump structure (v1 array or v2 object). */
export function toKeepalivedJson(status: DaemonStatus, version: 1): KeepalivedJsonV1;
export function toKeepalivedJson(status: DaemonStatus, version: 2): KeepalivedJsonV2;
export function toKeepalivedJson(status: DaemonStatus, version: 1 | 2): KeepalivedJsonV1 | KeepalivedJsonV2;
export function toKeepalivedJson(status: DaemonStatus, version: 1 | 2): KeepalivedJsonV1 | KeepalivedJsonV2 {
  const entries = status.instances.map(toEntry);
  if (version === 1) return entries;
  const out: KeepalivedJsonV2 = { vrrp: entries };
  // keepalived's v2 adds the global tracked-process list (objects), when the daemon supplies one.
  const processes = status.extra?.track_process;
  if (Array.isArray(processes) && processes.length > 0) out.track_process = processes;
  return out;
}

/** One instance as keepalived's `{data, stats}`, fields in vrrp_json.c's order. */
function toEntry(i: VrrpInstanceStatus): KeepalivedVrrpEntry {
  const x = i.extra;
  const strict = uint(x.strict_mode, 0);
  const garpDelay = num(x.garp_delay, 5);
  const garpRep = uint(x.garp_rep, 5);
  const scripts: Partial<Record<(typeof SCRIPT_KEYS)[number], string>> = {};
  for (const key of SCRIPT_KEYS) {
    const s = command(x[key]);
    if (s !== undefined) scripts[key] = s;
  }
  const lists: Partial<Record<"vips" | "evips" | "vroutes" | "vrules" | "track_ifp" | "track_script" | "track_process", string[]>> = {};
  const listValues = {
    vips: i.vips.map((v) => formatVip(v, i.interface, i.vipsSet)),
    evips: i.evips.map((v) => formatVip(v, i.interface, i.vipsSet)),
    vroutes: strList(x.vroutes),
    vrules: strList(x.vrules),
    track_ifp: strList(x.track_ifp),
    track_script: commandList(x.track_script),
    track_process: strList(x.track_process),
  };
  // keepalived writes a list only when it is non-empty.
  for (const [key, list] of Object.entries(listValues) as [keyof typeof listValues, string[]][]) if (list.length > 0) lists[key] = list;
  const data: KeepalivedVrrpData = {
    iname: i.name,
    dont_track_primary: uint(x.dont_track_primary, 0),
    skip_check_adv_addr: uint(x.skip_check_adv_addr, 0),
    strict_mode: strict,
    vmac_ifname: str(x.vmac_ifname) ?? "",
    // keepalived omits ifp_ifname when the instance has no interface (unicast without one).
    ...(i.interface !== undefined ? { ifp_ifname: i.interface } : {}),
    master_priority: uint(i.masterPriority, 0),
    last_transition: Number.isFinite(i.lastTransition) ? i.lastTransition : 0,
    garp_delay: garpDelay,
    garp_refresh: uint(x.garp_refresh, 0),
    garp_rep: garpRep,
    garp_refresh_rep: uint(x.garp_refresh_rep, 1),
    garp_lower_prio_delay: uint(x.garp_lower_prio_delay, strict ? 0 : Math.trunc(garpDelay)),
    garp_lower_prio_rep: uint(x.garp_lower_prio_rep, strict ? 0 : garpRep),
    lower_prio_no_advert: uint(x.lower_prio_no_advert, 0),
    higher_prio_send_advert: uint(x.higher_prio_send_advert, 0),
    vrid: uint(i.vrid, 0),
    base_priority: uint(i.basePriority, 0),
    effective_priority: uint(i.effectivePriority, 0),
    vipset: i.vipsSet,
    promote_secondaries: bool(x.promote_secondaries),
    adver_int: i.advertInt,
    master_adver_int: i.masterAdvertInt,
    accept: i.accept ? 1 : 0,
    nopreempt: i.nopreempt,
    preempt_delay: uint(i.preemptDelay, 0),
    state: stateNumber(i.state),
    wantstate: stateNumber(i.wantState),
    version: i.version,
    smtp_alert: bool(x.smtp_alert),
    notify_deleted: bool(x.notify_deleted),
    ...scripts,
    ...lists,
    auth_type: AUTH_TYPE_NUMBERS[i.authType] ?? 0,
    // keepalived >= 2.4 masks the password; vipd never prints it.
    ...(i.authType !== "NONE" ? { auth_data: "********" } : {}),
  };
  const s = i.stats;
  const ext = (k: string): number => uint(x[k], 0);
  const stats: KeepalivedVrrpStats = {
    advert_rcvd: s.advert_rcvd,
    advert_sent: s.advert_sent,
    become_master: s.become_master,
    release_master: s.release_master,
    packet_len_err: s.packet_len_err,
    advert_interval_err: s.advert_interval_err,
    ip_ttl_err: s.ip_ttl_err,
    invalid_type_rcvd: s.invalid_type_rcvd,
    addr_list_err: s.addr_list_err,
    invalid_authtype: s.invalid_authtype,
    authtype_mismatch: s.authtype_mismatch,
    auth_failure: s.auth_failure,
    auth_ext_missing: ext("auth_ext_missing"),
    auth_ext_malformed: ext("auth_ext_malformed"),
    auth_ext_unknown_key: ext("auth_ext_unknown_key"),
    auth_ext_invalid_hmac: ext("auth_ext_invalid_hmac"),
    auth_ext_stale: ext("auth_ext_stale"),
    auth_ext_replay: ext("auth_ext_replay"),
    pri_zero_rcvd: s.pri_zero_rcvd,
    pri_zero_sent: s.pri_zero_sent,
  };
  return { data, stats };
}

/** Script fields in keepalived's order; each is written only when set. */
const SCRIPT_KEYS = [
  "script_backup",
  "script_master",
  "script_fault",
  "script_stop",
  "script_deleted",
  "script",
  "script_master_rx_lower_pri",
] as const;

/** keepalived's number for a state name; unknown names count as INIT. */
export function stateNumber(name: string): number {
  return KEEPALIVED_STATE_NUMBERS[name.toUpperCase()] ?? 0;
}

/** Options of a VIP line that take a value; `peer` and `track_group` are kept in place among the flags. */
const VIP_VALUE_OPTIONS = new Set(["brd", "dev", "scope", "label", "preferred_lft", "peer", "track_group"]);

/**
 * A VIP as keepalived's format_ipaddress prints it:
 * "ADDR[/LEN] [brd B] dev IF scope S [label L] [flags] [deprecated | preferred_lft N|forever] [set]".
 * Input is "ADDR[/LEN]" optionally followed by config-style options (dev, brd, scope, label,
 * preferred_lft, flags, even keepalived's own output); the prefix is left out for /32 and /128,
 * dev defaults to the instance interface, scope to global, and an IPv6 address without
 * preferred_lft is "deprecated" at /128 and "preferred_lft forever" otherwise, as keepalived sets it.
 */
export function formatVip(vip: string, iface: string | undefined, installed: boolean): string {
  const [head = "", ...rest] = vip.trim().split(/\s+/);
  const opts = new Map<string, string>();
  const flags: string[] = [];
  for (let n = 0; n < rest.length; n++) {
    const t = rest[n]!;
    if (VIP_VALUE_OPTIONS.has(t) && n + 1 < rest.length) {
      const value = rest[++n]!;
      if (t === "peer" || t === "track_group") flags.push(t, value);
      else opts.set(t, value);
    } else if (t !== "set" && t !== "deprecated") {
      flags.push(t);
    }
  }
  const slash = head.indexOf("/");
  const addr = slash < 0 ? head : head.slice(0, slash);
  const v6 = addr.includes(":");
  const full = v6 ? 128 : 32;
  const len = slash < 0 ? full : Number(head.slice(slash + 1));
  let text = len === full ? addr : `${addr}/${head.slice(slash + 1)}`;
  const brd = opts.get("brd");
  if (!v6 && brd !== undefined && brd !== "-" && brd !== "+") text += ` brd ${brd}`;
  text += ` dev ${opts.get("dev") ?? iface ?? "(null)"} scope ${opts.get("scope") ?? "global"}`;
  const label = opts.get("label");
  if (!v6 && label !== undefined) text += ` label ${label}`;
  if (flags.length) text += ` ${flags.join(" ")}`;
  if (v6) {
    const lft = opts.get("preferred_lft") ?? (rest.includes("deprecated") || len === 128 ? "0" : "forever");
    text += lft === "0" ? " deprecated" : ` preferred_lft ${lft}`;
  }
  return installed ? `${text} set` : text;
}

/**
 * A command line as keepalived's cmd_str prints it: each argument in single quotes (a quote inside
 * becomes '\''), separated by spaces. A plain string is taken as already formatted.
 */
export function formatCommand(cmd: string | readonly string[]): string {
  if (typeof cmd === "string") return cmd;
  return cmd
    .map((arg, n) => (n === 0 && (arg.startsWith("<") || arg.startsWith(">")) ? arg : `'${arg.replaceAll("'", "'\\''")}'`))
    .join(" ");
}

/**
 * Serialises a dump as keepalived's json_writer does: one compact line ending in "\n", "/" escaped
 * as "\/", last_transition with six decimals ("%f"), other floats with "%g".
 */
export function renderKeepalivedJson(value: KeepalivedJsonV1 | KeepalivedJsonV2): string {
  return write(value, "") + "\n";
}

const FIXED6_KEYS = new Set(["last_transition"]);

function write(v: unknown, key: string): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") return FIXED6_KEYS.has(key) ? v.toFixed(6) : formatG(v);
  if (typeof v === "string") return quote(v);
  if (Array.isArray(v)) return `[${v.map((e) => write(e, "")).join(",")}]`;
  if (typeof v === "object") {
    const parts: string[] = [];
    for (const [k, e] of Object.entries(v as Record<string, unknown>)) {
      if (e === undefined) continue;
      parts.push(`${quote(k)}:${write(e, k)}`);
    }
    return `{${parts.join(",")}}`;
  }
  return "null";
}

/** printf("%g") for the magnitudes a dump holds: 6 significant digits, no trailing zeros. */
function formatG(n: number): string {
  if (!Number.isFinite(n)) return "0";
  if (Number.isInteger(n)) return String(n);
  return String(Number(n.toPrecision(6)));
}

/** json_writer's escaping: C escapes, "\/" for "/", \u00XX for other control bytes. */
function quote(s: string): string {
  let out = '"';
  for (const ch of s) {
    switch (ch) {
      case "\t": out += "\\t"; break;
      case "\n": out += "\\n"; break;
      case "\r": out += "\\r"; break;
      case "\f": out += "\\f"; break;
      case "\b": out += "\\b"; break;
      case "\\": out += "\\\\"; break;
      case '"': out += '\\"'; break;
      case "/": out += "\\/"; break;
      default: {
        const c = ch.codePointAt(0)!;
        out += c < 0x20 ? `\\u${c.toString(16).padStart(4, "0")}` : ch;
      }
    }
  }
  return out + '"';
}

function uint(v: unknown, dflt: number): number {
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v === "number" && Number.isFinite(v) && v >= 0) return Math.trunc(v);
  return dflt;
}

function num(v: unknown, dflt: number): number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : dflt;
}

function bool(v: unknown): boolean {
  return v === true || (typeof v === "number" && v !== 0);
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** A script from extras: a formatted string, or an argv array to format like cmd_str. */
function command(v: unknown): string | undefined {
  if (isStringArray(v) && v.length > 0) return formatCommand(v);
  return str(v);
}

function commandList(v: unknown): string[] {
  return Array.isArray(v) ? v.map(command).filter((e): e is string => e !== undefined) : [];
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((e) => typeof e === "string");
}

function strList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((e): e is string => typeof e === "string") : [];
}
