import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { formatIPv4, formatIPv6, formatMac, parseIPv4, parseIPv6 } from "../../src/net/addr.ts";
import { AH_HEADER_LEN, computeAhIcv, decodeAhHeader, nextAhSeq, signAh, verifyAh } from "../../src/vrrp/ah.ts";
import {
  internetChecksum, ipv4HeaderChecksum, ipv4PseudoHeader, ipv6PseudoHeader, vrrpChecksum, vrrpChecksumOk,
} from "../../src/vrrp/checksum.ts";
import {
  buildIpv4Advert, buildIpv6Advert, decodeIpv4Advert, decodeIpv4Header, decodePdu, encodeAdvert, encodePdu, nextIpId, passwordBytes,
} from "../../src/vrrp/codec.ts";
import type { AdvertFields } from "../../src/vrrp/codec.ts";
import { AUTH_AH, AUTH_NONE, AUTH_PASS } from "../../src/vrrp/types.ts";
import type { Advert } from "../../src/vrrp/types.ts";
import { linkFrame, readPcap } from "./pcap.ts";

const DIR = "/work/shared/fixtures/pcap/";
const KEY = passwordBytes("lab51pw");

/** The lab hosts of the fixture README, by IPv4 and IPv6 source. */
const HOSTS: Record<string, { mac: string; priority: number }> = {
  "192.0.2.11": { mac: "02:00:00:00:00:0b", priority: 150 },
  "192.0.2.12": { mac: "02:00:00:00:00:0c", priority: 100 },
  "192.0.2.13": { mac: "02:00:00:00:00:0d", priority: 50 },
  "fe80::ff:fe00:b": { mac: "02:00:00:00:00:0b", priority: 150 },
  "fe80::ff:fe00:c": { mac: "02:00:00:00:00:0c", priority: 100 },
  "fe80::ff:fe00:d": { mac: "02:00:00:00:00:0d", priority: 50 },
};

interface Captured {
  file: string;
  index: number;
  ethSrc: string;
  ethDst: string;
  /** The IPv4 packet, or the IPv6 packet (header + PDU). */
  ip: Uint8Array;
  family: "inet" | "inet6";
}

function capturedAdverts(): Captured[] {
  const out: Captured[] = [];
  for (const file of readdirSync(DIR).filter((f) => f.endsWith(".pcap")).sort()) {
    const pcap = readPcap(DIR + file);
    pcap.records.forEach((r, index) => {
      const f = linkFrame(pcap.linkType, r.data);
      const isV4Vrrp = f.etherType === 0x0800 && (f.payload[9] === 112 || f.payload[9] === 51);
      const isV6Vrrp = f.etherType === 0x86dd && f.payload[6] === 112;
      if (!isV4Vrrp && !isV6Vrrp) return;
      out.push({ file, index, ethSrc: formatMac(f.src!), ethDst: formatMac(f.dst!), ip: f.payload, family: isV4Vrrp ? "inet" : "inet6" });
    });
  }
  return out;
}

const adverts = capturedAdverts();

function fieldsOf(a: Advert): AdvertFields {
  return { version: a.version, vrid: a.vrid, priority: a.priority, adverIntCs: a.adverIntCs, addresses: a.addresses, authType: a.authType, authData: a.authData };
}

/** Checks the decoded advert against the lab configuration for this file. */
function checkConfig(file: string, src: string, a: Advert): void {
  expect(a.vrid).toBe(51);
  expect(a.type).toBe(1);
  expect(a.adverIntCs).toBe(100);
  expect(a.count).toBe(1);
  expect([HOSTS[src]!.priority, 0]).toContain(a.priority);
  if (file.includes("ipv6")) expect(a.addresses).toEqual(["2001:db8::100"]);
  else expect(a.addresses).toEqual(["192.0.2.100"]);
  if (file.startsWith("keepalived-v2")) {
    expect(a.version).toBe(2);
    if (file.includes("-ah")) {
      expect(a.authType).toBe(AUTH_AH);
      expect([...a.authData]).toEqual(new Array(8).fill(0));
    } else {
      expect(a.authType).toBe(AUTH_PASS);
      expect(new TextDecoder().decode(a.authData)).toBe("lab51pw\0");
    }
  } else {
    expect(a.version).toBe(3);
    expect(a.authType).toBe(AUTH_NONE);
    expect(a.authData.length).toBe(0);
  }
}

