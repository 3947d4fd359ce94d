import { describe, expect, test } from "bun:test";
import {
  formatCommand,
  formatVip,
  renderKeepalivedJson,
  stateNumber,
  toKeepalivedJson,
  type KeepalivedJsonV1,
} from "../../src/daemon/keepalived-json.ts";
import type { DaemonStatus, VrrpInstanceStatus } from "../../src/daemon/status-types.ts";
import { newStats } from "../../src/vrrp/types.ts";

/**
 * Written by Debian's keepalived 2.2.7 (`--enable-json`) on SIGRTMIN+2, in a namespace with veth d0,
 * for two instances: VI_1 (v2, PASS "secret1", three VIPs one with brd/label, one IPv6 eVIP,
 * track_script "/bin/true", notify_master "/bin/echo master") and VI_2 (v3, advert_int 0.5).
 * Only change: auth_data, which keepalived >= 2.4 masks as "********" (vipd follows 2.4).
 */
const GOLDEN_2_2_7 =
  `[{"data":{"iname":"VI_1","dont_track_primary":0,"skip_check_adv_addr":0,"strict_mode":0,"vmac_ifname":"","ifp_ifname":"d0","master_priority":0,"last_transition":1795316757.574839,"garp_delay":5,"garp_refresh":0,"garp_rep":5,"garp_refresh_rep":1,"garp_lower_prio_delay":5,"garp_lower_prio_rep":5,"lower_prio_no_advert":0,"higher_prio_send_advert":0,"vrid":51,"base_priority":150,"effective_priority":150,"vipset":true,"promote_secondaries":false,"adver_int":1,"master_adver_int":1,"accept":1,"nopreempt":false,"preempt_delay":0,"state":2,"wantstate":2,"version":2,"smtp_alert":false,"notify_deleted":false,"script_master":"'\\/usr\\/bin\\/echo' 'master'","vips":["192.0.2.100\\/24 dev d0 scope global set","192.0.2.101 dev d0 scope global set","192.0.2.102\\/24 brd 192.0.2.255 dev d0 scope global label d0:1 set"],"evips":["2001:db8::10\\/64 dev d0 scope global preferred_lft forever set"],"track_script":["'\\/usr\\/bin\\/true'"],"auth_type":1,"auth_data":"********"},"stats":{"advert_rcvd":0,"advert_sent":2,"become_master":1,"release_master":0,"packet_len_err":0,"advert_interval_err":0,"ip_ttl_err":0,"invalid_type_rcvd":0,"addr_list_err":0,"invalid_authtype":0,"authtype_mismatch":0,"auth_failure":0,"pri_zero_rcvd":0,"pri_zero_sent":0}},{"data":{"iname":"VI_2","dont_track_primary":0,"skip_check_adv_addr":0,"strict_mode":0,"vmac_ifname":"","ifp_ifname":"d0","master_priority":0,"last_transition":1795316755.921045,"garp_delay":5,"garp_refresh":0,"garp_rep":5,"garp_refresh_rep":1,"garp_lower_prio_delay":5,"garp_lower_prio_rep":5,"lower_prio_no_advert":0,"higher_prio_send_advert":0,"vrid":52,"base_priority":100,"effective_priority":100,"vipset":true,"promote_secondaries":false,"adver_int":0.5,"master_adver_int":0.5,"accept":1,"nopreempt":false,"preempt_delay":0,"state":2,"wantstate":2,"version":3,"smtp_alert":false,"notify_deleted":false,"vips":["192.0.2.200 dev d0 scope global set"],"auth_type":0},"stats":{"advert_rcvd":0,"advert_sent":7,"become_master":1,"release_master":0,"packet_len_err":0,"advert_interval_err":0,"ip_ttl_err":0,"invalid_type_rcvd":0,"addr_list_err":0,"invalid_authtype":0,"authtype_mismatch":0,"auth_failure":0,"pri_zero_rcvd":0,"pri_zero_sent":0}}]\n`;

