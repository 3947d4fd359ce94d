// The daemon's VRRP runtime on fake hosts joined by a fake segment, on a virtual clock:
// config → sockets → adverts → addresses → GARP, without the kernel.
import { describe, expect, test } from "bun:test";
import { loadConfigText } from "../../src/config/load.ts";
import type { Logger } from "../../src/daemon/logger.ts";
import { VrrpRuntime } from "../../src/daemon/vrrp-runtime.ts";
import { decodeArp } from "../../src/vrrp/frames.ts";
import { decodeIpv4Advert } from "../../src/vrrp/codec.ts";
import { FakeClock, FakeHost, FakeSegment } from "./fake-host.ts";

function conf(prio: number, extra = "", vip = "192.0.2.100/24"): string {
  return `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority ${prio}
    version 3
    advert_int 0.1
    ${extra}
    virtual_ipaddress {
        ${vip}
    }
}
`;
}

function memLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(m), warn: (m) => lines.push(`W ${m}`), error: (m) => lines.push(`E ${m}`), debug: () => {} };
}

function node(name: string, ip: string, text: string, clock: FakeClock, seg: FakeSegment, states?: string[]) {
  const host = new FakeHost(name, clock, seg, ip);
  const loaded = loadConfigText(text, `${name}.conf`, { hostname: name, env: {} });
  expect(loaded.diagnostics.errors).toEqual([]);
  const log = memLog();
  const rt = new VrrpRuntime(loaded.model, host, log, {
    version: "test", configFile: `${name}.conf`,
    onStateChange: (i, s, p) => states?.push(`${i.name} ${s} ${p}`),
  });
  return { host, log, rt, state: () => rt.status().instances[0]!.state };
}