describe("golden keepalived captures", () => {
  test("every fixture holds adverts of the expected kinds", () => {
    const files = new Set(adverts.map((a) => a.file));
    expect(files.size).toBe(8);
    expect(adverts.length).toBeGreaterThanOrEqual(8 * 3);
  });

  for (const c of adverts) {
    test(`${c.file} #${c.index}: decode, verify, re-encode byte for byte`, () => {
      if (c.family === "inet") {
        const ip = decodeIpv4Header(c.ip)!;
        expect(ip).not.toBeNull();
        expect(ip.headerLen).toBe(20);
        expect(ip.tos).toBe(0xc0);
        expect(ip.ttl).toBe(255);
        expect(ip.fragOff).toBe(0);
        expect(ip.totalLength).toBe(c.ip.length);
        expect(formatIPv4(ip.dst)).toBe("224.0.0.18");
        expect(ip.checksum).toBe(ipv4HeaderChecksum(c.ip.subarray(0, 20)));
        expect(internetChecksum(c.ip.subarray(0, 20))).toBe(0);
        const src = formatIPv4(ip.src);
        expect(HOSTS[src]!.mac).toBe(c.ethSrc);
        expect(c.ethDst).toBe("01:00:5e:00:00:12");
        const isAh = ip.protocol === 51;
        expect(isAh).toBe(c.file.includes("-ah"));
        const pduOff = 20 + (isAh ? AH_HEADER_LEN : 0);
        const pdu = c.ip.subarray(pduOff);
        const d = decodePdu(pdu, "inet");
        if (!d.ok) throw new Error(d.error);
        const a = d.value;
        checkConfig(c.file, src, a);
        const ctx = { version: a.version, family: "inet" as const, src: ip.src, dst: ip.dst };
        expect(vrrpChecksumOk(pdu, ctx)).toBe(true);
        expect(vrrpChecksum(pdu, ctx)).toBe(a.checksum);
        // v3 over IPv4 uses the pseudo-header: without it the checksum must NOT verify
        if (a.version === 3) expect(vrrpChecksumOk(pdu, { ...ctx, v3ChecksumAsV2: true })).toBe(false);
        let ah;
        if (isAh) {
          ah = decodeAhHeader(c.ip, 20)!;
          expect(ah.nextHeader).toBe(112);
          expect(ah.payloadLen).toBe(4);
          expect(formatIPv4(new Uint8Array([ah.spi >>> 24, (ah.spi >> 16) & 255, (ah.spi >> 8) & 255, ah.spi & 255]))).toBe(src);
          const v = verifyAh(c.ip, 20, KEY, false, ah.seq - 1);
          expect(v).toEqual({ ok: true, seq: ah.seq });
          // replay, wrong key, unicast-mode ICV all fail
          expect(verifyAh(c.ip, 20, KEY, false, ah.seq)).toMatchObject({ ok: false, failure: "seq" });
          expect(verifyAh(c.ip, 20, passwordBytes("lab51px"), false, 0)).toMatchObject({ ok: false, failure: "icv" });
          expect(verifyAh(c.ip, 20, KEY, true, 0)).toMatchObject({ ok: false, failure: "icv" });
          expect([...computeAhIcv(c.ip, 20, KEY, false)]).toEqual([...ah.icv]);
        }
        const rebuilt = buildIpv4Advert(
          { ...fieldsOf(a), authData: a.authType === AUTH_PASS ? passwordBytes("lab51pw") : undefined },
          { src, dst: "224.0.0.18", id: ip.id, ah: ah ? { key: KEY, seq: ah.seq, unicast: false } : undefined },
        );
        expect(Buffer.from(rebuilt).toString("hex")).toBe(Buffer.from(c.ip).toString("hex"));
        const split = decodeIpv4Advert(c.ip);
        if (!split.ok) throw new Error(split.error);
        expect(split.value.advert).toEqual(a);
        expect(split.value.ah?.seq).toBe(ah?.seq);
        expect(split.value.pdu).toEqual(pdu.slice());
      } else {
        const hdr = c.ip.subarray(0, 40);
        expect(hdr[0]! >> 4).toBe(6);
        expect(((hdr[0]! & 0x0f) << 4) | (hdr[1]! >> 4)).toBe(0xc0); // traffic class
        expect(hdr[7]).toBe(255);
        const src = formatIPv6(hdr, 8);
        expect(formatIPv6(hdr, 24)).toBe("ff02::12");
        expect(HOSTS[src]!.mac).toBe(c.ethSrc);
        expect(c.ethDst).toBe("33:33:00:00:00:12");
        const pdu = c.ip.subarray(40);
        expect((hdr[4]! << 8) | hdr[5]!).toBe(pdu.length);
        const d = decodePdu(pdu, "inet6");
        if (!d.ok) throw new Error(d.error);
        const a = d.value;
        checkConfig(c.file, src, a);
        const ctx = { version: a.version, family: "inet6" as const, src: hdr.subarray(8, 24), dst: hdr.subarray(24, 40) };
        expect(vrrpChecksumOk(pdu, ctx)).toBe(true);
        const reencoded = encodeAdvert(fieldsOf(a), ctx);
        expect(Buffer.from(reencoded).toString("hex")).toBe(Buffer.from(pdu).toString("hex"));
        // what our IPv6 socket sends: the same PDU with the checksum left to the kernel
        const sent = buildIpv6Advert(fieldsOf(a));
        expect(sent[6]).toBe(0);
        expect(sent[7]).toBe(0);
        expect(Buffer.from(sent.subarray(8)).toString("hex")).toBe(Buffer.from(pdu.subarray(8)).toString("hex"));
      }
    });
  }

  test("a single flipped bit breaks the checksum or the ICV", () => {
    for (const c of adverts.filter((x) => x.family === "inet")) {
      const isAh = c.ip[9] === 51;
      const pduOff = 20 + (isAh ? AH_HEADER_LEN : 0);
      const ip = decodeIpv4Header(c.ip)!;
      for (let bit = 0; bit < (c.ip.length - pduOff) * 8; bit += 5) {
        const pkt = c.ip.slice();
        pkt[pduOff + (bit >> 3)]! ^= 1 << (bit & 7);
        const version = (pkt[pduOff]! >> 4) === 3 ? 3 : 2;
        expect(vrrpChecksumOk(pkt.subarray(pduOff), { version, family: "inet", src: ip.src, dst: ip.dst })).toBe(false);
        if (isAh) expect(verifyAh(pkt, 20, KEY, false, 0).ok).toBe(false);
      }
    }
  });
});

