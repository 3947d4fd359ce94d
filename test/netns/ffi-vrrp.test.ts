/** Raw VRRP sockets and AF_PACKET between two namespaces joined by a veth pair (root only). */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createLab, type Lab, type LabNode } from "./lab.ts";
import { withNetns } from "../../ffi/netns.ts";
import { VrrpSocket, type VrrpRxMeta } from "../../ffi/vrrp-socket.ts";
import { createFdWatcher, type FdWatcher } from "../../ffi/fdwatch.ts";
import { PacketSocket, IFF_NOARP, IFF_UP } from "../../ffi/packet-socket.ts";
import * as L from "../../ffi/libc.ts";

interface Rx { data: Uint8Array; meta: VrrpRxMeta }

/** A 20-byte IPv4 header + payload, as the VRRP codec would build it (TOS 0xc0, TTL 255). */
function ipv4Packet(src: string, dst: string, payload: Uint8Array, id: number, ttl = 255): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  const v = new DataView(p.buffer);
  p[0] = 0x45; p[1] = 0xc0;
  v.setUint16(2, p.length); v.setUint16(4, id);
  p[8] = ttl; p[9] = 112;
  p.set(L.parseIPv4(src), 12); p.set(L.parseIPv4(dst), 16);
  p.set(payload, 20);
  return p;
}

/** VRRPv3 PDU with one IPv4/IPv6 address, checksum field zero. */
function vrrpPdu(vrid: number, addr: Uint8Array): Uint8Array {
  const p = new Uint8Array(8 + addr.length);
  p.set([0x31, vrid, 100, 1, 0, 100, 0, 0]);
  p.set(addr, 8);
  return p;
}

/** One's-complement sum over the IPv6 pseudo-header + payload; 0xffff means the checksum verifies. */
function ipv6PseudoSum(src: string, dst: string, proto: number, payload: Uint8Array): number {
  const buf = new Uint8Array(40 + payload.length + (payload.length & 1));
  buf.set(L.parseIPv6(src), 0); buf.set(L.parseIPv6(dst), 16);
  new DataView(buf.buffer).setUint32(32, payload.length);
  buf[39] = proto;
  buf.set(payload, 40);
  let sum = 0;
  for (let i = 0; i < buf.length; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

async function waitFor(cond: () => boolean, ms = 2000): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!cond() && performance.now() < deadline) await Bun.sleep(5);
  return cond();
}

