/**
 * The two-router failover lab: routers A (priority 150) and B (priority 100) and a client/
 * observer C on one bridge, each in its own namespace, with the keepalived.conf both
 * implementations read, and the RFC timing each scenario predicts.
 */
import { type Registry, sh, sleep } from "./lab.ts";

export const VIP = "192.0.2.100";
export const ADDR = { a: "192.0.2.1", b: "192.0.2.2", c: "192.0.2.3" };
export const BACKUP_PRIO = 100;
export const MASTER_PRIO = 150;

export interface Scenario {
  tag: string;
  version: 2 | 3;
  advertInt: number;
  mode: "crash" | "graceful";
  /** What RFC timing predicts for the wire gap (ms): the backup's Master_Down_Interval or Skew_Time. */
  expectedMs: number;
}

/** A scenario with its predicted gap: 3 × advert_int + skew for a crash, skew for a graceful stop. */
export function scenario(version: 2 | 3, advertInt: number, mode: "crash" | "graceful"): Scenario {
  const skew = ((256 - BACKUP_PRIO) * advertInt) / 256;
  return {
    tag: `${mode} v${version} ${advertInt} s`,
    version,
    advertInt,
    mode,
    expectedMs: (mode === "crash" ? 3 * advertInt + skew : skew) * 1000,
  };
}

/** One keepalived.conf both implementations read unchanged. */
export function pairConf(s: Scenario, prio: number, id: string): string {
  return `global_defs {
    router_id ${id}
}
vrrp_instance VI_BENCH {
    state BACKUP
    interface eth0
    version ${s.version}
    virtual_router_id 51
    priority ${prio}
    advert_int ${s.advertInt}
    virtual_ipaddress {
        ${VIP}/24 dev eth0
    }
}
`;
}

export interface PairLab {
  ns: { sw: string; a: string; b: string; c: string };
  mac: { a: string; b: string };
}

/** A bridge in namespace `<tag>-sw` with routers A, B and the client/observer C on ports pa, pb, pc. */
export function pairLab(reg: Registry, tag: string): PairLab {
  const ns = { sw: `${tag}-sw`, a: `${tag}-a`, b: `${tag}-b`, c: `${tag}-c` };
  for (const n of Object.values(ns)) reg.addNamespace(n);
  sh(["ip", "-n", ns.sw, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"]);
  sh(["ip", "-n", ns.sw, "link", "set", "br0", "up"]);
  for (const node of ["a", "b", "c"] as const) {
    sh(["ip", "-n", ns.sw, "link", "add", `p${node}`, "type", "veth", "peer", "name", "eth0", "netns", ns[node]]);
    sh(["ip", "-n", ns.sw, "link", "set", `p${node}`, "master", "br0", "up"]);
    sh(["ip", "-n", ns[node], "addr", "add", `${ADDR[node]}/24`, "dev", "eth0"]);
    sh(["ip", "-n", ns[node], "link", "set", "eth0", "up"]);
  }
  const mac = (n: string) => JSON.parse(sh(["ip", "-n", n, "-j", "link", "show", "dev", "eth0"]).stdout)[0].address as string;
  return { ns, mac: { a: mac(ns.a), b: mac(ns.b) } };
}

/** Whether the namespace's eth0 holds the VIP. */
export function hasVip(ns: string): boolean {
  return sh(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"], true).stdout.includes(` ${VIP}/`);
}

/** Polls (every 50 ms by default, so as not to load the CPUs the daemons run on) until `ok()`; false on timeout. */
export async function until(ok: () => boolean, maxMs: number, stepMs = 50): Promise<boolean> {
  const start = performance.now();
  while (performance.now() - start < maxMs) {
    if (ok()) return true;
    await sleep(stepMs);
  }
  return ok();
}

/** Removes what a trial leaves behind: stale VIPs (a crashed node keeps its own), a cut port, the client's ARP entry. */
export function resetPair(lab: PairLab): void {
  sh(["ip", "-n", lab.ns.a, "addr", "del", `${VIP}/24`, "dev", "eth0"], true);
  sh(["ip", "-n", lab.ns.b, "addr", "del", `${VIP}/24`, "dev", "eth0"], true);
  sh(["ip", "-n", lab.ns.sw, "link", "set", "pa", "up"]);
  sh(["ip", "-n", lab.ns.c, "neigh", "flush", "dev", "eth0"], true);
}
