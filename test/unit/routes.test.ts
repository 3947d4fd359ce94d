/** Route/rule config lines → specs → rtnetlink bytes, without sockets or root. */
import { describe, expect, test } from "bun:test";
import { loadConfigText } from "../../src/config/load.ts";
import {
  FR_ACT_GOTO, FR_ACT_NOP, FR_ACT_TO_TBL, FR_ACT_UNREACHABLE, RTN_BLACKHOLE, RTN_THROW, RTN_UNICAST, RTN_UNREACHABLE,
  RTPROT_KEEPALIVED, RTPROT_STATIC, RT_SCOPE_LINK, RT_TABLE_MAIN, RULE_START_PRIORITY, describeRoute, describeRule,
  parseRtNames, routeContext, routeKey, routeSpec, routeSpecs, ruleSpec, ruleSpecs, type RouteSpec, type RuleSpec,
} from "../../src/vrrp/routes.ts";
import {
  RTNH_F_ONLINK, decodeRoute, decodeRule, routeMessage, ruleMessage,
} from "../../ffi/rtnetlink-route.ts";
import { RTM_DELROUTE, RTM_DELRULE, RTM_NEWROUTE, RTM_NEWRULE } from "../../ffi/rtnetlink.ts";
import { parseIPv6 } from "../../ffi/libc.ts";
import { parseMessages } from "../../ffi/netlink.ts";

const u16 = (v: number) => [v & 0xff, v >> 8];
const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
const nlhdr = (len: number, type: number, flags: number, seq: number, pid: number) =>
  [...u16(len & 0xffff), ...u16(len >>> 16), ...u16(type), ...u16(flags), ...u32(seq), ...u32(pid)];
const nla = (type: number, data: number[]) => {
  const out = [...u16(4 + data.length), ...u16(type), ...data];
  while (out.length % 4) out.push(0);
  return out;
};
const strz = (s: string) => [...new TextEncoder().encode(s), 0];
const ip6 = (s: string) => [...parseIPv6(s)];
/** A whole message: header with the right length around a body. */
const msg = (type: number, flags: number, body: number[]) => [...nlhdr(16 + body.length, type, flags, 7, 0), ...body];

/** Records exactly as the keepalived.conf front-end produces them. */
function records(block: "static_routes" | "static_rules", lines: string[]): Record<string, unknown>[] {
  const l = loadConfigText(`${block} {\n${lines.join("\n")}\n}\n`, "t.conf");
  const errors = l.diagnostics.items.filter((d) => d.severity === "error");
  expect(errors).toEqual([]);
  return (l.doc as Record<string, Record<string, unknown>[]>)[block]!;
}

function route(line: string, ctx = routeContext({ tables: "100 web\n0x3e8 big\n" })): RouteSpec {
  const m = routeSpec(records("static_routes", [line])[0]!, ctx);
  if (!m.ok) throw new Error(m.error);
  return m.value;
}

function rule(line: string, ctx = routeContext({ tables: "100 web\n" })): RuleSpec {
  const m = ruleSpec(records("static_rules", [line])[0]!, ctx);
  if (!m.ok) throw new Error(m.error);
  return m.value;
}

describe("rt_tables and friends", () => {
  test("names from the file extend the built-ins; comments, hex and blank lines handled", () => {
    const t = parseRtNames("# comment\n255\tlocal\n\n100 web # trailing\n0x3e8\tbig\nbogus line\n");
    expect(t.get("web")).toBe(100);
    expect(t.get("big")).toBe(1000);
    expect(t.has("bogus")).toBe(false);
    const ctx = routeContext({ tables: "100 web\n" });
    expect(ctx.tables.get("main")).toBe(254);
    expect(ctx.tables.get("web")).toBe(100);
  });
});

