// The desired IPVS state: every LVS keyword of virtual_server / virtual_server_group /
// real_server mapped to services and destinations, and the LVS fixture configs.
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { loadConfig, loadConfigText } from "../../src/config/load.ts";
import {
  desiredFromModel, destinationFor, expandGroupAddress, granularityToPrefixLen, type DesiredLvs,
} from "../../src/lvs/desired.ts";
import {
  IP_VS_SVC_F_HASHED, IP_VS_SVC_F_ONEPACKET, IP_VS_SVC_F_PERSISTENT, IP_VS_SVC_F_SCHED1, IP_VS_SVC_F_SCHED2, IP_VS_SVC_F_SCHED3,
  serviceKeyString,
} from "../../src/lvs/ipvs-types.ts";
import { syncDaemonConfig } from "../../src/lvs/sync-daemon.ts";

const FIX = join(import.meta.dir, "../fixtures/configs");

function fromText(text: string): DesiredLvs {
  const l = loadConfigText(text, "/tmp/lvs-test.conf", { hostname: "h", env: {} });
  return desiredFromModel(l.model);
}
const one = (body: string, header = "192.0.2.1 80") => fromText(`virtual_server ${header} {\n${body}\n}\n`).virtualServers[0]!;

describe("virtual_server keywords", () => {
  test("address service: protocol, scheduler, default wlc and NAT, weight 1", () => {
    const vs = one("protocol TCP\nreal_server 198.51.100.1 8080 { }");
    expect(vs.services).toEqual([{ family: "inet", protocol: "tcp", address: "192.0.2.1", port: 80, scheduler: "wlc", flags: 0, timeout: 0, netmask: 32 }]);
    expect(vs.realServers[0]).toMatchObject({ ip: "198.51.100.1", port: 8080, fwdMethod: "NAT", weight: 1, inhibit: false, alpha: false });
    expect(vs.label).toBe("[192.0.2.1]:tcp:80");
  });

  test("UDP and SCTP, and lb_algo alias", () => {
    expect(one("protocol UDP\nlb_algo rr").services[0]).toMatchObject({ protocol: "udp", scheduler: "rr" });
    expect(one("protocol SCTP\nlvs_sched mh").services[0]).toMatchObject({ protocol: "sctp", scheduler: "mh" });
  });

  test("each scheduler name is passed through", () => {
    for (const s of ["rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos"])
      expect(one(`protocol TCP\nlvs_sched ${s}`).services[0]!.scheduler).toBe(s);
  });

  test("scheduler flags: flag-1..3, hashed, sh-*/mh-* only with their scheduler, ops only for UDP", () => {
    expect(one("protocol TCP\nflag-1\nflag-2\nflag-3\nhashed").services[0]!.flags).toBe(IP_VS_SVC_F_SCHED1 | IP_VS_SVC_F_SCHED2 | IP_VS_SVC_F_SCHED3 | IP_VS_SVC_F_HASHED);
    expect(one("protocol TCP\nlvs_sched sh\nsh-port\nsh-fallback").services[0]!.flags).toBe(IP_VS_SVC_F_SCHED1 | IP_VS_SVC_F_SCHED2);
    expect(one("protocol TCP\nlvs_sched mh\nmh-port").services[0]!.flags).toBe(IP_VS_SVC_F_SCHED2);
    expect(one("protocol TCP\nlvs_sched mh\nmh-fallback").services[0]!.flags).toBe(IP_VS_SVC_F_SCHED1);
    const d = fromText("virtual_server 192.0.2.1 80 {\nprotocol TCP\nlvs_sched rr\nsh-port\nops\n}\n");
    expect(d.virtualServers[0]!.services[0]!.flags).toBe(0);
    expect(d.warnings.some((w) => w.includes("sh-port"))).toBe(true);
    expect(d.warnings.some((w) => w.includes("ops"))).toBe(true);
    expect(one("protocol UDP\nops").services[0]!.flags).toBe(IP_VS_SVC_F_ONEPACKET);
  });

  test("persistence: bare timeout is 360, explicit timeout, granularity mask or prefix, engine", () => {
    expect(one("protocol TCP\npersistence_timeout").services[0]).toMatchObject({ timeout: 360, flags: IP_VS_SVC_F_PERSISTENT, netmask: 32 });
    expect(one("protocol TCP\npersistence_timeout 50").services[0]).toMatchObject({ timeout: 50, flags: IP_VS_SVC_F_PERSISTENT });
    expect(one("protocol TCP\npersistence_timeout 600\npersistence_granularity 255.255.255.0").services[0]).toMatchObject({ timeout: 600, netmask: 24 });
    // a granularity alone makes the service persistent (keepalived's pgr_handler)
    expect(one("protocol TCP\npersistence_granularity 255.255.0.0").services[0]).toMatchObject({ timeout: 360, netmask: 16, flags: IP_VS_SVC_F_PERSISTENT });
    expect(one("protocol TCP\npersistence_timeout 60\npersistence_granularity 64", "2001:db8::1 80").services[0]).toMatchObject({ family: "inet6", netmask: 64 });
    expect(one("protocol UDP\npersistence_timeout 60\npersistence_engine sip").services[0]).toMatchObject({ peName: "sip" });
    expect(one("protocol UDP\npersistence_engine sip").services[0]!.peName).toBeUndefined();
    // no port: forced persistent
    expect(one("protocol TCP", "192.0.2.1").services[0]).toMatchObject({ port: 0, timeout: 360 });
  });

  test("granularity parsing", () => {
    expect(granularityToPrefixLen("255.255.255.128", "inet")).toBe(25);
    expect(granularityToPrefixLen("24", "inet")).toBe(24);
    expect(granularityToPrefixLen("48", "inet6")).toBe(48);
    expect(granularityToPrefixLen("255.0.255.0", "inet")).toHaveProperty("error");
    expect(granularityToPrefixLen("129", "inet6")).toHaveProperty("error");
  });

  test("forwarding methods, per real server override, tunnel types and checksums", () => {
    const vs = one(`protocol TCP\nlvs_method DR
real_server 198.51.100.1 80 { }
real_server 198.51.100.2 80 { lvs_method NAT }
real_server 198.51.100.3 80 { lvs_method TUN }
real_server 198.51.100.4 80 { lvs_method TUN type gue port 6080 csum }
real_server 198.51.100.5 80 { lvs_method TUN type gre remcsum }
real_server 198.51.100.6 80 { lvs_method TUN type ipip csum }`);
    const [a, b, c, d, e, f] = vs.realServers;
    expect(a!.fwdMethod).toBe("DR");
    expect(b!.fwdMethod).toBe("NAT");
    expect(c).toMatchObject({ fwdMethod: "TUN" });
    expect(c!.tunnel).toBeUndefined();
    expect(d!.tunnel).toEqual({ type: "gue", port: 6080, csum: "csum" });
    expect(e!.tunnel).toEqual({ type: "gre", port: 0, csum: "nocsum" }); // gre has no remcsum
    expect(f!.tunnel).toEqual({ type: "ipip", port: 0, csum: "nocsum" }); // ipip has no csum
  });

  test("DR/TUN real server port follows the service; NAT keeps its own or takes the service's", () => {
    const d = fromText(`virtual_server 192.0.2.1 443 {\nprotocol TCP\nlvs_method DR\nreal_server 198.51.100.1 8443 { }\nreal_server 198.51.100.2 { lvs_method NAT }\n}\n`);
    const vs = d.virtualServers[0]!;
    expect(vs.realServers.map((r) => r.port)).toEqual([443, 443]);
    expect(d.warnings.some((w) => w.includes("ports don't match"))).toBe(true);
    expect(destinationFor(vs.services[0]!, vs.realServers[0]!, 5)).toEqual({ address: "198.51.100.1", port: 443, family: "inet", fwdMethod: "DR", weight: 5, uThreshold: 0, lThreshold: 0 });
  });

  test("weights, thresholds, inhibit_on_failure and alpha inherit from the virtual server", () => {
    const vs = one(`protocol TCP\ninhibit_on_failure\nalpha
real_server 198.51.100.1 80 {\nweight 7\nuthreshold 100\nlthreshold 10\nTCP_CHECK {\n}\nMISC_CHECK {\nmisc_path /bin/true\nalpha false\n}\n}
real_server 198.51.100.2 80 {\nweight 0\ninhibit_on_failure false\nalpha false\nTCP_CHECK {\n}\n}`);
    const [a, b] = vs.realServers;
    expect(a).toMatchObject({ weight: 7, uThreshold: 100, lThreshold: 10, inhibit: true, alpha: true });
    expect(a!.checkers).toEqual([{ index: 0, type: "TCP_CHECK", alpha: true }, { index: 1, type: "MISC_CHECK", alpha: false }]);
    expect(b).toMatchObject({ weight: 0, inhibit: false, alpha: false });
    expect(b!.checkers[0]!.alpha).toBe(false);
  });

  test("quorum, hysteresis, scripts, omega, ha_suspend, sorry server", () => {
    const vs = one(`protocol TCP\nquorum 3\nhysteresis 1\nquorum_up "/bin/up"\nquorum_down "/bin/down"\nomega\nha_suspend
sorry_server 198.51.100.250 8080\nsorry_server_inhibit
real_server 198.51.100.1 80 {\nweight 2\nnotify_up "/bin/rsup"\nnotify_down "/bin/rsdown"\n}
real_server 198.51.100.2 80 { weight 2 }`);
    expect(vs).toMatchObject({ quorum: 3, hysteresis: 1, omega: true, haSuspend: true, addresses: ["192.0.2.1"] });
    expect(vs.quorumUp?.cmd).toBe("/bin/up");
    expect(vs.quorumDown?.cmd).toBe("/bin/down");
    expect(vs.sorry).toMatchObject({ ip: "198.51.100.250", port: 8080, inhibit: true, fwdMethod: "NAT", weight: 1 });
    expect(vs.realServers[0]!.notifyUp?.cmd).toBe("/bin/rsup");
    expect(vs.realServers[0]!.notifyDown?.cmd).toBe("/bin/rsdown");
  });

  test("quorum above the total weight is reduced; hysteresis >= quorum becomes quorum-1", () => {
    const d = fromText(`virtual_server 192.0.2.1 80 {\nprotocol TCP\nquorum 10\nhysteresis 5\nreal_server 198.51.100.1 80 { weight 3 }\n}\n`);
    expect(d.virtualServers[0]).toMatchObject({ quorum: 3, hysteresis: 2 });
    expect(d.warnings.some((w) => w.includes("reducing quorum to 3"))).toBe(true);
  });

  test("sorry_server_lvs_method, and DR sorry server port follows the service", () => {
    const vs = one(`protocol TCP\nlvs_method NAT\nsorry_server 198.51.100.250 8080\nsorry_server_lvs_method DR`);
    expect(vs.sorry).toMatchObject({ fwdMethod: "DR", port: 80 });
  });

  test("fwmark: family from ip_family or the real servers, DR real server port forced 0", () => {
    const d = fromText(`virtual_server fwmark 5 {\nlvs_method DR\nreal_server 2001:db8::5 80 { }\n}\nvirtual_server fwmark 6 {\nip_family inet6\nlvs_method TUN\nreal_server 198.51.100.6 { }\n}\n`);
    const [a, b] = d.virtualServers;
    expect(a!.services).toEqual([{ family: "inet6", fwmark: 5, scheduler: "wlc", flags: 0, timeout: 0, netmask: 128 }]);
    expect(a!.realServers[0]!.port).toBe(0);
    expect(a!.label).toBe("FWM 5");
    expect(b!.services[0]).toMatchObject({ family: "inet6", fwmark: 6 });
    expect(b!.realServers[0]!.family).toBe("inet");
    expect(destinationFor(b!.services[0]!, b!.realServers[0]!, 1)).toMatchObject({ family: "inet", port: 0, fwdMethod: "TUN" });
  });

  test("duplicate real servers are dropped; duplicate services across virtual servers are not programmed twice", () => {
    const d = fromText(`virtual_server 192.0.2.1 80 {\nprotocol TCP\nreal_server 198.51.100.1 80 { }\nreal_server 198.51.100.1 80 { }\n}
virtual_server_group G {\n192.0.2.1 80\n192.0.2.2 80\n}\nvirtual_server group G {\nprotocol TCP\n}\n`);
    expect(d.virtualServers[0]!.realServers.length).toBe(1);
    expect(d.virtualServers[1]!.services.map(serviceKeyString)).toEqual(["TCP 192.0.2.2:80"]);
    expect(d.warnings.length).toBeGreaterThanOrEqual(2);
  });
});

