/**
 * Routes, rules, VMAC macvlans, sysctls and no_accept nftables rules for real, inside a
 * test namespace (root only), each cross-checked with iproute2 / nft / ping.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { createLab, run, type Lab, type LabNode } from "./lab.ts";
import { withNetns } from "../../ffi/netns.ts";
import { RtNetlink } from "../../ffi/rtnetlink.ts";
import { NetlinkError } from "../../ffi/netlink.ts";
import {
  addRoute, addRule, applyRoutes, applyRules, deleteRoute, deleteRule, dumpRoutes, dumpRules,
} from "../../ffi/rtnetlink-route.ts";
import {
  IN6_ADDR_GEN_MODE_NONE, MACVLAN_MODE_PRIVATE, createMacvlan, deleteLink, getLink, setAddrGenMode, setLinkMac, setLinkUp,
} from "../../ffi/rtnetlink-link.ts";
import { SysctlJournal, ipv4ConfPath, ipv6ConfPath, readSysctl, writeSysctl } from "../../ffi/sysctl.ts";
import { Nft } from "../../ffi/nft.ts";
import { loadConfigText } from "../../src/config/load.ts";
import { routeContext, routeSpecs, ruleSpecs, type RouteSpec, type RuleSpec } from "../../src/vrrp/routes.ts";
import { rpFilterPlan, vmacAddress, vmacName, vmacSysctls, type ConfSysctl } from "../../src/vrrp/vmac.ts";
import { DEFAULT_NFT_OPTIONS, dropAddresses, nftSetupScript, nftSyncScript, nftTeardownScript } from "../../src/vrrp/accept-rules.ts";
import { VrrpState } from "../../src/vrrp/types.ts";

/** Route and rule specs from config text, as the daemon will build them. */
function specs(block: "static_routes" | "static_rules", lines: string[]) {
  const l = loadConfigText(`${block} {\n${lines.join("\n")}\n}\n`, "t.conf");
  const recs = (l.doc as Record<string, Record<string, unknown>[]>)[block]!;
  const ctx = routeContext({ tables: readFileSync("/etc/iproute2/rt_tables", "utf8") });
  return block === "static_routes" ? routeSpecs(recs, ctx) : ruleSpecs(recs, ctx);
}

interface IpRoute { dst: string; gateway?: string; dev?: string; table?: string; metric?: number; type?: string;
  protocol?: string; flags?: string[]; prefsrc?: string }
interface IpRule { priority: number; src?: string; srclen?: number; dst?: string; dstlen?: number; table?: string;
  fwmark?: string; iif?: string; action?: string; not?: unknown; protocol?: string }