describe("route line → RouteSpec", () => {
  test("via, dev, table by name and number, metric; keepalived defaults", () => {
    const r = route("192.0.2.0/24 via 198.51.100.1 dev eth0 table web metric 50");
    expect(r).toEqual({
      family: "inet", type: RTN_UNICAST, dst: "192.0.2.0", dstLen: 24, table: 100, protocol: RTPROT_KEEPALIVED, tos: 0,
      gateway: "198.51.100.1", dev: "eth0", metric: 50, onlink: false, noTrack: false,
    });
    expect(route("192.0.2.0/24 dev eth0 table 1000").table).toBe(1000);
    expect(route("192.0.2.0/24 dev eth0 table big").table).toBe(1000);
    expect(route("192.0.2.0/24 dev eth0").table).toBe(RT_TABLE_MAIN);
    expect(route("192.0.2.0/24 dev eth0").scope).toBeUndefined();
  });

  test("families: from the addresses, IPv4 when ambiguous, inet6 forces IPv6", () => {
    expect(route("2001:db8:1::/48 via 2001:db8::1").family).toBe("inet6");
    expect(route("default dev eth0").family).toBe("inet");
    const d6 = route("default dev eth0 inet6");
    expect(d6.family).toBe("inet6");
    expect(d6.dst).toBeUndefined();
    expect(d6.dstLen).toBe(0);
    expect(route("2001:DB8:0:0::1").dst).toBe("2001:db8::1"); // canonical text
    expect(route("2001:db8::1").dstLen).toBe(128);
    expect(route("192.0.2.1").dstLen).toBe(32);
  });

  test("types, src, onlink, scope and protocol names, metrics", () => {
    expect(route("blackhole 2001:db8:1::/48 table 1000")).toMatchObject({ type: RTN_BLACKHOLE, family: "inet6", table: 1000 });
    expect(route("unreachable 192.0.2.0/25").type).toBe(RTN_UNREACHABLE);
    expect(route("throw 192.0.2.128/25 table web").type).toBe(RTN_THROW);
    expect(route("default via 192.0.2.1 dev eth0 onlink")).toMatchObject({ gateway: "192.0.2.1", onlink: true, dstLen: 0 });
    expect(route("198.51.100.0/24 dev eth0 src 192.0.2.10").prefsrc).toBe("192.0.2.10");
    const r = route("198.51.100.0/24 dev eth0 mtu 1400 advmss 1360 scope link proto static no_track");
    expect(r).toMatchObject({ scope: RT_SCOPE_LINK, protocol: RTPROT_STATIC, mtu: 1400, advmss: 1360, noTrack: true });
  });

  test("a tracked route keeps protocol keepalived and warns", () => {
    const m = routeSpec(records("static_routes", ["192.0.2.0/24 dev eth0 proto static"])[0]!, routeContext());
    expect(m.ok && m.value.protocol).toBe(RTPROT_KEEPALIVED);
    expect(m.ok && m.warnings.join()).toContain("no_track");
  });

  test("errors: unknown table, mixed families, gateway on blackhole, onlink without via", () => {
    const ctx = routeContext();
    const bad = (line: string) => {
      const m = routeSpec(records("static_routes", [line])[0]!, ctx);
      return m.ok ? "ok" : m.error;
    };
    expect(bad("192.0.2.0/24 dev eth0 table nosuch")).toContain("routing table 'nosuch' not found");
    expect(bad("192.0.2.0/24 via 2001:db8::1")).toContain("cannot mix IPv4 and IPv6");
    expect(bad("blackhole 192.0.2.0/24 via 198.51.100.1")).toContain("cannot have a gateway");
    expect(bad("192.0.2.0/24 dev eth0 onlink")).toContain("onlink needs a gateway");
    expect(bad("192.0.2.0/24 dev eth0 scope galaxy")).toContain("unknown route scope");
    const all = routeSpecs(records("static_routes", ["192.0.2.0/24 dev eth0", "192.0.2.0/24 dev eth0 table nosuch"]), ctx);
    expect(all.specs.length).toBe(1);
    expect(all.errors).toEqual([{ index: 1, error: "routing table 'nosuch' not found" }]);
  });

  test("keys and descriptions", () => {
    const a = route("192.0.2.0/24 via 198.51.100.1 dev eth0 table web metric 50");
    expect(describeRoute(a)).toBe("192.0.2.0/24 via 198.51.100.1 dev eth0 table 100 metric 50");
    expect(routeKey(a)).not.toBe(routeKey({ ...a, metric: 51 }));
    expect(describeRoute(route("blackhole default inet6"))).toBe("blackhole default");
  });
});

