/**
 * The Ipvs class against Debian's IPVS kernel, checked with ipvsadm both ways: what we
 * program, ipvsadm lists exactly; what ipvsadm programs, our dumps read back. Runs inside
 * the ipvs-vm (scripts/ipvs-vm-tests); every case starts from an empty table.
 */
import assert from "node:assert/strict";
import { Ipvs } from "../../ffi/ipvs.ts";
import { withNetns } from "../../ffi/netns.ts";
import type { IpvsDestination, IpvsService, IpvsServiceKey } from "../../src/lvs/ipvs-types.ts";
import { IPVS_SVC_FLAG_KEYWORDS, IP_VS_SVC_F_HASHED, IP_VS_SVC_F_PERSISTENT } from "../../src/lvs/ipvs-types.ts";
import { beforeEach, suite, test } from "./harness.ts";

suite("ipvs-api");

/** Runs a shell command; returns stdout, throws with stderr on a non-zero exit. */
function sh(cmd: string): string {
  const r = Bun.spawnSync(["/bin/sh", "-c", cmd], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`\`${cmd}\` exited ${r.exitCode}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

/** `ipvsadm -S -n` as a sorted list of lines (the kernel's hash order is not ours). */
const saved = (): string[] => sh("ipvsadm -S -n").split("\n").filter((l) => l !== "").sort();

let opened: Ipvs | undefined;
/** One Ipvs for the whole run (opening it is tested separately). */
function ipvs(): Ipvs {
  if (!opened) {
    const r = Ipvs.open();
    if (!r.ok) throw new Error(r.message);
    opened = r.ipvs;
  }
  return opened;
}

beforeEach(() => {
  sh("ipvsadm -C; ipvsadm --stop-daemon master 2>/dev/null; ipvsadm --stop-daemon backup 2>/dev/null; true");
});

const V4: IpvsServiceKey = { family: "inet", protocol: "tcp", address: "192.0.2.100", port: 80 };
const V6: IpvsServiceKey = { family: "inet6", protocol: "tcp", address: "2001:db8::100", port: 443 };
const svc = (k: IpvsServiceKey, o: Partial<IpvsService> = {}): IpvsService =>
  ({ ...k, scheduler: "wlc", flags: 0, timeout: 0, netmask: k.family === "inet6" ? 128 : 32, ...o }) as IpvsService;
const dest = (address: string, port: number, o: Partial<IpvsDestination> = {}): IpvsDestination => ({
  family: address.includes(":") ? "inet6" : "inet", address, port, fwdMethod: "NAT", weight: 1, uThreshold: 0,
  lThreshold: 0, ...o,
});
const sorted = (xs: string[]) => [...xs].sort();

test("open resolves the IPVS family; info matches ipvsadm's header", () => {
  const r = Ipvs.open();
  assert.ok(r.ok, r.ok ? "" : r.message);
  assert.ok(r.ipvs.familyId >= 16, `family id ${r.ipvs.familyId}`);
  const info = r.ipvs.info();
  const header = sh("ipvsadm -Ln").split("\n")[0];
  assert.equal(header, `IP Virtual Server version ${info.version} (size=${info.connTableSize})`);
  assert.equal(info.version, "1.2.1");
  r.ipvs.close();
});

test("services we add are exactly what ipvsadm -S lists", () => {
  const x = ipvs();
  x.addService(svc(V4, { scheduler: "wrr" }));
  x.addService(svc({ family: "inet", protocol: "udp", address: "192.0.2.101", port: 53 }, { scheduler: "rr" }));
  x.addService(svc({ family: "inet", fwmark: 42 }));
  x.addService(svc({ family: "inet6", fwmark: 43 }, { scheduler: "lc" }));
  x.addService(svc(V6, { scheduler: "lc" }));
  x.addService(svc({ family: "inet", protocol: "tcp", address: "192.0.2.102", port: 443 },
    { flags: IP_VS_SVC_F_PERSISTENT, timeout: 300, netmask: 24 }));
  x.addService(svc({ family: "inet", protocol: "tcp", address: "192.0.2.103", port: 80 },
    { scheduler: "sh", flags: IPVS_SVC_FLAG_KEYWORDS["sh-port"]! | IPVS_SVC_FLAG_KEYWORDS["sh-fallback"]! }));
  x.addService(svc({ family: "inet", protocol: "udp", address: "192.0.2.104", port: 5060 },
    { scheduler: "rr", flags: IPVS_SVC_FLAG_KEYWORDS.ops! }));
  x.addService(svc({ family: "inet", protocol: "udp", address: "192.0.2.105", port: 5060 },
    { scheduler: "rr", flags: IP_VS_SVC_F_PERSISTENT, timeout: 60, peName: "sip" }));
  x.addService(svc({ family: "inet6", protocol: "tcp", address: "2001:db8::102", port: 443 },
    { scheduler: "wrr", flags: IP_VS_SVC_F_PERSISTENT, timeout: 120, netmask: 64 }));
  x.addService(svc({ family: "inet", protocol: "sctp", address: "192.0.2.106", port: 3868 }, { scheduler: "mh",
    flags: IPVS_SVC_FLAG_KEYWORDS["mh-port"]! }));
  assert.deepEqual(saved(), sorted([
    "-A -t 192.0.2.100:80 -s wrr",
    "-A -u 192.0.2.101:53 -s rr",
    "-A -f 42 -s wlc",
    "-A -f 43 -6 -s lc",
    "-A -t [2001:db8::100]:443 -s lc",
    "-A -t 192.0.2.102:443 -s wlc -p 300 -M 255.255.255.0",
    "-A -t 192.0.2.103:80 -s sh -b sh-fallback,sh-port",
    "-A -u 192.0.2.104:5060 -s rr -o",
    "-A -u 192.0.2.105:5060 -s rr -p 60 --pe sip",
    "-A -t [2001:db8::102]:443 -s wrr -p 120 -M 64",
    "-A --sctp-service 192.0.2.106:3868 -s mh -b mh-port",
  ]));
});

test("destinations we add (NAT, DR, TUN ipip/gue/gre, IPv6, fwmark) are what ipvsadm lists", () => {
  const x = ipvs();
  x.addService(svc(V4, { scheduler: "wrr" }));
  x.addService(svc(V6, { scheduler: "wrr" }));
  const FW: IpvsServiceKey = { family: "inet", fwmark: 42 };
  x.addService(svc(FW));
  x.addDestination(V4, dest("198.51.100.11", 8080, { weight: 3, uThreshold: 100, lThreshold: 10 }));
  x.addDestination(V4, dest("198.51.100.12", 80, { fwdMethod: "DR" }));
  x.addDestination(V4, dest("198.51.100.13", 80, { fwdMethod: "TUN", weight: 2 }));
  x.addDestination(V4, dest("198.51.100.14", 80, { fwdMethod: "TUN", weight: 4, tunnel: { type: "gue", port: 6080, csum: "csum" } }));
  x.addDestination(V4, dest("198.51.100.15", 80, { fwdMethod: "TUN", weight: 5, tunnel: { type: "gre", port: 0, csum: "csum" } }));
  x.addDestination(V4, dest("198.51.100.16", 80, { fwdMethod: "TUN", tunnel: { type: "gue", port: 6081, csum: "remcsum" } }));
  x.addDestination(V6, dest("2001:db8::11", 443, { weight: 5 }));
  x.addDestination(FW, dest("198.51.100.21", 0, { fwdMethod: "DR", weight: 0 }));
  assert.deepEqual(saved(), sorted([
    "-A -t 192.0.2.100:80 -s wrr",
    "-a -t 192.0.2.100:80 -r 198.51.100.11:8080 -m -w 3",
    "-a -t 192.0.2.100:80 -r 198.51.100.12:80 -g -w 1",
    "-a -t 192.0.2.100:80 -r 198.51.100.13:80 -i -w 2 --tun-type ipip",
    "-a -t 192.0.2.100:80 -r 198.51.100.14:80 -i -w 4 --tun-type gue --tun-port 6080 --tun-csum",
    "-a -t 192.0.2.100:80 -r 198.51.100.15:80 -i -w 5 --tun-type gre --tun-csum",
    "-a -t 192.0.2.100:80 -r 198.51.100.16:80 -i -w 1 --tun-type gue --tun-port 6081 --tun-remcsum",
    "-A -t [2001:db8::100]:443 -s wrr",
    "-a -t [2001:db8::100]:443 -r [2001:db8::11]:443 -m -w 5",
    "-A -f 42 -s wlc",
    "-a -f 42 -r 198.51.100.21:0 -g -w 0",
  ]));
  // ipvsadm -S leaves thresholds out; --thresholds shows them.
  assert.match(sh("ipvsadm -Ln --thresholds"), /-> 198\.51\.100\.11:8080\s+100\s+10\s+0\s+0/);
  // The --stats listing shows every real server with zero counters.
  const stats = sh("ipvsadm -Ln --stats");
  for (const a of ["198.51.100.11:8080", "198.51.100.16:80", "[2001:db8::11]:443", "198.51.100.21:0"]) {
    assert.match(stats, new RegExp(`-> ${a.replace(/[[\].]/g, "\\$&")}\\s+0\\s+0\\s+0\\s+0\\s+0`));
  }
});

test("our dumps read back what ipvsadm created", () => {
  sh([
    "ipvsadm -A -t 192.0.2.100:80 -s wrr",
    "ipvsadm -a -t 192.0.2.100:80 -r 198.51.100.11:8080 -m -w 3 -x 100 -y 10",
    "ipvsadm -a -t 192.0.2.100:80 -r 198.51.100.14 -i --tun-type gue --tun-port 6080 --tun-csum -w 4",
    "ipvsadm -A -u 192.0.2.102:53 -s sh -b sh-port -p 30 -M 255.255.0.0",
    "ipvsadm -a -u 192.0.2.102:53 -r 198.51.100.12:53 -g -w 2",
    "ipvsadm -A -f 7 -6 -s rr",
    "ipvsadm -a -f 7 -6 -r 2001:db8::7 -g -w 9",
  ].join(" && "));
  const x = ipvs();
  const services = x.services().sort((a, b) => (a.address ?? "").localeCompare(b.address ?? ""));
  assert.equal(services.length, 3);
  const strip = <T extends { stats?: unknown }>({ stats: _s, ...rest }: T) => rest;
  assert.deepEqual(services.map(strip), [
    { family: "inet6", fwmark: 7, scheduler: "rr", flags: IP_VS_SVC_F_HASHED, timeout: 0, netmask: 128 },
    { ...V4, scheduler: "wrr", flags: IP_VS_SVC_F_HASHED, timeout: 0, netmask: 32 },
    { family: "inet", protocol: "udp", address: "192.0.2.102", port: 53, scheduler: "sh",
      flags: IP_VS_SVC_F_HASHED | IP_VS_SVC_F_PERSISTENT | IPVS_SVC_FLAG_KEYWORDS["sh-port"]!, timeout: 30, netmask: 16 },
  ]);
  assert.deepEqual(services[1]!.stats?.conns, 0);
  const d4 = x.destinations(V4).sort((a, b) => a.address.localeCompare(b.address)).map(strip);
  assert.deepEqual(d4, [
    { ...dest("198.51.100.11", 8080, { weight: 3, uThreshold: 100, lThreshold: 10 }), activeConns: 0, inactConns: 0, persistConns: 0 },
    { ...dest("198.51.100.14", 80, { fwdMethod: "TUN", weight: 4, tunnel: { type: "gue", port: 6080, csum: "csum" } }),
      activeConns: 0, inactConns: 0, persistConns: 0 },
  ]);
  const d6 = x.destinations({ family: "inet6", fwmark: 7 });
  assert.deepEqual(d6.map((d) => [d.family, d.address, d.port, d.fwdMethod, d.weight]), [["inet6", "2001:db8::7", 0, "DR", 9]]);
  const one = x.getService({ family: "inet", protocol: "udp", address: "192.0.2.102", port: 53 });
  assert.equal(one?.scheduler, "sh");
  assert.equal(x.getService({ family: "inet", protocol: "udp", address: "192.0.2.102", port: 54 }), undefined);
});

test("edit service and destination weights; delete them", () => {
  const x = ipvs();
  x.addService(svc(V4, { scheduler: "wrr" }));
  x.addDestination(V4, dest("198.51.100.11", 80, { weight: 1 }));
  x.addDestination(V4, dest("198.51.100.12", 80, { weight: 1 }));
  x.editService(svc(V4, { scheduler: "rr", flags: IP_VS_SVC_F_PERSISTENT, timeout: 600, netmask: 24 }));
  x.editDestination(V4, dest("198.51.100.11", 80, { weight: 0 }));
  x.editDestination(V4, dest("198.51.100.12", 80, { weight: 7, fwdMethod: "DR", uThreshold: 5 }));
  assert.deepEqual(saved(), sorted([
    "-A -t 192.0.2.100:80 -s rr -p 600 -M 255.255.255.0",
    "-a -t 192.0.2.100:80 -r 198.51.100.11:80 -m -w 0",
    "-a -t 192.0.2.100:80 -r 198.51.100.12:80 -g -w 7",
  ]));
  assert.match(sh("ipvsadm -Ln --thresholds"), /-> 198\.51\.100\.12:80\s+5\s+0\s/);
  x.deleteDestination(V4, { address: "198.51.100.11", port: 80 });
  assert.deepEqual(saved(), sorted([
    "-A -t 192.0.2.100:80 -s rr -p 600 -M 255.255.255.0",
    "-a -t 192.0.2.100:80 -r 198.51.100.12:80 -g -w 7",
  ]));
  x.deleteService(V4);
  assert.deepEqual(saved(), []);
  assert.deepEqual(x.services(), []);
});

test("flush empties the table; zero keeps it", () => {
  const x = ipvs();
  x.addService(svc(V4));
  x.addService(svc(V6));
  x.addDestination(V4, dest("198.51.100.11", 80));
  x.zero();
  x.zero(V4);
  assert.equal(x.services().length, 2);
  x.flush();
  assert.deepEqual(saved(), []);
  assert.equal(sh("ipvsadm -Ln | wc -l").trim(), "3"); // the header lines only
});

test("timeouts: set, read back, and seen by ipvsadm", () => {
  const x = ipvs();
  x.setTimeouts({ tcp: 901, tcpFin: 121, udp: 301 });
  assert.deepEqual(x.timeouts(), { tcp: 901, tcpFin: 121, udp: 301 });
  assert.match(sh("ipvsadm -L --timeout"), /Timeout \(tcp tcpfin udp\): 901 121 301/);
  x.setTimeouts({ udp: 45 }); // 0 = unchanged for the others
  assert.deepEqual(x.timeouts(), { tcp: 901, tcpFin: 121, udp: 45 });
  sh("ipvsadm --set 902 122 302");
  assert.deepEqual(x.timeouts(), { tcp: 902, tcpFin: 122, udp: 302 });
});

test("sync daemons: start master and backup, listed by ipvsadm, stop", () => {
  const x = ipvs();
  x.startDaemon({ state: "master", mcastIfn: "sync0", syncId: 5 });
  x.startDaemon({ state: "backup", mcastIfn: "sync0", syncId: 7, syncMaxLen: 1400, mcastGroup: "239.1.2.3", mcastPort: 8850, mcastTtl: 2 });
  const listed = sh("ipvsadm -L --daemon");
  assert.match(listed, /master sync daemon \(mcast=sync0, syncid=5, maxlen=1472, group=224\.0\.0\.81, port=8848, ttl=1\)/);
  assert.match(listed, /backup sync daemon \(mcast=sync0, syncid=7, maxlen=1400, group=239\.1\.2\.3, port=8850, ttl=2\)/);
  const ds = x.daemons().sort((a, b) => a.state.localeCompare(b.state));
  assert.deepEqual(ds.map((d) => [d.state, d.mcastIfn, d.syncId, d.mcastGroup, d.mcastPort]), [
    ["backup", "sync0", 7, "239.1.2.3", 8850],
    ["master", "sync0", 5, "224.0.0.81", 8848],
  ]);
  x.stopDaemon("master");
  assert.doesNotMatch(sh("ipvsadm -L --daemon"), /master/);
  x.stopDaemon("backup");
  assert.equal(sh("ipvsadm -L --daemon").trim(), "");
  assert.deepEqual(x.daemons(), []);
  // A daemon started by ipvsadm is read back.
  sh("ipvsadm --start-daemon master --mcast-interface sync0 --syncid 9");
  assert.deepEqual(x.daemons().map((d) => [d.state, d.syncId]), [["master", 9]]);
});

/** Runs `fn` and returns the errno name of what it threw. */
function codeOf(fn: () => void): string {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code ?? `no code: ${String(e)}`;
  }
  return "no error";
}

test("refusals come back with errno names: EEXIST, ESRCH, ENOENT", () => {
  const x = ipvs();
  x.addService(svc(V4));
  x.addDestination(V4, dest("198.51.100.11", 80));
  assert.equal(codeOf(() => x.addService(svc(V4))), "EEXIST");
  assert.equal(codeOf(() => x.addDestination(V4, dest("198.51.100.11", 80))), "EEXIST");
  const missing: IpvsServiceKey = { ...V4, port: 81 } as IpvsServiceKey;
  assert.equal(codeOf(() => x.deleteService(missing)), "ESRCH");
  assert.equal(codeOf(() => x.editService(svc(missing))), "ESRCH");
  assert.equal(codeOf(() => x.addDestination(missing, dest("198.51.100.11", 80))), "ESRCH");
  assert.equal(codeOf(() => x.deleteDestination(V4, { address: "198.51.100.99", port: 80 })), "ENOENT");
  assert.equal(codeOf(() => x.editDestination(V4, dest("198.51.100.99", 80))), "ENOENT");
  assert.equal(codeOf(() => x.addService(svc({ ...V4, port: 82 } as IpvsServiceKey, { scheduler: "nosuch" }))), "ENOENT");
  assert.equal(codeOf(() => x.stopDaemon("master")), "ESRCH");
  // The message names the request and the errno.
  try {
    x.addService(svc(V4));
  } catch (e) {
    assert.match((e as Error).message, /IPVS_CMD_NEW_SERVICE\(TCP 192\.0\.2\.100:80\): EEXIST/);
  }
  assert.deepEqual(saved(), sorted(["-A -t 192.0.2.100:80 -s wlc", "-a -t 192.0.2.100:80 -r 198.51.100.11:80 -m -w 1"]));
});

test("large tables: 300 services x 4 destinations dump completely (multi-part dumps)", () => {
  const x = ipvs();
  const keys: IpvsServiceKey[] = [];
  for (let i = 0; i < 300; i++) {
    const k: IpvsServiceKey = { family: "inet", protocol: "tcp", address: `203.0.113.${1 + (i % 250)}`, port: 1000 + i };
    keys.push(k);
    x.addService(svc(k, { scheduler: "rr" }));
    for (let j = 0; j < 4; j++) x.addDestination(k, dest(`198.51.100.${10 + j}`, 2000 + i, { weight: j + 1 }));
  }
  const dumped = x.services();
  assert.equal(dumped.length, 300);
  assert.equal(new Set(dumped.map((s) => `${s.address}:${s.port}`)).size, 300);
  let total = 0;
  for (const k of keys) total += x.destinations(k).length;
  assert.equal(total, 1200);
  assert.equal(Number(sh("ipvsadm -S -n | grep -c '^-a'").trim()), 1200);
});

test("each network namespace has its own table; a socket opened inside one stays there", () => {
  sh("ip netns add vipdt-ipvs-ns1");
  try {
    const r = withNetns("vipdt-ipvs-ns1", () => Ipvs.open());
    assert.ok(r.ok, r.ok ? "" : r.message);
    const inner = r.ipvs;
    try {
      inner.addService(svc(V4, { scheduler: "rr" }));
      sh("ip netns exec vipdt-ipvs-ns1 ipvsadm -A -t 192.0.2.200:80 -s wrr");
      assert.deepEqual(ipvs().services(), []);
      assert.deepEqual(saved(), []);
      assert.deepEqual(sh("ip netns exec vipdt-ipvs-ns1 ipvsadm -S -n").split("\n").filter(Boolean).sort(),
        sorted(["-A -t 192.0.2.100:80 -s rr", "-A -t 192.0.2.200:80 -s wrr"]));
      assert.deepEqual(inner.services().map((s) => s.address).sort(), ["192.0.2.100", "192.0.2.200"]);
    } finally {
      inner.close();
    }
  } finally {
    sh("ip netns del vipdt-ipvs-ns1");
  }
});
