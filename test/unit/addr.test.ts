import { describe, expect, test } from "bun:test";
import {
  addrEqual, broadcastOf, canonicalIp, compareAddr, formatIPv6, formatMac, inPrefix, isLinkLocal6,
  isMulticast, maskToPrefixLen, networkOf, parseIPv4, parseIPv6, parseIp, parseMac, parsePrefix, prefixMask,
} from "../../src/net/addr.ts";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

describe("IPv4 text", () => {
  test("parses dotted quads", () => {
    expect([...parseIPv4("192.0.2.100")!]).toEqual([192, 0, 2, 100]);
    expect([...parseIPv4("0.0.0.0")!]).toEqual([0, 0, 0, 0]);
    expect([...parseIPv4("255.255.255.255")!]).toEqual([255, 255, 255, 255]);
  });
  test("rejects malformed text", () => {
    for (const bad of ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.a", " 1.2.3.4", "1..2.3", "1.2.3.-1"]) {
      expect(parseIPv4(bad)).toBeNull();
    }
  });
});

describe("IPv6 text", () => {
  test("parses the RFC 4291 forms", () => {
    expect(hex(parseIPv6("2001:db8::100")!)).toBe("20010db8000000000000000000000100");
    expect(hex(parseIPv6("::")!)).toBe("0".repeat(32));
    expect(hex(parseIPv6("::1")!)).toBe("0".repeat(31) + "1");
    expect(hex(parseIPv6("fe80::ff:fe00:b")!)).toBe("fe800000000000000000" + "00fffe00000b");
    expect(hex(parseIPv6("FF02:0:0:0:0:0:0:12")!)).toBe("ff020000000000000000000000000012");
    expect(hex(parseIPv6("::ffff:192.0.2.1")!)).toBe("00000000000000000000ffffc0000201");
    expect(hex(parseIPv6("1:2:3:4:5:6:192.0.2.1")!)).toBe("000100020003000400050006c0000201");
    expect(hex(parseIPv6("1::")!)).toBe("0001" + "0".repeat(28));
  });
  test("rejects malformed text", () => {
    for (const bad of ["", ":", "1:::2", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "g::1",
      "fe80::1%eth0", ":1::", "1:2:3:4:5:6:7::8:9", "::1.2.3", "1.2.3.4"]) {
      expect(parseIPv6(bad)).toBeNull();
    }
  });
  test("formats canonically (RFC 5952)", () => {
    expect(formatIPv6(parseIPv6("2001:0DB8:0000:0000:0000:0000:0000:0100")!)).toBe("2001:db8::100");
    expect(formatIPv6(parseIPv6("fe80:0:0:0:0:ff:fe00:b")!)).toBe("fe80::ff:fe00:b");
    expect(formatIPv6(parseIPv6("2001:db8:0:1:0:0:0:1")!)).toBe("2001:db8:0:1::1");
    expect(formatIPv6(parseIPv6("2001:0:0:1:0:0:1:1")!)).toBe("2001::1:0:0:1:1");
    expect(formatIPv6(parseIPv6("2001:db8:1:1:1:1:0:1")!)).toBe("2001:db8:1:1:1:1:0:1");
    expect(formatIPv6(new Uint8Array(16))).toBe("::");
    expect(canonicalIp("FF02::12")).toBe("ff02::12");
    expect(canonicalIp("192.0.2.1")).toBe("192.0.2.1");
    expect(canonicalIp("nope")).toBeNull();
  });
  test("round-trips random addresses", () => {
    let seed = 12345;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
    for (let n = 0; n < 500; n++) {
      const b = new Uint8Array(16);
      for (let i = 0; i < 16; i++) b[i] = rnd() % 4 === 0 ? rnd() & 0xff : 0;
      expect(hex(parseIPv6(formatIPv6(b))!)).toBe(hex(b));
    }
  });
});

