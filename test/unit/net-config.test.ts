// NetConfig on fake hosts: static entries from start to stop, virtual routes/rules with
// MASTER (through the runtime, in keepalived's order), the no_accept drop set, and VMACs
// (names, MACs, sysctls, where VIPs, adverts and GARPs go), all without the kernel.
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { loadConfigText } from "../../src/config/load.ts";
import type { Logger } from "../../src/daemon/logger.ts";
import { NetConfig, nftOptionsOf } from "../../src/daemon/net-config.ts";
import { VrrpRuntime } from "../../src/daemon/vrrp-runtime.ts";
import { decodeArp } from "../../src/vrrp/frames.ts";
import { FakeClock, FakeHost, FakeSegment } from "./fake-host.ts";

function memLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(m), warn: (m) => lines.push(`W ${m}`), error: (m) => lines.push(`E ${m}`), debug: () => {} };
}

function instance(name: string, prio: number, extra: string, vrid = 51, vip = "192.0.2.100/24"): string {
  return `vrrp_instance ${name} {
    interface eth0
    virtual_router_id ${vrid}
    priority ${prio}
    version 3
    advert_int 0.1
    ${extra}
    virtual_ipaddress {
        ${vip}
    }
}
`;
}

const ROUTES = `virtual_routes {
        203.0.113.0/24 via 192.0.2.254 table 100
        198.51.100.0/24 via 192.0.2.254
    }
    virtual_rules {
        from 192.0.2.100 table 100 priority 200
    }`;

const NAMES = { tables: "100 vip\n" };

function model(text: string) {
  const loaded = loadConfigText(text, "t.conf", { hostname: "t", env: {} });
  expect(loaded.diagnostics.errors).toEqual([]);
  return loaded.model;
}

function withSysctls(host: FakeHost): FakeHost {
  for (const [k, v] of Object.entries({
    "ipv4.all.rp_filter": 0, "ipv4.default.rp_filter": 0, "ipv4.eth0.rp_filter": 0,
    "ipv4.default.arp_ignore": 0, "ipv4.eth0.arp_ignore": 0, "ipv4.default.arp_filter": 0, "ipv4.eth0.arp_filter": 0,
    "ipv4.default.accept_local": 0, "ipv4.default.promote_secondaries": 0, "ipv6.default.disable_ipv6": 0,
  })) host.sysctls.set(k, v);
  return host;
}

function node(name: string, ip: string, text: string, clock: FakeClock, seg: FakeSegment) {
  const host = withSysctls(new FakeHost(name, clock, seg, ip));
  const log = memLog();
  const rt = new VrrpRuntime(model(text), host, log, { version: "test", configFile: "t.conf" });
  return { host, log, rt, state: (i = 0) => rt.status().instances[i]!.state };
}

