import { describe, expect, test } from "bun:test";
import {
  Histogram, VipdCounters, escapeLabel, formatValue, lvsMetricsFromStatus, renderMetrics, type MetricsInput,
} from "../../src/daemon/metrics.ts";
import type { DaemonStatus, VrrpInstanceStatus } from "../../src/daemon/status-types.ts";
import type { LvsStatus } from "../../src/lvs/manager.ts";
import { newStats } from "../../src/vrrp/types.ts";

/**
 * mehdy/keepalived-exporter's families as its collector declares them (internal/collector/
 * collector.go fillMetrics, Collect): name → [type, help, labels].
 */
const COMMON = ["iname", "intf", "vrid"];
const VIP = ["iname", "intf", "vrid", "ip_address"];
const EXPORTER: Record<string, [string, string, string[]]> = {
  keepalived_up: ["gauge", "Status", []],
  keepalived_vrrp_state: ["gauge", "State of vrrp", VIP],
  keepalived_vrrp_excluded_state: ["gauge", "State of vrrp with excluded VIP", VIP],
  keepalived_exporter_check_script_status: ["gauge", "Check Script status for each VIP", VIP],
  keepalived_gratuitous_arp_delay_total: ["counter", "Gratuitous ARP delay", COMMON],
  keepalived_advertisements_received_total: ["counter", "Advertisements received", COMMON],
  keepalived_advertisements_sent_total: ["counter", "Advertisements sent", COMMON],
  keepalived_become_master_total: ["counter", "Became master", COMMON],
  keepalived_release_master_total: ["counter", "Released master", COMMON],
  keepalived_packet_length_errors_total: ["counter", "Packet length errors", COMMON],
  keepalived_advertisements_interval_errors_total: ["counter", "Advertisement interval errors", COMMON],
  keepalived_ip_ttl_errors_total: ["counter", "TTL errors", COMMON],
  keepalived_invalid_type_received_total: ["counter", "Invalid type errors", COMMON],
  keepalived_address_list_errors_total: ["counter", "Address list errors", COMMON],
  keepalived_authentication_invalid_total: ["counter", "Authentication invalid", COMMON],
  keepalived_authentication_mismatch_total: ["counter", "Authentication mismatch", COMMON],
  keepalived_authentication_failure_total: ["counter", "Authentication failure", COMMON],
  keepalived_priority_zero_received_total: ["counter", "Priority zero received", COMMON],
  keepalived_priority_zero_sent_total: ["counter", "Priority zero sent", COMMON],
  keepalived_script_status: ["gauge", "Tracker Script Status", ["name"]],
  keepalived_script_state: ["gauge", "Tracker Script State", ["name"]],
};

interface ParsedFamily {
  help?: string;
  type?: string;
  samples: Array<{ name: string; labels: Record<string, string>; value: number }>;
}

/** A strict-enough parser of the text format: every sample line must belong to a declared family. */
function parse(text: string): Map<string, ParsedFamily> {
  const out = new Map<string, ParsedFamily>();
  expect(text.endsWith("\n")).toBe(true);
  let current = "";
  for (const line of text.slice(0, -1).split("\n")) {
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      const f = out.get(m[2]!) ?? { samples: [] };
      if (m[1] === "HELP") f.help = m[3]!;
      else f.type = m[3]!;
      out.set(m[2]!, f);
      current = m[2]!;
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`bad line: ${line}`);
    const name = m[1]!;
    expect(name === current || name === `${current}_bucket` || name === `${current}_sum` || name === `${current}_count`).toBe(true);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const value = m[3] === "+Inf" ? Infinity : m[3] === "NaN" ? NaN : Number(m[3]);
    out.get(current)!.samples.push({ name, labels, value });
  }
  return out;
}

function instance(over: Partial<VrrpInstanceStatus>): VrrpInstanceStatus {
  return {
    name: "VI_1", interface: "eth0", family: "inet", vrid: 51, version: 2, state: "MASTER", wantState: "BACKUP",
    basePriority: 100, effectivePriority: 90, advertInt: 1, masterAdvertInt: 1, masterAddress: "192.0.2.1", masterPriority: 90,
    sourceAddress: "192.0.2.1", vips: [], evips: [], vipsSet: true, authType: "NONE", nopreempt: false, preemptDelay: 0,
    accept: false, faults: [], lastTransition: 1700000000.5, stats: newStats(), extra: {},
    ...over,
  };
}

