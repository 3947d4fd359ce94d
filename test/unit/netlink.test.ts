/** Netlink encoding and decoding, byte for byte, without sockets or root. */
import { describe, expect, test } from "bun:test";
import {
  NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_CREATE, NLM_F_EXCL, NLM_F_MULTI,
  NLM_F_REQUEST, NLA_F_NESTED, NetlinkError, NlAttrs, NlMsgBuilder, parseMessages, parseNlDone, parseNlError,
} from "../../ffi/netlink.ts";
import {
  IFA_F_NODAD, IFA_F_NOPREFIXROUTE, RTM_DELADDR, RTM_NEWADDR, RTM_NEWLINK, RT_SCOPE_LINK, addressMessage,
  decodeAddress, decodeLink, decodeRtEvent,
} from "../../ffi/rtnetlink.ts";
import { formatIPv6, parseIPv4, parseIPv6, SysError } from "../../ffi/libc.ts";

const ADD = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;

/** Little-endian helpers for writing expected bytes by hand. */
const u16 = (v: number) => [v & 0xff, v >> 8];
const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
const nlhdr = (len: number, type: number, flags: number, seq: number, pid: number) =>
  [...u32(len), ...u16(type), ...u16(flags), ...u32(seq), ...u32(pid)];
/** One attribute, padded to 4 bytes. */
const nla = (type: number, data: number[]) => {
  const out = [...u16(4 + data.length), ...u16(type), ...data];
  while (out.length % 4) out.push(0);
  return out;
};
const strz = (s: string) => [...new TextEncoder().encode(s), 0];
const ip6 = (s: string) => [...parseIPv6(s)];

describe("RTM_NEWADDR / RTM_DELADDR encoding", () => {
  test("IPv4 with broadcast, label and link scope", () => {
    const msg = addressMessage(RTM_NEWADDR, {
      ifindex: 2, family: "inet", address: "192.0.2.100", prefixlen: 24,
      broadcast: "192.0.2.255", label: "eth0:vip", scope: RT_SCOPE_LINK,
    }, ADD).finish(1, 0);
    const expected = [
      ...nlhdr(64, 20, 0x605, 1, 0),
      2, 24, 0, 253, ...u32(2), // ifaddrmsg
      ...nla(2, [192, 0, 2, 100]), // IFA_LOCAL
      ...nla(1, [192, 0, 2, 100]), // IFA_ADDRESS
      ...nla(4, [192, 0, 2, 255]), // IFA_BROADCAST
      ...nla(3, strz("eth0:vip")), // IFA_LABEL
    ];
    expect([...msg]).toEqual(expected);
  });

  test("IPv6 with nodad and preferred_lft 0", () => {
    const msg = addressMessage(RTM_NEWADDR, {
      ifindex: 3, family: "inet6", address: "2001:db8::100", prefixlen: 64, noDad: true, preferredLft: 0,
    }, ADD).finish(0x01020304, 0x4000);
    const expected = [
      ...nlhdr(84, 20, 0x605, 0x01020304, 0x4000),
      10, 64, IFA_F_NODAD, 0, ...u32(3),
      ...nla(2, ip6("2001:db8::100")),
      ...nla(1, ip6("2001:db8::100")),
      ...nla(6, [...u32(0), ...u32(0xffffffff), ...u32(0), ...u32(0)]), // IFA_CACHEINFO: valid forever
    ];
    expect([...msg]).toEqual(expected);
  });

  test("flags above 0xff travel in IFA_FLAGS; the ifa_flags byte keeps the low bits", () => {
    const msg = addressMessage(RTM_NEWADDR, {
      ifindex: 3, family: "inet6", address: "2001:db8::1", prefixlen: 64, noDad: true, flags: IFA_F_NOPREFIXROUTE,
    }, ADD).finish(9);
    expect(msg[18]).toBe(IFA_F_NODAD);
    expect([...msg.subarray(msg.length - 8)]).toEqual(nla(8, u32(IFA_F_NOPREFIXROUTE | IFA_F_NODAD)));
    expect(new DataView(msg.buffer).getUint32(0, true)).toBe(msg.length);
  });

  test("RTM_DELADDR IPv4", () => {
    const msg = addressMessage(RTM_DELADDR, { ifindex: 2, family: "inet", address: "192.0.2.100", prefixlen: 24 },
      NLM_F_REQUEST | NLM_F_ACK).finish(2, 77);
    expect([...msg]).toEqual([
      ...nlhdr(40, 21, 5, 2, 77),
      2, 24, 0, 0, ...u32(2),
      ...nla(2, [192, 0, 2, 100]),
      ...nla(1, [192, 0, 2, 100]),
    ]);
  });
});

