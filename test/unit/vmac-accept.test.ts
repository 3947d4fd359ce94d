/** VMAC naming/MAC/sysctl plans, the sysctl journal on a fake /proc, no_accept nft scripts, and macvlan bytes. */
import { describe, expect, test } from "bun:test";
import { rpFilterPlan, vmacAddress, vmacLinkLocal, vmacName, vmacSysctls } from "../../src/vrrp/vmac.ts";
import { DEFAULT_NFT_OPTIONS, dropAddresses, nftSetupScript, nftSyncScript, nftTeardownScript } from "../../src/vrrp/accept-rules.ts";
import { VrrpState } from "../../src/vrrp/types.ts";
import { SysctlJournal, ipv4ConfPath, sysctlPath, type SysctlIo } from "../../ffi/sysctl.ts";
import { Nft, NFT_MISSING_MESSAGE } from "../../ffi/nft.ts";
import {
  IN6_ADDR_GEN_MODE_NONE, MACVLAN_MODE_PRIVATE, addrGenModeMessage, decodeLinkDetails, linkUpMessage, macvlanMessage,
} from "../../ffi/rtnetlink-link.ts";
import { parseMessages } from "../../ffi/netlink.ts";

const u16 = (v: number) => [v & 0xff, v >> 8];
const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
const nla = (type: number, data: number[]) => {
  const out = [...u16(4 + data.length), ...u16(type), ...data];
  while (out.length % 4) out.push(0);
  return out;
};

describe("VMAC names and addresses", () => {
  test("MAC per family and VRID; 5-octet configured MAC gets the VRID", () => {
    expect(vmacAddress("inet", 51)).toBe("00:00:5e:00:01:33");
    expect(vmacAddress("inet6", 255)).toBe("00:00:5e:00:02:ff");
    expect(vmacAddress("inet", 7, "02:11:22:33:44")).toBe("02:11:22:33:44:07");
    expect(vmacAddress("inet", 7, "02:11:22:33:44:55")).toBe("02:11:22:33:44:55");
    expect(() => vmacAddress("inet", 7, "zz:11")).toThrow("invalid VMAC");
  });

  test("names follow keepalived's order and fit 15 characters", () => {
    const none = () => false;
    expect(vmacName(51, "inet", none)).toBe("vrrp.51");
    const taken = new Set(["vrrp.51", "vrrp6.51", "vrrp1.51"]);
    expect(vmacName(51, "inet6", (n) => taken.has(n))).toBe("vrrp2.51");
    expect(vmacName(51, "inet6", (n) => n === "vrrp.51")).toBe("vrrp6.51");
    expect(vmacName(51, "inet", (n) => n === "vrrp.51")).toBe("vrrp1.51");
    // IPv6 skips 6 when counting up: vrrp, vrrp6, vrrp1..5, vrrp7
    const many = new Set(["vrrp.1", "vrrp6.1", "vrrp1.1", "vrrp2.1", "vrrp3.1", "vrrp4.1", "vrrp5.1"]);
    expect(vmacName(1, "inet6", (n) => many.has(n))).toBe("vrrp7.1");
    const long = vmacName(255, "inet", none, "averyveryverylongprefix");
    expect(long.length).toBe(15);
    expect(long.endsWith(".255")).toBe(true);
  });

  test("sysctl plan: IPv4 VMAC and parent, IPv6 only arp_ignore", () => {
    const v4 = vmacSysctls("vrrp.51", "eth0", "inet").map((s) => `${s.ifname}.${s.key}=${s.value}`);
    expect(v4).toEqual([
      "vrrp.51.arp_ignore=1", "vrrp.51.accept_local=1", "vrrp.51.rp_filter=0", "vrrp.51.promote_secondaries=1",
      "eth0.arp_ignore=1", "eth0.arp_filter=1", "vrrp.51.disable_ipv6=1",
    ]);
    expect(vmacSysctls("vrrp.51", "eth0", "inet")[6]!.proto).toBe("ipv6");
    expect(vmacSysctls("vrrp.51", "eth0", "inet", { ipv6OnIpv4Vmac: true }).length).toBe(6);
    expect(vmacSysctls("vrrp.51", "eth0", "inet6").map((s) => `${s.ifname}.${s.key}=${s.value}`)).toEqual(["vrrp.51.arp_ignore=1"]);
  });

  test("rp_filter plan raises lower interfaces, then default, before clearing all", () => {
    expect(rpFilterPlan(0, 0, new Map([["eth0", 1]]))).toEqual([]);
    const plan = rpFilterPlan(2, 0, new Map([["eth0", 1], ["eth1", 2], ["lo", 0], ["all", 2], ["default", 0]]));
    expect(plan.map((s) => `${s.ifname}=${s.value}`)).toEqual(["eth0=2", "lo=2", "default=2", "all=0"]);
  });

  test("IPv6 VMAC source: configured, else parent's link-local, else EUI-64 of the parent MAC", () => {
    expect(vmacLinkLocal({ configured: "fe80::1", parentLinkLocal: "fe80::2" })).toBe("fe80::1");
    expect(vmacLinkLocal({ parentLinkLocal: "fe80::2", parentMac: "02:00:00:00:00:01" })).toBe("fe80::2");
    expect(vmacLinkLocal({ parentMac: "52:54:00:12:34:56" })).toBe("fe80::5054:ff:fe12:3456");
    expect(() => vmacLinkLocal({})).toThrow("needs a source");
  });
});

