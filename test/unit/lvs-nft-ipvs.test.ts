// nftables_ipvs: a virtual_server_group of addresses becomes one automatic fwmark service
// (keepalived's check_nftables.c), and the nftables text that marks its packets.
import { describe, expect, test } from "bun:test";
import { loadConfigText } from "../../src/config/load.ts";
import type { Logger } from "../../src/daemon/logger.ts";
import { type DesiredLvs, type DesiredOptions, desiredFromModel } from "../../src/lvs/desired.ts";
import { type LvsNft, NFT_IPVS_MISSING_MESSAGE, createLvsManager } from "../../src/lvs/manager.ts";
import { PlanningIpvs } from "../../src/lvs/planning-ipvs.ts";
import {
  FwmarkAllocator, type NftIpvsRuleset, nftIpvsConfig, nftIpvsScript, nftIpvsTables, nftIpvsTeardownScript,
} from "../../src/lvs/nft-ipvs.ts";

function desired(text: string, opts?: DesiredOptions): DesiredLvs {
  const l = loadConfigText(text, "/tmp/lvs-nft-test.conf", { hostname: "h", env: {} });
  return desiredFromModel(l.model, opts);
}

const GROUPS = `
virtual_server_group web {
  192.0.2.8-11 80
  198.51.100.0/30 80
  192.0.2.20 443
  2001:db8::10-1f 80
}
virtual_server_group dns {
  203.0.113.53 53
  203.0.113.54
}
virtual_server_group marked {
  192.0.2.40 80
  fwmark 7
}
`;
const SERVERS = `
virtual_server group web {
  lb_algo rr
  lb_kind DR
  protocol TCP
  real_server 203.0.113.11 80 { weight 2 }
  real_server 203.0.113.12 80 { }
}
virtual_server group dns {
  lb_kind NAT
  protocol UDP
  persistence_timeout 30
  real_server 203.0.113.21 5353 { }
}
virtual_server group web {
  lb_kind NAT
  protocol UDP
  real_server 203.0.113.11 8080 { }
}
virtual_server group marked {
  lb_kind DR
  real_server 203.0.113.13 80 { }
}
`;

describe("global keywords", () => {
  test("defaults as keepalived: table keepalived_ipvs, priority -1, first mark 1000; unset means off", () => {
    expect(nftIpvsConfig({})).toBeUndefined();
    expect(nftIpvsConfig({ nftables_ipvs: {} })).toEqual({ table: "keepalived_ipvs", priority: -1, startFwmark: 1000, counters: false });
    expect(nftIpvsConfig({ nftables_ipvs: { table: "lb" }, nftables_ipvs_priority: -150, nftables_ipvs_start_fwmark: 5, nftables_counters: true }))
      .toEqual({ table: "lb", priority: -150, startFwmark: 5, counters: true });
  });

  test("the keywords parse from keepalived.conf without diagnostics", () => {
    const l = loadConfigText("global_defs {\n nftables_ipvs lb\n nftables_ipvs_priority -5\n nftables_ipvs_start_fwmark 200\n}\n", "/tmp/x.conf", { hostname: "h", env: {} });
    expect(nftIpvsConfig(l.model.global.doc)).toEqual({ table: "lb", priority: -5, startFwmark: 200, counters: false });
    expect(l.diagnostics.items).toEqual([]);
  });
});