function status(instances: VrrpInstanceStatus[]): DaemonStatus {
  return { version: "vipd 0.1.0", pid: 42, configFile: "/etc/keepalived/keepalived.conf", startedAt: 1700000000, routerId: "r1", instances };
}

const STATES = ["INIT", "BACKUP", "MASTER", "FAULT"];

describe("keepalived-exporter compatibility", () => {
  const stats = { ...newStats(), advert_rcvd: 11, advert_sent: 12, become_master: 3, release_master: 2, packet_len_err: 4, advert_interval_err: 5,
    ip_ttl_err: 6, invalid_type_rcvd: 7, addr_list_err: 8, invalid_authtype: 9, authtype_mismatch: 10, auth_failure: 13, pri_zero_rcvd: 14, pri_zero_sent: 15 };
  const input: MetricsInput = {
    status: status([
      instance({ stats, vips: ["192.0.2.10/32", "198.51.100.7/24 dev eth1"], evips: ["2001:db8::7/128"], extra: { garp_delay: 7 } }),
      instance({ name: "VI_2", vrid: 52, state: "FAULT", interface: "eth2", vips: [] }),
      ...STATES.map((s, n) => instance({ name: `S_${s}`, vrid: 60 + n, state: s, vips: [`203.0.113.${n + 1}/32`] })),
    ]),
    trackers: {
      scripts: [
        { name: "chk_ok", up: true, running: false },
        { name: "chk_bad", up: false, running: true },
        { name: "chk_new", up: undefined, running: false },
      ],
      interfaces: [], files: [], processes: [],
    },
    checkScript: (_iname, vip) => vip !== "198.51.100.7/24",
  };
  const fams = parse(renderMetrics(input));

  test("every family has the exporter's type, help text and label names", () => {
    for (const [name, [type, help, labels]] of Object.entries(EXPORTER)) {
      const f = fams.get(name);
      expect(f, name).toBeDefined();
      expect(f!.type, name).toBe(type);
      expect(f!.help, name).toBe(help);
      expect(f!.samples.length, name).toBeGreaterThan(0);
      for (const s of f!.samples) expect(Object.keys(s.labels).sort(), name).toEqual([...labels].sort());
    }
  });

  test("keepalived_vrrp_state numbers states 0=INIT 1=BACKUP 2=MASTER 3=FAULT, one series per VIP", () => {
    const f = fams.get("keepalived_vrrp_state")!;
    STATES.forEach((s, n) => {
      const x = f.samples.find((v) => v.labels.iname === `S_${s}`)!;
      expect(x.value).toBe(n);
      expect(x.labels.ip_address).toBe(`203.0.113.${n + 1}`);
    });
    const vi1 = f.samples.filter((v) => v.labels.iname === "VI_1");
    // keepalived's VIP text drops a full-length prefix; ParseVIP takes word 0 and the dev word
    expect(vi1.map((v) => [v.labels.ip_address, v.labels.intf, v.labels.vrid, v.value])).toEqual([
      ["192.0.2.10", "eth0", "51", 2],
      ["198.51.100.7/24", "eth1", "51", 2],
    ]);
    // no VIPs: still one series, on the instance's interface, with an empty address
    expect(f.samples.filter((v) => v.labels.iname === "VI_2").map((v) => [v.labels.intf, v.labels.ip_address, v.value])).toEqual([["eth2", "", 3]]);
    expect(fams.get("keepalived_vrrp_excluded_state")!.samples.map((v) => [v.labels.iname, v.labels.ip_address, v.value])).toEqual([["VI_1", "2001:db8::7", 2]]);
  });

  test("per-instance counters carry the stats of keepalived's JSON names", () => {
    const value = (name: string, iname = "VI_1") => fams.get(name)!.samples.find((s) => s.labels.iname === iname)!.value;
    expect(value("keepalived_advertisements_received_total")).toBe(11);
    expect(value("keepalived_advertisements_sent_total")).toBe(12);
    expect(value("keepalived_become_master_total")).toBe(3);
    expect(value("keepalived_release_master_total")).toBe(2);
    expect(value("keepalived_packet_length_errors_total")).toBe(4);
    expect(value("keepalived_advertisements_interval_errors_total")).toBe(5);
    expect(value("keepalived_ip_ttl_errors_total")).toBe(6);
    expect(value("keepalived_invalid_type_received_total")).toBe(7);
    expect(value("keepalived_address_list_errors_total")).toBe(8);
    expect(value("keepalived_authentication_invalid_total")).toBe(9);
    expect(value("keepalived_authentication_mismatch_total")).toBe(10);
    expect(value("keepalived_authentication_failure_total")).toBe(13);
    expect(value("keepalived_priority_zero_received_total")).toBe(14);
    expect(value("keepalived_priority_zero_sent_total")).toBe(15);
    expect(value("keepalived_gratuitous_arp_delay_total")).toBe(7);
    expect(value("keepalived_gratuitous_arp_delay_total", "VI_2")).toBe(5); // keepalived's default
    expect(value("keepalived_advertisements_received_total", "VI_2")).toBe(0);
    expect(fams.get("keepalived_up")!.samples).toEqual([{ name: "keepalived_up", labels: {}, value: 1 }]);
  });

  test("script status 0=BAD 1=GOOD (skipped before the first result), state 0=idle 1=running", () => {
    const st = fams.get("keepalived_script_status")!.samples.map((s) => [s.labels.name, s.value]);
    expect(st).toEqual([["chk_ok", 1], ["chk_bad", 0]]);
    const state = fams.get("keepalived_script_state")!.samples.map((s) => [s.labels.name, s.value]);
    expect(state).toEqual([["chk_ok", 0], ["chk_bad", 1], ["chk_new", 0]]);
  });

  test("check script status per VIP only when a check is given, as the exporter without --cs", () => {
    expect(fams.get("keepalived_exporter_check_script_status")!.samples.filter((s) => s.labels.iname === "VI_1").map((s) => [s.labels.ip_address, s.value]))
      .toEqual([["192.0.2.10", 1], ["198.51.100.7/24", 0]]);
    const without = parse(renderMetrics({ ...input, checkScript: undefined, trackers: undefined }));
    expect(without.has("keepalived_exporter_check_script_status")).toBe(false);
    expect(without.has("keepalived_script_status")).toBe(false);
  });

  test("families are sorted, declared once, and no series repeats a label set", () => {
    const text = renderMetrics(input);
    const names = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!);
    expect(names).toEqual([...names].sort());
    expect(new Set(names).size).toBe(names.length);
    for (const [name, f] of fams) {
      const keys = f.samples.map((s) => s.name + JSON.stringify(s.labels));
      expect(new Set(keys).size, name).toBe(keys.length);
    }
  });
});