describe("NetConfig: static entries", () => {
  const text = `static_ipaddress {
    192.0.2.50/24 dev eth0
    198.51.100.7/32
}
static_routes {
    203.0.113.0/24 via 192.0.2.254 dev eth0
    blackhole 198.51.100.0/24 table vip
}
static_rules {
    from 192.0.2.50 table vip priority 100
}
`;

  test("installed at start and removed at stop, rules before routes before addresses on the way out", () => {
    const host = new FakeHost("a", new FakeClock(), new FakeSegment(new FakeClock()), "192.0.2.1");
    const log = memLog();
    const net = new NetConfig(model(text), host, log, { routeNames: NAMES });
    net.start();
    expect(host.has("192.0.2.50")).toBe(true);
    expect(host.has("198.51.100.7")).toBe(true); // no dev: default_interface eth0
    expect([...host.routes].sort()).toEqual(["blackhole 198.51.100.0/24 table 100", "203.0.113.0/24 via 192.0.2.254 dev eth0"].sort());
    expect([...host.rules]).toEqual(["100: from 192.0.2.50/32 lookup 100"]);
    expect(host.nftScripts).toEqual([]); // no no_accept: no table
    host.log.length = 0;
    net.stop();
    expect(host.routes.size).toBe(0);
    expect(host.rules.size).toBe(0);
    expect(host.has("192.0.2.50")).toBe(false);
    expect(host.has("198.51.100.7")).toBe(false);
    const first = (p: string) => host.log.findIndex((l) => l.startsWith(p));
    expect(first("delete rule")).toBeLessThan(first("delete route"));
    expect(first("delete route")).toBeLessThan(first("del 192.0.2.50"));
    expect(log.lines.filter((l) => l.startsWith("E "))).toEqual([]);
  });

  test("a bad line is reported and skipped; the others are installed; a failing add does not stop the batch", () => {
    const host = new FakeHost("a", new FakeClock(), new FakeSegment(new FakeClock()), "192.0.2.1");
    host.failing.add("203.0.113.0/24 via 192.0.2.254 dev eth0");
    const log = memLog();
    const net = new NetConfig(model(`static_routes {
    203.0.113.0/24 via 192.0.2.254 dev eth0
    198.51.100.0/24 via 192.0.2.254 table nosuchtable
    198.51.100.0/25 via 192.0.2.254
}
`), host, log, { routeNames: NAMES });
    expect(log.lines.some((l) => /^E static_routes line 2: routing table 'nosuchtable' not found/.test(l))).toBe(true);
    net.start();
    expect([...host.routes]).toEqual(["198.51.100.0/25 via 192.0.2.254"]);
    expect(log.lines.some((l) => /^E static_routes: cannot add route 203\.0\.113\.0\/24 .*Network is unreachable/.test(l))).toBe(true);
    net.stop();
    expect(host.routes.size).toBe(0);
  });
});

describe("NetConfig: virtual routes and rules follow MASTER", () => {
  test("only the master has them; they move on failover and go at stop; order: VIPs, routes, rules / rules, routes, VIPs", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const a = node("a", "192.0.2.1", instance("VI_1", 150, ROUTES), clock, seg);
    const b = node("b", "192.0.2.2", instance("VI_1", 100, ROUTES), clock, seg);
    a.rt.start();
    b.rt.start();
    clock.advance(2000);
    expect(a.state()).toBe("MASTER");
    expect(b.state()).toBe("BACKUP");
    expect([...a.host.routes].sort()).toEqual(["198.51.100.0/24 via 192.0.2.254", "203.0.113.0/24 via 192.0.2.254 table 100"]);
    expect([...a.host.rules]).toEqual(["200: from 192.0.2.100/32 lookup 100"]);
    expect(b.host.routes.size + b.host.rules.size).toBe(0);
    const up = a.host.log;
    expect(up.indexOf("add 192.0.2.100/24")).toBeLessThan(up.findIndex((l) => l.startsWith("add route")));
    expect(up.findIndex((l) => l.startsWith("add route"))).toBeLessThan(up.findIndex((l) => l.startsWith("add rule")));

    a.host.log.length = 0;
    a.rt.stop();
    const down = a.host.log;
    expect(down.findIndex((l) => l.startsWith("delete rule"))).toBeLessThan(down.findIndex((l) => l.startsWith("delete route")));
    expect(down.findIndex((l) => l.startsWith("delete route"))).toBeLessThan(down.indexOf("del 192.0.2.100/24"));
    expect(a.host.routes.size + a.host.rules.size).toBe(0);
    clock.advance(2000);
    expect(b.state()).toBe("MASTER");
    expect(b.host.routes.size).toBe(2);
    expect(b.host.rules.size).toBe(1);
    b.rt.stop();
    expect(b.host.routes.size + b.host.rules.size).toBe(0);
  });

  test("a BACKUP never deletes routes it did not add", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const a = node("a", "192.0.2.1", instance("VI_1", 150, ""), clock, seg);
    const b = node("b", "192.0.2.2", instance("VI_1", 100, ROUTES), clock, seg);
    b.host.routes.add("198.51.100.0/24 via 192.0.2.254"); // someone else's route with the same key
    a.rt.start();
    b.rt.start();
    clock.advance(2000);
    b.rt.stop();
    expect(b.host.log.some((l) => l.startsWith("delete route"))).toBe(false);
    expect(b.host.routes.has("198.51.100.0/24 via 192.0.2.254")).toBe(true);
    a.rt.stop();
  });
});