describe("desired services", () => {
  const d = desired(`global_defs {\n nftables_ipvs\n}\n${GROUPS}${SERVERS}`);
  const [webTcp, dns, webUdp, marked] = d.virtualServers;

  test("a group of ranges, prefixes, single addresses and IPv6 is one fwmark service per family", () => {
    expect(webTcp!.services).toEqual([
      { family: "inet", fwmark: 1000, scheduler: "rr", flags: 0, timeout: 0, netmask: 32 },
      { family: "inet6", fwmark: 1000, scheduler: "rr", flags: 0, timeout: 0, netmask: 128 },
    ]);
    // DR real servers of a fwmark service carry no port; NAT ones keep theirs.
    expect(webTcp!.realServers.map((r) => [r.ip, r.port, r.weight])).toEqual([["203.0.113.11", 0, 2], ["203.0.113.12", 0, 1]]);
    expect(webUdp!.realServers.map((r) => [r.ip, r.port])).toEqual([["203.0.113.11", 8080]]);
    // ha_suspend still sees every address of the group.
    expect(webTcp!.addresses).toHaveLength(4 + 4 + 1 + 16);
    expect(d.warnings).toEqual([]);
  });

  test("marks are handed out per group and protocol in config order from start_fwmark", () => {
    expect(dns!.services).toEqual([{ family: "inet", fwmark: 1001, scheduler: "wlc", flags: 1, timeout: 30, netmask: 32 }]);
    expect(webUdp!.services.map((s) => [s.family, s.fwmark])).toEqual([["inet", 1002], ["inet6", 1002]]);
    expect(d.nftIpvs!.fwmarks).toEqual({ marks: { "web/tcp": 1000, "dns/udp": 1001, "web/udp": 1002 }, next: 1003 });
  });

  test("a group holding fwmark entries keeps its per-entry services (keepalived's VSG_USES_AUTO_FWMARK)", () => {
    expect(marked!.services.map((s) => s.fwmark ?? `${s.address}:${s.port}`)).toEqual(["192.0.2.40:80", 7]);
  });

  test("without nftables_ipvs, or with it disabled (no nft), groups expand per address", () => {
    for (const off of [desired(`${GROUPS}${SERVERS}`), desired(`global_defs {\n nftables_ipvs\n}\n${GROUPS}${SERVERS}`, { nftIpvs: false })]) {
      expect(off.nftIpvs).toBeUndefined();
      expect(off.virtualServers[0]!.services).toHaveLength(4 + 4 + 1 + 16);
      expect(off.virtualServers[0]!.services.every((s) => s.fwmark === undefined)).toBe(true);
    }
  });

  test("a reload keeps the marks of groups still there; new groups take the next, never reused", () => {
    const conf = (groups: string) => `global_defs {\n nftables_ipvs\n nftables_ipvs_start_fwmark 50\n}\n${groups}`;
    const a = desired(conf("virtual_server_group A {\n 192.0.2.1 80\n}\nvirtual_server_group B {\n 192.0.2.2 80\n}\nvirtual_server group A {\n protocol TCP\n}\nvirtual_server group B {\n protocol TCP\n}\n"));
    expect(a.virtualServers.map((v) => v.services[0]!.fwmark)).toEqual([50, 51]);
    const b = desired(conf("virtual_server_group C {\n 192.0.2.3 80\n}\nvirtual_server_group B {\n 192.0.2.2 80\n}\nvirtual_server group C {\n protocol TCP\n}\nvirtual_server group B {\n protocol TCP\n}\n"), { previousFwmarks: a.nftIpvs!.fwmarks });
    expect(b.virtualServers.map((v) => v.services[0]!.fwmark)).toEqual([52, 51]);
    expect(b.nftIpvs!.fwmarks).toEqual({ marks: { "C/tcp": 52, "B/tcp": 51 }, next: 53 });
  });

  test("overlapping entries (nft would refuse the whole map) are marked once, with a warning", () => {
    const o = desired(`global_defs {\n nftables_ipvs\n}\nvirtual_server_group A {\n 192.0.2.0/29 80\n 192.0.2.3 80\n 192.0.2.3 443\n}\nvirtual_server_group B {\n 192.0.2.6-9\n}\n` +
      ["A", "A", "B"].map((g) => `virtual_server group ${g} {\n protocol TCP\n persistence_timeout\n real_server 203.0.113.1 80 { }\n}\n`).join(""));
    expect(o.nftIpvs!.ruleset.maps).toEqual([{ family: "inet", protocol: "tcp", elements: [
      { first: "192.0.2.0", last: "192.0.2.7", port: 80, fwmark: 1000 }, { first: "192.0.2.3", last: "192.0.2.3", port: 443, fwmark: 1000 },
    ] }]);
    expect(o.warnings).toEqual([
      "virtual_server_group A: 192.0.2.3 80 overlaps an entry already marked 1000 for TCP - not marked again",
      "VS [A]:0: configured twice; the second is ignored",
      "virtual_server_group B: 192.0.2.6-9 0 overlaps an entry already marked 1000 for TCP - not marked again",
    ]);
    // B's only entry clashed: its service still exists (mark 1001), its packets are marked as A's.
    expect(o.virtualServers.map((v) => v.services.map((s) => s.fwmark))).toEqual([[1000], [1001]]);
  });

  test("the allocator alone: same key same mark, carried state", () => {
    const al = new FwmarkAllocator(10, { marks: { "g/udp": 3 }, next: 12 });
    expect([al.mark("g", "udp"), al.mark("h", "tcp"), al.mark("h", "tcp"), al.mark("g", "tcp")]).toEqual([3, 12, 12, 13]);
    expect(al.state()).toEqual({ marks: { "g/udp": 3, "h/tcp": 12, "g/tcp": 13 }, next: 14 });
  });

  test("exact ruleset for the groups: ip and ip6 tables, one map per protocol, ranges, prefixes, any port", () => {
    expect(nftIpvsScript(d.nftIpvs!.ruleset)).toBe(`table ip keepalived_ipvs
delete table ip keepalived_ipvs
table ip keepalived_ipvs {
\tmap tcp_map {
\t\ttype ipv4_addr . inet_service : mark
\t\tflags interval
\t\telements = { 192.0.2.8-192.0.2.11 . 80 : 1000, 198.51.100.0-198.51.100.3 . 80 : 1000, 192.0.2.20 . 443 : 1000 }
\t}
\tmap udp_map {
\t\ttype ipv4_addr . inet_service : mark
\t\tflags interval
\t\telements = { 203.0.113.53 . 53 : 1001, 203.0.113.54 . 0-65535 : 1001, 192.0.2.8-192.0.2.11 . 80 : 1002, 198.51.100.0-198.51.100.3 . 80 : 1002, 192.0.2.20 . 443 : 1002 }
\t}
\tchain in {
\t\ttype filter hook input priority -1; policy accept;
\t\tmeta l4proto tcp meta mark set ip daddr . tcp dport map @tcp_map counter return
\t\tmeta l4proto udp meta mark set ip daddr . udp dport map @udp_map counter return
\t}
}
table ip6 keepalived_ipvs
delete table ip6 keepalived_ipvs
table ip6 keepalived_ipvs {
\tmap tcp_map {
\t\ttype ipv6_addr . inet_service : mark
\t\tflags interval
\t\telements = { 2001:db8::10-2001:db8::1f . 80 : 1000 }
\t}
\tmap udp_map {
\t\ttype ipv6_addr . inet_service : mark
\t\tflags interval
\t\telements = { 2001:db8::10-2001:db8::1f . 80 : 1002 }
\t}
\tchain in {
\t\ttype filter hook input priority -1; policy accept;
\t\tmeta l4proto tcp meta mark set ip6 daddr . tcp dport map @tcp_map counter return
\t\tmeta l4proto udp meta mark set ip6 daddr . udp dport map @udp_map counter return
\t}
}
`);
  });
});