describe("SysctlJournal", () => {
  function fakeProc(init: Record<string, string>): SysctlIo & { m: Map<string, string>; writes: string[] } {
    const m = new Map(Object.entries(init));
    const writes: string[] = [];
    return {
      m, writes,
      read: (p) => m.get(p) ?? null,
      write: (p, v) => { writes.push(`${p}=${v}`); m.set(p, v); },
    };
  }
  const P = ipv4ConfPath("eth0", "arp_ignore");
  const Q = ipv4ConfPath("vrrp.51", "rp_filter");

  test("paths keep dotted interface names intact and refuse traversal", () => {
    expect(Q).toBe("/proc/sys/net/ipv4/conf/vrrp.51/rp_filter");
    expect(() => sysctlPath("net", "..", "x")).toThrow();
    expect(() => sysctlPath("net", "a/b")).toThrow();
  });

  test("restores the original when the last owner releases, not before", () => {
    const io = fakeProc({ [P]: "0", [Q]: "1" });
    const j = new SysctlJournal(io);
    expect(j.set(P, 1, "vrrp.51")).toBe("0");
    expect(j.set(P, 1, "vrrp.52")).toBe("1");
    expect(j.set(Q, 0, "vrrp.51")).toBe("1");
    expect(io.writes).toEqual([`${P}=1`, `${Q}=0`]); // the second owner found it set already
    expect(j.original(P)).toBe("0");
    j.release("vrrp.51");
    expect(io.m.get(P)).toBe("1"); // still held by vrrp.52
    expect(io.m.get(Q)).toBe("1"); // restored
    j.release("vrrp.52");
    expect(io.m.get(P)).toBe("0");
    expect(j.entries()).toEqual([]);
  });

  test("a value changed by someone else after us is left alone; a vanished sysctl is no error", () => {
    const io = fakeProc({ [P]: "0", [Q]: "1" });
    const j = new SysctlJournal(io);
    j.set(P, 1);
    j.set(Q, 0);
    io.m.set(P, "2"); // the operator changed it
    io.m.delete(Q); // the VMAC is gone
    expect(j.restoreAll()).toEqual([]);
    expect(io.m.get(P)).toBe("2");
    expect(io.m.has(Q)).toBe(false);
  });

  test("restoreAll undoes the newest change first (interface values before default and all)", () => {
    const D = ipv4ConfPath("default", "rp_filter"), A = ipv4ConfPath("all", "rp_filter");
    const io = fakeProc({ [Q]: "0", [D]: "0", [A]: "2" });
    const j = new SysctlJournal(io);
    j.set(Q, 2); j.set(D, 2); j.set(A, 0);
    io.writes.length = 0;
    j.restoreAll();
    expect(io.writes).toEqual([`${A}=2`, `${D}=0`, `${Q}=0`]);
  });

  test("setting a missing sysctl returns null and records nothing", () => {
    const j = new SysctlJournal(fakeProc({}));
    expect(j.set(P, 1)).toBeNull();
    expect(j.entries()).toEqual([]);
  });
});

