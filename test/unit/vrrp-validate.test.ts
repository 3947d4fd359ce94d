import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { formatIPv4, formatIPv6 } from "../../src/net/addr.ts";
import { signAh } from "../../src/vrrp/ah.ts";
import { ipv4HeaderChecksum } from "../../src/vrrp/checksum.ts";
import { buildIpv4Advert, encodeAdvert, passwordBytes } from "../../src/vrrp/codec.ts";
import type { AdvertFields, Ipv4AdvertOptions } from "../../src/vrrp/codec.ts";
import { parseReceived, validateAdvert } from "../../src/vrrp/validate.ts";
import type { RxConfig, RxState, ValidateResult } from "../../src/vrrp/validate.ts";
import { AUTH_AH, AUTH_NONE, AUTH_PASS, newStats } from "../../src/vrrp/types.ts";
import type { RxMeta, StatName } from "../../src/vrrp/types.ts";
import { parseIPv6 } from "../../src/net/addr.ts";
import { linkFrame, readPcap } from "./pcap.ts";

const KEY = passwordBytes("lab51pw");
const VIP = "192.0.2.100";

function rxConfig(over: Partial<RxConfig> = {}): RxConfig {
  return {
    iname: "VI_1", family: "inet", version: 2, vrid: 51, authType: AUTH_PASS, authKey: KEY, adverIntCs: 100,
    vips: [VIP], unicast: false, peers: [], checkUnicastSrc: false, v3ChecksumAsV2: false, ownerIgnoreAdverts: false,
    checkVipAddrs: true, ...over,
  };
}

const STATE: RxState = { effectivePriority: 100, lastAhSeq: 0 };

function fields(over: Partial<AdvertFields> = {}): AdvertFields {
  return { version: 2, vrid: 51, priority: 150, adverIntCs: 100, addresses: [VIP], authType: AUTH_PASS, authData: KEY, ...over };
}

/** An IPv4 advert from h1 (192.0.2.11) to the multicast group unless overridden. */
function packet(f: Partial<AdvertFields> = {}, o: Partial<Ipv4AdvertOptions> = {}): Uint8Array {
  return buildIpv4Advert(fields(f), { src: "192.0.2.11", dst: "224.0.0.18", id: 5, ...o });
}

function meta4(pkt: Uint8Array): RxMeta {
  return { family: "inet", src: formatIPv4(pkt, 12), dst: formatIPv4(pkt, 16), ifindex: 2, ttl: pkt[8]! };
}

function run(pkt: Uint8Array, rx: RxConfig, state: RxState = STATE, meta: RxMeta = meta4(pkt)): ValidateResult {
  const p = parseReceived(pkt, meta);
  if (!p.ok) return p;
  return validateAdvert(p.packet, meta, rx, state);
}

function expectDrop(r: ValidateResult, reason: StatName, messagePart?: string): void {
  if (r.ok) throw new Error(`expected a ${reason} drop, got accepted`);
  expect(r.reason).toBe(reason);
  expect(r.counters).toContain(reason);
  if (messagePart) expect(r.message).toContain(messagePart);
}

function expectOk(r: ValidateResult): Extract<ValidateResult, { ok: true }> {
  if (!r.ok) throw new Error(`expected accept, got ${r.reason}: ${r.message}`);
  return r;
}

/** Rewrites the IPv4 header checksum after editing header bytes. */
function fixIpSum(pkt: Uint8Array): Uint8Array {
  const s = ipv4HeaderChecksum(pkt.subarray(0, 20));
  pkt[10] = s >> 8;
  pkt[11] = s & 0xff;
  return pkt;
}