describe("virtual_server_group expansion", () => {
  test("last-octet range, full range, prefix, single address, IPv6 range", () => {
    expect((expandGroupAddress("192.0.2.20-23") as { addresses: string[] }).addresses).toEqual(["192.0.2.20", "192.0.2.21", "192.0.2.22", "192.0.2.23"]);
    expect((expandGroupAddress("192.0.2.254-192.0.3.1") as { addresses: string[] }).addresses).toEqual(["192.0.2.254", "192.0.2.255", "192.0.3.0", "192.0.3.1"]);
    expect((expandGroupAddress("203.0.113.0/30") as { addresses: string[] }).addresses).toEqual(["203.0.113.0", "203.0.113.1", "203.0.113.2", "203.0.113.3"]);
    expect(expandGroupAddress("192.0.2.7")).toEqual({ addresses: ["192.0.2.7"], family: "inet" });
    expect(expandGroupAddress("2001:db8::a-c")).toEqual({ addresses: ["2001:db8::a", "2001:db8::b", "2001:db8::c"], family: "inet6" });
    expect(expandGroupAddress("2001:db8::/126")).toEqual({ addresses: ["2001:db8::", "2001:db8::1", "2001:db8::2", "2001:db8::3"], family: "inet6" });
  });

  test("bad entries: host bits under the mask, reversed range, too many", () => {
    expect(expandGroupAddress("203.0.113.1/30")).toHaveProperty("error");
    expect(expandGroupAddress("192.0.2.9-3")).toHaveProperty("error");
    expect(expandGroupAddress("2001:db8::/64")).toHaveProperty("error");
  });

  test("one service per member; fwmark entries with their family; RS port per member for DR", () => {
    const d = fromText(`virtual_server_group G {\n192.0.2.10 80\n192.0.2.20-21 8080\nfwmark 7\nfwmark 8 inet6\n}
virtual_server group G {\nprotocol TCP\nlvs_method DR\nlvs_sched rr\nreal_server 198.51.100.1 { }\n}\n`);
    const vs = d.virtualServers[0]!;
    expect(vs.services.map(serviceKeyString)).toEqual(["TCP 192.0.2.10:80", "TCP 192.0.2.20:8080", "TCP 192.0.2.21:8080", "FWM 7", "FWM 8 IPv6"]);
    expect(vs.services.every((s) => s.scheduler === "rr")).toBe(true);
    expect(vs.services.map((s) => destinationFor(s, vs.realServers[0]!, 1).port)).toEqual([80, 8080, 8080, 0, 0]);
    expect(vs.label).toBe("[G]:0");
    expect(vs.addresses).toEqual(["192.0.2.10", "192.0.2.20", "192.0.2.21"]);
  });
});

