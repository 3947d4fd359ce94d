/** rtnetlink requests, dumps and the monitor inside a test namespace (root only). */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createLab, type Lab, type LabNode } from "./lab.ts";
import { withNetns } from "../../ffi/netns.ts";
import { createFdWatcher, type FdWatcher } from "../../ffi/fdwatch.ts";
import {
  IFA_F_NODAD, RT_SCOPE_LINK, RtMonitor, RtNetlink, type AddressInfo, type RtEvent,
} from "../../ffi/rtnetlink.ts";
import { SysError } from "../../ffi/libc.ts";
import { NETLINK_GENERIC, NetlinkError, NetlinkSocket, resolveGenlFamily } from "../../ffi/netlink.ts";

async function waitFor(cond: () => boolean, ms = 2000): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!cond() && performance.now() < deadline) await Bun.sleep(5);
  return cond();
}

/** Addresses as `ip -j addr` reports them in the namespace: the independent cross-check. */
function ipAddrs(lab: Lab, node: string): { local: string; prefixlen: number; label?: string; broadcast?: string }[] {
  const j = JSON.parse(lab.exec(node, ["ip", "-j", "addr", "show", "dev", lab.node(node).ifname]).stdout);
  return (j[0]?.addr_info ?? []).filter((a: { local?: string }) => a.local);
}