describe("VRRP runtime on fake hosts", () => {
  test("two routers elect the higher priority, which installs the VIP and sends 5 GARPs", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const statesA: string[] = [];
    const a = node("a", "192.0.2.1", conf(150), clock, seg, statesA);
    const b = node("b", "192.0.2.2", conf(100), clock, seg);
    a.rt.start();
    b.rt.start();
    clock.advance(2000);
    expect(a.state()).toBe("MASTER");
    expect(b.state()).toBe("BACKUP");
    expect(a.host.has("192.0.2.100")).toBe(true);
    expect(b.host.has("192.0.2.100")).toBe(false);
    expect(statesA).toEqual(["VI_1 BACKUP 150", "VI_1 MASTER 150"]);
    const garps = seg.frames.filter((f) => f.from === "a").map((f) => decodeArp(f.frame.subarray(14)));
    expect(garps.length).toBe(5);
    for (const g of garps) expect(g?.senderIp).toBe("192.0.2.100");
    // adverts come from a's primary address with priority 150 at about 10 per second
    const fromA = seg.sent.filter((s) => s.from === "a").map((s) => decodeIpv4Advert(s.data));
    expect(fromA.length).toBeGreaterThan(10);
    for (const p of fromA) {
      expect(p.ok).toBe(true);
      if (p.ok) expect(p.value.advert.priority).toBe(150);
    }
    const st = b.rt.status().instances[0]!;
    expect(st.masterAddress).toBe("192.0.2.1");
    expect(st.stats.advert_rcvd).toBeGreaterThan(10);
  });

  test("a silent master is replaced after Master_Down_Interval; graceful stop hands over within skew", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const a = node("a", "192.0.2.1", conf(150), clock, seg);
    const b = node("b", "192.0.2.2", conf(100), clock, seg);
    a.rt.start();
    b.rt.start();
    clock.advance(2000);
    a.host.alive = false; // SIGKILL: no more packets, no cleanup
    const killedAt = clock.now;
    for (let i = 0; i < 100 && b.state() !== "MASTER"; i++) clock.advance(5);
    const mdi = 3 * 100 + ((256 - 100) * 100) / 256; // v3, 0.1 s, priority 100
    expect(clock.now - killedAt).toBeLessThanOrEqual(mdi + 10);
    expect(b.host.has("192.0.2.100")).toBe(true);

    // a returns, preempts; then stops gracefully: b takes over within skew time
    const a2 = node("a2", "192.0.2.1", conf(150), clock, seg);
    a2.host.addressTable = a.host.addressTable; // the VIP a left behind
    a2.rt.start();
    expect(a2.log.lines.some((l) => l.includes("left by a previous run"))).toBe(true);
    clock.advance(2000);
    expect(a2.state()).toBe("MASTER");
    expect(b.state()).toBe("BACKUP");
    a2.rt.stop();
    expect(a2.host.has("192.0.2.100")).toBe(false);
    const stoppedAt = clock.now;
    for (let i = 0; i < 100 && b.state() !== "MASTER"; i++) clock.advance(1);
    expect(clock.now - stoppedAt).toBeLessThanOrEqual((256 - 100) * 100 / 256 + 2);
    expect(b.rt.status().instances[0]!.stats.pri_zero_rcvd).toBe(1);
  });

  test("an interface going down puts the instance in FAULT and releases the VIP", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const states: string[] = [];
    const a = node("a", "192.0.2.1", conf(150), clock, seg, states);
    a.rt.start();
    clock.advance(1000);
    expect(a.state()).toBe("MASTER");
    a.host.setLink(false);
    expect(a.state()).toBe("FAULT");
    expect(a.host.has("192.0.2.100")).toBe(false);
    a.host.setLink(true);
    clock.advance(1000);
    expect(a.state()).toBe("MASTER");
    expect(states).toEqual(["VI_1 BACKUP 150", "VI_1 MASTER 150", "VI_1 FAULT 150", "VI_1 BACKUP 150", "VI_1 MASTER 150"]);
  });

  test("interface_up_down_delays: a flap shorter than the down delay changes nothing; a longer outage is a FAULT after the delay; up waits its delay", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const states: string[] = [];
    // advert_int 1 (v2 needs whole seconds): the down delay cap is 2 s − 1/256 s, so 1 s stands
    const text = `interface_up_down_delays {\n  eth0 1 0.5\n}\n${conf(150).replace("version 3\n    advert_int 0.1", "version 2\n    advert_int 1")}`;
    const a = node("a", "192.0.2.1", text, clock, seg, states);
    a.rt.start();
    clock.advance(4000);
    expect(a.state()).toBe("MASTER");
    a.host.setLink(false);
    clock.advance(600);
    expect(a.state()).toBe("MASTER"); // still within the 1 s down delay
    a.host.setLink(true);
    expect(a.log.lines).toContain("Delay timer for eth0 cancelled");
    clock.advance(2000);
    expect(a.state()).toBe("MASTER");
    expect(states).toEqual(["VI_1 BACKUP 150", "VI_1 MASTER 150"]);
    // a real outage: FAULT once the delay has run out
    a.host.setLink(false);
    clock.advance(900);
    expect(a.state()).toBe("MASTER");
    clock.advance(200);
    expect(a.state()).toBe("FAULT");
    // back up: the 0.5 s up delay, then the instance recovers
    a.host.setLink(true);
    clock.advance(400);
    expect(a.state()).toBe("FAULT");
    clock.advance(4000);
    expect(a.state()).toBe("MASTER");
  });

  test("PASS authentication mismatch: adverts are dropped and counted, both become MASTER", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const v2 = (prio: number, pass: string) =>
      conf(prio, `authentication {\n auth_type PASS\n auth_pass ${pass}\n }`).replace("version 3", "version 2").replace("advert_int 0.1", "advert_int 1");
    const a = node("a", "192.0.2.1", v2(150, "secret1"), clock, seg);
    const b = node("b", "192.0.2.2", v2(100, "secret2"), clock, seg);
    a.rt.start();
    b.rt.start();
    clock.advance(10_000);
    expect(a.state()).toBe("MASTER");
    expect(b.state()).toBe("MASTER");
    expect(b.rt.status().instances[0]!.stats.auth_failure).toBeGreaterThan(3);
    expect(b.log.lines.filter((l) => l.startsWith("W ")).length).toBe(1); // logged once, counted every time
  });
});