describe("checksum", () => {
  test("RFC 1071 example sums", () => {
    // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2, checksum = ~ddf2
    const b = new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
    expect(internetChecksum(b)).toBe(~0xddf2 & 0xffff);
    // odd-length parts are joined as one byte string
    expect(internetChecksum(b.subarray(0, 3), b.subarray(3))).toBe(~0xddf2 & 0xffff);
    expect(internetChecksum(b.subarray(0, 1), b.subarray(1, 4), b.subarray(4, 7), b.subarray(7))).toBe(~0xddf2 & 0xffff);
    expect(internetChecksum(new Uint8Array([0xab]))).toBe(~0xab00 & 0xffff);
    expect(internetChecksum(new Uint8Array(0))).toBe(0xffff);
  });
  test("large inputs fold correctly", () => {
    const big = new Uint8Array(200_000).fill(0xff);
    expect(internetChecksum(big)).toBe(0);
    let seed = 7;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    const data = Uint8Array.from({ length: 1001 }, rnd);
    let ref = 0;
    for (let i = 0; i < data.length; i += 2) ref += (data[i]! << 8) | (data[i + 1] ?? 0);
    while (ref > 0xffff) ref = (ref & 0xffff) + (ref >>> 16);
    expect(internetChecksum(data)).toBe(~ref & 0xffff);
  });
  test("pseudo-header layouts", () => {
    const ph4 = ipv4PseudoHeader(parseIPv4("192.0.2.11")!, parseIPv4("224.0.0.18")!, 112, 12);
    expect(Buffer.from(ph4).toString("hex")).toBe("c000020be00000120070000c");
    const ph6 = ipv6PseudoHeader(parseIPv6("fe80::1")!, parseIPv6("ff02::12")!, 112, 24);
    expect(Buffer.from(ph6.subarray(32)).toString("hex")).toBe("0000001800000070");
    expect(ph6.length).toBe(40);
  });
  test("v3 IPv4 with v3_checksum_as_v2 uses no pseudo-header", () => {
    const fields: AdvertFields = { version: 3, vrid: 51, priority: 100, adverIntCs: 100, addresses: ["192.0.2.100"] };
    const src = parseIPv4("192.0.2.12")!;
    const dst = parseIPv4("224.0.0.18")!;
    const asV2 = encodeAdvert(fields, { version: 3, family: "inet", src, dst, v3ChecksumAsV2: true });
    expect(internetChecksum(asV2)).toBe(0);
    const std = encodeAdvert(fields, { version: 3, family: "inet", src, dst });
    expect(internetChecksum(ipv4PseudoHeader(src, dst, 112, std.length), std)).toBe(0);
    expect(std[6]! * 256 + std[7]!).not.toBe(asV2[6]! * 256 + asV2[7]!);
  });
});