describe("NetConfig: no_accept", () => {
  test("the drop set holds the VIPs only while MASTER; table created at start and removed at stop", async () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const a = node("a", "192.0.2.1", instance("VI_1", 150, "no_accept\n    virtual_ipaddress_excluded {\n        2001:db8::100/64\n    }"), clock, seg);
    a.rt.start();
    expect(a.host.nftScripts.length).toBe(1);
    expect(a.host.nftScripts[0]).toContain("table inet vipd {");
    clock.advance(2000);
    expect(a.state()).toBe("MASTER");
    await Promise.resolve();
    const sync = a.host.nftScripts[1]!;
    expect(sync).toContain("add element inet vipd vips4 { 192.0.2.100 }");
    expect(sync).toContain("add element inet vipd vips6 { 2001:db8::100 }");
    // a higher priority takes over: the drop set empties
    const b = node("b", "192.0.2.2", instance("VI_1", 200, ""), clock, seg);
    b.rt.start();
    clock.advance(2000);
    expect(a.state()).toBe("BACKUP");
    const last = a.host.nftScripts.at(-1)!;
    expect(last).toContain("flush set inet vipd vips4");
    expect(last).not.toContain("add element");
    a.rt.stop();
    expect(a.host.nftScripts.at(-1)).toBe("table inet vipd\ndelete table inet vipd\n");
    b.rt.stop();
    expect(b.host.nftScripts).toEqual([]); // accept (default): no nftables at all
  });

  test("an address owner (priority 255) with no_accept needs no table; nftables TABLE and priority are honoured", () => {
    const clock = new FakeClock();
    const a = node("a", "192.0.2.1", instance("VI_1", 255, "no_accept"), clock, new FakeSegment(clock));
    a.rt.start();
    clock.advance(2000);
    expect(a.state()).toBe("MASTER");
    a.rt.stop();
    expect(a.host.nftScripts).toEqual([]);
    expect(nftOptionsOf({ nftables: { table: "ka" }, nftables_priority: -5, nftables_counters: true })).toEqual({ table: "ka", priority: -5, counters: true });
    expect(nftOptionsOf({ nftables: {} }).table).toBe("keepalived");
    expect(nftOptionsOf({}).table).toBe("vipd");
  });

  test("without nft: one clear warning, VRRP keeps working", async () => {
    const clock = new FakeClock();
    const host = new FakeHost("a", clock, new FakeSegment(clock), "192.0.2.1");
    host.nftAvailable = false;
    const log = memLog();
    const rt = new VrrpRuntime(model(instance("VI_1", 150, "no_accept") + instance("VI_2", 150, "no_accept", 52, "192.0.2.101/24")), host, log, { version: "t", configFile: "t" });
    rt.start();
    clock.advance(2000);
    await Promise.resolve();
    expect(rt.status().instances.map((i) => i.state)).toEqual(["MASTER", "MASTER"]);
    expect(log.lines.filter((l) => l.includes("nft not found")).length).toBe(1);
    rt.stop();
  });
});