describe.skipIf(process.getuid?.() !== 0)("raw VRRP sockets in netns", () => {
  let lab: Lab;
  let A: LabNode, B: LabNode;
  let watcher: FdWatcher;
  const sockets: { close(): void }[] = [];
  const open = <T extends { close(): void }>(ns: string, f: () => T): T => {
    const s = withNetns(ns, f);
    sockets.push(s);
    return s;
  };

  beforeAll(() => {
    lab = createLab({ purpose: "ffivrrp", nodes: ["a", "b"], v4: "192.0.2.0/24", v6: true });
    A = lab.node("a");
    B = lab.node("b");
    watcher = createFdWatcher({ impl: "sigio" });
  });
  afterAll(() => {
    for (const s of sockets) s.close();
    watcher?.close();
    lab?.destroy();
  });

  test("IPv4 multicast: IP_HDRINCL packet arrives with TTL 255, group dst, ifindex, header intact", async () => {
    const tx = open(A.ns, () => VrrpSocket.open({ family: "inet", ifname: A.ifname }));
    const rx = open(B.ns, () => VrrpSocket.open({ family: "inet", ifname: B.ifname }));
    const got: Rx[] = [];
    rx.start(watcher, (data, meta) => got.push({ data, meta }));
    const pdu = vrrpPdu(7, L.parseIPv4("192.0.2.100"));
    const pkt = ipv4Packet(A.v4!, "224.0.0.18", pdu, 0x1234);
    expect(tx.send(pkt, "224.0.0.18")).toBe(pkt.length);
    expect(await waitFor(() => got.length >= 1)).toBe(true);
    const { data, meta } = got[0]!;
    expect(meta).toMatchObject({ family: "inet", src: A.v4, dst: "224.0.0.18", ifindex: B.ifindex, ttl: 255, truncated: false });
    expect(data.length).toBe(pkt.length);
    expect(data[1]).toBe(0xc0); // our TOS, not the kernel's
    expect(new DataView(data.buffer).getUint16(4)).toBe(0x1234); // our IP id
    expect([...data.subarray(20)]).toEqual([...pdu]);
    expect(got.length).toBe(1);
  });

  test("IPv4 unicast: sent to the peer, received on a unicast socket, not on the group socket", async () => {
    const tx = open(A.ns, () => VrrpSocket.open({ family: "inet", ifname: A.ifname }));
    const ucast = open(B.ns, () => VrrpSocket.open({ family: "inet", ifname: B.ifname, unicast: true, bindAddress: B.v4 }));
    const mcast = open(B.ns, () => VrrpSocket.open({ family: "inet", ifname: B.ifname }));
    const got: Rx[] = [], gotMcast: Rx[] = [];
    ucast.start(watcher, (data, meta) => got.push({ data, meta }));
    mcast.start(watcher, (data, meta) => gotMcast.push({ data, meta }));
    tx.send(ipv4Packet(A.v4!, B.v4!, vrrpPdu(8, L.parseIPv4("192.0.2.101")), 2, 64), B.v4!);
    expect(await waitFor(() => got.length >= 1)).toBe(true);
    expect(got[0]!.meta).toMatchObject({ src: A.v4, dst: B.v4, ttl: 64, ifindex: B.ifindex });
    await Bun.sleep(50);
    expect(gotMcast.length).toBe(0);
  });

  test("IPv4 datagram larger than the buffer is delivered truncated and flagged", async () => {
    const tx = open(A.ns, () => VrrpSocket.open({ family: "inet", ifname: A.ifname }));
    const rx = open(B.ns, () => VrrpSocket.open({ family: "inet", ifname: B.ifname, maxPacket: 24 }));
    const got: Rx[] = [];
    rx.start(watcher, (data, meta) => got.push({ data, meta }));
    const pkt = ipv4Packet(A.v4!, "224.0.0.18", vrrpPdu(9, L.parseIPv4("192.0.2.102")), 3);
    tx.send(pkt, "224.0.0.18");
    tx.send(pkt, "224.0.0.18");
    expect(await waitFor(() => got.length >= 2)).toBe(true);
    expect(got[0]!.meta.truncated).toBe(true);
    expect(got[0]!.meta.wireLength).toBe(pkt.length);
    expect(got[0]!.data.length).toBe(24);
    expect(got[1]!.meta.truncated).toBe(true);
  });

  test("IPv6 multicast: hop limit 255, link-local source, kernel checksum verifies with pseudo-header", async () => {
    const tx = open(A.ns, () => VrrpSocket.open({ family: "inet6", ifname: A.ifname }));
    const rx = open(B.ns, () => VrrpSocket.open({ family: "inet6", ifname: B.ifname }));
    const got: Rx[] = [];
    rx.start(watcher, (data, meta) => got.push({ data, meta }));
    const pdu = vrrpPdu(10, L.parseIPv6("2001:db8::100"));
    tx.send(pdu, "ff02::12");
    expect(await waitFor(() => got.length >= 1)).toBe(true);
    const { data, meta } = got[0]!;
    expect(meta).toMatchObject({ family: "inet6", src: A.linkLocal, dst: "ff02::12", ifindex: B.ifindex, ttl: 255 });
    expect(data.length).toBe(pdu.length);
    const cksum = (data[6]! << 8) | data[7]!;
    expect(cksum).not.toBe(0);
    expect(ipv6PseudoSum(meta.src, meta.dst, 112, data)).toBe(0xffff);
    // Everything but the checksum is what we sent.
    expect([...data.subarray(0, 6), ...data.subarray(8)]).toEqual([...pdu.subarray(0, 6), ...pdu.subarray(8)]);
  });

  test("IPv6: source chosen with IPV6_PKTINFO; unicast to the peer with configured hop limit", async () => {
    const tx = open(A.ns, () => VrrpSocket.open({ family: "inet6", ifname: A.ifname, unicastHops: 255 }));
    const mrx = open(B.ns, () => VrrpSocket.open({ family: "inet6", ifname: B.ifname }));
    const urx = open(B.ns, () => VrrpSocket.open({ family: "inet6", ifname: B.ifname, unicast: true, bindAddress: B.v6 }));
    const m: Rx[] = [], u: Rx[] = [];
    mrx.start(watcher, (data, meta) => m.push({ data, meta }));
    urx.start(watcher, (data, meta) => u.push({ data, meta }));
    tx.send(vrrpPdu(11, L.parseIPv6("2001:db8::101")), "ff02::12", A.v6);
    expect(await waitFor(() => m.length >= 1)).toBe(true);
    expect(m[0]!.meta.src).toBe(A.v6!);
    expect(ipv6PseudoSum(A.v6!, "ff02::12", 112, m[0]!.data)).toBe(0xffff);
    tx.send(vrrpPdu(12, L.parseIPv6("2001:db8::102")), B.v6!);
    expect(await waitFor(() => u.length >= 1)).toBe(true);
    expect(u[0]!.meta).toMatchObject({ dst: B.v6, ttl: 255, ifindex: B.ifindex });
    expect(u[0]!.data[1]).toBe(12);
    expect(ipv6PseudoSum(u[0]!.meta.src, B.v6!, 112, u[0]!.data)).toBe(0xffff);
  });

  test("IPv6: a 0-byte datagram does not break the socket", async () => {
    const tx = open(A.ns, () => VrrpSocket.open({ family: "inet6", ifname: A.ifname }));
    const rx = open(B.ns, () => VrrpSocket.open({ family: "inet6", ifname: B.ifname }));
    const got: Rx[] = [];
    rx.start(watcher, (data, meta) => got.push({ data, meta }));
    // A plain raw socket (no IPV6_CHECKSUM) can send an empty proto-112 datagram.
    const plain = withNetns(A.ns, () => L.socket(L.AF_INET6, L.SOCK_RAW | L.SOCK_CLOEXEC, 112));
    try {
      const dst = L.sockaddrIn6("ff02::12", 0, A.ifindex);
      for (let i = 0; i < 3; i++) expect(L.sendto(plain, new Uint8Array(0), 0, dst)).toBe(0);
    } finally {
      L.close(plain);
    }
    tx.send(vrrpPdu(13, L.parseIPv6("2001:db8::103")), "ff02::12");
    expect(await waitFor(() => got.some((g) => g.data.length > 1 && g.data[1] === 13))).toBe(true);
    for (const g of got) if (g.data.length === 0) expect(g.meta.wireLength).toBe(0);
    tx.send(vrrpPdu(14, L.parseIPv6("2001:db8::104")), "ff02::12");
    expect(await waitFor(() => got.some((g) => g.data.length > 1 && g.data[1] === 14))).toBe(true);
  });

  test("AF_PACKET: MAC from getsockname, a raw Ethernet frame reaches the peer unchanged", async () => {
    const ps = open(A.ns, () => PacketSocket.open(A.ifname));
    expect(ps.macText).toBe(A.mac);
    expect(ps.flags() & IFF_UP).toBe(IFF_UP);
    expect(ps.flags() & IFF_NOARP).toBe(0);
    // Receiver: AF_PACKET socket for ETH_P_ALL on the peer's interface.
    const rfd = withNetns(B.ns, () => {
      const fd = L.socket(L.AF_PACKET, L.SOCK_RAW | L.SOCK_CLOEXEC | L.SOCK_NONBLOCK, 0);
      L.bind(fd, L.sockaddrLl({ protocol: L.ETH_P_ALL, ifindex: B.ifindex }));
      return fd;
    });
    sockets.push({ close: () => L.close(rfd) });
    const frame = new Uint8Array(60);
    frame.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    frame.set(ps.mac, 6);
    frame.set([0x88, 0xb5], 12); // IEEE local experimental ethertype
    for (let i = 14; i < 60; i++) frame[i] = i;
    expect(ps.send(frame)).toBe(60);
    const buf = L.alloc(2048);
    let seen: Uint8Array | null = null;
    const deadline = performance.now() + 2000;
    while (!seen && performance.now() < deadline) {
      const n = L.recvfromRaw(rfd, buf, 0, null, null);
      if (n > 0 && buf[12] === 0x88 && buf[13] === 0xb5) seen = buf.slice(0, n);
      else if (n < 0) await Bun.sleep(5);
    }
    expect(seen).not.toBeNull();
    expect([...seen!]).toEqual([...frame]);
    lab.exec("a", ["ip", "link", "set", A.ifname, "arp", "off"]);
    expect(ps.flags() & IFF_NOARP).toBe(IFF_NOARP);
    lab.exec("a", ["ip", "link", "set", A.ifname, "arp", "on"]);
  });

  test("setsockopt failures surface as SysError with the option name", () => {
    let err: unknown;
    try {
      withNetns(B.ns, () => VrrpSocket.open({ family: "inet", ifname: "nosuchif0", ifindex: 999 }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(L.SysError);
    expect((err as L.SysError).code).toBe("ENODEV");
    expect((err as L.SysError).message).toMatch(/^setsockopt\(SO_BINDTODEVICE\): ENODEV \(No such device\)/);
  });
});