describe("global LVS keywords", () => {
  test("lvs_flush, lvs_flush_on_stop [VS], lvs_timeouts", () => {
    expect(fromText("global_defs {\nlvs_flush\nlvs_timeouts tcp 900 tcpfin 120 udp 300\n}\n").globals).toEqual({ flush: true, flushOnStop: "none", timeouts: { tcp: 900, tcpFin: 120, udp: 300 } });
    expect(fromText("global_defs {\nlvs_flush_on_stop\n}\n").globals.flushOnStop).toBe("full");
    expect(fromText("global_defs {\nlvs_flush_onstop VS\n}\n").globals.flushOnStop).toBe("vs");
    expect(fromText("global_defs {\nlvs_timeouts udp 30\n}\n").globals.timeouts).toEqual({ tcp: 0, tcpFin: 0, udp: 30 });
  });
});

describe("fixture configs with LVS", () => {
  const files = readdirSync(FIX).filter((f) => /^[23]\d-.*\.conf$/.test(f)).sort();
  const load = (f: string) => loadConfig(join(FIX, f), { hostname: "h", env: {} });

  for (const f of files) {
    test(`${f}: maps without throwing; every virtual server has services`, () => {
      const l = load(f);
      const d = desiredFromModel(l.model);
      expect(d.virtualServers.length).toBe(l.model.virtual_server.length);
      for (const vs of d.virtualServers) expect(vs.services.length).toBeGreaterThan(0);
    });
  }

  const summary = (f: string) => desiredFromModel(load(f).model).virtualServers.map((vs) => ({
    services: vs.services.map((s) => `${serviceKeyString(s)} ${s.scheduler} f=${s.flags} t=${s.timeout} m=${s.netmask}`),
    rs: vs.realServers.map((r) => `${r.key} ${r.fwdMethod}${r.tunnel ? `/${r.tunnel.type}:${r.tunnel.port}` : ""} w=${r.weight}${r.inhibit ? " inhibit" : ""}`),
  }));

  test("22: DR, wlc, three real servers", () => {
    expect(summary("22-lvs-dr-tcp-check.conf")).toEqual([{
      services: ["TCP 192.0.2.80:443 wlc f=0 t=0 m=32"],
      rs: ["192.0.2.81:443 DR w=10", "192.0.2.82:443 DR w=10", "192.0.2.83:443 DR w=5"],
    }]);
  });

  test("24: persistence 600 with a /24 granularity", () => {
    expect(summary("24-lvs-ssl-get-sni.conf")[0]!.services).toEqual(["TCP 203.0.113.43:443 lc f=1 t=600 m=24"]);
  });

  test("27: UDP with ops and a TCP service on the same address", () => {
    expect(summary("27-lvs-dns-check-udp.conf").map((s) => s.services[0])).toEqual(["UDP 192.0.2.53:53 rr f=4 t=0 m=32", "TCP 192.0.2.53:53 rr f=0 t=0 m=32"]);
  });

  test("28: sh with sh-port and sh-fallback", () => {
    expect(summary("28-lvs-udp-check.conf")[0]!.services).toEqual([`UDP 198.51.100.200:1812 sh f=${IP_VS_SVC_F_SCHED1 | IP_VS_SVC_F_SCHED2} t=0 m=32`]);
  });

  test("29: TUN with a gue override", () => {
    expect(summary("29-lvs-ping-check-tun.conf")[0]!.rs).toEqual(["198.51.100.150:80 TUN w=1", "198.51.100.151:80 TUN/gue:6080 w=1"]);
  });

  test("32: bare persistence, quorum 3 hysteresis 1, sorry inhibit, inhibit_on_failure, thresholds, alpha", () => {
    const vs = desiredFromModel(load("32-lvs-persistence-quorum-sorry.conf").model).virtualServers[0]!;
    expect(summary("32-lvs-persistence-quorum-sorry.conf")[0]).toEqual({
      services: ["TCP 203.0.113.100:80 wlc f=1 t=360 m=32"],
      rs: ["198.51.100.101:80 NAT w=2 inhibit", "198.51.100.102:80 NAT w=2 inhibit", "198.51.100.103:80 NAT w=1"],
    });
    expect(vs).toMatchObject({ quorum: 3, hysteresis: 1, omega: true, haSuspend: true });
    expect(vs.sorry).toMatchObject({ key: "198.51.100.250:8080", inhibit: true });
    expect(vs.realServers[2]).toMatchObject({ uThreshold: 2000, lThreshold: 1500, alpha: true });
    expect(vs.realServers.every((r) => r.checkers.every((c) => c.alpha))).toBe(true);
    expect(desiredFromModel(load("32-lvs-persistence-quorum-sorry.conf").model).globals).toEqual({ flush: true, flushOnStop: "none", timeouts: { tcp: 900, tcpFin: 120, udp: 300 } });
  });

  test("33: groups expand to one service per address and mark", () => {
    const s = summary("33-lvs-virtual-server-group.conf");
    expect(s[0]!.services.length).toBe(2 + 10 + 16);
    expect(s[0]!.services[0]).toBe("TCP 192.0.2.10:80 rr f=1 t=50 m=32");
    expect(s[0]!.services[27]).toBe("TCP 203.0.113.15:80 rr f=1 t=50 m=32");
    expect(s[1]!.services).toEqual(["TCP 198.51.100.10:443 lc f=0 t=0 m=32", "TCP 198.51.100.11:443 lc f=0 t=0 m=32", "TCP 198.51.100.12:443 lc f=0 t=0 m=32"]);
    expect(s[2]!.services).toEqual(["FWM 7 sed f=0 t=0 m=32", "FWM 8 sed f=0 t=0 m=32"]);
  });

  test("34: fwmark services, IPv4 granularity and an IPv6 mark", () => {
    const s = summary("34-lvs-fwmark.conf");
    expect(s[0]!.services).toEqual(["FWM 80 wlc f=1 t=900 m=24"]);
    expect(s[0]!.rs).toEqual(["192.0.2.121:0 DR w=1", "192.0.2.122:0 DR w=1"]);
    expect(s[1]!.services).toEqual(["FWM 86 IPv6 rr f=1 t=300 m=128"]);
  });

  test("35: lvs_sync_daemon tied to VI_EXT, flush on stop VS", () => {
    const l = load("35-lvs-sync-daemon.conf");
    expect(syncDaemonConfig(l.model).config).toEqual({ interface: "eth1", instance: "VI_EXT", syncId: 51, maxLen: 1472, port: 8848, ttl: 1, group: "224.0.0.81" });
    expect(desiredFromModel(l.model).globals.flushOnStop).toBe("vs");
  });
});