describe("NetConfig: VMAC", () => {
  test("macvlan vrrp.51 with 00:00:5e:00:01:33: VIPs, adverts and GARPs on it; sysctls set and restored; deleted at stop", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const a = node("a", "192.0.2.1", instance("VI_1", 150, "use_vmac"), clock, seg);
    a.host.sysctls.set("ipv4.all.rp_filter", 1); // the VMAC needs all.rp_filter 0
    a.rt.start();
    expect(a.host.log).toContain("macvlan vrrp.51 on eth0 00:00:5e:00:01:33");
    const vmac = a.host.links().find((l) => l.name === "vrrp.51")!;
    expect(vmac.up).toBe(true);
    expect(seg.receivers.find((r) => r.host === a.host)!.opts.ifname).toBe("vrrp.51");
    expect(a.host.sysctls.get("ipv4.vrrp.51.arp_ignore")).toBe(1);
    expect(a.host.sysctls.get("ipv4.vrrp.51.rp_filter")).toBe(0);
    expect(a.host.sysctls.get("ipv4.vrrp.51.accept_local")).toBe(1);
    expect(a.host.sysctls.get("ipv6.vrrp.51.disable_ipv6")).toBe(1);
    expect(a.host.sysctls.get("ipv4.eth0.arp_ignore")).toBe(1);
    expect(a.host.sysctls.get("ipv4.eth0.arp_filter")).toBe(1);
    expect(a.host.sysctls.get("ipv4.eth0.rp_filter")).toBe(1); // raised before all drops to 0
    expect(a.host.sysctls.get("ipv4.all.rp_filter")).toBe(0);
    clock.advance(2000);
    expect(a.state()).toBe("MASTER");
    expect(a.host.addressTable.find((x) => x.address === "192.0.2.100")!.ifindex).toBe(vmac.ifindex);
    const garps = seg.frames.filter((f) => f.from === "a");
    expect(garps.length).toBe(5);
    for (const f of garps) {
      expect(f.ifname).toBe("vrrp.51");
      expect([...decodeArp(f.frame.subarray(14))!.senderMac]).toEqual([0, 0, 0x5e, 0, 1, 0x33]);
      expect([...f.frame.subarray(6, 12)]).toEqual([0, 0, 0x5e, 0, 1, 0x33]);
    }
    a.rt.stop();
    expect(a.host.links().some((l) => l.name === "vrrp.51")).toBe(false);
    expect(a.host.sysctls.get("ipv4.all.rp_filter")).toBe(1);
    expect(a.host.sysctls.get("ipv4.eth0.arp_ignore")).toBe(0);
    expect(a.host.sysctls.get("ipv4.eth0.arp_filter")).toBe(0);
    expect(a.host.sysctls.get("ipv4.eth0.rp_filter")).toBe(0);
  });

  test("vmac_xmit_base: adverts on the base interface, VIPs and GARPs still on the VMAC; named VMAC with a 5-octet MAC", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const a = node("a", "192.0.2.1", instance("VI_1", 150, "use_vmac vx 02:00:5e:00:01\n    vmac_xmit_base"), clock, seg);
    a.rt.start();
    expect(a.host.log).toContain("macvlan vx on eth0 02:00:5e:00:01:33");
    expect(seg.receivers.find((r) => r.host === a.host)!.opts.ifname).toBe("eth0");
    clock.advance(2000);
    const vx = a.host.links().find((l) => l.name === "vx")!;
    expect(a.host.addressTable.find((x) => x.address === "192.0.2.100")!.ifindex).toBe(vx.ifindex);
    expect(seg.frames.filter((f) => f.from === "a").every((f) => f.ifname === "vx")).toBe(true);
    a.rt.stop();
    expect(a.host.links().some((l) => l.name === "vx")).toBe(false);
  });

  test("IPv6: 00:00:5e:00:02:VRID, no automatic link-local, the parent's link-local on the VMAC; names avoid taken ones", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    // VI_4 takes vrrp.51 first, so VI_6 gets keepalived's next IPv6 name, vrrp6.51
    const text = instance("VI_4", 150, "use_vmac", 51, "192.0.2.100/24") + instance("VI_6", 150, "use_vmac", 51, "fe80::51/64");
    const a = node("a", "192.0.2.1", text, clock, seg);
    a.rt.start();
    expect(a.host.log).toContain("macvlan vrrp6.51 on eth0 00:00:5e:00:02:33");
    expect(a.host.log).toContain("macvlan vrrp.51 on eth0 00:00:5e:00:01:33");
    expect(a.host.log).toContain("addrgenmode vrrp6.51 none");
    const v6 = a.host.links().find((l) => l.name === "vrrp6.51")!;
    expect(a.host.addressTable.some((x) => x.ifindex === v6.ifindex && x.address === "fe80::1" && x.prefixlen === 64)).toBe(true);
    a.rt.stop();
    expect(a.host.links().map((l) => l.name)).toEqual(["eth0"]);
  });

  test("an existing interface with the configured name that is not ours: error, instance runs on the base", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const host = withSysctls(new FakeHost("a", clock, seg, "192.0.2.1"));
    host.createMacvlan({ name: "busy", parent: "eth0", mac: "02:11:22:33:44:55" });
    const log = memLog();
    const rt = new VrrpRuntime(model(instance("VI_1", 150, "use_vmac busy")), host, log, { version: "t", configFile: "t" });
    rt.start();
    expect(log.lines.some((l) => /^E \(VI_1\) VMAC interface busy already exists/.test(l))).toBe(true);
    expect(seg.receivers.find((r) => r.host === host)!.opts.ifname).toBe("eth0");
    rt.stop();
    expect(host.links().some((l) => l.name === "busy")).toBe(true); // not ours: left alone
  });

  test("promote_secondaries sets the interface's sysctl for the run (a VMAC has it anyway)", () => {
    const clock = new FakeClock();
    const a = node("a", "192.0.2.1", instance("VI_1", 150, "promote_secondaries"), clock, new FakeSegment(clock));
    a.host.sysctls.set("ipv4.eth0.promote_secondaries", 0);
    a.rt.start();
    expect(a.host.sysctls.get("ipv4.eth0.promote_secondaries")).toBe(1);
    a.rt.stop();
    expect(a.host.sysctls.get("ipv4.eth0.promote_secondaries")).toBe(0);
  });
});

