/**
 * Prometheus text exposition (format 0.0.4) of the daemon's state. The keepalived_* families
 * copy mehdy/keepalived-exporter (names, types, help texts, labels, the per-VIP
 * keepalived_vrrp_state with 0=INIT 1=BACKUP 2=MASTER 3=FAULT) so existing dashboards and
 * alerts work unchanged; vipd_* families are vipd's own. Pure: everything comes in as values.
 */
import type { TrackerSnapshot } from "./trackers.ts";
import type { DaemonStatus, VrrpInstanceStatus } from "./status-types.ts";
import { formatVip } from "./keepalived-json.ts";
import type { LvsStatus } from "../lvs/manager.ts";

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** keepalived-exporter's state numbers (its VRRPStates list). */
export const VRRP_STATE_VALUES: Readonly<Record<string, number>> = { INIT: 0, BACKUP: 1, MASTER: 2, FAULT: 3 };
/** keepalived-exporter's script status (VRRPScriptStatuses) and state (VRRPScriptStates) numbers. */
export const SCRIPT_STATUS_VALUES: Readonly<Record<string, number>> = { BAD: 0, GOOD: 1 };
export const SCRIPT_STATE_VALUES: Readonly<Record<string, number>> = { idle: 0, running: 1, "requested termination": 2, "forcing termination": 3 };

/** Event-loop lag buckets, seconds: a 1 ms stall is noise, a 100 ms one delays adverts. */
export const LOOP_LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] as const;

/** A cumulative histogram in Prometheus' shape. */
export interface HistogramSnapshot {
  /** Upper bounds, ascending (+Inf implied). */
  buckets: readonly number[];
  /** Observations ≤ each bound (cumulative), same length as `buckets`. */
  cumulative: readonly number[];
  sum: number;
  count: number;
}