/** An instance status with plain defaults; tests override what they look at. */
function instance(over: Partial<VrrpInstanceStatus>): VrrpInstanceStatus {
  return {
    name: "VI_1",
    interface: "eth0",
    family: "inet",
    vrid: 51,
    version: 2,
    state: "BACKUP",
    wantState: "BACKUP",
    basePriority: 100,
    effectivePriority: 100,
    advertInt: 1,
    masterAdvertInt: 1,
    masterAddress: undefined,
    masterPriority: 0,
    sourceAddress: undefined,
    vips: [],
    evips: [],
    vipsSet: false,
    authType: "NONE",
    nopreempt: false,
    preemptDelay: 0,
    accept: true,
    faults: [],
    lastTransition: 1_700_000_000.25,
    stats: newStats(),
    extra: {},
    ...over,
  };
}

function daemon(instances: VrrpInstanceStatus[], extra?: Record<string, unknown>): DaemonStatus {
  return { version: "0.0.0-test", pid: 4242, configFile: "/etc/keepalived/keepalived.conf", startedAt: 1_700_000_000, routerId: "r1", instances, ...(extra ? { extra } : {}) };
}

/** The two instances keepalived 2.2.7 dumped in GOLDEN_2_2_7, as vipd's status. */
function goldenStatus(): DaemonStatus {
  const s1 = { ...newStats(), advert_sent: 2, become_master: 1 };
  const s2 = { ...newStats(), advert_sent: 7, become_master: 1 };
  return daemon([
    instance({
      name: "VI_1", interface: "d0", vrid: 51, version: 2, state: "MASTER", wantState: "MASTER",
      basePriority: 150, effectivePriority: 150, lastTransition: 1795316757.574839,
      vips: ["192.0.2.100/24", "192.0.2.101/32", "192.0.2.102/24 brd 192.0.2.255 dev d0 scope global label d0:1 set"],
      evips: ["2001:db8::10/64"], vipsSet: true, authType: "PASS", stats: s1,
      extra: { script_master: ["/usr/bin/echo", "master"], track_script: [["/usr/bin/true"]] },
    }),
    instance({
      name: "VI_2", interface: "d0", vrid: 52, version: 3, state: "MASTER", wantState: "MASTER",
      advertInt: 0.5, masterAdvertInt: 0.5, lastTransition: 1795316755.921045,
      vips: ["192.0.2.200"], vipsSet: true, stats: s2,
    }),
  ]);
}

/**
 * What mehdy/keepalived-exporter decodes from /tmp/keepalived.json (internal/collector/collector.go:
 * `[]VRRP{Data VRRPData; Stats VRRPStats}`), with Go types. Go's encoding/json rejects a string or a
 * fraction for an `int`, and a non-array for `[]string`; unknown fields are ignored.
 */
const EXPORTER_DATA_FIELDS = {
  iname: "string",
  state: "int",
  wantstate: "int",
  ifp_ifname: "string",
  garp_delay: "int",
  vrid: "int",
  vips: "[]string",
  evips: "[]string",
} as const;
const EXPORTER_STATS_FIELDS = [
  "advert_rcvd", "advert_sent", "become_master", "release_master", "packet_len_err", "advert_interval_err",
  "ip_ttl_err", "invalid_type_rcvd", "addr_list_err", "invalid_authtype", "authtype_mismatch", "auth_failure",
  "pri_zero_rcvd", "pri_zero_sent",
] as const;

/** Checks one raw JSON text value the way Go would decode it into `type`; returns a problem or "". */
function goDecodeProblem(raw: string, type: "int" | "string" | "[]string"): string {
  if (type === "int") return /^-?(0|[1-9]\d*)$/.test(raw) ? "" : `not a Go int: ${raw}`;
  const v: unknown = JSON.parse(raw);
  if (type === "string") return typeof v === "string" ? "" : `not a string: ${raw}`;
  return v === null || (Array.isArray(v) && v.every((e) => typeof e === "string")) ? "" : `not []string: ${raw}`;
}

/** The raw text of `"key":VALUE` inside one rendered object (scalars and flat arrays only). */
function rawField(text: string, key: string): string | undefined {
  const m = new RegExp(`"${key}":(\\[[^\\]]*\\]|"(?:[^"\\\\]|\\\\.)*"|[^,}]+)`).exec(text);
  return m?.[1];
}