describe("rule line → RuleSpec", () => {
  test("from/table/priority, protocol keepalived", () => {
    expect(rule("from 192.0.2.0/24 table web priority 100")).toEqual({
      family: "inet", action: FR_ACT_TO_TBL, table: 100, priority: 100, src: "192.0.2.0", srcLen: 24, dstLen: 0, tos: 0,
      invert: false, l3mdev: false, noTrack: false, protocol: RTPROT_KEEPALIVED,
    });
  });

  test("to, fwmark/mask, not, lookup, pref; IPv6 by address", () => {
    expect(rule("not to 2001:db8::/32 fwmark 0x10/0xff lookup 1000 pref 200")).toMatchObject({
      family: "inet6", dst: "2001:db8::", dstLen: 32, fwmark: 16, fwmask: 255, invert: true, table: 1000, priority: 200,
    });
    const plain = rule("fwmark 7 table 100 priority 5");
    expect(plain.fwmark).toBe(7);
    expect("fwmask" in plain).toBe(false);
  });

  test("actions without table; goto needs a preference below its target", () => {
    expect(rule("iif eth0 oif eth1 unreachable priority 300")).toMatchObject({ action: FR_ACT_UNREACHABLE, table: 0, iif: "eth0", oif: "eth1" });
    const nop = rule("from all nop priority 1");
    expect(nop).toMatchObject({ action: FR_ACT_NOP, srcLen: 0 });
    expect("src" in nop).toBe(false);
    expect(rule("from 192.0.2.0/24 goto 500 priority 10")).toMatchObject({ action: FR_ACT_GOTO, goto: 500 });
    const ctx = routeContext();
    const err = (line: string) => { const m = ruleSpec(records("static_rules", [line])[0]!, ctx); return m.ok ? "ok" : m.error; };
    expect(err("from 192.0.2.0/24 goto 5 priority 10")).toContain("below the goto target");
    expect(err("from 192.0.2.0/24 goto 5")).toContain("needs a preference");
    expect(err("from 192.0.2.0/24 priority 4")).toContain("no action");
    expect(err("from 192.0.2.0/24 blackhole table 100 priority 4")).toContain("cannot also have a table");
  });

  test("rules without a preference are numbered down from 16384 per family, with a warning", () => {
    const ctx = routeContext();
    const r = ruleSpecs(records("static_rules", ["from 192.0.2.1 table 100", "from 192.0.2.2 table 100", "from 2001:db8::1 table 100"]), ctx);
    expect(r.specs.map((s) => s.priority)).toEqual([RULE_START_PRIORITY, RULE_START_PRIORITY - 1, RULE_START_PRIORITY]);
    expect(r.warnings.length).toBe(3);
    expect(describeRule(r.specs[1]!)).toBe("16383: from 192.0.2.2/32 lookup 100");
  });

  test("ports, uid range, ip_proto, no_track keeps a configured protocol", () => {
    expect(rule("from 192.0.2.0/24 ipproto tcp dport 80-90 sport 1000 uidrange 100-200 table 100 priority 9 protocol static no_track"))
      .toMatchObject({ ipProto: 6, dport: [80, 90], sport: [1000, 1000], uidRange: [100, 200], protocol: RTPROT_STATIC, noTrack: true });
  });
});