describe("unicast in the runtime", () => {
  const uni = (prio: number, src: string, peer: string, extra = "") =>
    conf(prio, `unicast_src_ip ${src}\n unicast_peer {\n ${peer}\n }\n ${extra}`);

  test("adverts go to each peer by unicast and elect a master; nothing goes to the multicast group", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const a = node("a", "192.0.2.1", uni(150, "192.0.2.1", "192.0.2.2"), clock, seg);
    const b = node("b", "192.0.2.2", uni(100, "192.0.2.2", "192.0.2.1"), clock, seg);
    a.rt.start();
    b.rt.start();
    clock.advance(2000);
    expect(a.state()).toBe("MASTER");
    expect(b.state()).toBe("BACKUP");
    expect(seg.sent.every((p) => !p.dst.startsWith("224."))).toBe(true);
    expect(seg.sent.filter((p) => p.from === "a").every((p) => p.dst === "192.0.2.2")).toBe(true);
  });

  test("check_unicast_src drops adverts from a source that is not a listed peer", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const a = node("a", "192.0.2.1", uni(150, "192.0.2.1", "192.0.2.2"), clock, seg);
    const b = node("b", "192.0.2.2", uni(100, "192.0.2.2", "192.0.2.3", "check_unicast_src"), clock, seg);
    a.rt.start();
    b.rt.start();
    clock.advance(3000);
    expect(b.state()).toBe("MASTER"); // a's adverts are not from a configured peer
    expect(b.rt.status().instances[0]!.stats.unicast_src_err).toBeGreaterThan(0);
  });

  test("unicast_fault_no_peer with an empty peer list is FAULT", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const a = node("a", "192.0.2.1", conf(150, "unicast_src_ip 192.0.2.1\n unicast_peer {\n }\n unicast_fault_no_peer"), clock, seg);
    a.rt.start();
    clock.advance(1000);
    expect(a.state()).toBe("FAULT");
  });
});

describe("tracking in the runtime", () => {
  const scripted = (prio: number, weight: number, extra = "") => `vrrp_script chk {
    script "/bin/true"
    interval 1
    weight ${weight}
    fall 2
    rise 2
    ${extra}
}
${conf(prio, "track_script {\n chk\n }")}`;

  async function withScript(prio: number, weight: number, results: boolean[], extra = "") {
    const { TrackerHub } = await import("../../src/daemon/trackers.ts");
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const host = new FakeHost("a", clock, seg, "192.0.2.1");
    const loaded = loadConfigText(scripted(prio, weight, extra), "a.conf", { hostname: "a", env: {} });
    expect(loaded.diagnostics.errors).toEqual([]);
    const log = memLog();
    let run = 0;
    const hub = new TrackerHub(loaded.model, host, log, () => {
      const ok = results[Math.min(run++, results.length - 1)]!;
      return Promise.resolve({ ok, exitCode: ok ? 0 : 1, signal: null, timedOut: false, durationMs: 1, viaShell: false, stdoutTail: "", stderrTail: "" });
    });
    const rt = new VrrpRuntime(loaded.model, host, log, { version: "t", configFile: "a.conf", trackers: hub });
    return { clock, host, log, rt, st: () => rt.status().instances[0]! };
  }

  test("a failing weighted script lowers the effective priority after `fall` failures", async () => {
    const t = await withScript(100, -50, [true, false, false, false, true, true]);
    t.rt.start();
    await Bun.sleep(0);
    t.clock.advance(10);
    await Bun.sleep(0);
    expect(t.st().effectivePriority).toBe(100);
    for (let i = 0; i < 3; i++) {
      t.clock.advance(1000);
      await Bun.sleep(0);
    }
    expect(t.st().effectivePriority).toBe(50); // two failures in a row: down
    for (let i = 0; i < 3; i++) {
      t.clock.advance(1000);
      await Bun.sleep(0);
    }
    expect(t.st().effectivePriority).toBe(100); // two successes: up again
    expect(t.log.lines).toContain("VRRP_Script(chk) failed");
  });

  test("weight 0: FAULT until the script has reported, FAULT while it fails", async () => {
    const t = await withScript(100, 0, [false, false, true, true]);
    t.rt.start();
    expect(t.st().state).toBe("FAULT");
    expect(t.st().faults).toEqual(["script chk has not reported yet"]);
    await Bun.sleep(0);
    t.clock.advance(10);
    expect(t.st().state).toBe("FAULT");
    expect(t.st().faults).toEqual(["script chk is down"]);
    for (let i = 0; i < 4; i++) {
      t.clock.advance(1000);
      await Bun.sleep(0);
    }
    expect(t.st().faults).toEqual([]);
    t.clock.advance(2000);
    expect(t.st().state).toBe("MASTER");
  });
});