describe("toKeepalivedJson v1", () => {
  test("reproduces keepalived 2.2.7's dump byte for byte (2.4's auth_ext_* counters aside)", () => {
    const dump = toKeepalivedJson(goldenStatus(), 1);
    // 2.2.7 predates the auth_ext_* counters that 2.4 writes; drop them to compare with its text.
    for (const e of dump) for (const k of Object.keys(e.stats)) if (k.startsWith("auth_ext_")) delete (e.stats as unknown as Record<string, unknown>)[k];
    expect(renderKeepalivedJson(dump)).toBe(GOLDEN_2_2_7);
  });

  test("data and stats keys come in vrrp_json.c's order", () => {
    const [e] = toKeepalivedJson(goldenStatus(), 1);
    expect(Object.keys(e!.data)).toEqual([
      "iname", "dont_track_primary", "skip_check_adv_addr", "strict_mode", "vmac_ifname", "ifp_ifname",
      "master_priority", "last_transition", "garp_delay", "garp_refresh", "garp_rep", "garp_refresh_rep",
      "garp_lower_prio_delay", "garp_lower_prio_rep", "lower_prio_no_advert", "higher_prio_send_advert", "vrid",
      "base_priority", "effective_priority", "vipset", "promote_secondaries", "adver_int", "master_adver_int",
      "accept", "nopreempt", "preempt_delay", "state", "wantstate", "version", "smtp_alert", "notify_deleted",
      "script_master", "vips", "evips", "track_script", "auth_type", "auth_data",
    ]);
    expect(Object.keys(e!.stats)).toEqual([
      "advert_rcvd", "advert_sent", "become_master", "release_master", "packet_len_err", "advert_interval_err",
      "ip_ttl_err", "invalid_type_rcvd", "addr_list_err", "invalid_authtype", "authtype_mismatch", "auth_failure",
      "auth_ext_missing", "auth_ext_malformed", "auth_ext_unknown_key", "auth_ext_invalid_hmac", "auth_ext_stale",
      "auth_ext_replay", "pri_zero_rcvd", "pri_zero_sent",
    ]);
  });

  test("state and wantstate use keepalived's numbers", () => {
    const names = ["INIT", "BACKUP", "MASTER", "FAULT"];
    const dump = toKeepalivedJson(daemon(names.map((state, n) => instance({ name: `I${n}`, state, wantState: n % 2 ? "MASTER" : "BACKUP" }))), 1);
    expect(dump.map((e) => e.data.state)).toEqual([0, 1, 2, 3]);
    expect(dump.map((e) => e.data.wantstate)).toEqual([1, 2, 1, 2]);
    expect(stateNumber("master")).toBe(2);
    expect(stateNumber("STOP")).toBe(98);
  });

  test("booleans stay booleans, flags written as uint stay numbers", () => {
    const [e] = toKeepalivedJson(daemon([instance({ nopreempt: true, accept: false, vipsSet: true, extra: { promote_secondaries: true, dont_track_primary: true, smtp_alert: 1 } })]), 1);
    const d = e!.data;
    for (const k of ["vipset", "promote_secondaries", "nopreempt", "smtp_alert", "notify_deleted"] as const) expect(typeof d[k]).toBe("boolean");
    for (const k of ["dont_track_primary", "skip_check_adv_addr", "strict_mode", "accept", "lower_prio_no_advert", "higher_prio_send_advert", "garp_refresh", "preempt_delay"] as const) expect(typeof d[k]).toBe("number");
    expect(d.nopreempt).toBe(true);
    expect(d.accept).toBe(0);
    expect(d.promote_secondaries).toBe(true);
    expect(d.dont_track_primary).toBe(1);
    expect(d.smtp_alert).toBe(true);
  });

  test("empty lists, unset scripts, missing interface and NONE auth are omitted like keepalived", () => {
    const [e] = toKeepalivedJson(daemon([instance({ interface: undefined })]), 1);
    for (const k of ["ifp_ifname", "vips", "evips", "vroutes", "vrules", "track_ifp", "track_script", "track_process", "script_master", "script", "auth_data"]) {
      expect(k in e!.data).toBe(false);
    }
    expect(e!.data.auth_type).toBe(0);
  });

  test("extras override keepalived defaults; strict mode zeroes the lower-priority GARP defaults", () => {
    const x = { garp_delay: 2, garp_rep: 3, garp_refresh: 60, garp_refresh_rep: 2, vmac_ifname: "vrrp.51", track_ifp: ["eth1"], vroutes: ["198.51.100.0/24 via 192.0.2.1"], script: "'/x' 'y'" };
    const [a, b] = toKeepalivedJson(daemon([instance({ extra: x }), instance({ name: "S", extra: { strict_mode: true } })]), 1);
    expect(a!.data).toMatchObject({ garp_delay: 2, garp_rep: 3, garp_refresh: 60, garp_refresh_rep: 2, garp_lower_prio_delay: 2, garp_lower_prio_rep: 3, vmac_ifname: "vrrp.51", track_ifp: ["eth1"], vroutes: ["198.51.100.0/24 via 192.0.2.1"], script: "'/x' 'y'" });
    expect(b!.data).toMatchObject({ strict_mode: 1, garp_delay: 5, garp_rep: 5, garp_lower_prio_delay: 0, garp_lower_prio_rep: 0 });
  });

  test("AH auth is type 2 and the password is never printed", () => {
    const [e] = toKeepalivedJson(daemon([instance({ authType: "AH", extra: { auth_pass: "topsecret" } })]), 1);
    expect(e!.data.auth_type).toBe(2);
    expect(e!.data.auth_data).toBe("********");
    expect(renderKeepalivedJson([e!])).not.toContain("topsecret");
  });

  test("stats carry the instance counters", () => {
    const stats = { ...newStats(), advert_rcvd: 11, advert_sent: 12, auth_failure: 3, pri_zero_sent: 1, checksum_err: 9 };
    const [e] = toKeepalivedJson(daemon([instance({ stats, extra: { auth_ext_replay: 4 } })]), 1);
    expect(e!.stats).toMatchObject({ advert_rcvd: 11, advert_sent: 12, auth_failure: 3, pri_zero_sent: 1, auth_ext_replay: 4 });
    // vipd-only drop reasons are not keepalived fields.
    expect("checksum_err" in e!.stats).toBe(false);
  });
});

