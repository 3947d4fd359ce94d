/**
 * BFD Control packet codec against packets captured from keepalived 2.2.7
 * (test/fixtures/bfd, README there): every packet decodes, re-encodes byte for byte, and the
 * handshake in the capture reads as tcpdump printed it. Malformed packets are rejected with
 * the RFC 5880 §6.8.6 reason (plus keepalived's extra checks), never thrown.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { BfdState, decodeBfd, encodeBfd, type BfdControl } from "../../src/bfd/codec.ts";
import { linkFrame, readPcap } from "./pcap.ts";

interface Captured { src: string; dst: string; ttl: number; srcPort: number; dstPort: number; payload: Uint8Array }

function captured(): Captured[] {
  const pcap = readPcap(join(import.meta.dir, "../fixtures/bfd/keepalived-2.2.7-v4.pcap"));
  return pcap.records.map((r) => {
    const ip = linkFrame(pcap.linkType, r.data).payload;
    const ihl = (ip[0]! & 15) * 4;
    const udp = ip.subarray(ihl);
    const dv = new DataView(udp.buffer, udp.byteOffset, udp.byteLength);
    return {
      src: [...ip.subarray(12, 16)].join("."), dst: [...ip.subarray(16, 20)].join("."), ttl: ip[8]!,
      srcPort: dv.getUint16(0), dstPort: dv.getUint16(2), payload: udp.subarray(8, dv.getUint16(4)),
    };
  });
}

function decoded(b: Uint8Array): BfdControl {
  const r = decodeBfd(b);
  if (!r.ok) throw new Error(`decode failed: ${r.error}`);
  return r.packet;
}

describe("BFD codec: keepalived 2.2.7 capture", () => {
  const pkts = captured();

  test("every packet decodes and re-encodes byte for byte", () => {
    expect(pkts.length).toBe(63);
    for (const p of pkts) {
      expect(p.dstPort).toBe(3784);
      expect(p.srcPort).toBeGreaterThanOrEqual(49152);
      expect(p.ttl).toBe(255);
      expect(p.payload.length).toBe(24);
      expect(encodeBfd(decoded(p.payload))).toEqual(new Uint8Array(p.payload));
    }
  });

  test("the first packet is A's Down at idle_tx with no Your Discriminator", () => {
    const first = decoded(pkts[0]!.payload);
    expect(pkts[0]!.src).toBe("192.0.2.1");
    expect(first).toEqual({
      version: 1, diag: 0, state: BfdState.Down, poll: false, final: false, controlPlaneIndependent: false,
      authPresent: false, demand: false, multipoint: false, detectMult: 3, length: 24,
      myDiscriminator: 0xdf7d631a, yourDiscriminator: 0, desiredMinTxInterval: 1_000_000,
      requiredMinRxInterval: 100_000, requiredMinEchoRxInterval: 0,
    });
  });

  test("handshake: Down → Init → Up with Poll (min_tx now), answered with Final", () => {
    const seq = pkts.map((p) => ({ from: p.src, ...decoded(p.payload) }));
    const init = seq.findIndex((p) => p.state === BfdState.Init);
    const poll = seq.findIndex((p) => p.poll);
    const final = seq.findIndex((p) => p.final);
    expect(init).toBeGreaterThan(0);
    expect(seq[init]!.from).toBe("192.0.2.1");
    expect(seq[init]!.yourDiscriminator).toBe(0xbb2bf1d9);
    expect(seq[poll]!).toMatchObject({ from: "192.0.2.2", state: BfdState.Up, desiredMinTxInterval: 100_000 });
    expect(final).toBe(poll + 1);
    expect(seq[final]!).toMatchObject({ from: "192.0.2.1", state: BfdState.Up, desiredMinTxInterval: 100_000, yourDiscriminator: 0xbb2bf1d9 });
    expect(seq.filter((p) => p.poll).length).toBe(1);
    const last = seq.at(-1)!;
    expect(last).toMatchObject({ from: "192.0.2.1", state: BfdState.Down, diag: 1, desiredMinTxInterval: 1_000_000 });
  });
});

describe("BFD codec: malformed packets (RFC 5880 §6.8.6)", () => {
  const good = (): Uint8Array => encodeBfd({
    version: 1, diag: 0, state: BfdState.Up, poll: false, final: false, controlPlaneIndependent: false,
    authPresent: false, demand: false, multipoint: false, detectMult: 3, length: 24,
    myDiscriminator: 7, yourDiscriminator: 9, desiredMinTxInterval: 100_000, requiredMinRxInterval: 100_000,
    requiredMinEchoRxInterval: 0,
  });
  const cases: Array<[string, (b: Uint8Array) => Uint8Array, string]> = [
    ["shorter than 24 bytes", (b) => b.subarray(0, 23), "too-short"],
    ["Length field above the datagram", (b) => { b[3] = 26; return b; }, "length-mismatch"],
    ["Length field below 24", (b) => { b[3] = 20; return b; }, "length-mismatch"],
    ["datagram longer than Length", (b) => { const c = new Uint8Array(28); c.set(b); return c; }, "length-mismatch"],
    ["version 0", (b) => { b[0] = b[0]! & 0x1f; return b; }, "bad-version"],
    ["version 2", (b) => { b[0] = (2 << 5) | (b[0]! & 0x1f); return b; }, "bad-version"],
    ["Detect Mult 0", (b) => { b[2] = 0; return b; }, "zero-detect-mult"],
    ["Multipoint bit", (b) => { b[1] = b[1]! | 1; return b; }, "multipoint"],
    ["My Discriminator 0", (b) => { b.fill(0, 4, 8); return b; }, "zero-my-discriminator"],
    ["Your Discriminator 0 while Up", (b) => { b.fill(0, 8, 12); return b; }, "zero-your-discriminator"],
    ["Your Discriminator 0 while Init", (b) => { b.fill(0, 8, 12); b[1] = (2 << 6); return b; }, "zero-your-discriminator"],
    ["Poll and Final together", (b) => { b[1] = b[1]! | 0x30; return b; }, "poll-and-final"],
    ["Diag 9", (b) => { b[0] = (1 << 5) | 9; return b; }, "bad-diag"],
  ];
  for (const [name, mutate, error] of cases) {
    test(name, () => {
      expect(decodeBfd(mutate(good()))).toEqual({ ok: false, error: error as never });
    });
  }

  test("Your Discriminator 0 is fine while Down or AdminDown", () => {
    for (const sta of [BfdState.Down, BfdState.AdminDown]) {
      const b = good();
      b.fill(0, 8, 12);
      b[1] = sta << 6;
      const r = decodeBfd(b);
      expect(r.ok).toBe(true);
      if (r.ok) expect(r.packet.state).toBe(sta);
    }
  });

  test("random garbage never throws", () => {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) & 0xff;
    let accepted = 0;
    for (let i = 0; i < 2000; i++) {
      const b = new Uint8Array(i % 40);
      for (let j = 0; j < b.length; j++) b[j] = rnd();
      const r = decodeBfd(b);
      if (r.ok) accepted++;
    }
    expect(accepted).toBeLessThan(20);
  });
});
