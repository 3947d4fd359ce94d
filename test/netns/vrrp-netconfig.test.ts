/**
 * The compiled vipd with what comes beyond the VIPs (issue 4, items 4 and 5): virtual
 * routes and rules only on the master, static addresses/routes/rules from start to stop,
 * no_accept drop rules in nftables while a non-owner is MASTER, and VMACs (macvlan with the
 * VRRP MAC, adverts and GARPs from it on the wire, sysctls restored, deleted at stop).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { adverts, killAll, TestEnv, type Vipd, waitFor } from "./daemon.ts";
import { createLab, type LabOptions } from "./lab.ts";

const ROOT = process.getuid?.() === 0;
const VIP = "192.0.2.100";
const START_MS = 8000;

afterAll(() => killAll());

function env(purpose: string, o: Partial<LabOptions> = {}): TestEnv {
  return new TestEnv(createLab({ purpose, nodes: ["a", "b"], v4: "192.0.2.0/24", ...o }));
}

function instance(prio: number, extra: string[] = [], vrid = 51): string {
  return [
    "vrrp_instance VI_1 {",
    "    interface eth0",
    "    state BACKUP",
    "    version 3",
    `    virtual_router_id ${vrid}`,
    `    priority ${prio}`,
    "    advert_int 0.1",
    "    virtual_ipaddress {",
    `        ${VIP}/24`,
    "    }",
    ...extra.map((l) => `    ${l}`),
    "}",
    "",
  ].join("\n");
}

/** Waits for "(VI_1) Entering STATE" logged after line `after`. */
async function entered(v: Vipd, state: string, after = 0): Promise<void> {
  await v.waitLine(new RegExp(`\\(VI_1\\) Entering ${state} STATE`), START_MS, after);
}

interface IpRoute { dst: string; table?: string; gateway?: string; dev?: string; prefsrc?: string; protocol?: string; type?: string }
interface IpRule { priority: number; src?: string; dst?: string; table?: string }

function ipJson<T>(e: TestEnv, node: string, args: string[]): T[] {
  return JSON.parse(e.lab.exec(node, ["ip", "-j", ...args]).stdout || "[]") as T[];
}
const routes = (e: TestEnv, node: string): IpRoute[] =>
  [...ipJson<IpRoute>(e, node, ["route", "show", "table", "all"]), ...ipJson<IpRoute>(e, node, ["-6", "route", "show", "table", "all"])];
const rules = (e: TestEnv, node: string): IpRule[] =>
  [...ipJson<IpRule>(e, node, ["rule", "show"]), ...ipJson<IpRule>(e, node, ["-6", "rule", "show"])];

const sysctl = (e: TestEnv, node: string, key: string): string => e.lab.exec(node, ["sysctl", "-n", key]).stdout.trim();