describe("exporter compatibility (mehdy/keepalived-exporter)", () => {
  const statuses: DaemonStatus[] = [
    goldenStatus(),
    daemon([instance({ interface: "eth0", state: "FAULT", vips: ["203.0.113.9/24"], evips: [], advertInt: 0.1, masterAdvertInt: 0.1, version: 3 })]),
  ];
  for (const [n, status] of statuses.entries()) {
    test(`status ${n}: every field the exporter reads decodes into its Go type`, () => {
      const text = renderKeepalivedJson(toKeepalivedJson(status, 1));
      const parsed = JSON.parse(text) as KeepalivedJsonV1;
      expect(Array.isArray(parsed)).toBe(true);
      expect(parsed.length).toBe(status.instances.length);
      // Split the rendered text per instance so each raw value is checked where it was written.
      const pieces = text.split('{"data":').slice(1);
      expect(pieces.length).toBe(parsed.length);
      const problems: string[] = [];
      for (const piece of pieces) {
        const [dataText, statsText] = piece.split('"stats":') as [string, string];
        for (const [key, type] of Object.entries(EXPORTER_DATA_FIELDS)) {
          const raw = rawField(dataText, key);
          // Absent lists decode to nil in Go; an absent ifp_ifname to "" — both fine, but our statuses have interfaces.
          if (raw === undefined) {
            if (type !== "[]string") problems.push(`data.${key} missing`);
            continue;
          }
          const p = goDecodeProblem(raw, type);
          if (p) problems.push(`data.${key}: ${p}`);
        }
        for (const key of EXPORTER_STATS_FIELDS) {
          const raw = rawField(statsText, key);
          if (raw === undefined) problems.push(`stats.${key} missing`);
          else if (goDecodeProblem(raw, "int")) problems.push(`stats.${key}: ${raw}`);
        }
      }
      expect(problems).toEqual([]);
    });
  }

  test("the Go-type check rejects what the exporter would fail on", () => {
    const text = renderKeepalivedJson(toKeepalivedJson(daemon([instance({ extra: { garp_delay: 0.5 } })]), 1));
    expect(goDecodeProblem(rawField(text, "garp_delay")!, "int")).toContain("not a Go int");
    expect(goDecodeProblem(rawField(text, "iname")!, "int")).toContain("not a Go int");
    expect(goDecodeProblem(rawField(text, "vrid")!, "string")).toContain("not a string");
    expect(goDecodeProblem(rawField(text, "vrid")!, "int")).toBe("");
  });

  test("v1 is the bare array the exporter decodes; v2 wraps it under vrrp", () => {
    const s = goldenStatus();
    const v1 = toKeepalivedJson(s, 1);
    const v2 = toKeepalivedJson(s, 2);
    expect(Array.isArray(JSON.parse(renderKeepalivedJson(v1)))).toBe(true);
    expect(Object.keys(v2)).toEqual(["vrrp"]);
    expect(v2.vrrp).toEqual(v1);
    const withProcs = toKeepalivedJson({ ...s, extra: { track_process: [{ process: "haproxy", min_processes: 1 }] } }, 2);
    expect(Object.keys(withProcs)).toEqual(["vrrp", "track_process"]);
  });
});