describe("vipd series", () => {
  test("transitions count from → to per instance; reloads by result with the last duration", () => {
    const c = new VipdCounters();
    c.transition("VI_1", "BACKUP");
    c.transition("VI_1", "MASTER");
    c.transition("VI_1", "MASTER"); // same state: not a transition
    c.transition("VI_1", "BACKUP");
    c.transition("VI_1", "MASTER");
    c.reload(true, 0.012, 1700000100);
    c.reload(false, 0, 1700000200);
    c.reload(false, 0, 1700000300);
    const f = parse(renderMetrics({ status: status([instance({})]), vipd: c.snapshot() }));
    const tr = f.get("vipd_vrrp_transitions_total")!;
    expect(tr.type).toBe("counter");
    expect(tr.samples.map((s) => [s.labels.from, s.labels.to, s.labels.intf, s.labels.vrid, s.value])).toEqual([
      ["INIT", "BACKUP", "eth0", "51", 1], ["BACKUP", "MASTER", "eth0", "51", 2], ["MASTER", "BACKUP", "eth0", "51", 1],
    ]);
    expect(f.get("vipd_config_reload_total")!.samples.map((s) => [s.labels.result, s.value])).toEqual([["success", 1], ["failure", 2]]);
    expect(f.get("vipd_config_reload_duration_seconds")!.samples[0]!.value).toBe(0.012);
    expect(f.get("vipd_config_last_reload_success_timestamp_seconds")!.samples[0]!.value).toBe(1700000100);
    expect(f.get("vipd_vrrp_effective_priority")!.samples.map((s) => s.value)).toEqual([90]);
    expect(f.get("vipd_vrrp_priority")!.samples.map((s) => s.value)).toEqual([100]);
  });

  test("loop lag is a cumulative histogram with +Inf, _sum and _count", () => {
    const c = new VipdCounters();
    for (const v of [0.0005, 0.003, 0.003, 0.2, 5]) c.loopLag.observe(v);
    const f = parse(renderMetrics({ status: status([]), vipd: c.snapshot() })).get("vipd_event_loop_lag_seconds")!;
    expect(f.type).toBe("histogram");
    const bucket = (le: string) => f.samples.find((s) => s.name.endsWith("_bucket") && s.labels.le === le)!.value;
    expect(bucket("0.001")).toBe(1);
    expect(bucket("0.005")).toBe(3);
    expect(bucket("0.25")).toBe(4);
    expect(bucket("2.5")).toBe(4);
    expect(bucket("+Inf")).toBe(5);
    expect(f.samples.find((s) => s.name.endsWith("_count"))!.value).toBe(5);
    expect(f.samples.find((s) => s.name.endsWith("_sum"))!.value).toBeCloseTo(5.2065, 9);
    const les = f.samples.filter((s) => s.name.endsWith("_bucket")).map((s) => s.value);
    expect(les).toEqual([...les].sort((a, b) => a - b)); // monotone
  });

  test("no LVS → no checker or IPVS series; an LVS status → checker state, latency, desired vs actual weights", () => {
    const none = renderMetrics({ status: status([instance({})]) });
    expect(none).not.toMatch(/vipd_checker|vipd_ipvs/);
    const lvs: LvsStatus = {
      available: true, syncDaemons: [],
      virtualServers: [{
        key: "k", label: "TCP 192.0.2.80:80", services: [], scheduler: "wrr", quorum: 1, hysteresis: 0, quorumUp: true, weightSum: 3, suspended: false,
        realServers: [
          { ref: "a", address: "198.51.100.2", port: 80, fwdMethod: "NAT", alive: true, configuredWeight: 2, effectiveWeight: 2, ipvsWeight: 2, inhibitOnFailure: false,
            checkers: [{ index: 0, type: "TCP_CHECK", up: true, hasRun: true, weightDelta: 0, latencyMs: 1.5 }, { index: 1, type: "TCP_CHECK", up: false, hasRun: true, weightDelta: 0 }] },
          { ref: "b", address: "2001:db8::3", port: 80, fwdMethod: "DR", alive: false, configuredWeight: 1, effectiveWeight: 0, ipvsWeight: null, inhibitOnFailure: false,
            checkers: [{ index: 0, type: "HTTP_GET", up: false, hasRun: false, weightDelta: 0 }] },
        ],
      }],
    };
    const f = parse(renderMetrics({ status: status([]), lvs: lvsMetricsFromStatus(lvs) }));
    expect(f.get("vipd_checker_up")!.samples.map((s) => [s.labels.real_server, s.labels.checker, s.value])).toEqual([
      ["198.51.100.2:80", "TCP_CHECK#0", 1], ["198.51.100.2:80", "TCP_CHECK#1", 0],
    ]);
    expect(f.get("vipd_checker_latency_seconds")!.samples.map((s) => s.value)).toEqual([0.0015]);
    expect(f.get("vipd_ipvs_weight_desired")!.samples.map((s) => [s.labels.virtual_server, s.labels.real_server, s.value]))
      .toEqual([["TCP 192.0.2.80:80", "198.51.100.2:80", 2], ["TCP 192.0.2.80:80", "[2001:db8::3]:80", 0]]);
    expect(f.get("vipd_ipvs_weight_actual")!.samples.map((s) => [s.labels.real_server, s.value])).toEqual([["198.51.100.2:80", 2]]);
  });

  test("label values and numbers are escaped and spelled as the text format wants", () => {
    expect(escapeLabel('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    expect(formatValue(Infinity)).toBe("+Inf");
    expect(formatValue(NaN)).toBe("NaN");
    expect(formatValue(0.25)).toBe("0.25");
    const text = renderMetrics({ status: status([instance({ name: 'we"ird\\name' })]) });
    expect(text).toContain('iname="we\\"ird\\\\name"');
    const h = new Histogram([1, 0.5]);
    h.observe(0.7);
    expect(h.snapshot().buckets).toEqual([0.5, 1]);
    expect(h.snapshot().cumulative).toEqual([0, 1]);
  });
});