describe("RTM_NEWROUTE / RTM_DELROUTE bytes", () => {
  test("IPv4 via + dev + table < 256 + metric", () => {
    const spec = route("192.0.2.0/24 via 198.51.100.1 dev eth0 table web metric 50");
    const bytes = [...routeMessage(RTM_NEWROUTE, spec, 3).finish(7, 0)];
    expect(bytes).toEqual(msg(24, 0x400 /* CREATE: prepend */, [
      2, 24, 0, 0, 100, 18, 0, 1, ...u32(0), // rtmsg: inet, /24, table 100, proto keepalived, universe, unicast
      ...nla(1, [192, 0, 2, 0]), // RTA_DST
      ...nla(5, [198, 51, 100, 1]), // RTA_GATEWAY
      ...nla(4, u32(3)), // RTA_OIF
      ...nla(6, u32(50)), // RTA_PRIORITY
    ]));
  });

  test("IPv6 blackhole in table 1000 (RTA_TABLE, header table unspec)", () => {
    const spec = route("blackhole 2001:db8:1::/48 table 1000");
    expect([...routeMessage(RTM_NEWROUTE, spec, 0).finish(7, 0)]).toEqual(msg(24, 0x400, [
      10, 48, 0, 0, 0, 18, 0, 6, ...u32(0),
      ...nla(15, u32(1000)), // RTA_TABLE
      ...nla(1, ip6("2001:db8:1::")),
    ]));
  });

  test("delete of default via onlink: scope nowhere, no type, RTNH_F_ONLINK", () => {
    const spec = route("default via 192.0.2.1 dev eth0 onlink");
    expect([...routeMessage(RTM_DELROUTE, spec, 2).finish(7, 0)]).toEqual(msg(25, 0, [
      2, 0, 0, 0, 254, 18, 255, 0, ...u32(RTNH_F_ONLINK),
      ...nla(5, [192, 0, 2, 1]),
      ...nla(4, u32(2)),
    ]));
  });

  test("src, scope, metrics nest (plain RTA_METRICS with RTAX_MTU and RTAX_ADVMSS)", () => {
    const spec = route("198.51.100.0/24 dev eth0 src 192.0.2.10 mtu 1400 advmss 1360 scope link proto static no_track");
    expect([...routeMessage(RTM_NEWROUTE, spec, 2).finish(7, 0)]).toEqual(msg(24, 0x400, [
      2, 24, 0, 0, 254, 4, 253, 1, ...u32(0),
      ...nla(1, [198, 51, 100, 0]),
      ...nla(7, [192, 0, 2, 10]), // RTA_PREFSRC
      ...nla(4, u32(2)),
      ...nla(8, [...nla(2, u32(1400)), ...nla(8, u32(1360))]), // RTA_METRICS { RTAX_MTU, RTAX_ADVMSS }
    ]));
  });

  test("decodeRoute reads back what routeMessage wrote", () => {
    const spec = route("198.51.100.0/24 via 192.0.2.1 dev eth0 table big metric 9 mtu 1300");
    const [m] = parseMessages(routeMessage(RTM_NEWROUTE, spec, 5).finish(1, 0));
    expect(decodeRoute(m!)).toEqual({
      family: "inet", type: 1, dst: "198.51.100.0", dstLen: 24, srcLen: 0, tos: 0, table: 1000, protocol: 18, scope: 0,
      flags: 0, gateway: "192.0.2.1", oif: 5, metric: 9, mtu: 1300,
    });
  });
});

describe("RTM_NEWRULE / RTM_DELRULE bytes", () => {
  test("IPv4 from + table + priority (CREATE|EXCL)", () => {
    const spec = rule("from 192.0.2.0/24 table 100 priority 100");
    expect([...ruleMessage(RTM_NEWRULE, spec).finish(7, 0)]).toEqual(msg(32, 0x600, [
      2, 0, 24, 0, 100, 0, 0, 1, ...u32(0), // fib_rule_hdr: inet, src /24, table 100, FR_ACT_TO_TBL
      ...nla(2, [192, 0, 2, 0]), // FRA_SRC
      ...nla(6, u32(100)), // FRA_PRIORITY
      ...nla(21, [18]), // FRA_PROTOCOL keepalived
    ]));
  });

  test("IPv6 not to + fwmark/mask + table ≥ 256", () => {
    const spec = rule("not to 2001:db8::/32 fwmark 0x10/0xff lookup 1000 pref 200");
    expect([...ruleMessage(RTM_NEWRULE, spec).finish(7, 0)]).toEqual(msg(32, 0x600, [
      10, 32, 0, 0, 0, 0, 0, 1, ...u32(2), // FIB_RULE_INVERT
      ...nla(15, u32(1000)), // FRA_TABLE
      ...nla(1, ip6("2001:db8::")), // FRA_DST
      ...nla(6, u32(200)),
      ...nla(10, u32(16)), // FRA_FWMARK
      ...nla(16, u32(255)), // FRA_FWMASK
      ...nla(21, [18]),
    ]));
  });

  test("delete of an iif/oif unreachable rule", () => {
    const spec = rule("iif eth0 oif eth1 unreachable priority 300 no_track");
    expect([...ruleMessage(RTM_DELRULE, spec).finish(7, 0)]).toEqual(msg(33, 0, [
      2, 0, 0, 0, 0, 0, 0, 7, ...u32(0),
      ...nla(6, u32(300)),
      ...nla(3, strz("eth0")), // FRA_IIFNAME
      ...nla(17, strz("eth1")), // FRA_OIFNAME
    ]));
  });

  test("decodeRule reads back what ruleMessage wrote", () => {
    const spec = rule("from 192.0.2.0/24 fwmark 0x10/0xff table 1000 priority 77");
    const [m] = parseMessages(ruleMessage(RTM_NEWRULE, spec).finish(1, 0));
    expect(decodeRule(m!)).toEqual({
      family: "inet", action: FR_ACT_TO_TBL, table: 1000, priority: 77, src: "192.0.2.0", srcLen: 24, dstLen: 0, tos: 0,
      flags: 0, fwmark: 16, fwmask: 255, protocol: 18,
    });
  });
});