describe("NetConfig: routes and rules deleted by someone else", () => {
  const statics = `static_routes {
    203.0.113.128/25 via 192.0.2.254 dev eth0
    198.51.100.128/25 via 192.0.2.254 dev eth0 no_track
}
`;
  const vroute = { family: "inet" as const, table: 100, dst: "203.0.113.0", dstLen: 24, tos: 0 };
  const vrule = { family: "inet" as const, priority: 200, table: 100, src: "192.0.2.100", srcLen: 32, dstLen: 0 };

  function master() {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const a = node("a", "192.0.2.1", statics + instance("VI_1", 150, ROUTES), clock, seg);
    a.rt.start();
    clock.advance(1000);
    expect(a.state()).toBe("MASTER");
    return { a, clock };
  }
  const routeText = (a: ReturnType<typeof master>["a"], dst: string) => [...a.host.routes].find((r) => r.startsWith(dst));

  test("a tracked virtual route deleted on the MASTER: it steps down, and the re-election re-installs it", () => {
    const { a, clock } = master();
    const text = routeText(a, "203.0.113.0/24")!;
    expect(text).toBeDefined();
    a.host.routes.delete(text);
    a.host.emit({ kind: "route", route: vroute });
    expect(a.state()).toBe("BACKUP");
    expect(a.log.lines.some((l) => l.startsWith("(VI_1) virtual route 203.0.113.0/24") && l.endsWith("was removed by someone else"))).toBe(true);
    clock.advance(2000);
    expect(a.state()).toBe("MASTER");
    expect(a.host.routes.has(text)).toBe(true);
  });

  test("a tracked virtual rule deleted on the MASTER makes it step down too; a BACKUP ignores it", () => {
    const { a } = master();
    a.host.emit({ kind: "rule", rule: vrule });
    expect(a.state()).toBe("BACKUP");
    a.host.emit({ kind: "rule", rule: vrule });
    expect(a.state()).toBe("BACKUP");
  });

  test("a tracked static route is reinstated; a no_track one and unknown routes are left alone", () => {
    const { a } = master();
    const tracked = routeText(a, "203.0.113.128/25")!;
    const untracked = routeText(a, "198.51.100.128/25")!;
    a.host.routes.delete(tracked);
    a.host.routes.delete(untracked);
    a.host.emit({ kind: "route", route: { family: "inet", table: 254, dst: "203.0.113.128", dstLen: 25, tos: 0 } });
    a.host.emit({ kind: "route", route: { family: "inet", table: 254, dst: "198.51.100.128", dstLen: 25, tos: 0 } });
    a.host.emit({ kind: "route", route: { family: "inet", table: 254, dst: "192.0.2.128", dstLen: 25, tos: 0 } });
    expect(a.host.routes.has(tracked)).toBe(true);
    expect(a.host.routes.has(untracked)).toBe(false);
    expect(a.log.lines.filter((l) => l.includes("reinstated"))).toEqual([`static route ${tracked.replace(/^route /, "")} was removed by someone else: reinstated`]);
    expect(a.state()).toBe("MASTER");
  });
});