/** A histogram that takes observations (values in, nothing else). */
export class Histogram {
  readonly #buckets: readonly number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(buckets: readonly number[]) {
    this.#buckets = [...buckets].sort((a, b) => a - b);
    this.#counts = this.#buckets.map(() => 0);
  }

  /** Records one value. */
  observe(v: number): void {
    for (let i = 0; i < this.#buckets.length; i++) if (v <= this.#buckets[i]!) this.#counts[i]!++;
    this.#sum += v;
    this.#count++;
  }

  /** The cumulative counts so far. */
  snapshot(): HistogramSnapshot {
    return { buckets: this.#buckets, cumulative: [...this.#counts], sum: this.#sum, count: this.#count };
  }
}

/** vipd's own counters that the status does not carry: transitions, reloads, loop lag. */
export class VipdCounters {
  readonly loopLag = new Histogram(LOOP_LAG_BUCKETS);
  #transitions = new Map<string, { iname: string; from: string; to: string; n: number }>();
  #last = new Map<string, string>();
  #reloads = { success: 0, failure: 0 };
  #lastReloadSeconds: number | undefined;
  #lastReloadSuccessAt: number | undefined;

  /** An instance entered `state` (from whatever it reported before; INIT at first). */
  transition(iname: string, state: string): void {
    const from = this.#last.get(iname) ?? "INIT";
    this.#last.set(iname, state);
    if (from === state) return;
    const key = `${iname}\0${from}\0${state}`;
    const t = this.#transitions.get(key) ?? { iname, from, to: state, n: 0 };
    t.n++;
    this.#transitions.set(key, t);
  }

  /** A reload finished: `seconds` it took, `wallSeconds` when (seconds since the epoch). */
  reload(ok: boolean, seconds: number, wallSeconds: number): void {
    if (!ok) {
      this.#reloads.failure++;
      return;
    }
    this.#reloads.success++;
    this.#lastReloadSeconds = seconds;
    this.#lastReloadSuccessAt = wallSeconds;
  }

  /** The values behind the vipd_* series. */
  snapshot(): VipdCountersSnapshot {
    return {
      transitions: [...this.#transitions.values()].map((t) => ({ ...t })),
      reloads: { ...this.#reloads },
      lastReloadSeconds: this.#lastReloadSeconds,
      lastReloadSuccessAt: this.#lastReloadSuccessAt,
      loopLag: this.loopLag.snapshot(),
    };
  }
}

export interface VipdCountersSnapshot {
  transitions: Array<{ iname: string; from: string; to: string; n: number }>;
  reloads: { success: number; failure: number };
  lastReloadSeconds: number | undefined;
  lastReloadSuccessAt: number | undefined;
  loopLag: HistogramSnapshot;
}

/** One health checker's state, as the checker scheduler (issue 5) reports it. */
export interface CheckerMetric {
  /** "tcp/192.0.2.10:80", "fwmark/1", "group/NAME" (the virtual server's key). */
  virtualServer: string;
  /** "198.51.100.2:80" */
  realServer: string;
  /** TCP_CHECK, HTTP_GET, ... */
  checker: string;
  up: boolean;
  /** Duration of the last completed check. */
  lastLatencySeconds?: number;
}

/** One real server's weight: what vipd wants and what the kernel's IPVS table holds. */
export interface IpvsWeightMetric {
  virtualServer: string;
  realServer: string;
  desired: number;
  /** Absent when the real server is not in the kernel table (yet). */
  actual?: number;
}

/** What an LVS subsystem hands to the exposition; absent or empty = no LVS series at all. */
export interface LvsMetricsSnapshot {
  checkers: CheckerMetric[];
  weights: IpvsWeightMetric[];
}

/** The LVS manager's status as metric values: one checker series per checker, weights per real server. */
export function lvsMetricsFromStatus(s: LvsStatus): LvsMetricsSnapshot {
  const out: LvsMetricsSnapshot = { checkers: [], weights: [] };
  for (const vs of s.virtualServers) {
    for (const rs of vs.realServers) {
      const realServer = rs.address.includes(":") ? `[${rs.address}]:${rs.port}` : `${rs.address}:${rs.port}`;
      // a real server with two checkers of one type gets the index to keep label sets unique
      const types = rs.checkers.map((c) => c.type);
      for (const c of rs.checkers) {
        if (!c.hasRun) continue;
        const checker = types.filter((t) => t === c.type).length > 1 ? `${c.type}#${c.index}` : c.type;
        out.checkers.push({
          virtualServer: vs.label, realServer, checker, up: c.up,
          ...(c.latencyMs !== undefined ? { lastLatencySeconds: c.latencyMs / 1000 } : {}),
        });
      }
      out.weights.push({ virtualServer: vs.label, realServer, desired: rs.effectiveWeight, ...(rs.ipvsWeight !== null ? { actual: rs.ipvsWeight } : {}) });
    }
  }
  return out;
}

/** Everything one scrape shows. */
export interface MetricsInput {
  status: DaemonStatus;
  trackers?: TrackerSnapshot;
  vipd?: VipdCountersSnapshot;
  lvs?: LvsMetricsSnapshot;
  /**
   * keepalived-exporter's `--cs` per-VIP check script result (keepalived_exporter_check_script_status).
   * vipd has no such option yet; without this function the family is absent, as in the exporter without --cs.
   */
  checkScript?: (iname: string, vip: string) => boolean;
}

type Labels = Record<string, string>;
interface Sample {
  suffix?: string;
  labels: Labels;
  value: number;
}
interface Family {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  samples: Sample[];
}

const COMMON_LABELS = ["iname", "intf", "vrid"] as const;

/** keepalived-exporter's per-instance counters: family name, help, and the stats key (VrrpStats). */
const STAT_FAMILIES: ReadonlyArray<[string, string, keyof VrrpInstanceStatus["stats"]]> = [
  ["keepalived_advertisements_received_total", "Advertisements received", "advert_rcvd"],
  ["keepalived_advertisements_sent_total", "Advertisements sent", "advert_sent"],
  ["keepalived_become_master_total", "Became master", "become_master"],
  ["keepalived_release_master_total", "Released master", "release_master"],
  ["keepalived_packet_length_errors_total", "Packet length errors", "packet_len_err"],
  ["keepalived_advertisements_interval_errors_total", "Advertisement interval errors", "advert_interval_err"],
  ["keepalived_ip_ttl_errors_total", "TTL errors", "ip_ttl_err"],
  ["keepalived_invalid_type_received_total", "Invalid type errors", "invalid_type_rcvd"],
  ["keepalived_address_list_errors_total", "Address list errors", "addr_list_err"],
  ["keepalived_authentication_invalid_total", "Authentication invalid", "invalid_authtype"],
  ["keepalived_authentication_mismatch_total", "Authentication mismatch", "authtype_mismatch"],
  ["keepalived_authentication_failure_total", "Authentication failure", "auth_failure"],
  ["keepalived_priority_zero_received_total", "Priority zero received", "pri_zero_rcvd"],
  ["keepalived_priority_zero_sent_total", "Priority zero sent", "pri_zero_sent"],
];

/** vipd's own drop reasons (VrrpStats fields keepalived does not have), as vipd_vrrp_drops_total{reason}. */
const DROP_REASONS = [
  "version_err", "checksum_err", "vrid_err", "mcast_mode_err", "unicast_src_err", "ah_seq_err", "ah_next_header_err", "owner_ignored",
] as const;

/** Renders one scrape: keepalived-exporter's families, then vipd's own, each sorted by name. */
export function renderMetrics(input: MetricsInput): string {
  const families = [...keepalivedFamilies(input), ...vipdFamilies(input)].filter((f) => f.samples.length > 0);
  families.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return families.map(renderFamily).join("");
}

function keepalivedFamilies(input: MetricsInput): Family[] {
  const { status } = input;
  const fam = (name: string, help: string, type: Family["type"]): Family => ({ name, help, type, samples: [] });
  const up = fam("keepalived_up", "Status", "gauge");
  up.samples.push({ labels: {}, value: 1 });
  const stats = STAT_FAMILIES.map(([name, help]) => fam(name, help, "counter"));
  const garp = fam("keepalived_gratuitous_arp_delay_total", "Gratuitous ARP delay", "counter");
  const state = fam("keepalived_vrrp_state", "State of vrrp", "gauge");
  const excluded = fam("keepalived_vrrp_excluded_state", "State of vrrp with excluded VIP", "gauge");
  const check = fam("keepalived_exporter_check_script_status", "Check Script status for each VIP", "gauge");
  for (const i of status.instances) {
    const common = commonLabels(i);
    STAT_FAMILIES.forEach(([, , key], n) => stats[n]!.samples.push({ labels: common, value: i.stats[key] }));
    garp.samples.push({ labels: common, value: garpDelay(i) });
    const value = VRRP_STATE_VALUES[i.state];
    if (value === undefined) continue; // the exporter drops an instance whose state it cannot parse
    for (const [list, target] of [[i.vips, state], [i.evips, excluded]] as const) {
      const seen = new Set<string>();
      for (const vip of list) {
        const { address, intf } = vipLabels(vip, i);
        if (seen.has(`${address} ${intf}`)) continue;
        seen.add(`${address} ${intf}`);
        const labels = { iname: i.name, intf, vrid: String(i.vrid), ip_address: address };
        target.samples.push({ labels, value });
        if (target === state && input.checkScript) check.samples.push({ labels, value: input.checkScript(i.name, address) ? 1 : 0 });
      }
    }
    // the exporter records the state even without VIPs, with an empty ip_address
    if (!i.vips.length) state.samples.push({ labels: { ...common, ip_address: "" }, value });
  }
  const scriptStatus = fam("keepalived_script_status", "Tracker Script Status", "gauge");
  const scriptState = fam("keepalived_script_state", "Tracker Script State", "gauge");
  for (const s of input.trackers?.scripts ?? []) {
    // keepalived's INIT (no result yet) is not in the exporter's list: it skips the series
    if (s.up !== undefined) scriptStatus.samples.push({ labels: { name: s.name }, value: SCRIPT_STATUS_VALUES[s.up ? "GOOD" : "BAD"]! });
    scriptState.samples.push({ labels: { name: s.name }, value: SCRIPT_STATE_VALUES[s.running ? "running" : "idle"]! });
  }
  return [up, ...stats, garp, state, excluded, check, scriptStatus, scriptState];
}

function vipdFamilies(input: MetricsInput): Family[] {
  const { status, vipd, lvs } = input;
  const out: Family[] = [];
  const fam = (name: string, help: string, type: Family["type"], samples: Sample[]) => out.push({ name, help, type, samples });
  fam("vipd_build_info", "vipd version (value 1)", "gauge", [{ labels: { version: status.version }, value: 1 }]);
  fam("vipd_start_time_seconds", "When the daemon started, seconds since the epoch", "gauge", [{ labels: {}, value: status.startedAt }]);
  const per = (f: (i: VrrpInstanceStatus) => number) => status.instances.map((i) => ({ labels: commonLabels(i), value: f(i) }));
  fam("vipd_vrrp_effective_priority", "Priority in adverts now (configured priority plus tracking weights; 0 in FAULT)", "gauge", per((i) => i.effectivePriority));
  fam("vipd_vrrp_priority", "Configured priority", "gauge", per((i) => i.basePriority));
  fam("vipd_vrrp_last_transition_timestamp_seconds", "When the instance last changed state, seconds since the epoch", "gauge", per((i) => i.lastTransition));
  fam("vipd_vrrp_faults", "Fault reasons currently raised", "gauge", per((i) => i.faults.length));
  fam("vipd_vrrp_drops_total", "Adverts dropped for reasons keepalived does not count", "counter",
    status.instances.flatMap((i) => DROP_REASONS.map((reason) => ({ labels: { ...commonLabels(i), reason }, value: i.stats[reason] ?? 0 }))));
  if (vipd) {
    const byName = new Map(status.instances.map((i) => [i.name, i]));
    fam("vipd_vrrp_transitions_total", "VRRP state changes", "counter", vipd.transitions.map((t) => {
      const i = byName.get(t.iname);
      return { labels: { iname: t.iname, intf: i?.interface ?? "", vrid: i ? String(i.vrid) : "", from: t.from, to: t.to }, value: t.n };
    }));
    fam("vipd_config_reload_total", "Configuration reloads by result", "counter", [
      { labels: { result: "success" }, value: vipd.reloads.success },
      { labels: { result: "failure" }, value: vipd.reloads.failure },
    ]);
    if (vipd.lastReloadSeconds !== undefined) {
      fam("vipd_config_reload_duration_seconds", "Duration of the last successful reload", "gauge", [{ labels: {}, value: vipd.lastReloadSeconds }]);
    }
    if (vipd.lastReloadSuccessAt !== undefined) {
      fam("vipd_config_last_reload_success_timestamp_seconds", "When the last successful reload finished, seconds since the epoch", "gauge",
        [{ labels: {}, value: vipd.lastReloadSuccessAt }]);
    }
    fam("vipd_event_loop_lag_seconds", "How late a periodic timer fired: time the event loop was blocked", "histogram", histogramSamples(vipd.loopLag, {}));
  }
  if (lvs) {
    const rs = (c: { virtualServer: string; realServer: string }) => ({ virtual_server: c.virtualServer, real_server: c.realServer });
    fam("vipd_checker_up", "Health checker result (1 up, 0 down)", "gauge", lvs.checkers.map((c) => ({ labels: { ...rs(c), checker: c.checker }, value: c.up ? 1 : 0 })));
    fam("vipd_checker_latency_seconds", "Duration of the last completed health check", "gauge",
      lvs.checkers.filter((c) => c.lastLatencySeconds !== undefined).map((c) => ({ labels: { ...rs(c), checker: c.checker }, value: c.lastLatencySeconds! })));
    fam("vipd_ipvs_weight_desired", "Real server weight vipd wants in the IPVS table", "gauge", lvs.weights.map((w) => ({ labels: rs(w), value: w.desired })));
    fam("vipd_ipvs_weight_actual", "Real server weight the kernel's IPVS table holds", "gauge",
      lvs.weights.filter((w) => w.actual !== undefined).map((w) => ({ labels: rs(w), value: w.actual! })));
  }
  return out;
}

function commonLabels(i: VrrpInstanceStatus): Labels {
  // keepalived's JSON dump omits ifp_ifname without an interface; the exporter then uses ""
  return { [COMMON_LABELS[0]]: i.name, [COMMON_LABELS[1]]: i.interface ?? "", [COMMON_LABELS[2]]: String(i.vrid) };
}

function garpDelay(i: VrrpInstanceStatus): number {
  const v = i.extra.garp_delay;
  return typeof v === "number" ? v : 5; // keepalived's default garp_master_delay
}

/** The exporter's ParseVIP over keepalived's VIP text: first word is the address, third the interface. */
function vipLabels(vip: string, i: VrrpInstanceStatus): { address: string; intf: string } {
  const words = formatVip(vip, i.interface, i.vipsSet).split(" ");
  return { address: words[0] ?? "", intf: words[2] ?? "" };
}

function histogramSamples(h: HistogramSnapshot, labels: Labels): Sample[] {
  const out: Sample[] = h.buckets.map((le, n) => ({ suffix: "_bucket", labels: { ...labels, le: formatValue(le) }, value: h.cumulative[n] ?? 0 }));
  out.push({ suffix: "_bucket", labels: { ...labels, le: "+Inf" }, value: h.count });
  out.push({ suffix: "_sum", labels, value: h.sum });
  out.push({ suffix: "_count", labels, value: h.count });
  return out;
}

function renderFamily(f: Family): string {
  let s = `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
  for (const x of f.samples) s += `${f.name}${x.suffix ?? ""}${renderLabels(x.labels)} ${formatValue(x.value)}\n`;
  return s;
}

function renderLabels(labels: Labels): string {
  const keys = Object.keys(labels);
  if (!keys.length) return "";
  return `{${keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(",")}}`;
}

/** Label values escape backslash, double quote and newline. */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** Prometheus float text: integers plainly, +Inf/-Inf/NaN spelled as the format wants. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}
