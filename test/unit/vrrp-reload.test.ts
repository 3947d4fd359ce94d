// Reload on fake hosts: matched instances keep their state, only deltas are applied, an
// unchanged configuration changes nothing at all, removed instances go, new ones start BACKUP.
import { describe, expect, test } from "bun:test";
import { loadConfigText } from "../../src/config/load.ts";
import type { Logger } from "../../src/daemon/logger.ts";
import { VrrpRuntime } from "../../src/daemon/vrrp-runtime.ts";
import { FakeClock, FakeHost, FakeSegment } from "./fake-host.ts";

const inst = (name: string, vrid: number, prio: number, vips: string[], extra = "") => `vrrp_instance ${name} {
    interface eth0
    virtual_router_id ${vrid}
    priority ${prio}
    version 3
    advert_int 0.1
    ${extra}
    virtual_ipaddress {
        ${vips.join("\n        ")}
    }
}
`;

function model(text: string) {
  const l = loadConfigText(text, "r.conf", { hostname: "r", env: {} });
  expect(l.diagnostics.errors).toEqual([]);
  return l.model;
}

function setup(text: string) {
  const clock = new FakeClock();
  const seg = new FakeSegment(clock);
  const host = new FakeHost("r", clock, seg, "192.0.2.1");
  const states: string[] = [];
  const log: Logger & { lines: string[] } = { lines: [], info: (m) => log.lines.push(m), warn: (m) => log.lines.push(`W ${m}`), error: (m) => log.lines.push(`E ${m}`), debug: () => {} };
  const rt = new VrrpRuntime(model(text), host, log, { version: "t", configFile: "r.conf", onStateChange: (i, s) => states.push(`${i.name} ${s}`) });
  rt.start();
  clock.advance(1000);
  return { clock, seg, host, rt, states, log, st: (n: string) => rt.status().instances.find((i) => i.name === n)! };
}

describe("reload", () => {
  test("50 reloads of an unchanged config: no transitions, no address changes, adverts keep their rhythm", () => {
    const text = inst("VI_1", 51, 150, ["192.0.2.100/24"]) + inst("VI_2", 52, 100, ["192.0.2.101/24"]);
    const t = setup(text);
    expect(t.st("VI_1").state).toBe("MASTER");
    const states = t.states.length;
    const ops = t.host.log.length;
    const sentBefore = t.seg.sent.length;
    for (let i = 0; i < 50; i++) {
      const s = t.rt.reload(model(text));
      expect(s.kept).toEqual(["VI_1", "VI_2"]);
      t.clock.advance(20);
    }
    expect(t.states.length).toBe(states);
    expect(t.host.log.length).toBe(ops);
    // 1 s of adverts from two masters at 0.1 s: about 20, never a burst of extra ones
    expect(t.seg.sent.length - sentBefore).toBeGreaterThanOrEqual(18);
    expect(t.seg.sent.length - sentBefore).toBeLessThanOrEqual(22);
  });

  test("a changed priority and an added VIP are applied to the running MASTER without leaving MASTER", () => {
    const t = setup(inst("VI_1", 51, 150, ["192.0.2.100/24"]));
    const before = t.states.length;
    t.rt.reload(model(inst("VI_1", 51, 160, ["192.0.2.100/24", "192.0.2.102/24"])));
    t.clock.advance(500);
    expect(t.st("VI_1").state).toBe("MASTER");
    expect(t.st("VI_1").effectivePriority).toBe(160);
    expect(t.states.length).toBe(before);
    expect(t.host.has("192.0.2.102")).toBe(true);
    expect(t.host.log.filter((l) => l.startsWith("del"))).toEqual([]);
    // a removed VIP goes, the kept one stays
    t.rt.reload(model(inst("VI_1", 51, 160, ["192.0.2.102/24"])));
    expect(t.host.has("192.0.2.100")).toBe(false);
    expect(t.host.has("192.0.2.102")).toBe(true);
  });

  test("a removed instance releases its VIPs with a FAULT notify; a new one starts as BACKUP", () => {
    const t = setup(inst("VI_1", 51, 150, ["192.0.2.100/24"]));
    const s = t.rt.reload(model(inst("VI_9", 59, 100, ["192.0.2.109/24"])));
    expect(s).toEqual({ kept: [], added: ["VI_9"], removed: ["VI_1"] });
    expect(t.host.has("192.0.2.100")).toBe(false);
    expect(t.states).toContain("VI_1 FAULT");
    expect(t.st("VI_9").state).toBe("BACKUP");
    t.clock.advance(1000);
    expect(t.st("VI_9").state).toBe("MASTER");
    expect(t.rt.status().instances.map((i) => i.name)).toEqual(["VI_9"]);
  });

  test("notify_deleted reports DELETED; instances are matched by VRID and interface, not by name", () => {
    const t = setup(inst("VI_1", 51, 150, ["192.0.2.100/24"], "notify_deleted"));
    const s = t.rt.reload(model(inst("RENAMED", 51, 150, ["192.0.2.100/24"])));
    expect(s.kept).toEqual(["RENAMED"]);
    expect(t.st("RENAMED").state).toBe("MASTER");
    const t2 = setup(inst("VI_1", 51, 150, ["192.0.2.100/24"], "notify_deleted"));
    t2.rt.reload(model(inst("VI_2", 52, 150, ["192.0.2.101/24"])));
    expect(t2.states).toContain("VI_1 DELETED");
  });
});

describe("reload of virtual routes", () => {
  test("a MASTER's virtual_routes change by delta only: the kept route is never deleted", () => {
    const routes = (list: string[]) => `virtual_routes {\n ${list.join("\n ")}\n }`;
    const t = setup(inst("VI_1", 51, 150, ["192.0.2.100/24"], routes(["198.51.100.0/24 via 192.0.2.254 dev eth0"])));
    expect(t.st("VI_1").state).toBe("MASTER");
    expect(t.host.routes.size).toBe(1);
    const mark = t.host.log.length;
    t.rt.reload(model(inst("VI_1", 51, 150, ["192.0.2.100/24"], routes(["198.51.100.0/24 via 192.0.2.254 dev eth0", "203.0.113.0/24 via 192.0.2.254 dev eth0"]))));
    const ops = t.host.log.slice(mark);
    expect(ops.filter((l) => l.startsWith("delete"))).toEqual([]);
    expect(ops.filter((l) => l.startsWith("add route")).length).toBe(1);
    expect(t.host.routes.size).toBe(2);
    t.rt.reload(model(inst("VI_1", 51, 150, ["192.0.2.100/24"], routes(["203.0.113.0/24 via 192.0.2.254 dev eth0"]))));
    expect(t.host.routes.size).toBe(1);
    expect([...t.host.routes][0]).toContain("203.0.113.0/24");
  });
});