describe("no_accept nftables", () => {
  test("setup script: recreates the inet table with both sets and both chains at the priority", () => {
    const s = nftSetupScript({ table: "keepalived", priority: -5, counters: true });
    expect(s.startsWith("table inet keepalived\ndelete table inet keepalived\ntable inet keepalived {")).toBe(true);
    expect(s).toContain("type filter hook input priority -5; policy accept;");
    expect(s).toContain("type filter hook output priority -5; policy accept;");
    expect(s).toContain("ip daddr @vips4 counter drop");
    expect(s).toContain("ip6 saddr @vips6 counter drop");
    // ND to the VIPs must pass, and before the drop
    expect(s.indexOf("ip6 daddr @vips6 icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept"))
      .toBeLessThan(s.indexOf("ip6 daddr @vips6 counter drop"));
    expect(nftSetupScript()).not.toContain("counter");
  });

  test("sync script replaces the sets atomically; names and addresses are checked", () => {
    expect(nftSyncScript(DEFAULT_NFT_OPTIONS, ["192.0.2.10", "192.0.2.11"], [])).toBe(
      "flush set inet vipd vips4\nflush set inet vipd vips6\nadd element inet vipd vips4 { 192.0.2.10, 192.0.2.11 }\n");
    expect(nftSyncScript(DEFAULT_NFT_OPTIONS, [], ["2001:db8::1"])).toContain("add element inet vipd vips6 { 2001:db8::1 }");
    expect(() => nftSyncScript({ ...DEFAULT_NFT_OPTIONS, table: "x; flush ruleset" }, [], [])).toThrow("invalid nftables table");
    expect(() => nftSyncScript(DEFAULT_NFT_OPTIONS, ["1.2.3.4 }; flush ruleset"], [])).toThrow("invalid IPv4 VIP");
    expect(nftTeardownScript()).toBe("table inet vipd\ndelete table inet vipd\n");
  });

  test("only MASTER, non-owner, no_accept instances contribute VIPs", () => {
    const vips = (a: string, f: "inet" | "inet6" = "inet") => [{ address: a, family: f }];
    const d = dropAddresses([
      { state: VrrpState.MASTER, priority: 100, accept: false, addresses: [...vips("192.0.2.20"), ...vips("192.0.2.10")] },
      { state: VrrpState.MASTER, priority: 100, accept: false, addresses: vips("2001:db8::5", "inet6") },
      { state: VrrpState.MASTER, priority: 100, accept: true, addresses: vips("192.0.2.30") },
      { state: VrrpState.MASTER, priority: 255, accept: false, addresses: vips("192.0.2.40") },
      { state: VrrpState.BACKUP, priority: 100, accept: false, addresses: vips("192.0.2.50") },
      { state: VrrpState.MASTER, priority: 90, accept: false, addresses: vips("192.0.2.10") },
    ]);
    expect(d).toEqual({ vips4: ["192.0.2.10", "192.0.2.20"], vips6: ["2001:db8::5"] });
  });

  test("a missing nft binary is reported once and every apply says so", async () => {
    const warnings: string[] = [];
    const nft = new Nft({ path: "/nonexistent/vipd-test/nft", warn: (m) => warnings.push(m) });
    const a = await nft.apply("list ruleset", "test");
    const b = await nft.apply("list ruleset", "test");
    expect(a).toEqual({ ok: false, missing: true, error: NFT_MISSING_MESSAGE });
    expect(b.ok).toBe(false);
    expect(warnings).toEqual([NFT_MISSING_MESSAGE]);
  });

  test("applies run in call order, one at a time, and failures carry nft's stderr", async () => {
    // A stand-in nft: appends its stdin to a log after a delay, fails on 'bad'.
    const dir = `/tmp/vipd-nft-test-${process.pid}`;
    await Bun.$`mkdir -p ${dir}`.quiet();
    const log = `${dir}/log`;
    const fake = `${dir}/nft`;
    await Bun.write(fake, `#!/bin/sh\nin=$(cat)\ncase "$in" in *slow*) sleep 0.2;; esac\ncase "$in" in *bad*) echo "Error: syntax error, unexpected bad" >&2; exit 1;; esac\necho "$in" >> ${log}\n`);
    await Bun.$`chmod +x ${fake}`.quiet();
    try {
      const nft = new Nft({ path: fake });
      const results = await Promise.all([nft.apply("first slow", "a"), nft.apply("second", "b"), nft.apply("bad", "c")]);
      expect(results[0]).toEqual({ ok: true });
      expect(results[1]).toEqual({ ok: true });
      expect(results[2]).toMatchObject({ ok: false, missing: false });
      expect((results[2] as { error: string }).error).toContain("syntax error, unexpected bad");
      expect(await Bun.file(log).text()).toBe("first slow\nsecond\n");
    } finally {
      await Bun.$`rm -rf ${dir}`.quiet();
    }
  });
});