describe("accepts valid adverts", () => {
  test("v2 PASS, v2 AH, v3, v3 with v3_checksum_as_v2", () => {
    const r = expectOk(run(packet(), rxConfig()));
    expect(r.advert.priority).toBe(150);
    expect(r.warnings).toEqual([]);
    expect(r.counters).toEqual(["advert_rcvd"]);
    const ah = expectOk(run(packet({}, { ah: { key: KEY, seq: 9, unicast: false } }), rxConfig({ authType: AUTH_AH }), { ...STATE, lastAhSeq: 8 }));
    expect(ah.ahSeq).toBe(9);
    const v3 = fields({ version: 3, authType: undefined, authData: undefined });
    expectOk(run(packet(v3), rxConfig({ version: 3, authType: AUTH_NONE })));
    expectOk(run(packet(v3, { v3ChecksumAsV2: true }), rxConfig({ version: 3, authType: AUTH_NONE, v3ChecksumAsV2: true })));
    // a v3_checksum_as_v2 receiver also takes the standard form
    expectOk(run(packet(v3), rxConfig({ version: 3, authType: AUTH_NONE, v3ChecksumAsV2: true })));
  });

  test("every captured keepalived advert passes its instance's checks", () => {
    const dir = "/work/shared/fixtures/pcap/";
    let n = 0;
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".pcap"))) {
      const pcap = readPcap(dir + file);
      const v2 = file.startsWith("keepalived-v2");
      const ah = file.includes("-ah");
      const v6 = file.includes("ipv6");
      const rx = rxConfig({
        version: v2 ? 2 : 3, authType: v2 ? (ah ? AUTH_AH : AUTH_PASS) : AUTH_NONE,
        family: v6 ? "inet6" : "inet", vips: [v6 ? "2001:db8::100" : VIP], verifyIpv6Checksum: true,
      });
      for (const rec of pcap.records) {
        const f = linkFrame(pcap.linkType, rec.data);
        let r: ValidateResult;
        if (f.etherType === 0x0800) {
          const seq = ah ? new DataView(f.payload.buffer, f.payload.byteOffset).getUint32(28) : 0;
          r = run(f.payload, rx, { effectivePriority: 100, lastAhSeq: Math.max(0, seq - 1) });
          if (ah) expect(expectOk(r).ahSeq).toBe(seq);
        } else if (f.etherType === 0x86dd && f.payload[6] === 112) {
          const meta: RxMeta = { family: "inet6", src: formatIPv6(f.payload, 8), dst: formatIPv6(f.payload, 24), ifindex: 2, ttl: f.payload[7]! };
          r = run(f.payload.subarray(40), rx, STATE, meta);
        } else continue;
        const ok = expectOk(r);
        expect(ok.warnings).toEqual([]);
        expect(ok.counters).toEqual(ok.advert.priority === 0 ? ["advert_rcvd", "pri_zero_rcvd"] : ["advert_rcvd"]);
        n++;
      }
    }
    expect(n).toBe(32);
  });

  test("Ethernet padding is tolerated, other trailing bytes are not", () => {
    const pkt = packet(); // 40 bytes, padded to 46 on the wire
    for (const pad of [2, 6]) {
      const padded = new Uint8Array(pkt.length + pad);
      padded.set(pkt);
      expectOk(run(padded, rxConfig()));
    }
    for (const pad of [1, 3, 4, 8]) {
      const padded = new Uint8Array(pkt.length + pad);
      padded.set(pkt);
      expectDrop(run(padded, rxConfig()), "packet_len_err", "too long");
    }
    // no padding allowance once the packet already fills the minimum frame
    const ah = packet({}, { ah: { key: KEY, seq: 1, unicast: false } });
    const big = new Uint8Array(ah.length + 2);
    big.set(ah);
    expectDrop(run(big, rxConfig({ authType: AUTH_AH })), "packet_len_err");
  });

  test("unicast: any TTL unless the peer limits it", () => {
    const pkt = packet({}, { dst: "192.0.2.12", ttl: 64 });
    expectOk(run(pkt, rxConfig({ unicast: true })));
    expectOk(run(pkt, rxConfig({ unicast: true, peers: [{ address: "192.0.2.11", minTtl: 60, maxTtl: 64 }] })));
  });
});