describe("script", () => {
  const rs = (table: string, family: "inet" | "inet6", counters = false): NftIpvsRuleset => ({
    config: { table, priority: 10, startFwmark: 1, counters },
    maps: [{ family, protocol: "sctp", elements: [{ first: family === "inet" ? "192.0.2.1" : "2001:db8::1", last: family === "inet" ? "192.0.2.1" : "2001:db8::1", port: 3868, fwmark: 1 }] }],
  });

  test("counters and priority; sctp map", () => {
    expect(nftIpvsScript(rs("lb", "inet", true))).toBe(`table ip lb
delete table ip lb
table ip lb {
\tmap sctp_map {
\t\ttype ipv4_addr . inet_service : mark
\t\tflags interval
\t\tcounter
\t\telements = { 192.0.2.1 . 3868 : 1 }
\t}
\tchain in {
\t\ttype filter hook input priority 10; policy accept;
\t\tmeta l4proto sctp meta mark set ip daddr . sctp dport map @sctp_map counter return
\t}
}
`);
  });

  test("a reload deletes the tables no longer wanted (renamed, family gone) in the same transaction", () => {
    const prev = nftIpvsTables({ config: rs("old", "inet").config, maps: [...rs("old", "inet").maps, ...rs("old", "inet6").maps] });
    expect(prev).toEqual([{ family: "ip", name: "old" }, { family: "ip6", name: "old" }]);
    const script = nftIpvsScript(rs("old", "inet"), prev);
    expect(script.startsWith("table ip6 old\ndelete table ip6 old\ntable ip old\ndelete table ip old\ntable ip old {\n")).toBe(true);
    expect(nftIpvsScript(undefined, prev)).toBe("table ip old\ndelete table ip old\ntable ip6 old\ndelete table ip6 old\n");
    expect(nftIpvsScript(undefined, [])).toBe("");
  });

  test("teardown deletes only vipd's tables; an empty map makes no table; bad names are refused", () => {
    expect(nftIpvsTeardownScript([{ family: "ip6", name: "keepalived_ipvs" }])).toBe("table ip6 keepalived_ipvs\ndelete table ip6 keepalived_ipvs\n");
    expect(nftIpvsTables({ config: rs("x", "inet").config, maps: [{ family: "inet", protocol: "tcp", elements: [] }] })).toEqual([]);
    expect(() => nftIpvsScript(rs("bad name;", "inet"))).toThrow(/invalid nftables_ipvs table name/);
  });
});