describe("timing knobs and source tracking", () => {
  test("vrrp_startup_delay holds the instance in INIT, then it starts normally", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const a = node("a", "192.0.2.1", `global_defs {\n vrrp_startup_delay 2\n}\n${conf(150)}`, clock, seg);
    a.rt.start();
    clock.advance(1500);
    expect(a.state()).toBe("INIT");
    expect(seg.sent.length).toBe(0);
    clock.advance(1500);
    expect(a.state()).toBe("MASTER");
  });

  test("track_src_ip: the source address going away is a FAULT, coming back recovers", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const a = node("a", "192.0.2.1", conf(150, "mcast_src_ip 192.0.2.1\n track_src_ip"), clock, seg);
    a.rt.start();
    clock.advance(1000);
    expect(a.state()).toBe("MASTER");
    a.host.emit({ kind: "address", addr: { ifindex: 2, family: "inet", address: "192.0.2.1", prefixlen: 24, secondary: false, scope: 0 }, deleted: true });
    expect(a.state()).toBe("FAULT");
    a.host.emit({ kind: "address", addr: { ifindex: 2, family: "inet", address: "192.0.2.1", prefixlen: 24, secondary: false, scope: 0 }, deleted: false });
    clock.advance(1000);
    expect(a.state()).toBe("MASTER");
  });
});

describe("addresses deleted by someone else", () => {
  /** Deletes `address` from host `h` behind vipd's back and delivers the kernel's notification. */
  function externalDelete(h: FakeHost, address: string, prefixlen: number): void {
    const i = h.addressTable.findIndex((a) => a.address === address && a.prefixlen === prefixlen);
    expect(i).toBeGreaterThanOrEqual(0);
    const [addr] = h.addressTable.splice(i, 1);
    h.emit({ kind: "address", addr: addr!, deleted: true });
  }

  test("a MASTER whose VIP is deleted steps down; the election brings it (and the VIP) back", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const states: string[] = [];
    const a = node("a", "192.0.2.1", conf(150), clock, seg, states);
    const b = node("b", "192.0.2.2", conf(100), clock, seg);
    a.rt.start();
    b.rt.start();
    clock.advance(2000);
    expect(a.state()).toBe("MASTER");
    externalDelete(a.host, "192.0.2.100", 24);
    expect(a.state()).toBe("BACKUP");
    expect(a.log.lines.some((l) => l.includes("192.0.2.100/24 was removed from eth0 by someone else"))).toBe(true);
    // b takes over after its down timer, then a (higher priority, preempting) wins again
    clock.advance(3000);
    expect(a.state()).toBe("MASTER");
    expect(a.host.has("192.0.2.100")).toBe(true);
    expect(b.host.has("192.0.2.100")).toBe(false);
    expect(states).toEqual(["VI_1 BACKUP 150", "VI_1 MASTER 150", "VI_1 BACKUP 150", "VI_1 MASTER 150"]);
  });

  test("no_track VIPs, BACKUP instances and vipd's own removals do not trigger a step-down", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const a = node("a", "192.0.2.1", conf(150, "", "192.0.2.100/24 no_track"), clock, seg);
    a.rt.start();
    clock.advance(2000);
    expect(a.state()).toBe("MASTER");
    externalDelete(a.host, "192.0.2.100", 24);
    expect(a.state()).toBe("MASTER");
    // an unrelated address going away changes nothing either
    a.host.emit({ kind: "address", addr: { ifindex: 2, family: "inet", address: "192.0.2.200", prefixlen: 24, secondary: true, scope: 0 }, deleted: true });
    expect(a.state()).toBe("MASTER");
  });

  test("a deleted static_ipaddress is reinstated; no_track ones and those removed at stop are not", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const text = `static_ipaddress {\n  203.0.113.5/24 dev eth0\n  203.0.113.6/24 dev eth0 no_track\n}\n${conf(150)}`;
    const a = node("a", "192.0.2.1", text, clock, seg);
    a.rt.start();
    clock.advance(500);
    expect(a.host.has("203.0.113.5")).toBe(true);
    externalDelete(a.host, "203.0.113.5", 24);
    expect(a.host.has("203.0.113.5")).toBe(true);
    expect(a.log.lines).toContain("static_ipaddress 203.0.113.5/24 dev eth0 was removed by someone else: reinstated");
    externalDelete(a.host, "203.0.113.6", 24);
    expect(a.host.has("203.0.113.6")).toBe(false);
    a.rt.stop();
    a.host.emit({ kind: "address", addr: { ifindex: 2, family: "inet", address: "203.0.113.5", prefixlen: 24, secondary: true, scope: 0 }, deleted: true });
    expect(a.host.has("203.0.113.5")).toBe(false);
  });
});