describe("accepts with warnings", () => {
  test("address count mismatch counts addr_list_err", () => {
    const r = expectOk(run(packet({ addresses: [VIP, "192.0.2.101"] }), rxConfig()));
    expect(r.warnings).toEqual(["(VI_1) expected 1 VIPs but received 2"]);
    expect(r.counters).toEqual(["advert_rcvd", "addr_list_err"]);
  });
  test("VIP list mismatch is logged unless the check is skipped", () => {
    const pkt = packet({ addresses: ["192.0.2.101"] });
    const r = expectOk(run(pkt, rxConfig()));
    expect(r.warnings).toEqual(["(VI_1) ip address associated with VRID 51 not present in advert from 192.0.2.11: 192.0.2.100"]);
    expect(r.counters).toContain("addr_list_err");
    const skipped = expectOk(run(pkt, rxConfig({ checkVipAddrs: false })));
    expect(skipped.warnings).toEqual([]);
    // order does not matter
    expect(expectOk(run(packet({ addresses: ["192.0.2.101", VIP] }), rxConfig({ vips: [VIP, "192.0.2.101"] }))).warnings).toEqual([]);
  });
  test("v3 interval mismatch is only logged", () => {
    const r = expectOk(run(packet({ version: 3, adverIntCs: 150, authType: undefined, authData: undefined }), rxConfig({ version: 3, authType: AUTH_NONE })));
    expect(r.warnings).toEqual(["(VI_1) advertisement interval mismatch ours = 100 centi-sec rcv'd=150 centi-sec"]);
    expect(r.advert.adverIntCs).toBe(150);
  });
  test("priority 0 counts pri_zero_rcvd", () => {
    expect(expectOk(run(packet({ priority: 0 }), rxConfig())).counters).toEqual(["advert_rcvd", "pri_zero_rcvd"]);
  });
  test("old (pre-1.3.6) unicast v3 checksum is detected in auto mode only", () => {
    const f = fields({ version: 3, authType: undefined, authData: undefined });
    // an old sender computed the pseudo-header with the multicast group as destination
    const pkt = packet(f, { dst: "224.0.0.18" });
    pkt.set([192, 0, 2, 12], 16);
    fixIpSum(pkt);
    const rx = rxConfig({ version: 3, authType: AUTH_NONE, unicast: true });
    const r = expectOk(run(pkt, rx));
    expect(r.oldUnicastChecksum).toBe(true);
    expect(r.warnings).toContain("(VI_1) Setting unicast VRRPv3 checksum to old version");
    expectDrop(run(pkt, { ...rx, oldUnicastChecksum: "never" }), "checksum_err");
    expect(expectOk(run(pkt, { ...rx, oldUnicastChecksum: "on" })).oldUnicastChecksum).toBeUndefined();
  });
});

