// The dry run's IPVS plan: the LVS manager started against PlanningIpvs plans exactly the diff
// between the kernel's table and the config, and nothing it does reaches the snapshot.
import { describe, expect, test } from "bun:test";
import { loadConfigText } from "../../src/config/load.ts";
import type { Logger } from "../../src/daemon/logger.ts";
import { IP_VS_SVC_F_HASHED } from "../../src/lvs/ipvs-types.ts";
import { createLvsManager } from "../../src/lvs/manager.ts";
import { type IpvsSnapshot, PlanningIpvs } from "../../src/lvs/planning-ipvs.ts";

const silent: Logger = { info() {}, warn() {}, error() {}, debug() {} };
const model = (text: string) => loadConfigText(text, "/tmp/p.conf", { hostname: "h", env: {} }).model;

const CONF = `global_defs {
  lvs_timeouts tcp 600
}
virtual_server 192.0.2.1 80 {
  protocol TCP
  lvs_sched rr
  real_server 198.51.100.1 80 {
    weight 2
    TCP_CHECK {
    }
  }
  real_server 198.51.100.2 80 {
    TCP_CHECK {
    }
  }
  real_server 198.51.100.3 80 {
    TCP_CHECK {
      alpha
    }
  }
}
virtual_server 192.0.2.2 443 {
  protocol TCP
  lvs_sched wlc
  persistence_timeout 60
  real_server 198.51.100.9 443 {
  }
}
`;

function snapshot(): IpvsSnapshot {
  const vs1 = { family: "inet" as const, protocol: "tcp" as const, address: "192.0.2.1", port: 80, scheduler: "rr", flags: IP_VS_SVC_F_HASHED, timeout: 0, netmask: 32 };
  const other = { family: "inet" as const, protocol: "udp" as const, address: "203.0.113.9", port: 53, scheduler: "rr", flags: IP_VS_SVC_F_HASHED, timeout: 0, netmask: 32 };
  const dest = (address: string, weight: number) => ({ address, port: 80, family: "inet" as const, fwdMethod: "NAT" as const, weight, uThreshold: 0, lThreshold: 0, activeConns: 0, inactConns: 0, persistConns: 0 });
  return {
    info: { version: "1.2.1", versionCode: 0x10201, connTableSize: 4096 },
    services: [
      // vipd's first service is there already: one real server at the wrong weight, one stale
      { service: vs1, dests: [dest("198.51.100.1", 1), dest("198.51.100.7", 1)] },
      // an operator's service vipd never configured
      { service: other, dests: [] },
    ],
    timeouts: { tcp: 900, tcpFin: 120, udp: 300 },
    daemons: [],
  };
}

function plan(conf: string, snap: IpvsSnapshot) {
  const planning = new PlanningIpvs(snap);
  const m = createLvsManager(model(conf), { log: silent, openIpvs: () => ({ ok: true, ipvs: planning }), runScript: () => undefined, repairIntervalMs: 0 });
  m.start();
  return { lines: planning.changes.map((c) => `${c.op} ${c.text}`), m, planning };
}

describe("PlanningIpvs (dry run)", () => {
  test("plans only the diff against the kernel's table, in the manager's order", () => {
    const snap = snapshot();
    const frozen = JSON.stringify(snap);
    const { lines, m } = plan(CONF, snap);
    expect(lines).toEqual([
      "set timeouts tcp 600",
      "add service TCP 192.0.2.2:443 scheduler wlc persistent 60",
      "add real-server TCP 192.0.2.1:80 -> 198.51.100.2:80 NAT weight 1",
      "add real-server TCP 192.0.2.2:443 -> 198.51.100.9:443 NAT weight 1",
      "edit real-server TCP 192.0.2.1:80 -> 198.51.100.1:80 NAT weight 2",
      "delete real-server TCP 192.0.2.1:80 -> 198.51.100.7:80",
    ]);
    // the alpha real server waits for its checker; status says so
    const rs3 = m.status().virtualServers[0]!.realServers.find((r) => r.address === "198.51.100.3");
    expect(rs3?.alive).toBe(false);
    // the snapshot itself is never written
    expect(JSON.stringify(snap)).toBe(frozen);
  });

  test("a kernel table that already matches plans nothing", () => {
    const first = plan(CONF, snapshot());
    // feed the planned end state back in as the kernel's table
    const p = first.planning;
    const after: IpvsSnapshot = {
      info: p.info(), timeouts: p.timeouts(), daemons: p.daemons(),
      services: p.services().map((service) => ({ service: { ...service, flags: service.flags | IP_VS_SVC_F_HASHED }, dests: p.destinations(service) })),
    };
    expect(plan(CONF, after).lines).toEqual([]);
  });

  test("lvs_flush plans the flush first and then the whole table", () => {
    const { lines } = plan(`global_defs {\n  lvs_flush\n}\n${CONF.slice(CONF.indexOf("virtual_server"))}`, snapshot());
    expect(lines[0]).toBe("flush the whole IPVS table (lvs_flush)");
    expect(lines).toContain("add service TCP 192.0.2.1:80 scheduler rr");
    expect(lines).toContain("add real-server TCP 192.0.2.1:80 -> 198.51.100.1:80 NAT weight 2");
    expect(lines.some((l) => l.includes("198.51.100.7"))).toBe(false);
  });

  test("writes keep the kernel's errors so the reconciler's race handling is exercised", () => {
    const p = new PlanningIpvs(snapshot());
    const key = { family: "inet" as const, protocol: "tcp" as const, address: "192.0.2.1", port: 80 };
    expect(() => p.addService({ ...key, scheduler: "rr", flags: 0, timeout: 0, netmask: 32 })).toThrow(expect.objectContaining({ code: "EEXIST" }));
    expect(() => p.deleteDestination(key, { address: "198.51.100.99", port: 80 })).toThrow(expect.objectContaining({ code: "ENOENT" }));
    expect(() => p.destinations({ ...key, port: 81 })).toThrow(expect.objectContaining({ code: "ESRCH" }));
    expect(p.changes).toEqual([]);
  });
});