describe("garp_extra_if", () => {
  test("a MASTER sends one GARP per extra interface carrying its VIPs every interval (all)", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const text = `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 150
    version 3
    advert_int 0.1
    garp_master_delay 1
    garp_extra_if all 2
    virtual_ipaddress {
        192.0.2.100/24
        198.51.100.100/24 dev eth1
    }
}
`;
    const a = node("a", "192.0.2.1", text, clock, seg);
    a.host.addLink("eth1");
    a.rt.start();
    clock.advance(1000);
    expect(a.state()).toBe("MASTER");
    const onEth1 = () => seg.frames.filter((f) => f.ifname === "eth1").length;
    const burst = onEth1(); // the normal GARP burst covers every VIP
    clock.advance(2500); // garp_master_delay (1) + 2: first extra GARP; also the second burst at +1 s
    const afterFirst = onEth1();
    clock.advance(2000);
    expect(onEth1() - afterFirst).toBe(1); // exactly one extra GARP per interval
    expect(afterFirst).toBeGreaterThan(burst);
    expect(seg.frames.filter((f) => f.ifname === "eth0").length).toBe(10); // eth0: only the two bursts of 5
  });
});

describe("garp_group", () => {
  /** Times (ms) of the first burst's GARPs, per interface, for a MASTER with a VIP on eth0 and one on eth1. */
  function burst(prefix: string): { eth0: number[]; eth1: number[]; all: number[] } {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const text = `${prefix}vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 150
    version 3
    advert_int 0.1
    garp_master_delay 0
    virtual_ipaddress {
        192.0.2.100/24
        198.51.100.100/24 dev eth1
    }
}
`;
    const a = node("a", "192.0.2.1", text, clock, seg);
    a.host.addLink("eth1");
    a.rt.start();
    clock.advance(3000);
    expect(a.state()).toBe("MASTER");
    const at = (i: string) => seg.frames.filter((f) => f.ifname === i).map((f) => f.at);
    return { eth0: at("eth0"), eth1: at("eth1"), all: seg.frames.map((f) => f.at).sort((x, y) => x - y) };
  }
  const gaps = (t: number[]) => t.slice(1).map((x, i) => x - t[i]!);

  test("interfaces of one group share one pacing: every GARP on either is garp_interval after the last", () => {
    const g = burst("garp_group {\n  garp_interval 0.1\n  interfaces {\n    eth0\n    eth1\n  }\n}\n");
    expect(g.eth0.length).toBe(5);
    expect(g.eth1.length).toBe(5);
    for (const gap of gaps(g.all)) expect(gap).toBeGreaterThanOrEqual(100);
  });

  test("without a group each interface paces alone (vrrp_garp_interval): eth0 and eth1 send side by side", () => {
    const g = burst("global_defs {\n  vrrp_garp_interval 0.1\n}\n");
    for (const gap of gaps(g.eth0)) expect(gap).toBeGreaterThanOrEqual(100);
    for (const gap of gaps(g.eth1)) expect(gap).toBeGreaterThanOrEqual(100);
    expect(gaps(g.all).some((gap) => gap < 100)).toBe(true);
  });

  test("a group without garp_interval does not pace its interfaces, even with a global interval", () => {
    const g = burst("global_defs {\n  vrrp_garp_interval 0.1\n}\ngarp_group {\n  gna_interval 0.1\n  interface eth1\n}\n");
    expect(new Set(g.eth1).size).toBe(1); // all five at once
    for (const gap of gaps(g.eth0)) expect(gap).toBeGreaterThanOrEqual(100);
  });
});