describe("one drop per reason", () => {
  test("packet_len_err: too short for the headers", () => {
    const pkt = packet();
    expectDrop(run(pkt.subarray(0, 19), rxConfig()), "packet_len_err", "IPv4 VRRP packet too short - 19 bytes");
    expectDrop(run(pkt.subarray(0, 27), rxConfig()), "packet_len_err", "too short");
    const ah = packet({}, { ah: { key: KEY, seq: 1, unicast: false } });
    expectDrop(run(ah.subarray(0, 51), rxConfig({ authType: AUTH_AH })), "packet_len_err", "with AH too short");
    expectDrop(run(new Uint8Array(7), rxConfig({ family: "inet6" }), STATE, { family: "inet6", src: "fe80::1", dst: "ff02::12", ifindex: 2, ttl: 255 }),
      "packet_len_err", "IPv6 VRRP packet too short - 7 bytes");
    const ihl = pkt.slice();
    ihl[0] = 0x44;
    expectDrop(run(ihl, rxConfig()), "packet_len_err");
  });
  test("packet_len_err: count promises more addresses than received", () => {
    const pkt = packet();
    pkt[20 + 3] = 2;
    expectDrop(run(pkt, rxConfig()), "packet_len_err", "(VI_1) vrrp packet from 192.0.2.11 too short, length 40 and expect 44");
  });
  test("packet_len_err: IPv4 total length disagrees with the bytes read", () => {
    const pkt = fixIpSum(packet());
    pkt[3] = 44;
    expectDrop(run(pkt, rxConfig()), "packet_len_err", "(VI_1) ip_tot_len mismatch against received length from 192.0.2.11. 44 and received 40");
  });
  test("ip_ttl_err: multicast TTL below 255", () => {
    expectDrop(run(packet({}, { ttl: 254 }), rxConfig()), "ip_ttl_err", "(VI_1) invalid TTL/HL from 192.0.2.11. Received 254 and expect 255");
  });
  test("ip_ttl_err: unicast TTL outside the peer's range (after advert_rcvd)", () => {
    const r = run(packet({}, { dst: "192.0.2.12", ttl: 64 }), rxConfig({ unicast: true, peers: [{ address: "192.0.2.11", minTtl: 250 }] }));
    expectDrop(r, "ip_ttl_err", "TTL/HL 64 from 192.0.2.11 not in range [250, 255]");
    expect(r.counters).toEqual(["advert_rcvd", "ip_ttl_err"]);
  });
  test("version_err", () => {
    expectDrop(run(packet(), rxConfig({ version: 3, authType: AUTH_NONE })), "version_err", "wrong VRRP version from 192.0.2.11. Received 2 and expect 3");
  });
  test("invalid_authtype", () => {
    expectDrop(run(packet({ authType: 3 }), rxConfig()), "invalid_authtype", "(VI_1) Invalid auth type from 192.0.2.11: 3");
  });
  test("authtype_mismatch", () => {
    expectDrop(run(packet(), rxConfig({ authType: AUTH_NONE })), "authtype_mismatch", "received a 1 auth from 192.0.2.11, expecting 0!");
    expectDrop(run(packet({}, { ah: { key: KEY, seq: 1, unicast: false } }), rxConfig()), "authtype_mismatch", "Received AH header but auth type not AH");
    expectDrop(run(packet(), rxConfig({ authType: AUTH_AH })), "authtype_mismatch", "No AH header but auth type is AH");
  });
  test("auth_failure: wrong password, bad ICV, SPI not the source", () => {
    expectDrop(run(packet({ authData: passwordBytes("lab51px") }), rxConfig()), "auth_failure", "(VI_1) received an invalid passwd from 192.0.2.11!");
    const rxAh = rxConfig({ authType: AUTH_AH });
    expectDrop(run(packet({}, { ah: { key: passwordBytes("other"), seq: 1, unicast: false } }), rxAh), "auth_failure", "invalid IPSEC HMAC-MD5 value");
    const spi = packet({}, { ah: { key: KEY, seq: 1, unicast: false } });
    spi[27] = 12;
    signAh(spi, 20, KEY, false);
    expectDrop(run(spi, rxAh), "auth_failure", "invalid IPSEC SPI value");
  });
  test("ah_seq_err: replayed sequence number", () => {
    const pkt = packet({}, { ah: { key: KEY, seq: 7, unicast: false } });
    expectDrop(run(pkt, rxConfig({ authType: AUTH_AH }), { ...STATE, lastAhSeq: 7 }), "ah_seq_err", "sequence number 7 already processed");
  });
  test("ah_next_header_err: AH protecting another protocol", () => {
    const pkt = packet({}, { ah: { key: KEY, seq: 1, unicast: false } });
    pkt[20] = 6;
    expectDrop(run(pkt, rxConfig({ authType: AUTH_AH })), "ah_next_header_err");
  });
  test("advert_interval_err: v2 interval must match", () => {
    const r = run(packet({ adverIntCs: 200 }), rxConfig());
    expectDrop(r, "advert_interval_err", "(VI_1) advertisement interval mismatch with 192.0.2.11 mine=1 sec rcv'd=2 sec");
    // AH was already recorded when a later check fails
    const ah = run(packet({ adverIntCs: 200 }, { ah: { key: KEY, seq: 4, unicast: false } }), rxConfig({ authType: AUTH_AH }));
    expectDrop(ah, "advert_interval_err");
    expect(!ah.ok && ah.ahSeq).toBe(4);
  });
  test("invalid_type_rcvd", () => {
    expectDrop(run(packet({ type: 2 }), rxConfig()), "invalid_type_rcvd", "(VI_1) Invalid packet type from 192.0.2.11. 2 and expect 1");
  });
  test("checksum_err: v2, v3 and the two v3 forms", () => {
    const v2 = packet();
    v2[26]! ^= 0x01;
    expectDrop(run(v2, rxConfig()), "checksum_err", "(VI_1) Invalid VRRPv2 checksum from 192.0.2.11");
    const v3f = fields({ version: 3, authType: undefined, authData: undefined });
    const v3 = packet(v3f);
    v3[27]! ^= 0x80;
    expectDrop(run(v3, rxConfig({ version: 3, authType: AUTH_NONE })), "checksum_err", "Invalid VRRPv3 checksum");
    // a standard receiver refuses the no-pseudo-header form
    expectDrop(run(packet(v3f, { v3ChecksumAsV2: true }), rxConfig({ version: 3, authType: AUTH_NONE })), "checksum_err");
    // the pseudo-header covers the source address
    const spoof = packet(v3f);
    spoof[15] = 99;
    expectDrop(run(fixIpSum(spoof), rxConfig({ version: 3, authType: AUTH_NONE })), "checksum_err");
  });
  test("mcast_mode_err: multicast instance gets unicast and vice versa", () => {
    expectDrop(run(packet({}, { dst: "192.0.2.12" }), rxConfig()), "mcast_mode_err", "(VI_1) Expected multicast packet but received unicast packet from 192.0.2.11");
    expectDrop(run(packet(), rxConfig({ unicast: true })), "mcast_mode_err", "Expected unicast packet but received multicast packet");
  });
  test("owner_ignored: address owner with owner_ignore_adverts", () => {
    const rx = rxConfig({ ownerIgnoreAdverts: true });
    expectDrop(run(packet(), rx, { ...STATE, effectivePriority: 255 }), "owner_ignored", "since we are address owner");
    expectOk(run(packet(), rx, { ...STATE, effectivePriority: 254 }));
  });
  test("unicast_src_err: unknown unicast source", () => {
    const pkt = packet({}, { dst: "192.0.2.12" });
    const r = run(pkt, rxConfig({ unicast: true, checkUnicastSrc: true, peers: [{ address: "192.0.2.13" }] }));
    expectDrop(r, "unicast_src_err", "(VI_1) unicast source address 192.0.2.11 not a unicast peer");
    expectOk(run(pkt, rxConfig({ unicast: true, checkUnicastSrc: true, peers: [{ address: "192.0.2.13" }, { address: "192.0.2.11" }] })));
    // without check_unicast_src any source is taken
    expectOk(run(pkt, rxConfig({ unicast: true, peers: [{ address: "192.0.2.13" }] })));
  });
  test("vrid_err: packet for another VRID", () => {
    expectDrop(run(packet({ vrid: 52 }), rxConfig()), "vrid_err");
  });
  test("IPv6: hop limit, multicast-ness from pktinfo, optional checksum", () => {
    const src = "fe80::ff:fe00:b";
    const f = fields({ version: 3, authType: undefined, authData: undefined, addresses: ["2001:db8::100"] });
    const pdu = encodeAdvert(f, { version: 3, family: "inet6", src: parseIPv6(src)!, dst: parseIPv6("ff02::12")! });
    const rx = rxConfig({ family: "inet6", version: 3, authType: AUTH_NONE, vips: ["2001:db8::100"] });
    const meta: RxMeta = { family: "inet6", src, dst: "ff02::12", ifindex: 2, ttl: 255 };
    expectOk(run(pdu, rx, STATE, meta));
    expectOk(run(pdu, rx, STATE, { ...meta, ttl: -1 })); // hop limit not received
    expectDrop(run(pdu, rx, STATE, { ...meta, ttl: 1 }), "ip_ttl_err", "invalid TTL/HL from fe80::ff:fe00:b. Received 1 and expect 255");
    expectDrop(run(pdu, rx, STATE, { ...meta, dst: "fe80::ff:fe00:c" }), "mcast_mode_err");
    expectOk(run(pdu, { ...rx, verifyIpv6Checksum: true }, STATE, meta));
    expectDrop(run(pdu, { ...rx, verifyIpv6Checksum: true }, STATE, { ...meta, src: "fe80::ff:fe00:d" }), "checksum_err");
    expectOk(run(pdu, rx, STATE, { ...meta, src: "fe80::ff:fe00:d" })); // kernel's job by default
  });
});