describe("ordering and classes", () => {
  test("compareAddr orders as big-endian integers", () => {
    expect(compareAddr(parseIPv4("192.0.2.12")!, parseIPv4("192.0.2.11")!)).toBeGreaterThan(0);
    expect(compareAddr(parseIPv4("10.0.0.255")!, parseIPv4("10.0.1.0")!)).toBeLessThan(0);
    expect(compareAddr(parseIPv6("fe80::ff:fe00:b")!, parseIPv6("fe80::ff:fe00:c")!)).toBeLessThan(0);
    expect(addrEqual(parseIPv6("::1")!, parseIPv6("0::0:1")!)).toBe(true);
    expect(addrEqual(parseIPv4("0.0.0.1")!, parseIPv6("::1")!)).toBe(false);
  });
  test("multicast and link-local", () => {
    expect(isMulticast(parseIPv4("224.0.0.18")!)).toBe(true);
    expect(isMulticast(parseIPv4("239.255.255.255")!)).toBe(true);
    expect(isMulticast(parseIPv4("240.0.0.1")!)).toBe(false);
    expect(isMulticast(parseIPv4("192.0.2.12")!)).toBe(false);
    expect(isMulticast(parseIPv6("ff02::12")!)).toBe(true);
    expect(isMulticast(parseIPv6("fe80::1")!)).toBe(false);
    expect(isLinkLocal6(parseIPv6("fe80::1")!)).toBe(true);
    expect(isLinkLocal6(parseIPv6("febf::1")!)).toBe(true);
    expect(isLinkLocal6(parseIPv6("fec0::1")!)).toBe(false);
  });
  test("parseIp picks the family", () => {
    expect(parseIp("192.0.2.1")!.family).toBe("inet");
    expect(parseIp("2001:db8::1")!.family).toBe("inet6");
    expect(parseIp("x")).toBeNull();
  });
});

describe("prefix math", () => {
  test("parsePrefix", () => {
    const p = parsePrefix("192.0.2.100/24")!;
    expect(p.prefixLen).toBe(24);
    expect(parsePrefix("192.0.2.100")!.prefixLen).toBe(32);
    expect(parsePrefix("2001:db8::100/64")!.prefixLen).toBe(64);
    expect(parsePrefix("2001:db8::100")!.prefixLen).toBe(128);
    expect(parsePrefix("192.0.2.1/33")).toBeNull();
    expect(parsePrefix("192.0.2.1/")).toBeNull();
    expect(parsePrefix("192.0.2.1/x")).toBeNull();
    expect(parsePrefix("2001:db8::/129")).toBeNull();
  });
  test("masks, networks, broadcast, membership", () => {
    expect([...prefixMask(4, 20)]).toEqual([255, 255, 240, 0]);
    expect([...prefixMask(4, 0)]).toEqual([0, 0, 0, 0]);
    expect(maskToPrefixLen(prefixMask(16, 67))).toBe(67);
    expect(maskToPrefixLen(parseIPv4("255.0.255.0")!)).toBeNull();
    expect([...networkOf(parseIPv4("192.0.2.100")!, 25)]).toEqual([192, 0, 2, 0]);
    expect([...networkOf(parseIPv4("192.0.2.200")!, 25)]).toEqual([192, 0, 2, 128]);
    expect([...broadcastOf(parseIPv4("192.0.2.100")!, 24)]).toEqual([192, 0, 2, 255]);
    expect(inPrefix(parseIPv4("192.0.2.100")!, parseIPv4("192.0.2.0")!, 24)).toBe(true);
    expect(inPrefix(parseIPv4("192.0.3.1")!, parseIPv4("192.0.2.0")!, 24)).toBe(false);
    expect(inPrefix(parseIPv6("2001:db8::100")!, parseIPv6("2001:db8::")!, 64)).toBe(true);
    expect(inPrefix(parseIPv6("2001:db9::100")!, parseIPv6("2001:db8::")!, 32)).toBe(false);
  });
});

describe("MAC text", () => {
  test("parse and format", () => {
    expect(formatMac(parseMac("02:00:00:00:00:0B")!)).toBe("02:00:00:00:00:0b");
    expect(formatMac(parseMac("2-0-0-0-0-c")!)).toBe("02:00:00:00:00:0c");
    expect(parseMac("02:00:00:00:00")).toBeNull();
    expect(parseMac("02:00:00:00:00:100")).toBeNull();
  });
});