describe("track_group", () => {
  const text = `track_group TG {
  group {
    VI_1
  }
}
static_ipaddress {
  203.0.113.5/24 dev eth1 track_group TG
}
${conf(150)}`;

  test("the group's instances are FAULT while the static entry's interface is down; its statics come back with the link", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const a = node("a", "192.0.2.1", text, clock, seg);
    a.host.addLink("eth1");
    a.rt.start();
    clock.advance(1000);
    expect(a.state()).toBe("MASTER");
    expect(a.host.has("203.0.113.5")).toBe(true);
    const eth1 = a.host.links().find((l) => l.name === "eth1")!;
    a.host.emit({ kind: "link", link: { ...eth1, up: false }, deleted: false });
    expect(a.state()).toBe("FAULT");
    expect(a.rt.status().instances[0]!.faults).toContain("track_group interface eth1 down");
    // the address went with the link (as IPv6 ones do); the link's return restores it
    a.host.addressTable.splice(a.host.addressTable.findIndex((x) => x.address === "203.0.113.5"), 1);
    a.host.emit({ kind: "link", link: { ...eth1, up: true }, deleted: false });
    expect(a.host.has("203.0.113.5")).toBe(true);
    expect(a.log.lines).toContain("Restoring deleted static address 203.0.113.5/24 dev eth1");
    clock.advance(2000);
    expect(a.state()).toBe("MASTER");
  });

  test("config checks: unknown group, unknown instance, track_group with no_track", () => {
    const bad = `track_group TG {\n  group {\n    VI_9\n  }\n}\nstatic_ipaddress {\n  203.0.113.5/24 dev eth0 track_group NOPE\n  203.0.113.6/24 dev eth0 track_group TG no_track\n}\n${conf(150)}`;
    const loaded = loadConfigText(bad, "t.conf", { hostname: "t", env: {} });
    const msgs = loaded.diagnostics.items.map((d) => d.message);
    expect(msgs).toContain("vrrp instance VI_9 specified in track group TG doesn't exist - ignoring");
    expect(msgs).toContain("static address: track_group NOPE not found - not tracking");
    expect(msgs).toContain("Static address has both track_group and no_track set - not tracking");
  });
});

describe("dynamic_interfaces", () => {
  const text = (dyn: boolean) => `${dyn ? "global_defs {\n  dynamic_interfaces\n}\n" : ""}${conf(150).replace("interface eth0", "interface eth1")}`;

  test("an instance whose interface does not exist yet waits for it and starts when it appears", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const a = node("a", "192.0.2.1", text(true), clock, seg);
    a.rt.start();
    clock.advance(1000);
    expect(a.rt.status().instances).toEqual([]);
    expect(a.log.lines).toContain("(VI_1) interface eth1 does not exist yet - waiting for it (dynamic_interfaces)");
    a.host.addLink("eth1");
    const eth1 = a.host.links().find((l) => l.name === "eth1")!;
    a.host.emit({ kind: "link", link: eth1, deleted: false });
    expect(a.log.lines).toContain("(VI_1) interface eth1 appeared - starting");
    clock.advance(1000);
    // a new interface has no address yet: FAULT (no source) until one is configured
    expect(a.state()).toBe("FAULT");
    const addr = { ifindex: eth1.ifindex, family: "inet" as const, address: "192.0.2.1", prefixlen: 24, secondary: false, scope: 0 };
    a.host.addressTable.push(addr);
    a.host.emit({ kind: "address", addr, deleted: false });
    expect(a.log.lines).toContain("(VI_1) source address 192.0.2.1 on eth1");
    clock.advance(2000);
    expect(a.state()).toBe("MASTER");
    expect(a.host.has("192.0.2.100")).toBe(true);
  });

  test("without dynamic_interfaces the instance is ignored, as keepalived", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const a = node("a", "192.0.2.1", text(false), clock, seg);
    a.rt.start();
    a.host.addLink("eth1");
    a.host.emit({ kind: "link", link: a.host.links().find((l) => l.name === "eth1")!, deleted: false });
    clock.advance(2000);
    expect(a.rt.status().instances).toEqual([]);
    expect(a.log.lines).toContain("E (VI_1) interface eth1 does not exist - instance ignored");
  });
});

describe("vrrp_delay_after_boot", () => {
  test("holds instances until that long after boot (the fake host booted 1 s before the test)", () => {
    const clock = new FakeClock();
    const seg = new FakeSegment(clock);
    const a = node("a", "192.0.2.1", `global_defs {\n vrrp_delay_after_boot 3\n}\n${conf(150)}`, clock, seg);
    a.rt.start();
    clock.advance(1500);
    expect(a.state()).toBe("INIT");
    clock.advance(1500);
    expect(a.state()).toBe("MASTER");
  });
});