describe.skipIf(process.getuid?.() !== 0)("routes, rules, VMAC, sysctls and no_accept in netns", () => {
  let lab: Lab;
  let A: LabNode;
  let B: LabNode;
  let rt: RtNetlink;

  const ipRoutes = (v6 = false): IpRoute[] =>
    JSON.parse(lab.exec("a", ["ip", "-j", ...(v6 ? ["-6"] : []), "route", "show", "table", "all"]).stdout);
  const ipRules = (v6 = false): IpRule[] => JSON.parse(lab.exec("a", ["ip", "-j", ...(v6 ? ["-6"] : []), "rule", "show"]).stdout);
  const inNs = <T>(fn: () => T): T => withNetns(A.ns, fn);

  beforeAll(() => {
    lab = createLab({ purpose: "rtvmac", nodes: ["a", "b"], v4: "192.0.2.0/24", v6: true });
    A = lab.node("a");
    B = lab.node("b");
    rt = inNs(() => new RtNetlink());
  });
  afterAll(() => {
    rt?.close();
    lab?.destroy();
  });

  test("routes: v4/v6, tables, metric, blackhole/unreachable, via+onlink, src — added, dumped, matched by ip, deleted", () => {
    const { specs: routes, errors } = specs("static_routes", [
      "198.51.100.0/24 via 192.0.2.2 dev eth0 metric 50",
      "203.0.113.0/24 dev eth0 table 100 src 192.0.2.1",
      "blackhole 198.51.100.128/25 table 100",
      "default via 203.0.113.1 dev eth0 onlink table 101",
      "2001:db8:5::/48 via 2001:db8::2 dev eth0 metric 300",
      "unreachable 2001:db8:6::/48 table 1000",
    ]);
    expect(errors).toEqual([]);
    for (const r of routes as RouteSpec[]) addRoute(rt, r);

    const v4 = ipRoutes();
    const v6 = ipRoutes(true);
    expect(v4.find((r) => r.dst === "198.51.100.0/24")).toMatchObject({ gateway: "192.0.2.2", dev: "eth0", metric: 50, protocol: "keepalived" });
    expect(v4.find((r) => r.dst === "203.0.113.0/24")).toMatchObject({ dev: "eth0", table: "100", prefsrc: "192.0.2.1", protocol: "keepalived" });
    expect(v4.find((r) => r.dst === "198.51.100.128/25")).toMatchObject({ type: "blackhole", table: "100" });
    const def = v4.find((r) => r.dst === "default" && r.table === "101");
    expect(def).toMatchObject({ gateway: "203.0.113.1", dev: "eth0" });
    expect(def!.flags).toContain("onlink");
    expect(v6.find((r) => r.dst === "2001:db8:5::/48")).toMatchObject({ gateway: "2001:db8::2", dev: "eth0", metric: 300, protocol: "keepalived" });
    expect(v6.find((r) => r.dst === "2001:db8:6::/48")).toMatchObject({ type: "unreachable", table: "1000" });

    // Our own dump agrees.
    const dumped = dumpRoutes(rt);
    expect(dumped.find((r) => r.dst === "198.51.100.0" && r.dstLen === 24)).toMatchObject({ gateway: "192.0.2.2", oif: A.ifindex, metric: 50, protocol: 18, table: 254 });
    expect(dumped.find((r) => r.dst === "2001:db8:6::")).toMatchObject({ family: "inet6", type: 7, table: 1000 });
    expect(dumpRoutes(rt, "inet", 101).map((r) => [r.dst, r.gateway, r.flags & 4])).toEqual([[undefined, "203.0.113.1", 4]]);

    // An identical route is refused with EEXIST (with or without NLM_F_EXCL).
    expect(() => addRoute(rt, routes[0] as RouteSpec, { exclusive: true })).toThrow(NetlinkError);
    for (const r of routes as RouteSpec[]) expect(deleteRoute(rt, r)).toBe(true);
    expect(deleteRoute(rt, routes[0] as RouteSpec, true)).toBe(false);
    const mine = (r: IpRoute) => r.protocol === "keepalived";
    expect(ipRoutes().filter(mine)).toEqual([]);
    expect(ipRoutes(true).filter(mine)).toEqual([]);
    expect(ipRoutes().some((r) => r.type === "blackhole")).toBe(false);
  });

  test("batches: one bad route does not stop the rest; re-adding is 'present', re-deleting 'absent'", () => {
    const { specs: routes } = specs("static_routes", [
      "198.51.100.0/24 via 192.0.2.2 dev eth0",
      "203.0.113.0/24 via 198.51.100.77 dev eth0", // unreachable gateway: refused
      "2001:db8:7::/48 via 2001:db8::2 dev eth0",
    ]);
    const { specs: rules } = specs("static_rules", ["from 192.0.2.0/24 table 100 priority 200"]);
    const added = applyRoutes(rt, routes as RouteSpec[], "add");
    expect(added.map((r) => r.outcome)).toEqual(["done", "failed", "done"]);
    expect((added[1]!.error as NetlinkError).extAck).toBeString();
    expect(applyRoutes(rt, routes as RouteSpec[], "add").map((r) => r.outcome)).toEqual(["present", "failed", "present"]);
    expect(applyRules(rt, rules as RuleSpec[], "add").map((r) => r.outcome)).toEqual(["done"]);
    expect(applyRules(rt, rules as RuleSpec[], "add").map((r) => r.outcome)).toEqual(["present"]);
    expect(ipRoutes().some((r) => r.dst === "198.51.100.0/24")).toBe(true);
    expect(applyRules(rt, rules as RuleSpec[], "delete").map((r) => r.outcome)).toEqual(["done"]);
    expect(applyRules(rt, rules as RuleSpec[], "delete").map((r) => r.outcome)).toEqual(["absent"]);
    expect(applyRoutes(rt, routes as RouteSpec[], "delete").map((r) => r.outcome)).toEqual(["done", "absent", "done"]);
    expect(applyRoutes(rt, routes as RouteSpec[], "delete").map((r) => r.outcome)).toEqual(["absent", "absent", "absent"]);
    expect(ipRoutes().filter((r) => r.protocol === "keepalived")).toEqual([]);
  });

  test("a refused route carries the kernel's extended-ack text", () => {
    const { specs: [r] } = specs("static_routes", ["198.51.100.0/24 via 203.0.113.9 dev eth0"]);
    let err: unknown;
    try { addRoute(rt, r as RouteSpec); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(NetlinkError);
    expect((err as NetlinkError).extAck).toBeString();
    expect((err as NetlinkError).message).toContain((err as NetlinkError).extAck!);
    const { specs: [nodev] } = specs("static_routes", ["198.51.100.0/24 dev nosuch0"]);
    expect(() => addRoute(rt, nodev as RouteSpec)).toThrow(/nosuch0/);
  });

  test("rules: from/to/fwmark+mask/table/priority/not/iif/unreachable — added, matched by ip rule, deleted", () => {
    const { specs: rules, errors } = specs("static_rules", [
      "from 192.0.2.0/24 table 100 priority 100",
      "to 198.51.100.0/24 fwmark 0x10/0xff table 101 priority 101",
      "not from 2001:db8::/32 lookup 1000 pref 102",
      "iif eth0 unreachable priority 103",
    ]);
    expect(errors).toEqual([]);
    for (const r of rules as RuleSpec[]) addRule(rt, r);
    const v4 = ipRules();
    expect(v4.find((r) => r.priority === 100)).toMatchObject({ src: "192.0.2.0", srclen: 24, table: "100", protocol: "keepalived" });
    expect(v4.find((r) => r.priority === 101)).toMatchObject({ dst: "198.51.100.0", dstlen: 24, fwmark: "0x10", fwmask: "0xff", table: "101" });
    expect(v4.find((r) => r.priority === 103)).toMatchObject({ iif: "eth0", action: "unreachable" });
    const r6 = ipRules(true).find((r) => r.priority === 102);
    expect(r6).toMatchObject({ src: "2001:db8::", srclen: 32, table: "1000" });
    expect(r6).toHaveProperty("not");

    const dumped = dumpRules(rt, "inet");
    expect(dumped.find((r) => r.priority === 101)).toMatchObject({ fwmark: 16, fwmask: 255, table: 101, dst: "198.51.100.0", protocol: 18 });
    expect(dumpRules(rt, "inet6").find((r) => r.priority === 102)!.flags & 2).toBe(2);

    let dup: unknown;
    try { addRule(rt, rules[0] as RuleSpec); } catch (e) { dup = e; }
    expect((dup as NetlinkError).errno).toBe(17); // EEXIST
    for (const r of rules as RuleSpec[]) expect(deleteRule(rt, r)).toBe(true);
    expect(deleteRule(rt, rules[0] as RuleSpec, true)).toBe(false);
    expect(ipRules().filter((r) => r.priority >= 100 && r.priority <= 103)).toEqual([]);
    expect(ipRules(true).filter((r) => r.priority === 102)).toEqual([]);
  });

  test("VMAC: private macvlan with 00:00:5e:00:01:33 on the veth, no IPv6 auto link-local, MAC change, delete", () => {
    const names = new Set(dumpNames());
    const name = vmacName(51, "inet", (n) => names.has(n));
    expect(name).toBe("vrrp.51");
    const mac = vmacAddress("inet", 51);
    const ifindex = createMacvlan(rt, { name, parentIfindex: A.ifindex, mac });
    setAddrGenMode(rt, ifindex, IN6_ADDR_GEN_MODE_NONE);
    setLinkUp(rt, ifindex, true);

    const j = JSON.parse(lab.exec("a", ["ip", "-j", "-d", "link", "show", "dev", name]).stdout)[0];
    expect(j.address).toBe("00:00:5e:00:01:33");
    expect(j.link).toBe("eth0");
    expect(j.flags).toContain("UP");
    expect(j.linkinfo.info_kind).toBe("macvlan");
    expect(j.linkinfo.info_data.mode).toBe("private");
    expect(j.inet6_addr_gen_mode).toBe("none");
    const details = getLink(rt, name)!;
    expect(details).toMatchObject({ ifindex, kind: "macvlan", macvlanMode: MACVLAN_MODE_PRIVATE, addrGenMode: IN6_ADDR_GEN_MODE_NONE, link: A.ifindex });
    const addrs = JSON.parse(lab.exec("a", ["ip", "-j", "-6", "addr", "show", "dev", name]).stdout);
    expect((addrs[0]?.addr_info ?? []).length).toBe(0); // no fe80:: from the VRRP MAC

    // A second VMAC with the same name is refused, and the name helper moves on.
    expect(() => createMacvlan(rt, { name, parentIfindex: A.ifindex, mac })).toThrow(NetlinkError);
    expect(vmacName(51, "inet", (n) => new Set(dumpNames()).has(n))).toBe("vrrp1.51");

    setLinkMac(rt, ifindex, "00:00:5e:00:01:34");
    expect(getLink(rt, name)!.mac).toBe("00:00:5e:00:01:34");
    setLinkUp(rt, ifindex, false);
    expect(getLink(rt, name)!.flags & 1).toBe(0);

    deleteLink(rt, ifindex);
    expect(getLink(rt, name)).toBeNull();
    expect(() => deleteLink(rt, ifindex, true)).not.toThrow();
    expect(() => deleteLink(rt, ifindex)).toThrow(NetlinkError);
  });

  test("VMAC sysctls and the rp_filter plan are set in the namespace and restored", () => {
    const rootAllRp = readSysctl(ipv4ConfPath("all", "rp_filter")); // root namespace: must not change
    const ifindex = createMacvlan(rt, { name: "vrrp.52", parentIfindex: A.ifindex, mac: vmacAddress("inet", 52) });
    try {
      const sh = (path: string) => lab.exec("a", ["cat", path]).stdout.trim();
      lab.exec("a", ["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=2", "net.ipv4.conf.eth0.rp_filter=1", "net.ipv4.conf.eth0.arp_ignore=0"]);
      const before = new Map<string, string>();
      const plan = vmacSysctls("vrrp.52", "eth0", "inet");
      const pathOf = (s: ConfSysctl) => (s.proto === "ipv4" ? ipv4ConfPath : ipv6ConfPath)(s.ifname!, s.key);
      for (const s of plan) before.set(pathOf(s), sh(pathOf(s)));
      const journal = new SysctlJournal();
      inNs(() => {
        const read = (i: string) => Number(readSysctl(ipv4ConfPath(i, "rp_filter")));
        const ifs = new Map(["lo", "eth0", "vrrp.52"].map((i) => [i, read(i)] as const));
        for (const s of rpFilterPlan(read("all"), read("default"), ifs)) journal.set(ipv4ConfPath(s.ifname!, s.key), s.value, "rp_filter");
        for (const s of plan) journal.set(pathOf(s), s.value, "vrrp.52");
      });
      // Seen from inside the namespace by another process.
      expect(sh(ipv4ConfPath("vrrp.52", "arp_ignore"))).toBe("1");
      expect(sh(ipv4ConfPath("vrrp.52", "accept_local"))).toBe("1");
      expect(sh(ipv4ConfPath("vrrp.52", "rp_filter"))).toBe("0");
      expect(sh(ipv4ConfPath("vrrp.52", "promote_secondaries"))).toBe("1");
      expect(sh(ipv4ConfPath("eth0", "arp_ignore"))).toBe("1");
      expect(sh(ipv4ConfPath("eth0", "arp_filter"))).toBe("1");
      expect(sh(ipv6ConfPath("vrrp.52", "disable_ipv6"))).toBe("1");
      expect(sh(ipv4ConfPath("all", "rp_filter"))).toBe("0");
      expect(sh(ipv4ConfPath("default", "rp_filter"))).toBe("2");
      expect(sh(ipv4ConfPath("eth0", "rp_filter"))).toBe("2"); // raised so eth0 keeps filtering
      expect(readSysctl(ipv4ConfPath("all", "rp_filter"))).toBe(rootAllRp); // root untouched

      const errors = inNs(() => [...journal.release("vrrp.52"), ...journal.restoreAll()]);
      expect(errors).toEqual([]);
      for (const [path, value] of before) expect(`${path}=${sh(path)}`).toBe(`${path}=${value}`);
      expect(sh(ipv4ConfPath("all", "rp_filter"))).toBe("2");
      expect(sh(ipv4ConfPath("eth0", "rp_filter"))).toBe("1");
      expect(sh(ipv4ConfPath("eth0", "arp_ignore"))).toBe("0");
    } finally {
      deleteLink(rt, ifindex, true);
    }
    expect(readSysctl(ipv4ConfPath("all", "rp_filter"))).toBe(rootAllRp);
  });

  test("writeSysctl reports the path of a failed write", () => {
    expect(() => inNs(() => writeSysctl(ipv4ConfPath("nosuch0", "arp_ignore"), 1))).toThrow(/nosuch0/);
  });

  const hasNft = Bun.which("nft") !== null || Bun.which("nft", { PATH: "/usr/sbin:/sbin" }) !== null;
  test.skipIf(!hasNft)("no_accept: pings to the VIP are dropped while the nft set holds it, and pass after", async () => {
    const nft = new Nft({ prefix: ["ip", "netns", "exec", A.ns] });
    const ping = (addr: string, v6 = false) =>
      lab.exec("b", ["ping", ...(v6 ? ["-6"] : []), "-c", "1", "-W", "1", addr], true).code === 0;
    lab.exec("a", ["ip", "addr", "add", "192.0.2.100/24", "dev", "eth0"]);
    lab.exec("a", ["ip", "addr", "add", "2001:db8::100/64", "dev", "eth0", "nodad"]);
    try {
      expect(ping("192.0.2.100")).toBe(true);
      expect(ping("2001:db8::100", true)).toBe(true);
      expect(await nft.apply(nftSetupScript({ ...DEFAULT_NFT_OPTIONS, counters: true }), "setup")).toEqual({ ok: true });
      expect(ping("192.0.2.100")).toBe(true); // an empty set drops nothing

      const master = { state: VrrpState.MASTER, priority: 100, accept: false,
        addresses: [{ address: "192.0.2.100", family: "inet" as const }, { address: "2001:db8::100", family: "inet6" as const }] };
      const d = dropAddresses([master]);
      expect(await nft.apply(nftSyncScript(DEFAULT_NFT_OPTIONS, d.vips4, d.vips6), "sync")).toEqual({ ok: true });
      const listed = lab.exec("a", ["nft", "-j", "list", "set", "inet", "vipd", "vips4"]).stdout;
      expect(listed).toContain("192.0.2.100");
      expect(ping("192.0.2.100")).toBe(false);
      expect(ping("2001:db8::100", true)).toBe(false);
      expect(ping(A.v4!)).toBe(true); // the node's own address is not affected
      // the drop counter saw the pings
      expect(lab.exec("a", ["nft", "list", "chain", "inet", "vipd", "in"]).stdout).toMatch(/ip daddr @vips4 counter packets [1-9]/);

      const backup = dropAddresses([{ ...master, state: VrrpState.BACKUP }]);
      expect(await nft.apply(nftSyncScript(DEFAULT_NFT_OPTIONS, backup.vips4, backup.vips6), "sync")).toEqual({ ok: true });
      expect(ping("192.0.2.100")).toBe(true);
      expect(ping("2001:db8::100", true)).toBe(true);

      expect(await nft.apply(nftTeardownScript(), "teardown")).toEqual({ ok: true });
      expect(lab.exec("a", ["nft", "list", "tables"]).stdout).not.toContain("vipd");
      expect(await nft.apply(nftTeardownScript(), "teardown again")).toEqual({ ok: true }); // idempotent
      const bad = await nft.apply("add element inet vipd vips4 { 192.0.2.1 }", "no table");
      expect(bad.ok).toBe(false);
      expect((bad as { error: string }).error).toContain("nft exited");
    } finally {
      lab.exec("a", ["nft", "delete", "table", "inet", "vipd"], true);
    }
    // the root namespace never had the table
    expect(run(["nft", "list", "tables"], true).stdout).not.toContain("inet vipd");
  });

  function dumpNames(): string[] {
    return JSON.parse(lab.exec("a", ["ip", "-j", "link", "show"]).stdout).map((l: { ifname: string }) => l.ifname);
  }
});