describe("NlMsgBuilder", () => {
  test("nested attributes carry NLA_F_NESTED and their total length", () => {
    const msg = new NlMsgBuilder(0x20, NLM_F_REQUEST)
      .bytes(Uint8Array.of(1, 2, 3)) // padded to 4
      .nest(5, (b) => b.u32(1, 0xdeadbeef).str(2, "rr").be16(3, 80))
      .u8(6, 9)
      .finish(3);
    expect([...msg]).toEqual([
      ...nlhdr(16 + 4 + 28 + 8, 0x20, 1, 3, 0),
      1, 2, 3, 0,
      ...u16(28), ...u16(5 | NLA_F_NESTED),
      ...nla(1, u32(0xdeadbeef)), ...nla(2, strz("rr")), ...nla(3, [0, 80]),
      ...nla(6, [9]),
    ]);
    const [m] = parseMessages(msg);
    const attrs = NlAttrs.parse(m!.payload, 4);
    const inner = attrs.nested(5)!;
    expect(inner.u32(1)).toBe(0xdeadbeef);
    expect(inner.str(2)).toBe("rr");
    expect([...inner.get(3)!]).toEqual([0, 80]);
    expect(attrs.u8(6)).toBe(9);
  });
});

describe("decoding kernel messages", () => {
  test("RTM_NEWLINK with name, MTU, MAC, operstate and link kind", () => {
    const payload = [
      0, 0, ...u16(1), ...u32(5), ...u32(0x11043), ...u32(0), // ifinfomsg
      ...nla(3, strz("vip0")),
      ...nla(4, u32(1500)),
      ...nla(1, [0x02, 0x00, 0x5e, 0x00, 0x01, 0x07]),
      ...nla(16, [6]),
      ...nla(18 | NLA_F_NESTED, nla(1, strz("macvlan"))),
      ...nla(5, u32(2)),
    ];
    const bytes = Uint8Array.from([...nlhdr(16 + payload.length, RTM_NEWLINK, 0, 0, 0), ...payload]);
    const [m] = parseMessages(bytes);
    expect(decodeLink(m!)).toEqual({
      ifindex: 5, name: "vip0", flags: 0x11043, operstate: 6, mac: "02:00:5e:00:01:07", mtu: 1500, kind: "macvlan", link: 2,
    });
    expect(decodeRtEvent(m!)?.kind).toBe("newlink");
  });

  test("RTM_NEWADDR IPv6: IFA_ADDRESS only, IFA_FLAGS wins over the byte, cache info", () => {
    const payload = [
      10, 64, 0x80, 0, ...u32(4),
      ...nla(1, ip6("2001:db8::7")),
      ...nla(6, [...u32(0), ...u32(3600), ...u32(11), ...u32(12)]),
      ...nla(8, u32(0x280)),
    ];
    const bytes = Uint8Array.from([...nlhdr(16 + payload.length, RTM_NEWADDR, 0, 0, 0), ...payload]);
    const [m] = parseMessages(bytes);
    expect(decodeAddress(m!)).toEqual({
      family: "inet6", ifindex: 4, address: "2001:db8::7", prefixlen: 64, flags: 0x280, scope: 0, preferredLft: 0, validLft: 3600,
    });
  });

  test("RTM_NEWADDR IPv4 point-to-point: local address and peer", () => {
    const payload = [
      2, 32, 0, 0, ...u32(9),
      ...nla(2, [198, 51, 100, 1]), ...nla(1, [198, 51, 100, 2]), ...nla(3, strz("tun0")),
    ];
    const [m] = parseMessages(Uint8Array.from([...nlhdr(16 + payload.length, RTM_NEWADDR, 0, 0, 0), ...payload]));
    expect(decodeAddress(m!)).toMatchObject({ address: "198.51.100.1", peer: "198.51.100.2", label: "tun0", ifindex: 9 });
  });

  test("NLMSG_ERROR with capped request and extended ack text", () => {
    const text = "ipv4: Address already assigned";
    const payload = [...u32(-17 >>> 0), ...nlhdr(64, 20, 0x605, 7, 1234), ...nla(1, strz(text)), ...nla(2, u32(24))];
    const bytes = Uint8Array.from([...nlhdr(16 + payload.length, NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 7, 1234), ...payload]);
    const [m] = parseMessages(bytes);
    expect(parseNlError(m!)).toEqual({ errno: 17, requestType: 20, requestSeq: 7, extAckMsg: text, extAckOffset: 24 });
    const err = new NetlinkError("RTM_NEWADDR(192.0.2.100/24)", 17, text);
    expect(err).toBeInstanceOf(SysError);
    expect(err.code).toBe("EEXIST");
    expect(err.message).toBe(`RTM_NEWADDR(192.0.2.100/24): EEXIST (File exists): ${text}`);
  });

  test("NLMSG_ERROR without NLM_F_CAPPED skips the echoed request before the TLVs", () => {
    const request = [...nlhdr(24, 21, 5, 8, 1), 2, 24, 0, 0, ...u32(2)];
    const payload = [...u32(-99 >>> 0), ...request, ...nla(1, strz("ipv4: Address not found"))];
    const [m] = parseMessages(Uint8Array.from([...nlhdr(16 + payload.length, NLMSG_ERROR, NLM_F_ACK_TLVS, 8, 1), ...payload]));
    const e = parseNlError(m!);
    expect(e.errno).toBe(99);
    expect(e.extAckMsg).toBe("ipv4: Address not found");
    expect(new NetlinkError("RTM_DELADDR", e.errno, e.extAckMsg).code).toBe("EADDRNOTAVAIL");
  });

  test("a plain ack decodes as errno 0", () => {
    const payload = [...u32(0), ...nlhdr(40, 20, 0x605, 5, 1)];
    const [m] = parseMessages(Uint8Array.from([...nlhdr(36, NLMSG_ERROR, NLM_F_CAPPED, 5, 1), ...payload]));
    expect(parseNlError(m!).errno).toBe(0);
  });

  test("multipart dump datagram: parts, then NLMSG_DONE; a truncated tail is dropped", () => {
    const part = (ifindex: number, last: number) => {
      const p = [2, 24, 0, 0, ...u32(ifindex), ...nla(2, [192, 0, 2, last])];
      return [...nlhdr(16 + p.length, RTM_NEWADDR, NLM_F_MULTI, 42, 99), ...p];
    };
    const done = [...nlhdr(20, NLMSG_DONE, NLM_F_MULTI, 42, 99), ...u32(0)];
    const bytes = Uint8Array.from([...part(2, 1), ...part(3, 2), ...done, ...nlhdr(200, 20, 0, 42, 99)]);
    const msgs = parseMessages(bytes);
    expect(msgs.map((m) => [m.type, m.seq, m.pid, m.flags])).toEqual([
      [RTM_NEWADDR, 42, 99, NLM_F_MULTI], [RTM_NEWADDR, 42, 99, NLM_F_MULTI], [NLMSG_DONE, 42, 99, NLM_F_MULTI],
    ]);
    expect(msgs.slice(0, 2).map((m) => decodeAddress(m)?.address)).toEqual(["192.0.2.1", "192.0.2.2"]);
    expect(parseNlDone(msgs[2]!).errno).toBe(0);
    const failed = parseMessages(Uint8Array.from([...nlhdr(20, NLMSG_DONE, NLM_F_MULTI, 1, 1), ...u32(-22 >>> 0)]));
    expect(parseNlDone(failed[0]!).errno).toBe(22);
  });
});

describe("address text", () => {
  test("IPv6 parse/format round trips in RFC 5952 form", () => {
    for (const [input, out] of [
      ["2001:db8::1", "2001:db8::1"], ["2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], ["::", "::"],
      ["fe80::1%eth0", "fe80::1"], ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], ["::ffff:192.0.2.1", "::ffff:c000:201"],
    ] as const) expect(formatIPv6(parseIPv6(input))).toBe(out);
    for (const bad of ["1::2::3", "2001:db8", "12345::", "g::1"]) expect(() => parseIPv6(bad)).toThrow();
    expect(() => parseIPv4("192.0.2.256")).toThrow();
  });
});