describe("macvlan and link messages", () => {
  test("macvlan create: LINKINFO{KIND macvlan, DATA{MODE private}}, LINK, IFNAME, ADDRESS with CREATE|EXCL", () => {
    const bytes = [...macvlanMessage({ name: "vrrp.51", parentIfindex: 2, mac: "00:00:5e:00:01:33" }).finish(9, 0)];
    const body = [
      0, 0, ...u16(0), ...u32(0), ...u32(0), ...u32(0), // ifinfomsg
      ...nla(18, [...nla(1, [...new TextEncoder().encode("macvlan")]), ...nla(2, nla(1, u32(MACVLAN_MODE_PRIVATE)))]),
      ...nla(5, u32(2)), // IFLA_LINK
      ...nla(3, [...new TextEncoder().encode("vrrp.51"), 0]), // IFLA_IFNAME
      ...nla(1, [0, 0, 0x5e, 0, 1, 0x33]), // IFLA_ADDRESS
    ];
    expect(bytes).toEqual([...u32(16 + body.length), ...u16(16), ...u16(0x600), ...u32(9), ...u32(0), ...body]);
    // and it decodes back
    const [m] = parseMessages(new Uint8Array(bytes));
    expect(decodeLinkDetails(m!)).toMatchObject({ name: "vrrp.51", mac: "00:00:5e:00:01:33", kind: "macvlan", macvlanMode: 1, link: 2 });
  });

  test("link up touches only IFF_UP; addr_gen_mode nests AF_SPEC/AF_INET6", () => {
    expect([...linkUpMessage(7, true).finish(1, 0)].slice(16)).toEqual([0, 0, 0, 0, ...u32(7), ...u32(1), ...u32(1)]);
    expect([...linkUpMessage(7, false).finish(1, 0)].slice(16)).toEqual([0, 0, 0, 0, ...u32(7), ...u32(0), ...u32(1)]);
    expect([...addrGenModeMessage(7, IN6_ADDR_GEN_MODE_NONE).finish(1, 0)].slice(16)).toEqual([
      0, 0, 0, 0, ...u32(7), ...u32(0), ...u32(0),
      ...nla(26, nla(10, nla(8, [1]))),
    ]);
  });
});