describe("formatting helpers", () => {
  test("formatVip lays options out like keepalived's format_ipaddress", () => {
    expect(formatVip("192.0.2.1/32", "eth0", false)).toBe("192.0.2.1 dev eth0 scope global");
    expect(formatVip("192.0.2.1/25", "eth0", true)).toBe("192.0.2.1/25 dev eth0 scope global set");
    // keepalived's IPv6 default: /128 is deprecated (preferred_lft 0), shorter prefixes forever.
    expect(formatVip("2001:db8::1/128", "eth0", false)).toBe("2001:db8::1 dev eth0 scope global deprecated");
    expect(formatVip("2001:db8::1", "eth0", false)).toBe("2001:db8::1 dev eth0 scope global deprecated");
    expect(formatVip("2001:db8::1/64 preferred_lft 30", "eth0", true)).toBe("2001:db8::1/64 dev eth0 scope global preferred_lft 30 set");
    // Config-style options in any order come out in keepalived's order.
    expect(formatVip("192.0.2.5/24 label eth1:0 dev eth1 scope link brd 192.0.2.255", "eth0", true)).toBe("192.0.2.5/24 brd 192.0.2.255 dev eth1 scope link label eth1:0 set");
    expect(formatVip("192.0.2.6/24 dev eth2 no_track", "eth0", false)).toBe("192.0.2.6/24 dev eth2 scope global no_track");
    // keepalived's own text is a fixed point (the "set" follows `installed`).
    const kText = "192.0.2.102/24 brd 192.0.2.255 dev d0 scope global label d0:1 set";
    expect(formatVip(kText, "x", true)).toBe(kText);
    expect(formatVip(kText, "x", false)).toBe(kText.slice(0, -4));
  });

  test("formatCommand quotes like keepalived's cmd_str", () => {
    expect(formatCommand(["/bin/echo", "it's"])).toBe("'/bin/echo' 'it'\\''s'");
    expect(formatCommand([">/tmp/x"])).toBe(">/tmp/x");
    expect(formatCommand("'/a' 'b'")).toBe("'/a' 'b'");
  });

  test("render escapes like json_writer and keeps six decimals on last_transition", () => {
    const [e] = toKeepalivedJson(daemon([instance({ name: 'a"b\\c/\u0001', lastTransition: 12.5, advertInt: 0.07, masterAdvertInt: 2.5 })]), 1);
    const text = renderKeepalivedJson([e!]);
    expect(text).toContain('"iname":"a\\"b\\\\c\\/\\u0001"');
    expect(text).toContain('"last_transition":12.500000');
    expect(text).toContain('"adver_int":0.07,');
    expect(text).toContain('"master_adver_int":2.5,');
    expect(text.endsWith("}}]\n")).toBe(true);
    expect(JSON.parse(text)[0].data.iname).toBe('a"b\\c/\u0001');
  });
});