describe("NetConfig: disable_local_igmp", () => {
  test("sets net.ipv4.igmp_link_local_mcast_reports to 0 at start and restores it at stop; a reload cannot change it", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const text = `global_defs {\n  disable_local_igmp\n}\n${instance("VI_1", 150, "")}`;
    const a = node("a", "192.0.2.1", text, clock, seg);
    a.host.sysctls.set("ipv4.igmp_link_local_mcast_reports", 1);
    a.rt.start();
    expect(a.host.sysctls.get("ipv4.igmp_link_local_mcast_reports")).toBe(0);
    a.rt.reload(model(instance("VI_1", 150, "")));
    expect(a.log.lines).toContain("Cannot change disable_local_igmp at a reload - please restart vipd");
    expect(a.host.sysctls.get("ipv4.igmp_link_local_mcast_reports")).toBe(0);
    a.rt.stop();
    expect(a.host.sysctls.get("ipv4.igmp_link_local_mcast_reports")).toBe(1);
  });

  test("a kernel without the switch: one warning, nothing else", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const a = node("a", "192.0.2.1", `global_defs {\n  disable_local_igmp\n}\n${instance("VI_1", 150, "")}`, clock, seg);
    a.rt.start();
    expect(a.log.lines.filter((l) => l.includes("igmp_link_local_mcast_reports"))).toEqual([
      "W disable_local_igmp: the kernel has no net.ipv4.igmp_link_local_mcast_reports; IGMP reports are not suppressed",
    ]);
  });
});

describe("NetConfig: iproute_usr_dir / iproute_etc_dir", () => {
  test("table names come from the configured directories (etc overrides usr)", () => {
    const base = mkdtempSync(`${tmpdir()}/vipdt-iproute-`);
    try {
      mkdirSync(`${base}/usr`);
      mkdirSync(`${base}/etc`);
      writeFileSync(`${base}/usr/rt_tables`, "200 custom\n201 other\n");
      writeFileSync(`${base}/etc/rt_tables`, "202 other\n");
      const text = `global_defs {\n  iproute_usr_dir ${base}/usr\n  iproute_etc_dir ${base}/etc\n}\nstatic_routes {\n  203.0.113.0/24 via 192.0.2.254 table custom\n  198.51.100.0/24 via 192.0.2.254 table other\n}\n`;
      const host = new FakeHost("a", new FakeClock(), new FakeSegment(new FakeClock()), "192.0.2.1");
      const log = memLog();
      const net = new NetConfig(model(text), host, log);
      net.start();
      expect(log.lines.filter((l) => l.startsWith("E ") || l.startsWith("W "))).toEqual([]);
      expect([...host.routes].sort()).toEqual(["198.51.100.0/24 via 192.0.2.254 table 202", "203.0.113.0/24 via 192.0.2.254 table 200"]);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