describe("the manager applies and removes the ruleset", () => {
  const CONF = (groups: string) => `global_defs {\n nftables_ipvs\n}\n${groups}`;
  const G1 = "virtual_server_group G {\n 192.0.2.8-11 80\n}\nvirtual_server group G {\n protocol TCP\n lb_kind DR\n real_server 203.0.113.11 80 { }\n}\n";
  const G2 = "virtual_server_group H {\n 2001:db8::1 80\n}\nvirtual_server group H {\n protocol TCP\n lb_kind DR\n real_server 2001:db8::11 80 { }\n}\n" + G1;

  function setup(available: boolean, fail = false) {
    const scripts: string[] = [];
    const logs: string[] = [];
    const nft: LvsNft = { available, apply: async (script) => (scripts.push(script), fail ? { ok: false, missing: false, error: "nftables ipvs: nft exited 1: boom" } : { ok: true }) };
    const log: Logger = { info: (m) => logs.push(m), warn: (m) => logs.push(`W ${m}`), error: (m) => logs.push(`E ${m}`), debug() {} };
    const ipvs = new PlanningIpvs({ info: { version: "1.2.1", versionCode: 0x10201, connTableSize: 4096 }, services: [], timeouts: { tcp: 900, tcpFin: 120, udp: 300 }, daemons: [] });
    const model = (text: string) => loadConfigText(text, "/tmp/lvs-nft-test.conf", { hostname: "h", env: {} }).model;
    const m = createLvsManager(model(CONF(G1)), { log, nft, openIpvs: () => ({ ok: true, ipvs }), runScript: () => undefined, repairIntervalMs: 0 });
    return { m, scripts, logs, ipvs, model };
  }

  test("start: one FWM service and the table; reload: atomic replace, then nothing when unchanged; stop: table deleted", async () => {
    const { m, scripts, ipvs, model } = setup(true);
    m.start();
    await m.nftSettled();
    expect(ipvs.changes.map((c) => `${c.op} ${c.text}`)).toEqual(["add service FWM 1000 scheduler wlc", "add real-server FWM 1000 -> 203.0.113.11:0 DR weight 1"]);
    expect(scripts).toEqual([nftIpvsScript(desired(CONF(G1)).nftIpvs!.ruleset)]);
    m.reload(model(CONF(G2)));
    await m.nftSettled();
    // G keeps 1000, H is new: 1001; the ip6 table appears.
    const d2 = desired(CONF(G2), { previousFwmarks: { marks: { "G/tcp": 1000 }, next: 1001 } });
    expect(d2.virtualServers.map((v) => v.services[0]!.fwmark)).toEqual([1001, 1000]);
    expect(scripts[1]).toBe(nftIpvsScript(d2.nftIpvs!.ruleset, [{ family: "ip", name: "keepalived_ipvs" }]));
    m.reload(model(CONF(G2)));
    await m.nftSettled();
    expect(scripts).toHaveLength(2);
    await m.stop();
    expect(scripts[2]).toBe("table ip keepalived_ipvs\ndelete table ip keepalived_ipvs\ntable ip6 keepalived_ipvs\ndelete table ip6 keepalived_ipvs\n");
  });

  test("a reload without nftables_ipvs deletes the tables; the group goes back to per-address services", async () => {
    const { m, scripts, ipvs, model } = setup(true);
    m.start();
    await m.nftSettled();
    m.reload(model(G1));
    await m.nftSettled();
    expect(scripts[1]).toBe("table ip keepalived_ipvs\ndelete table ip keepalived_ipvs\n");
    expect(m.status().virtualServers[0]!.services).toHaveLength(4);
    expect(ipvs.changes.map((c) => `${c.op} ${c.text}`)).toContain("delete service FWM 1000");
    await m.stop();
    expect(scripts).toHaveLength(2);
  });

  test("no nft: one clear error, per-address services as keepalived without nftables, nft never run", async () => {
    const { m, scripts, logs, model } = setup(false);
    m.start();
    m.reload(model(CONF(G1)));
    await m.stop();
    expect(logs.filter((l) => l.startsWith("E "))).toEqual([`E ${NFT_IPVS_MISSING_MESSAGE}`]);
    expect(m.status().virtualServers[0]!.services).toHaveLength(4);
    expect(scripts).toEqual([]);
  });

  test("nft fails: the error is logged and the next reload tries again; stop still deletes the table", async () => {
    const { m, scripts, logs, model } = setup(true, true);
    m.start();
    await m.nftSettled();
    expect(logs).toContain("E nftables ipvs: nft exited 1: boom");
    m.reload(model(CONF(G1)));
    await m.nftSettled();
    expect(scripts).toHaveLength(2);
    await m.stop();
    expect(scripts[2]).toBe("table ip keepalived_ipvs\ndelete table ip keepalived_ipvs\n");
  });
});