describe.skipIf(process.getuid?.() !== 0)("rtnetlink in netns", () => {
  let lab: Lab;
  let A: LabNode;
  let rt: RtNetlink;
  let watcher: FdWatcher;
  let monitor: RtMonitor;
  const events: RtEvent[] = [];

  beforeAll(() => {
    lab = createLab({ purpose: "rtnl", nodes: ["a", "b"], v4: "192.0.2.0/24", v6: true });
    A = lab.node("a");
    watcher = createFdWatcher();
    rt = withNetns(A.ns, () => new RtNetlink());
    monitor = withNetns(A.ns, () => new RtMonitor(watcher, (ev) => events.push(ev)));
  });
  afterAll(() => {
    monitor?.close();
    rt?.close();
    watcher?.close();
    lab?.destroy();
  });

  test("dumpLinks lists lo and the veth with name, MAC, MTU, kind and operstate", () => {
    const links = rt.dumpLinks();
    expect(links.map((l) => l.name).sort()).toEqual(["eth0", "lo"]);
    const eth = links.find((l) => l.name === "eth0")!;
    expect(eth).toMatchObject({ ifindex: A.ifindex, mac: A.mac, mtu: 1500, kind: "veth" });
    expect(eth.operstate).toBe(6); // up
    expect(eth.flags & 0x1).toBe(1); // IFF_UP
  });

  test("add, dump and delete IPv4 and IPv6 addresses; the monitor sees NEWADDR and DELADDR", async () => {
    const v4 = { ifindex: A.ifindex, family: "inet" as const, address: "192.0.2.100", prefixlen: 24,
      broadcast: "192.0.2.255", label: "eth0:vip" };
    const v6 = { ifindex: A.ifindex, family: "inet6" as const, address: "2001:db8::100", prefixlen: 64,
      noDad: true, preferredLft: 0 };
    rt.addAddress(v4);
    rt.addAddress(v6);
    const dumped = rt.dumpAddresses();
    const d4 = dumped.find((a) => a.address === "192.0.2.100");
    const d6 = dumped.find((a) => a.address === "2001:db8::100");
    expect(d4).toMatchObject({ family: "inet", prefixlen: 24, broadcast: "192.0.2.255", label: "eth0:vip", ifindex: A.ifindex });
    expect(d6).toMatchObject({ family: "inet6", prefixlen: 64, preferredLft: 0, ifindex: A.ifindex });
    expect(d6!.flags & IFA_F_NODAD).toBe(IFA_F_NODAD);
    expect(rt.dumpAddresses("inet6").every((a) => a.family === "inet6")).toBe(true);
    expect(rt.dumpAddresses("inet").map((a) => a.address)).toContain("192.0.2.100");
    // Cross-check with iproute2.
    const shown = ipAddrs(lab, "a");
    expect(shown.find((a) => a.local === "192.0.2.100")).toMatchObject({ prefixlen: 24, label: "eth0:vip", broadcast: "192.0.2.255" });
    expect(shown.find((a) => a.local === "2001:db8::100")).toMatchObject({ prefixlen: 64 });

    const isAddr = (kind: string, addr: string) => (e: RtEvent) =>
      e.kind === kind && (e as { addr: AddressInfo }).addr.address === addr;
    expect(await waitFor(() => events.some(isAddr("newaddr", "192.0.2.100")) && events.some(isAddr("newaddr", "2001:db8::100")))).toBe(true);

    rt.deleteAddress(v4);
    rt.deleteAddress(v6);
    expect(await waitFor(() => events.some(isAddr("deladdr", "192.0.2.100")) && events.some(isAddr("deladdr", "2001:db8::100")))).toBe(true);
    expect(ipAddrs(lab, "a").map((a) => a.local)).not.toContain("192.0.2.100");
    expect(rt.dumpAddresses().map((a) => a.address)).not.toContain("2001:db8::100");
  });

  test("errors come back as NetlinkError with errno name and the kernel's ext-ack text", () => {
    // Own subnet: a secondary address must share the scope of its subnet's primary.
    const spec = { ifindex: A.ifindex, family: "inet" as const, address: "203.0.113.1", prefixlen: 24, scope: RT_SCOPE_LINK };
    rt.addAddress(spec);
    let err: unknown;
    try { rt.addAddress(spec); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(NetlinkError);
    expect(err).toBeInstanceOf(SysError);
    expect((err as NetlinkError).code).toBe("EEXIST");
    expect((err as NetlinkError).errno).toBe(17);
    expect((err as NetlinkError).message).toMatch(/^RTM_NEWADDR\(203\.0\.113\.1\/24\): EEXIST \(File exists\)/);
    expect(typeof (err as NetlinkError).extAck).toBe("string"); // "ipv4: Address already assigned" on 6.x
    rt.addAddress(spec, true); // replace succeeds
    expect(rt.dumpAddresses("inet").find((a) => a.address === "203.0.113.1")?.scope).toBe(RT_SCOPE_LINK);
    rt.deleteAddress(spec);
    err = undefined;
    try { rt.deleteAddress(spec); } catch (e) { err = e; }
    expect((err as NetlinkError).code).toBe("EADDRNOTAVAIL");
    err = undefined;
    try { rt.addAddress({ ...spec, ifindex: 9999 }); } catch (e) { err = e; }
    expect((err as NetlinkError).code).toBe("ENODEV");
  });

  test("the monitor reports link changes", async () => {
    const before = events.length;
    lab.exec("a", ["ip", "link", "set", A.ifname, "mtu", "1400"]);
    expect(await waitFor(() => events.slice(before).some((e) => e.kind === "newlink" && e.link.mtu === 1400))).toBe(true);
    lab.exec("a", ["ip", "link", "set", A.ifname, "mtu", "1500"]);
  });

  test("the monitor reports resync when its receive buffer overflows", async () => {
    const evs: RtEvent[] = [];
    // Tiny buffer, not drained while 60 addresses come and go: the kernel drops and says ENOBUFS.
    const small = withNetns(A.ns, () => new RtMonitor(watcher, (e) => evs.push(e), { rcvbuf: 1 }));
    try {
      watcher.unwatch(small.sock.fd);
      for (let i = 0; i < 30; i++) {
        const s = { ifindex: A.ifindex, family: "inet" as const, address: `198.51.100.${i + 1}`, prefixlen: 24 };
        rt.addAddress(s);
        rt.deleteAddress(s);
      }
      small.poll();
      expect(evs.filter((e) => e.kind === "resync").length).toBe(1);
      // After the overrun the socket keeps working: a new change is reported again.
      const s = { ifindex: A.ifindex, family: "inet" as const, address: "198.51.100.200", prefixlen: 24 };
      rt.addAddress(s);
      rt.deleteAddress(s);
      evs.length = 0;
      small.poll();
      expect(evs.some((e) => e.kind === "newaddr" && e.addr.address === "198.51.100.200")).toBe(true);
    } finally {
      small.close();
    }
  });

  test("generic netlink: nlctrl resolves itself; an absent family is ENOENT", () => {
    const g = withNetns(A.ns, () => new NetlinkSocket(NETLINK_GENERIC));
    try {
      expect(resolveGenlFamily(g, "nlctrl")).toEqual({ id: 16, version: expect.any(Number) });
      let err: unknown;
      try { resolveGenlFamily(g, "vipdnone"); } catch (e) { err = e; }
      expect((err as NetlinkError).code).toBe("ENOENT");
    } finally {
      g.close();
    }
  });
});
