/**
 * keepalived's text dumps built from vipd's status: the USR2 stats dump
 * (/tmp/keepalived.stats, vrrp_print_stats: byte for byte keepalived 2.2.7's layout) and the
 * USR1 data dump (/tmp/keepalived.data, vrrp_print_data: keepalived's section headers and
 * `Key = value` lines for what vipd knows; keepalived-internal fields are left out).
 */
import type { DaemonStatus, VrrpInstanceStatus } from "./status-types.ts";

/** The stats dump: one block per instance, in keepalived's order and wording. */
export function renderStatsDump(status: DaemonStatus): string {
  const out: string[] = [];
  for (const i of status.instances) {
    const s = i.stats;
    out.push(
      `VRRP Instance: ${i.name}`,
      "  Advertisements:",
      `    Received: ${s.advert_rcvd}`,
      `    Sent: ${s.advert_sent}`,
      `  Became master: ${s.become_master}`,
      `  Released master: ${s.release_master}`,
      "  Packet Errors:",
      `    Length: ${s.packet_len_err}`,
      `    TTL: ${s.ip_ttl_err}`,
      `    Invalid Type: ${s.invalid_type_rcvd}`,
      `    Advertisement Interval: ${s.advert_interval_err}`,
      `    Address List: ${s.addr_list_err}`,
      "  Authentication Errors:",
      `    Invalid Type: ${s.invalid_authtype}`,
      `    Type Mismatch: ${s.authtype_mismatch}`,
      `    Failure: ${s.auth_failure}`,
      "  Priority Zero:",
      `    Received: ${s.pri_zero_rcvd}`,
      `    Sent: ${s.pri_zero_sent}`,
    );
  }
  return out.length ? out.join("\n") + "\n" : "";
}

/** keepalived's `1795319129.096037 (Sun Nov 22 03:45:29.096037 2026)` for an epoch in seconds. */
export function formatTimestamp(epochSeconds: number): string {
  const usec = Math.round((epochSeconds % 1) * 1e6);
  const whole = Math.floor(epochSeconds);
  const d = new Date(whole * 1000);
  const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const two = (n: number) => String(n).padStart(2, "0");
  const frac = String(usec).padStart(6, "0");
  const human = `${days[d.getDay()]} ${months[d.getMonth()]} ${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${frac} ${d.getFullYear()}`;
  return `${whole}.${frac} (${human})`;
}

function instanceLines(i: VrrpInstanceStatus): string[] {
  const x = i.extra;
  const num = (k: string, dflt: number) => (typeof x[k] === "number" ? (x[k] as number) : dflt);
  const garpDelay = num("garp_delay", 5);
  const garpRep = num("garp_rep", 5);
  const lines = [
    ` VRRP Instance = ${i.name}`,
    `   VRRP Version = ${i.version}`,
    `   State = ${i.state}`,
    `   Wantstate = ${i.wantState}`,
    `   Number of config faults = 0`,
    `   Number of interface and track script faults = ${i.faults.length}`,
    `   Last transition = ${formatTimestamp(i.lastTransition)}`,
    `   Interface = ${i.interface ?? "(none)"}`,
    `   Using src_ip = ${i.sourceAddress ?? "(none)"}`,
    `   Gratuitous ARP delay = ${garpDelay}`,
    `   Gratuitous ARP repeat = ${garpRep}`,
    `   Gratuitous ARP refresh = ${num("garp_refresh", 0)}`,
    `   Gratuitous ARP refresh repeat = ${num("garp_refresh_rep", 1)}`,
    `   Gratuitous ARP lower priority delay = ${num("garp_lower_prio_delay", garpDelay)}`,
    `   Gratuitous ARP lower priority repeat = ${num("garp_lower_prio_rep", garpRep)}`,
    `   Virtual Router ID = ${i.vrid}`,
    `   Priority = ${i.basePriority}`,
    `   Effective priority = ${i.effectivePriority}`,
    `   Total priority = ${i.effectivePriority}`,
    `   Advert interval = ${i.advertInt} sec`,
    `   Master advert interval = ${i.masterAdvertInt} sec`,
    `   Master router = ${i.masterAddress ?? "(unknown)"}`,
    `   Master priority = ${i.masterPriority}`,
    `   Accept = ${i.accept ? "enabled" : "disabled"}`,
    `   Preempt = ${i.nopreempt ? "disabled" : "enabled"}`,
  ];
  if (i.preemptDelay) lines.push(`   Preempt delay = ${i.preemptDelay} secs`);
  lines.push(`   Authentication type = ${i.authType === "NONE" ? "none" : i.authType === "PASS" ? "SIMPLE_PASSWORD" : "IPSEC_AH"}`);
  if (i.faults.length) lines.push(`   Faults: ${i.faults.join(", ")}`);
  lines.push(`   Virtual IP (${i.vips.length}):`);
  for (const v of i.vips) lines.push(`     ${withDev(v, i.interface)}${i.vipsSet ? " set" : ""}`);
  if (i.evips.length) {
    lines.push(`   Virtual IP Excluded (${i.evips.length}):`);
    for (const v of i.evips) lines.push(`     ${withDev(v, i.interface)}${i.vipsSet ? " set" : ""}`);
  }
  for (const k of ["script_master", "script_backup", "script_fault", "script_stop", "script"] as const) {
    const cmd = x[k];
    if (cmd !== undefined && cmd !== null) lines.push(`   ${SCRIPT_LABEL[k]} = ${Array.isArray(cmd) ? cmd.join(" ") : String(cmd)}`);
  }
  return lines;
}

const SCRIPT_LABEL = {
  script_master: "Master state transition script",
  script_backup: "Backup state transition script",
  script_fault: "Fault state transition script",
  script_stop: "Stop state transition script",
  script: "Generic state transition script",
} as const;

function withDev(vip: string, iface: string | undefined): string {
  const s = vip.includes(" dev ") || !iface ? vip : `${vip} dev ${iface}`;
  return s.includes(" scope ") ? s : `${s} scope global`;
}

/** The data dump: global definitions, then the VRRP topology, in keepalived's layout. */
export function renderDataDump(status: DaemonStatus, nowEpochSeconds: number): string {
  const out = [
    "------< Global definitions >------",
    ` Network namespace = (default)`,
    ` Router ID = ${status.routerId}`,
    ` vipd = ${status.version}`,
    ` Process pid = ${status.pid}`,
    ` Configuration file = ${status.configFile}`,
    ` Started = ${formatTimestamp(status.startedAt)}`,
    ` Dump time = ${formatTimestamp(nowEpochSeconds)}`,
    "------< VRRP Topology >------",
  ];
  for (const i of status.instances) out.push(...instanceLines(i));
  return out.join("\n") + "\n";
}