describe("robustness", () => {
  test("20,000+ random mutations and truncations never throw", () => {
    let seed = 0x5eed1234;
    const rnd = (n: number): number => {
      seed ^= seed << 13; seed >>>= 0;
      seed ^= seed >>> 17;
      seed ^= seed << 5; seed >>>= 0;
      return seed % n;
    };
    const v3f = fields({ version: 3, authType: undefined, authData: undefined });
    const v6f = { ...v3f, addresses: ["2001:db8::100", "2001:db8::101"] };
    const cases: { pkt: Uint8Array; rx: RxConfig; meta: (p: Uint8Array) => RxMeta }[] = [
      { pkt: packet(), rx: rxConfig(), meta: meta4 },
      { pkt: packet({}, { ah: { key: KEY, seq: 3, unicast: false } }), rx: rxConfig({ authType: AUTH_AH }), meta: meta4 },
      { pkt: packet(v3f), rx: rxConfig({ version: 3, authType: AUTH_NONE }), meta: meta4 },
      { pkt: packet(v3f, { dst: "192.0.2.12" }), rx: rxConfig({ version: 3, authType: AUTH_NONE, unicast: true, checkUnicastSrc: true, peers: [{ address: "192.0.2.11", maxTtl: 255 }] }), meta: meta4 },
      {
        pkt: encodeAdvert(v6f, { version: 3, family: "inet6", src: parseIPv6("fe80::1")!, dst: parseIPv6("ff02::12")! }),
        rx: rxConfig({ family: "inet6", version: 3, authType: AUTH_NONE, vips: v6f.addresses, verifyIpv6Checksum: true }),
        meta: () => ({ family: "inet6", src: "fe80::1", dst: "ff02::12", ifindex: 2, ttl: 255 }),
      },
    ];
    const statNames = new Set(Object.keys(newStats()));
    const seen = new Set<string>();
    let accepted = 0;
    const N = 24_000;
    for (let i = 0; i < N; i++) {
      const c = cases[i % cases.length]!;
      let pkt = c.pkt.slice();
      const op = rnd(5);
      if (op === 0) pkt = pkt.subarray(0, rnd(pkt.length + 1));
      else if (op === 1) {
        const longer = new Uint8Array(pkt.length + 1 + rnd(40));
        longer.set(pkt);
        for (let j = pkt.length; j < longer.length; j++) longer[j] = rnd(256);
        pkt = longer;
      } else {
        const flips = 1 + rnd(op === 4 ? 12 : 3);
        for (let j = 0; j < flips && pkt.length > 0; j++) pkt[rnd(pkt.length)] = rnd(256);
      }
      const meta = c.meta(c.pkt);
      if (rnd(4) === 0) meta.ttl = rnd(300) - 1;
      const state: RxState = { effectivePriority: rnd(256), lastAhSeq: rnd(5) };
      const rx = rnd(10) === 0 ? cases[rnd(cases.length)]!.rx : c.rx; // sometimes the wrong instance/family
      let r: ValidateResult;
      try {
        const p = parseReceived(pkt, meta);
        r = p.ok ? validateAdvert(p.packet, meta, rx, state) : p;
      } catch (e) {
        throw new Error(`threw on case ${i % cases.length} bytes ${Buffer.from(pkt).toString("hex")}: ${e}`);
      }
      if (r.ok) {
        accepted++;
        expect(r.advert.vrid).toBe(rx.vrid);
        for (const name of r.counters) expect(statNames.has(name)).toBe(true);
      } else {
        expect(statNames.has(r.reason)).toBe(true);
        expect(typeof r.message).toBe("string");
        seen.add(r.reason);
      }
    }
    // the mutations reach deep into the checks, not just the length test
    expect(seen.size).toBeGreaterThanOrEqual(8);
    expect(accepted).toBeGreaterThan(0);
  });
});