describe.skipIf(!ROOT)("vipd: routes, rules, static entries, no_accept, VMAC (netns)", () => {
  test("virtual_routes/virtual_rules exist only on the master, across failover; static_* from start to stop", async () => {
    const e = env("vroutes", { v6: true });
    try {
      const vr = [
        "virtual_routes {",
        "    203.0.113.0/24 via 192.0.2.254 dev eth0 table 100",
        `    198.51.100.0/25 dev eth0 src ${VIP}`,
        "    2001:db8:7::/48 via 2001:db8::fe dev eth0",
        "}",
        "virtual_rules {",
        `    from ${VIP} table 100 priority 200`,
        "    to 2001:db8:7::/48 table 100 priority 201",
        "}",
      ];
      const statics = [
        "static_ipaddress {",
        "    203.0.113.50/32 dev eth0",
        "}",
        "static_routes {",
        "    198.51.100.128/25 via 192.0.2.254 dev eth0 table 200",
        "}",
        "static_rules {",
        "    from 203.0.113.50 table 200 priority 300",
        "}",
        "",
      ].join("\n");
      const hasVirtual = (node: string) => {
        const r = routes(e, node);
        const u = rules(e, node);
        return {
          t100: r.some((x) => x.dst === "203.0.113.0/24" && x.table === "100" && x.gateway === "192.0.2.254" && x.protocol === "keepalived"),
          main: r.some((x) => x.dst === "198.51.100.0/25" && !x.table && x.prefsrc === VIP),
          v6: r.some((x) => x.dst === "2001:db8:7::/48" && x.gateway === "2001:db8::fe"),
          rule4: u.some((x) => x.priority === 200 && x.src === VIP && x.table === "100"),
          rule6: u.some((x) => x.priority === 201 && x.dst === "2001:db8:7::" && x.table === "100"),
        };
      };
      const all = { t100: true, main: true, v6: true, rule4: true, rule6: true };
      const none = { t100: false, main: false, v6: false, rule4: false, rule6: false };
      const hasStatic = () => ({
        addr: e.lab.exec("a", ["ip", "-j", "addr", "show", "dev", "eth0"]).stdout.includes("203.0.113.50"),
        route: routes(e, "a").some((x) => x.dst === "198.51.100.128/25" && x.table === "200"),
        rule: rules(e, "a").some((x) => x.priority === 300 && x.src === "203.0.113.50" && x.table === "200"),
      });

      // a alone (priority 100) becomes MASTER
      const a = e.vipd("a", statics + instance(100, vr));
      await entered(a, "MASTER");
      expect(hasVirtual("a")).toEqual(all);
      expect(hasStatic()).toEqual({ addr: true, route: true, rule: true });
      expect(hasVirtual("b")).toEqual(none);

      // b (priority 200) preempts: the routes and rules move to b; a keeps its static ones
      const aLines = a.lines.length;
      const b = e.vipd("b", instance(200, vr));
      await entered(b, "MASTER");
      await entered(a, "BACKUP", aLines);
      await waitFor(() => JSON.stringify(hasVirtual("a")) === JSON.stringify(none), 2000, "a's virtual routes gone");
      expect(hasVirtual("b")).toEqual(all);
      expect(hasStatic()).toEqual({ addr: true, route: true, rule: true });

      // b stops: back to a
      const aLines2 = a.lines.length;
      expect(await b.stop()).toBe(0);
      expect(hasVirtual("b")).toEqual(none);
      await entered(a, "MASTER", aLines2);
      await waitFor(() => JSON.stringify(hasVirtual("a")) === JSON.stringify(all), 2000, "a's virtual routes back");

      // a stops: nothing of ours left
      expect(await a.stop()).toBe(0);
      expect(hasVirtual("a")).toEqual(none);
      expect(hasStatic()).toEqual({ addr: false, route: false, rule: false });
      expect(a.problemLines().filter((l) => /ERROR|cannot/.test(l))).toEqual([]);
    } finally {
      await e.close();
    }
  }, 40_000);

  test("no_accept: a non-owner MASTER drops traffic to its VIP (nft drop set); an accept MASTER answers; table gone at stop", async () => {
    const e = new TestEnv(createLab({ purpose: "noacc", nodes: ["a", "b", "c"], v4: "192.0.2.0/24" }));
    try {
      const ping = (dst: string) => e.lab.exec("c", ["ping", "-n", "-q", "-c", "1", "-W", "1", dst], true).code === 0;
      const a = e.vipd("a", instance(200, ["no_accept"]));
      await entered(a, "MASTER");
      const b = e.vipd("b", instance(100));
      await entered(b, "BACKUP");
      // the drop set holds the VIP while a is MASTER; a's own address still answers
      const set = await waitFor(() => {
        const r = e.lab.exec("a", ["nft", "list", "set", "inet", "vipd", "vips4"], true);
        return r.stdout.includes(VIP) ? r.stdout : undefined;
      }, 3000, "the VIP in a's drop set");
      expect(set).toContain(VIP);
      expect(ping("192.0.2.1")).toBe(true);
      expect(ping(VIP)).toBe(false);
      expect(ping(VIP)).toBe(false);
      // ARP still resolves the VIP to a (the router keeps forwarding for it)
      const neigh = e.lab.exec("c", ["ip", "-j", "neigh", "show", VIP]).stdout;
      expect(neigh).toContain(e.lab.node("a").mac);

      // a stops: its table is removed; b (accept, the default) answers on the VIP
      const bLines = b.lines.length;
      expect(await a.stop()).toBe(0);
      expect(e.lab.exec("a", ["nft", "list", "tables"]).stdout).not.toContain("vipd");
      await entered(b, "MASTER", bLines);
      await waitFor(() => ping(VIP), 5000, "ping to the VIP on b");
      expect(e.lab.exec("b", ["nft", "list", "tables"]).stdout).not.toContain("vipd");
    } finally {
      await e.close();
    }
  }, 40_000);

  for (const xmitBase of [false, true]) {
    test(`use_vmac${xmitBase ? " + vmac_xmit_base" : ""}: macvlan 00:00:5e:00:01:33, ${xmitBase ? "adverts from the base MAC" : "adverts"} and GARPs from the VMAC on the wire, sysctls restored, VMAC deleted`, async () => {
      const e = env(xmitBase ? "vmacxb" : "vmac");
      try {
        const VMAC = "00:00:5e:00:01:33";
        // all.rp_filter 1 on a: vipd must lower it for the VMAC and put it back
        e.lab.exec("a", ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1"]);
        const before = ["net.ipv4.conf.all.rp_filter", "net.ipv4.conf.eth0.arp_ignore", "net.ipv4.conf.eth0.arp_filter", "net.ipv4.conf.eth0.rp_filter"]
          .map((k) => [k, sysctl(e, "a", k)] as const);
        const cap = await e.capture("b");
        const extra = xmitBase ? ["use_vmac", "vmac_xmit_base"] : ["use_vmac"];
        const a = e.vipd("a", instance(200, extra));
        await entered(a, "MASTER");
        const b = e.vipd("b", instance(100, extra));
        await entered(b, "BACKUP");

        const link = JSON.parse(e.lab.exec("a", ["ip", "-d", "-j", "link", "show", "dev", "vrrp.51"]).stdout)[0];
        expect(link.address).toBe(VMAC);
        expect(link.link).toBe("eth0");
        expect(link.linkinfo.info_kind).toBe("macvlan");
        expect(link.linkinfo.info_data.mode).toBe("private");
        expect(link.operstate).not.toBe("DOWN");
        expect(e.lab.exec("a", ["ip", "-j", "addr", "show", "dev", "vrrp.51"]).stdout).toContain(VIP);
        expect(e.lab.exec("a", ["ip", "-j", "addr", "show", "dev", "eth0"]).stdout).not.toContain(VIP);
        expect(sysctl(e, "a", "net.ipv4.conf.all.rp_filter")).toBe("0");
        expect(sysctl(e, "a", "net.ipv4.conf.vrrp/51.rp_filter")).toBe("0");
        expect(sysctl(e, "a", "net.ipv4.conf.vrrp/51.arp_ignore")).toBe("1");
        expect(sysctl(e, "a", "net.ipv4.conf.eth0.arp_ignore")).toBe("1");
        expect(sysctl(e, "a", "net.ipv4.conf.eth0.arp_filter")).toBe("1");
        expect(sysctl(e, "a", "net.ipv4.conf.eth0.rp_filter")).toBe("1"); // raised to all's old value, keeps filtering

        // b hears a through its own VMAC and stays BACKUP for a while
        await Bun.sleep(1000);
        expect(b.lines.some((l) => /Entering MASTER STATE/.test(l.line))).toBe(false);

        const frames = cap.frames();
        const fromA = adverts(frames, 51).filter((f) => f.src === e.lab.node("a").v4 && f.advert.priority === 200);
        expect(fromA.length).toBeGreaterThan(5);
        const wantAdvertMac = xmitBase ? e.lab.node("a").mac : VMAC;
        expect([...new Set(fromA.map((f) => f.srcMac))]).toEqual([wantAdvertMac]);
        const garps = frames.filter((f) => f.kind === "arp" && f.arp.senderIp === VIP);
        expect(garps.length).toBeGreaterThanOrEqual(5);
        for (const g of garps) {
          expect(g.srcMac).toBe(VMAC);
          if (g.kind === "arp") expect([...g.arp.senderMac].map((x) => x.toString(16).padStart(2, "0")).join(":")).toBe(VMAC);
        }

        expect(await a.stop()).toBe(0);
        expect(e.lab.exec("a", ["ip", "link", "show", "dev", "vrrp.51"], true).code).not.toBe(0);
        for (const [k, v] of before) expect(`${k}=${sysctl(e, "a", k)}`).toBe(`${k}=${v}`);
        await entered(b, "MASTER");
        expect(await b.stop()).toBe(0);
        expect(e.lab.exec("b", ["ip", "link", "show", "dev", "vrrp.51"], true).code).not.toBe(0);
        expect([...a.problemLines(), ...b.problemLines()].filter((l) => /ERROR|cannot/.test(l))).toEqual([]);
      } finally {
        await e.close();
      }
    }, 40_000);
  }

  test("IPv6 use_vmac: 00:00:5e:00:02:33, no EUI-64 link-local, the parent's link-local on the VMAC; adverts and NAs from the VMAC MAC", async () => {
    const e = env("vmac6", { v6: true });
    try {
      const VMAC = "00:00:5e:00:02:33";
      const VIP6 = "2001:db8::100";
      const conf = (prio: number) => instance(prio, ["use_vmac"]).replace(`${VIP}/24`, `${VIP6}/64`);
      const cap = await e.capture("b");
      const a = e.vipd("a", conf(200));
      await entered(a, "MASTER");
      const b = e.vipd("b", conf(100));
      await entered(b, "BACKUP");
      const link = JSON.parse(e.lab.exec("a", ["ip", "-d", "-j", "link", "show", "dev", "vrrp.51"]).stdout)[0];
      expect(link.address).toBe(VMAC);
      expect(link.linkinfo.info_data.mode).toBe("private");
      const addrs = (JSON.parse(e.lab.exec("a", ["ip", "-j", "-6", "addr", "show", "dev", "vrrp.51"]).stdout)[0]?.addr_info ?? []) as Array<{ local: string }>;
      const lla = e.lab.node("a").linkLocal;
      expect(addrs.map((x) => x.local).sort()).toEqual([VIP6, lla].sort()); // no fe80::200:5eff:fe00:233
      await Bun.sleep(1000);
      expect(b.lines.some((l) => /Entering MASTER STATE/.test(l.line))).toBe(false);
      const frames = cap.frames();
      const fromA = adverts(frames, 51).filter((f) => f.src === lla && f.advert.priority === 200);
      expect(fromA.length).toBeGreaterThan(5);
      expect([...new Set(fromA.map((f) => f.srcMac))]).toEqual([VMAC]);
      const nas = frames.filter((f) => f.kind === "na");
      expect(nas.length).toBeGreaterThanOrEqual(5);
      expect([...new Set(nas.map((f) => f.srcMac))]).toEqual([VMAC]);
      expect(await a.stop()).toBe(0);
      expect(e.lab.exec("a", ["ip", "link", "show", "dev", "vrrp.51"], true).code).not.toBe(0);
      await entered(b, "MASTER");
      expect([...a.problemLines(), ...b.problemLines()].filter((l) => /ERROR|cannot/.test(l))).toEqual([]);
    } finally {
      await e.close();
    }
  }, 40_000);

  test("mixed group: vipd MASTER on a VMAC with keepalived BACKUP on its own VMAC; keepalived takes over (VMAC, routes) when vipd stops", async () => {
    const e = env("vmacka");
    try {
      const extra = ["use_vmac", "virtual_routes {", "    203.0.113.0/24 via 192.0.2.254 dev eth0 table 100", "}"];
      const a = e.vipd("a", instance(200, extra));
      await entered(a, "MASTER");
      const k = e.keepalived("b", instance(100, extra));
      await k.waitLine(/\(VI_1\) Entering BACKUP STATE/, START_MS);
      await Bun.sleep(1500);
      expect(k.lastState()).toBe("BACKUP");
      const t100 = (node: string) => routes(e, node).some((x) => x.dst === "203.0.113.0/24" && x.table === "100");
      expect(t100("a")).toBe(true);
      expect(t100("b")).toBe(false);
      expect(await a.stop()).toBe(0);
      await k.waitLine(/\(VI_1\) Entering MASTER STATE/, START_MS);
      await waitFor(() => t100("b"), 3000, "keepalived's virtual route");
      expect(t100("a")).toBe(false);
      expect(e.lab.exec("a", ["ip", "link", "show", "dev", "vrrp.51"], true).code).not.toBe(0);
    } finally {
      await e.close();
    }
  }, 40_000);
});