describe("PDU encoding", () => {
  test("v3 interval keeps 12 bits and reserved bits zero; v2 sends whole seconds", () => {
    const v3 = encodePdu({ version: 3, vrid: 1, priority: 100, adverIntCs: 4095, addresses: [] }, "inet");
    expect([v3[4], v3[5]]).toEqual([0x0f, 0xff]);
    const v3b = encodePdu({ version: 3, vrid: 1, priority: 100, adverIntCs: 25, addresses: ["2001:db8::1", "2001:db8::2"] }, "inet6");
    expect(v3b.length).toBe(8 + 32);
    expect((decodePdu(v3b, "inet6") as { ok: true; value: Advert }).value.addresses).toEqual(["2001:db8::1", "2001:db8::2"]);
    const v2 = encodePdu({ version: 2, vrid: 1, priority: 100, adverIntCs: 300, addresses: ["192.0.2.1"] }, "inet");
    expect(v2[5]).toBe(3);
    expect(v2.length).toBe(8 + 4 + 8);
    // v2 over IPv6 (non-standard, keepalived non-strict) carries no auth bytes
    expect(encodePdu({ version: 2, vrid: 1, priority: 100, adverIntCs: 100, addresses: ["2001:db8::1"] }, "inet6").length).toBe(24);
  });
  test("decode masks the reserved bits of the v3 interval", () => {
    const v3 = encodePdu({ version: 3, vrid: 1, priority: 100, adverIntCs: 100, addresses: [] }, "inet");
    v3[4]! |= 0xf0;
    expect((decodePdu(v3, "inet") as { ok: true; value: Advert }).value.adverIntCs).toBe(100);
  });
  test("decode reports short input instead of throwing", () => {
    const full = buildIpv4Advert({ version: 2, vrid: 1, priority: 1, adverIntCs: 100, addresses: ["192.0.2.1"] },
      { src: "192.0.2.11", dst: "224.0.0.18", id: 1, ah: { key: KEY, seq: 1, unicast: false } });
    for (let n = 0; n < full.length; n++) expect(decodeIpv4Advert(full.subarray(0, n)).ok).toBe(false);
    expect(decodeIpv4Advert(full).ok).toBe(true);
    expect(decodePdu(new Uint8Array(7), "inet").ok).toBe(false);
    const v2 = encodePdu({ version: 2, vrid: 1, priority: 100, adverIntCs: 100, addresses: ["192.0.2.1", "192.0.2.2"] }, "inet");
    expect(decodePdu(v2.subarray(0, v2.length - 1), "inet").ok).toBe(false);
    expect(decodePdu(v2, "inet").ok).toBe(true);
  });
  test("encode rejects addresses of the wrong family and too many addresses", () => {
    expect(() => encodePdu({ version: 3, vrid: 1, priority: 1, adverIntCs: 100, addresses: ["2001:db8::1"] }, "inet")).toThrow(RangeError);
    const many = Array.from({ length: 256 }, (_, i) => `192.0.2.${i % 256}`);
    expect(() => encodePdu({ version: 3, vrid: 1, priority: 1, adverIntCs: 100, addresses: many }, "inet")).toThrow(RangeError);
  });
  test("passwords are truncated / zero-padded to 8 bytes", () => {
    expect([...passwordBytes("abc")]).toEqual([97, 98, 99, 0, 0, 0, 0, 0]);
    expect(new TextDecoder().decode(passwordBytes("0123456789"))).toBe("01234567");
  });
  test("IP id skips 0 and AH seq stops before wrapping", () => {
    expect(nextIpId(1)).toBe(2);
    expect(nextIpId(0xffff)).toBe(1);
    expect(nextAhSeq(0)).toBe(1);
    expect(nextAhSeq(0xfffffffd)).toBe(0xfffffffe);
    expect(nextAhSeq(0xfffffffe)).toBe(0xfffffffe);
  });
  test("unicast AH zeroes TTL in the ICV; unicast TTL is honoured", () => {
    const fields: AdvertFields = { version: 2, vrid: 51, priority: 100, adverIntCs: 100, addresses: ["192.0.2.100"] };
    const pkt = buildIpv4Advert(fields, { src: "192.0.2.12", dst: "192.0.2.11", id: 7, ttl: 64, ah: { key: KEY, seq: 3, unicast: true } });
    expect(pkt[8]).toBe(64);
    expect(pkt[9]).toBe(51);
    expect(verifyAh(pkt, 20, KEY, true, 2)).toEqual({ ok: true, seq: 3 });
    expect(verifyAh(pkt, 20, KEY, false, 2).ok).toBe(false);
    // TTL change in flight does not matter for unicast, TOS neither
    const hopped = pkt.slice();
    hopped[8] = 60;
    hopped[1] = 0;
    expect(verifyAh(hopped, 20, KEY, true, 2).ok).toBe(true);
    // SPI must equal the source
    const spoofed = pkt.slice();
    spoofed[20 + 7] = 99; // SPI's last byte, then re-sign so only the SPI rule can fail
    signAh(spoofed, 20, KEY, true);
    expect(verifyAh(spoofed, 20, KEY, true, 2)).toMatchObject({ ok: false, failure: "spi" });
  });
});
