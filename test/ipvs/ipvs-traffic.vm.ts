/**
 * Real traffic through a service our Ipvs programmed (inside the ipvs-vm): a client
 * namespace fetches from the VIP, two busybox httpd real servers answer through IPVS NAT in
 * weighted round-robin, and our decoded counters equal `ipvsadm -Ln --stats --exact`.
 */
import assert from "node:assert/strict";
import { Ipvs } from "../../ffi/ipvs.ts";
import type { IpvsDestination, IpvsServiceKey, IpvsStats } from "../../src/lvs/ipvs-types.ts";
import { suite, test } from "./harness.ts";

suite("ipvs-traffic");

function sh(cmd: string): string {
  const r = Bun.spawnSync(["/bin/sh", "-c", cmd], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`\`${cmd}\` exited ${r.exitCode}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

const VIP: IpvsServiceKey = { family: "inet", protocol: "tcp", address: "192.0.2.100", port: 80 };
const rs = (i: number, weight: number): IpvsDestination => ({
  family: "inet", address: `203.0.113.1${i}`, port: 80, fwdMethod: "NAT", weight, uThreshold: 0, lThreshold: 0,
});

/** Client netns → VIP on a dummy → two real-server netns behind a bridge (as in the ipvs-vm demo). */
function buildNetwork(): number[] {
  sh(`
    sysctl -qw net.ipv4.ip_forward=1
    ip link add vip0 type dummy && ip link set vip0 up && ip addr add 192.0.2.100/32 dev vip0
    ip netns add vipdt-client
    ip link add c-host type veth peer name c-ns && ip link set c-ns netns vipdt-client
    ip addr add 198.51.100.1/24 dev c-host && ip link set c-host up
    ip -n vipdt-client addr add 198.51.100.2/24 dev c-ns
    ip -n vipdt-client link set c-ns up && ip -n vipdt-client link set lo up
    ip -n vipdt-client route add default via 198.51.100.1
    ip link add rsbr type bridge && ip addr add 203.0.113.1/24 dev rsbr && ip link set rsbr up`);
  const pids: number[] = [];
  for (const i of [1, 2]) {
    sh(`
      ip netns add vipdt-rs${i}
      ip link add rs${i}-host type veth peer name rs${i}-ns
      ip link set rs${i}-host master rsbr up && ip link set rs${i}-ns netns vipdt-rs${i}
      ip -n vipdt-rs${i} addr add 203.0.113.1${i}/24 dev rs${i}-ns
      ip -n vipdt-rs${i} link set rs${i}-ns up && ip -n vipdt-rs${i} link set lo up
      ip -n vipdt-rs${i} route add default via 203.0.113.1
      mkdir -p /tmp/www${i} && echo real-server-${i} >/tmp/www${i}/index.html`);
    pids.push(Number(sh(`ip netns exec vipdt-rs${i} httpd -f -p 203.0.113.1${i}:80 -h /tmp/www${i} >/dev/null 2>&1 & echo $!`).trim()));
  }
  return pids;
}

function teardown(pids: number[]): void {
  for (const p of pids) if (p > 0) sh(`kill ${p} 2>/dev/null; true`);
  sh("for n in vipdt-client vipdt-rs1 vipdt-rs2; do ip netns del $n 2>/dev/null; done; ip link del rsbr 2>/dev/null; ip link del vip0 2>/dev/null; true");
}

/** `n` fetches of the VIP from the client namespace; the answering servers in order. */
function fetch(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(sh("ip netns exec vipdt-client timeout 10 wget -q -O - http://192.0.2.100/").trim());
  return out;
}

/** Conns/InPkts/OutPkts/InBytes/OutBytes per line key from `ipvsadm -Ln --stats --exact`. */
function ipvsadmStats(): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const line of sh("ipvsadm -Ln --stats --exact").split("\n")) {
    const f = line.trim().replace(/^-> /, "").split(/\s+/);
    if (f[0] === "TCP") m.set(f[1]!, f.slice(2, 7).map(Number));
    else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(f[0]!)) m.set(f[0]!, f.slice(1, 6).map(Number));
  }
  return m;
}
const five = (s: IpvsStats | undefined) => (s ? [s.conns, s.inPkts, s.outPkts, s.inBytes, s.outBytes] : []);

test("weighted round-robin over NAT; counters decode to ipvsadm's; weight 0 drains a server", () => {
  const pids = buildNetwork();
  const r = Ipvs.open();
  assert.ok(r.ok, r.ok ? "" : r.message);
  const x = r.ipvs;
  try {
    x.addService({ ...VIP, scheduler: "wrr", flags: 0, timeout: 0, netmask: 32 });
    x.addDestination(VIP, rs(1, 2));
    x.addDestination(VIP, rs(2, 1));
    sh("sleep 0.3");
    const answers = fetch(6);
    const count = (s: string) => answers.filter((a) => a === s).length;
    assert.deepEqual([count("real-server-1"), count("real-server-2")], [4, 2], answers.join(","));

    // The kernel folds its per-CPU counters into what it reports on the 2 s estimator tick:
    // let the last connection's packets land, then read ours and ipvsadm's.
    sh("sleep 2.5");
    const svc = x.getService(VIP)!;
    const dests = x.destinations(VIP);
    const theirs = ipvsadmStats();
    assert.equal(svc.stats?.conns, 6);
    assert.ok((svc.stats?.inBytes ?? 0) > 0 && (svc.stats?.outPkts ?? 0) > 0, JSON.stringify(svc.stats));
    assert.deepEqual(five(svc.stats), theirs.get("192.0.2.100:80"));
    for (const d of dests) assert.deepEqual(five(d.stats), theirs.get(`${d.address}:80`), d.address);
    assert.deepEqual(dests.map((d) => [d.address, d.stats?.conns]).sort(), [["203.0.113.11", 4], ["203.0.113.12", 2]]);
    // The services dump carries the same counters as the single GET_SERVICE.
    assert.deepEqual(five(x.services()[0]?.stats), five(svc.stats));

    // Inhibit (keepalived's inhibit_on_failure): weight 0 sends no new connections there.
    x.editDestination(VIP, rs(1, 0));
    assert.deepEqual(fetch(3), ["real-server-2", "real-server-2", "real-server-2"]);
    sh("sleep 2.5"); // counters folded (see above), so zeroing leaves nothing behind
    x.zero(VIP);
    assert.equal(x.getService(VIP)?.stats?.conns, 0);
    assert.equal(ipvsadmStats().get("192.0.2.100:80")?.[0], 0);
  } finally {
    x.close();
    teardown(pids);
  }
});
