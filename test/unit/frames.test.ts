import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { formatMac, parseMac } from "../../src/net/addr.ts";
import {
  decodeArp, decodeNa, garpBody, garpFrame, NA_FLAG_OVERRIDE, NA_FLAG_ROUTER, naBody, naFrame,
} from "../../src/vrrp/frames.ts";
import { linkFrame, readPcap } from "./pcap.ts";

const DIR = "/work/shared/fixtures/pcap/";
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** Every ARP and ICMPv6 frame in the failover captures, whole (Ethernet header included). */
function announcements(): { file: string; frame: Uint8Array; kind: "arp" | "na" }[] {
  const out: { file: string; frame: Uint8Array; kind: "arp" | "na" }[] = [];
  for (const file of readdirSync(DIR).filter((f) => f.endsWith("-failover.pcap")).sort()) {
    const pcap = readPcap(DIR + file);
    expect(pcap.linkType).toBe(1);
    for (const r of pcap.records) {
      const f = linkFrame(pcap.linkType, r.data);
      if (f.etherType === 0x0806) out.push({ file, frame: r.data, kind: "arp" });
      if (f.etherType === 0x86dd && f.payload[6] === 58) out.push({ file, frame: r.data, kind: "na" });
    }
  }
  return out;
}

const frames = announcements();

describe("GARP / NA frames against keepalived captures", () => {
  test("the failover captures hold both kinds", () => {
    expect(frames.filter((f) => f.kind === "arp").length).toBeGreaterThanOrEqual(5);
    expect(frames.filter((f) => f.kind === "na").length).toBeGreaterThanOrEqual(5);
  });

  for (const [i, f] of frames.entries()) {
    test(`${f.file} ${f.kind} #${i} equals our frame byte for byte`, () => {
      const mac = f.frame.subarray(6, 12);
      expect(formatMac(mac)).toBe("02:00:00:00:00:0c"); // h2 takes over in every failover capture
      if (f.kind === "arp") {
        const arp = decodeArp(f.frame.subarray(14))!;
        expect(arp.op).toBe(1);
        expect(arp.senderIp).toBe("192.0.2.100");
        expect(arp.targetIp).toBe("192.0.2.100");
        expect(formatMac(arp.targetMac)).toBe("ff:ff:ff:ff:ff:ff");
        expect(formatMac(arp.senderMac)).toBe("02:00:00:00:00:0c");
        // captured on the bridge, unpadded: exactly the 42-byte frame we build
        expect(hex(garpFrame(mac, "192.0.2.100"))).toBe(hex(f.frame));
        expect(hex(garpBody(mac, "192.0.2.100"))).toBe(hex(f.frame.subarray(14)));
      } else {
        const na = decodeNa(f.frame.subarray(14))!;
        expect(na.src).toBe("2001:db8::100");
        expect(na.dst).toBe("ff02::1");
        expect(na.hopLimit).toBe(255);
        expect(na.target).toBe("2001:db8::100");
        expect(na.flags).toBe(NA_FLAG_OVERRIDE); // forwarding was off in the lab
        expect(formatMac(na.tlla!)).toBe("02:00:00:00:00:0c");
        expect(na.checksumOk).toBe(true);
        expect(hex(naFrame(mac, "2001:db8::100", false))).toBe(hex(f.frame));
      }
    });
  }
});

describe("frame builders", () => {
  const mac = parseMac("02:00:00:00:00:0b")!;
  test("GARP layout", () => {
    const f = garpFrame(mac, "198.51.100.7");
    expect(f.length).toBe(42);
    expect(formatMac(f.subarray(0, 6))).toBe("ff:ff:ff:ff:ff:ff");
    expect(hex(f.subarray(12, 14))).toBe("0806");
    const arp = decodeArp(f.subarray(14))!;
    expect(arp).toMatchObject({ hwType: 1, protoType: 0x0800, op: 1, senderIp: "198.51.100.7", targetIp: "198.51.100.7" });
  });
  test("NA with the Router flag keeps a valid checksum", () => {
    const f = naFrame(mac, "2001:db8:1::5", true);
    expect(f.length).toBe(86);
    expect(formatMac(f.subarray(0, 6))).toBe("33:33:00:00:00:01");
    const na = decodeNa(f.subarray(14))!;
    expect(na.flags).toBe(NA_FLAG_OVERRIDE | NA_FLAG_ROUTER);
    expect(na.checksumOk).toBe(true);
    expect(naBody(mac, "2001:db8:1::5", true)).toEqual(f.subarray(54));
    const broken = f.slice(14);
    broken[40 + 8]! ^= 1;
    expect(decodeNa(broken)!.checksumOk).toBe(false);
  });
  test("builders reject the wrong address family and bad MACs", () => {
    expect(() => garpFrame(mac, "2001:db8::1")).toThrow(RangeError);
    expect(() => naFrame(mac, "192.0.2.1", false)).toThrow(RangeError);
    expect(() => garpFrame(new Uint8Array(5), "192.0.2.1")).toThrow(RangeError);
  });
  test("decoders refuse other packets", () => {
    expect(decodeArp(new Uint8Array(27))).toBeNull();
    expect(decodeNa(new Uint8Array(60))).toBeNull();
    const f = naFrame(mac, "2001:db8::1", false).slice(14);
    f[40] = 135; // neighbour solicitation
    expect(decodeNa(f)).toBeNull();
  });
});
