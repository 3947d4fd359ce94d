// The reconciler and the manager against an in-memory IpvsApi: minimal diffs, idempotence,
// repair after an external flush, stop removes only vipd's entries, sync daemons, status.
import { describe, expect, test } from "bun:test";
import { loadConfigText } from "../../src/config/load.ts";
import type { Logger } from "../../src/daemon/logger.ts";
import { serviceId } from "../../src/lvs/desired.ts";
import {
  IP_VS_SVC_F_HASHED, type IpvsApi, type IpvsDaemonState, type IpvsDestination, type IpvsDestinationEntry, type IpvsDestKey,
  type IpvsService, type IpvsServiceEntry, type IpvsServiceKey, type IpvsSyncDaemon, type IpvsTimeouts, serviceKeyString,
} from "../../src/lvs/ipvs-types.ts";
import { LvsLifecycle } from "../../src/lvs/lifecycle.ts";
import { createLvsManager, type LvsManagerDeps, realServerRef } from "../../src/lvs/manager.ts";
import { applyOps, describeOp, destId, observe, planReconcile, planStop } from "../../src/lvs/reconcile.ts";
import { desiredFromModel } from "../../src/lvs/desired.ts";
import { desiredSyncDaemons, planSyncDaemons } from "../../src/lvs/sync-daemon.ts";

const err = (code: string) => Object.assign(new Error(code), { code, errno: 1 });

/** An in-memory IPVS table that behaves like the kernel's errors (EEXIST, ESRCH, ENOENT). */
class FakeIpvs implements IpvsApi {
  svcs = new Map<string, { s: IpvsServiceEntry; d: Map<string, IpvsDestinationEntry> }>();
  calls: string[] = [];
  daemonList: IpvsSyncDaemon[] = [];
  t: IpvsTimeouts = { tcp: 900, tcpFin: 120, udp: 300 };
  closed = false;
  private get(k: IpvsServiceKey) {
    const e = this.svcs.get(serviceId(k));
    if (!e) throw err("ESRCH");
    return e;
  }
  info() {
    return { version: "1.2.1", versionCode: 0x10201, connTableSize: 4096 };
  }
  services() {
    return [...this.svcs.values()].map((e) => ({ ...e.s }));
  }
  getService(k: IpvsServiceKey) {
    return this.svcs.get(serviceId(k))?.s;
  }
  addService(s: IpvsService) {
    this.calls.push(`addService ${serviceKeyString(s)}`);
    if (this.svcs.has(serviceId(s))) throw err("EEXIST");
    this.svcs.set(serviceId(s), { s: { ...s, flags: s.flags | IP_VS_SVC_F_HASHED }, d: new Map() });
  }
  editService(s: IpvsService) {
    this.calls.push(`editService ${serviceKeyString(s)}`);
    this.get(s).s = { ...s, flags: s.flags | IP_VS_SVC_F_HASHED };
  }
  deleteService(k: IpvsServiceKey) {
    this.calls.push(`deleteService ${serviceKeyString(k)}`);
    this.get(k);
    this.svcs.delete(serviceId(k));
  }
  destinations(k: IpvsServiceKey) {
    return [...this.get(k).d.values()].map((d) => ({ ...d }));
  }
  addDestination(k: IpvsServiceKey, d: IpvsDestination) {
    this.calls.push(`addDest ${serviceKeyString(k)} ${destId(d)} ${d.weight}`);
    const e = this.get(k);
    if (e.d.has(destId(d))) throw err("EEXIST");
    e.d.set(destId(d), { ...d, activeConns: 0, inactConns: 0, persistConns: 0 });
  }
  editDestination(k: IpvsServiceKey, d: IpvsDestination) {
    this.calls.push(`editDest ${serviceKeyString(k)} ${destId(d)} ${d.weight}`);
    const e = this.get(k);
    if (!e.d.has(destId(d))) throw err("ENOENT");
    e.d.set(destId(d), { ...d, activeConns: 0, inactConns: 0, persistConns: 0 });
  }
  deleteDestination(k: IpvsServiceKey, d: IpvsDestKey) {
    this.calls.push(`deleteDest ${serviceKeyString(k)} ${destId(d)}`);
    if (!this.get(k).d.delete(destId(d))) throw err("ENOENT");
  }
  flush() {
    this.calls.push("flush");
    this.svcs.clear();
  }
  zero() {}
  timeouts() {
    return { ...this.t };
  }
  setTimeouts(t: Partial<IpvsTimeouts>) {
    this.calls.push(`setTimeouts ${JSON.stringify(t)}`);
    this.t = { ...this.t, ...Object.fromEntries(Object.entries(t).filter(([, v]) => v)) };
  }
  daemons() {
    return this.daemonList.map((d) => ({ ...d }));
  }
  startDaemon(d: IpvsSyncDaemon) {
    this.calls.push(`startDaemon ${d.state}`);
    if (this.daemonList.some((x) => x.state === d.state)) throw err("EEXIST");
    this.daemonList.push({ ...d });
  }
  stopDaemon(s: IpvsDaemonState) {
    this.calls.push(`stopDaemon ${s}`);
    this.daemonList = this.daemonList.filter((d) => d.state !== s);
  }
  close() {
    this.closed = true;
  }
  /** "TCP 192.0.2.1:80 -> 198.51.100.1:80 NAT 1" lines, sorted. */
  dump(): string[] {
    return [...this.svcs.values()].flatMap((e) => [
      `${serviceKeyString(e.s)} ${e.s.scheduler}`,
      ...[...e.d.values()].map((d) => `${serviceKeyString(e.s)} -> ${destId(d)} ${d.fwdMethod} ${d.weight}`),
    ]).sort();
  }
}

const model = (text: string) => loadConfigText(text, "/tmp/r.conf", { hostname: "h", env: {} }).model;
const CONF = `virtual_server 192.0.2.1 80 {
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
}
virtual_server fwmark 7 {
lvs_method DR
real_server 198.51.100.3 {
}
}
`;
const FOREIGN: IpvsService = { family: "inet", protocol: "udp", address: "203.0.113.9", port: 53, scheduler: "rr", flags: 0, timeout: 0, netmask: 32 };

function started(conf = CONF) {
  const lc = new LvsLifecycle(desiredFromModel(model(conf)).virtualServers);
  lc.start();
  return lc;
}

describe("planReconcile", () => {
  test("from empty: services first, then destinations; applying twice = no ops", () => {
    const lc = started();
    const api = new FakeIpvs();
    const ops = planReconcile(lc.desiredServices(), observe(api));
    expect(ops.map(describeOp)).toEqual([
      "add service TCP 192.0.2.1:80 rr",
      "add service FWM 7 wlc",
      "add dest TCP 192.0.2.1:80 -> 198.51.100.1:80 NAT weight 2",
      "add dest TCP 192.0.2.1:80 -> 198.51.100.2:80 NAT weight 1",
      "add dest FWM 7 -> 198.51.100.3:0 DR weight 1",
    ]);
    expect(applyOps(api, ops)).toEqual({ applied: 5, failed: [] });
    // the kernel sets HASHED on its own: still no diff
    expect(planReconcile(lc.desiredServices(), observe(api))).toEqual([]);
  });

  test("a real server going down is one delete; a weight change one edit", () => {
    const lc = started();
    const api = new FakeIpvs();
    applyOps(api, planReconcile(lc.desiredServices(), observe(api)));
    const vsKey = lc.virtualServers()[0]!.key;
    lc.checkerResult(vsKey, "198.51.100.2:80", 0, { up: false });
    expect(planReconcile(lc.desiredServices(), observe(api)).map(describeOp)).toEqual(["delete dest TCP 192.0.2.1:80 -> 198.51.100.2:80"]);
    lc.checkerResult(vsKey, "198.51.100.1:80", 0, { up: true, weightDelta: 3 });
    const ops = planReconcile(lc.desiredServices(), observe(api));
    expect(ops.map(describeOp)).toEqual(["edit dest TCP 192.0.2.1:80 -> 198.51.100.1:80 NAT weight 5", "delete dest TCP 192.0.2.1:80 -> 198.51.100.2:80"]);
  });

  test("a changed scheduler is an edit of the service, nothing else", () => {
    const api = new FakeIpvs();
    applyOps(api, planReconcile(started().desiredServices(), observe(api)));
    const ops = planReconcile(started(CONF.replace("lvs_sched rr", "lvs_sched wrr")).desiredServices(), observe(api));
    expect(ops.map(describeOp)).toEqual(["edit service TCP 192.0.2.1:80 wrr"]);
  });

  test("after an external flush everything comes back", () => {
    const lc = started();
    const api = new FakeIpvs();
    applyOps(api, planReconcile(lc.desiredServices(), observe(api)));
    const before = api.dump();
    api.flush();
    applyOps(api, planReconcile(lc.desiredServices(), observe(api)));
    expect(api.dump()).toEqual(before);
  });

  test("foreign services are never touched; a foreign destination in our service is removed; dropped owned services are deleted", () => {
    const lc = started();
    const api = new FakeIpvs();
    api.addService(FOREIGN);
    applyOps(api, planReconcile(lc.desiredServices(), observe(api)));
    api.addDestination({ family: "inet", protocol: "tcp", address: "192.0.2.1", port: 80 }, { address: "198.51.100.99", port: 80, family: "inet", fwdMethod: "NAT", weight: 1, uThreshold: 0, lThreshold: 0 });
    const owned = new Set(lc.desiredServices().map((d) => serviceId(d.service)));
    // new config without the fwmark server
    const lc2 = started(CONF.slice(0, CONF.indexOf("virtual_server fwmark")));
    const ops = planReconcile(lc2.desiredServices(), observe(api), owned);
    expect(ops.map(describeOp)).toEqual(["delete dest TCP 192.0.2.1:80 -> 198.51.100.99:80", "delete service FWM 7"]);
    applyOps(api, ops);
    expect(api.dump().filter((l) => l.startsWith("UDP"))).toEqual(["UDP 203.0.113.9:53 rr"]);
  });

  test("applyOps absorbs races: add of an existing entry edits, delete of a missing one is done", () => {
    const api = new FakeIpvs();
    const key = { family: "inet" as const, protocol: "tcp" as const, address: "192.0.2.1", port: 80 };
    const svc: IpvsService = { ...key, scheduler: "rr", flags: 0, timeout: 0, netmask: 32 };
    const dest: IpvsDestination = { address: "198.51.100.1", port: 80, family: "inet", fwdMethod: "NAT", weight: 1, uThreshold: 0, lThreshold: 0 };
    const r = applyOps(api, [
      { op: "addService", service: svc }, { op: "addService", service: { ...svc, scheduler: "wrr" } },
      { op: "addDest", key, dest }, { op: "addDest", key, dest: { ...dest, weight: 4 } },
      { op: "deleteDest", key, dest: { address: "198.51.100.7", port: 80 } },
      { op: "editDest", key, dest: { ...dest, address: "198.51.100.8" } },
      { op: "deleteService", key: { ...key, port: 81 } },
    ]);
    expect(r).toEqual({ applied: 7, failed: [] });
    expect(api.dump()).toEqual(["TCP 192.0.2.1:80 -> 198.51.100.1:80 NAT 4", "TCP 192.0.2.1:80 -> 198.51.100.8:80 NAT 1", "TCP 192.0.2.1:80 wrr"]);
    // a real failure is reported, not thrown
    expect(applyOps(api, [{ op: "addDest", key: { ...key, port: 99 }, dest }]).failed.length).toBe(1);
  });

  test("planStop: default removes our real servers then our services; VS deletes services; full flushes", () => {
    const lc = started();
    const api = new FakeIpvs();
    api.addService(FOREIGN);
    applyOps(api, planReconcile(lc.desiredServices(), observe(api)));
    const owned = new Set(lc.desiredServices().map((d) => serviceId(d.service)));
    expect(planStop(owned, observe(api), "none").map(describeOp)).toEqual([
      "delete dest TCP 192.0.2.1:80 -> 198.51.100.1:80", "delete dest TCP 192.0.2.1:80 -> 198.51.100.2:80", "delete service TCP 192.0.2.1:80",
      "delete dest FWM 7 -> 198.51.100.3:0", "delete service FWM 7",
    ]);
    expect(planStop(owned, observe(api), "vs").map(describeOp)).toEqual(["delete service TCP 192.0.2.1:80", "delete service FWM 7"]);
    expect(planStop(owned, observe(api), "full")).toEqual([{ op: "flush" }]);
  });
});

describe("sync daemon plan", () => {
  const cfg = { interface: "eth1", instance: "VI_1", syncId: 51 };
  test("tied: master while MASTER, backup otherwise; untied: both; none when stopping", () => {
    expect(desiredSyncDaemons(cfg, "MASTER").map((d) => d.state)).toEqual(["master"]);
    for (const s of ["BACKUP", "FAULT", "INIT", undefined]) expect(desiredSyncDaemons(cfg, s).map((d) => d.state)).toEqual(["backup"]);
    expect(desiredSyncDaemons({ interface: "eth1", syncId: 0 }, undefined).map((d) => d.state)).toEqual(["master", "backup"]);
    expect(desiredSyncDaemons(cfg, "MASTER", true)).toEqual([]);
    expect(desiredSyncDaemons(undefined, "MASTER")).toEqual([]);
  });
  test("transition stops the old state and starts the new; unmanaged daemons are left alone", () => {
    const backup = desiredSyncDaemons(cfg, "BACKUP");
    const master = desiredSyncDaemons(cfg, "MASTER");
    expect(planSyncDaemons(master, backup, new Set(["backup"]))).toEqual({ stop: ["backup"], start: master });
    expect(planSyncDaemons(master, master, new Set(["master"]))).toEqual({ stop: [], start: [] });
    expect(planSyncDaemons([], backup, new Set())).toEqual({ stop: [], start: [] });
    // other settings: restart
    expect(planSyncDaemons(master, [{ ...master[0]!, syncId: 9 }], new Set(["master"]))).toEqual({ stop: ["master"], start: master });
  });
});

describe("LvsManager", () => {
  const silent: Logger = { info() {}, warn() {}, error() {}, debug() {} };
  function setup(conf: string, extra: Partial<LvsManagerDeps> = {}) {
    const api = new FakeIpvs();
    const logs: string[] = [];
    const fifo: string[] = [];
    const scripts: string[] = [];
    const mails: string[] = [];
    const timers: Array<() => void> = [];
    const log: Logger = { info: (m) => logs.push(m), warn: (m) => logs.push(`W ${m}`), error: (m) => logs.push(`E ${m}`), debug() {} };
    const m = createLvsManager(model(conf), {
      log, openIpvs: () => ({ ok: true, ipvs: api }), now: () => 0,
      fifo: { virtualServer: (vs, up) => fifo.push(`VS ${vs.ip ?? vs.fwmark} ${up ? "UP" : "DOWN"}`), realServer: (rs, _vs, up) => fifo.push(`RS ${rs.ip} ${up ? "UP" : "DOWN"}`) },
      runScript: (_what, ref) => void scripts.push(ref.cmd),
      mail: (e) => void mails.push(e.subject),
      setTimer: (fn) => (timers.push(fn), timers.length), clearTimer: () => {},
      ...extra,
    });
    return { api, m, logs, fifo, scripts, mails, timers };
  }

  test("IPVS unavailable: one clear log line, nothing else, status says why", () => {
    const logs: string[] = [];
    const m = createLvsManager(model(CONF), {
      log: { ...silent, error: (x) => logs.push(x) }, openIpvs: () => ({ ok: false, reason: "unavailable", message: "IPVS unavailable: no family" }),
    });
    m.start();
    expect(logs).toEqual(["IPVS unavailable: no family"]);
    expect(m.available).toBe(false);
    expect(m.status()).toMatchObject({ available: false, reason: "IPVS unavailable: no family" });
    m.checkerReport({ rsRef: m.realServers()[0]!.ref, checkerIndex: 0, up: false });
    expect(m.reconcile()).toEqual([]);
  });

  test("no LVS config: IPVS is not even opened", () => {
    let opened = 0;
    const m = createLvsManager(model("vrrp_instance V {\ninterface eth0\nvirtual_router_id 1\n}\n"), { log: silent, openIpvs: () => (opened++, { ok: false, reason: "x", message: "x" }) });
    m.start();
    expect(opened).toBe(0);
  });

  test("start programs everything; checker reports reach the kernel, scripts, FIFO and mail; periodic repair after ipvsadm -C", () => {
    const conf = `global_defs {\nrouter_id lb1\nlvs_flush\nlvs_timeouts tcp 60\n}\n` + CONF.replace("weight 2", 'weight 2\nnotify_down "/bin/rs-down"');
    const { api, m, fifo, scripts, mails, timers, logs } = setup(conf);
    api.addService(FOREIGN);
    m.start();
    expect(api.calls[1]).toBe("flush"); // lvs_flush removed the foreign service
    expect(api.t.tcp).toBe(60);
    expect(api.dump()).toEqual([
      "FWM 7 -> 198.51.100.3:0 DR 1", "FWM 7 wlc",
      "TCP 192.0.2.1:80 -> 198.51.100.1:80 NAT 2", "TCP 192.0.2.1:80 -> 198.51.100.2:80 NAT 1", "TCP 192.0.2.1:80 rr",
    ]);
    const ref = realServerRef(m.realServers()[0]!.vs.key, "198.51.100.1:80");
    api.calls = [];
    m.checkerReport({ rsRef: ref, checkerIndex: 0, up: false, detail: "connection refused" });
    expect(api.calls).toEqual(["deleteDest TCP 192.0.2.1:80 198.51.100.1:80"]); // no dump, one op
    expect(scripts).toEqual(["/bin/rs-down"]);
    // start announced both virtual servers' quorum (keepalived's "Starting with quorum up")
    expect(fifo).toEqual(["VS 192.0.2.1 UP", "VS 7 UP", "RS 198.51.100.1 DOWN"]);
    expect(mails).toEqual(["[lb1] Realserver [198.51.100.1]:tcp:80 of virtual server [192.0.2.1]:tcp:80 - DOWN"]);
    // outside change: ipvsadm -C, then the repair timer fires
    api.flush();
    expect(timers.length).toBe(1);
    timers.shift()!();
    expect(api.dump()).toContain("TCP 192.0.2.1:80 -> 198.51.100.2:80 NAT 1");
    expect(api.dump()).not.toContain("TCP 192.0.2.1:80 -> 198.51.100.1:80 NAT 2");
    expect(logs.some((l) => l.includes("repaired"))).toBe(true);
    expect(timers.length).toBe(1); // re-armed
    // a second repair pass with nothing changed does nothing
    expect(m.reconcile()).toEqual([]);
  });

  test("status: real servers with checker states and the kernel's weights, quorum state", () => {
    const { m } = setup(CONF);
    m.start();
    m.checkerReport({ rsRef: m.realServers()[1]!.ref, checkerIndex: 0, up: false, detail: "timeout", latencyMs: 5000 });
    const s = m.status();
    expect(s.available).toBe(true);
    const vs = s.virtualServers[0]!;
    expect(vs).toMatchObject({ label: "[192.0.2.1]:tcp:80", services: ["TCP 192.0.2.1:80"], scheduler: "rr", quorumUp: true, weightSum: 2 });
    expect(vs.realServers.map((r) => [r.address, r.alive, r.ipvsWeight, r.checkers[0]?.up])).toEqual([["198.51.100.1", true, 2, true], ["198.51.100.2", false, null, false]]);
    expect(vs.realServers[1]!.checkers[0]).toMatchObject({ type: "TCP_CHECK", hasRun: true, detail: "timeout", latencyMs: 5000 });
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });

  test("stop removes only vipd's entries and runs omega notifies; flush_on_stop flushes", async () => {
    const a = setup(CONF.replace("lvs_sched rr", 'lvs_sched rr\nomega\nquorum_down "/bin/qd"'));
    a.api.addService(FOREIGN);
    a.m.start();
    await a.m.stop();
    expect(a.api.dump()).toEqual(["UDP 203.0.113.9:53 rr"]);
    expect(a.scripts).toEqual(["/bin/qd"]);
    expect(a.fifo).toEqual(["VS 192.0.2.1 UP", "VS 7 UP", "RS 198.51.100.1 DOWN", "RS 198.51.100.2 DOWN", "VS 192.0.2.1 DOWN"]);
    expect(a.api.closed).toBe(true);

    const b = setup(`global_defs {\nlvs_flush_on_stop\n}\n${CONF}`);
    b.api.addService(FOREIGN);
    b.m.start();
    await b.m.stop();
    expect(b.api.dump()).toEqual([]);
  });

  test("lvs_sync_daemon follows the tied VRRP instance and stops at exit", async () => {
    const conf = `global_defs {\nlvs_sync_daemon eth1 VI_1\n}\nvrrp_instance VI_1 {\ninterface eth0\nvirtual_router_id 42\nvirtual_ipaddress {\n192.0.2.1\n}\n}\n${CONF}`;
    const { api, m } = setup(conf);
    m.start();
    expect(api.daemonList.map((d) => `${d.state} ${d.mcastIfn} ${d.syncId}`)).toEqual(["backup eth1 42"]);
    m.vrrpState("VI_1", "MASTER");
    expect(api.daemonList.map((d) => d.state)).toEqual(["master"]);
    m.vrrpState("OTHER", "BACKUP");
    expect(api.daemonList.map((d) => d.state)).toEqual(["master"]);
    m.vrrpState("VI_1", "FAULT");
    expect(api.daemonList.map((d) => d.state)).toEqual(["backup"]);
    await m.stop();
    expect(api.daemonList).toEqual([]);
  });

  test("ha_suspend: checkers suspended until the address is local", () => {
    const suspends: string[] = [];
    const { m } = setup(CONF.replace("lvs_sched rr", "lvs_sched rr\nha_suspend"), { onSuspend: (k, s) => void suspends.push(`${k} ${s}`) });
    m.start();
    const key = m.realServers()[0]!.vs.key;
    expect(m.checkersSuspended(key)).toBe(true);
    m.setLocalAddresses(["192.0.2.1"]);
    expect(m.checkersSuspended(key)).toBe(false);
    m.setLocalAddresses([]);
    expect(suspends).toEqual([`${key} true`, `${key} false`, `${key} true`]);
  });

  test("reload: only the difference reaches the kernel, unchanged servers keep their state", () => {
    const { api, m } = setup(CONF);
    m.start();
    m.checkerReport({ rsRef: m.realServers()[1]!.ref, checkerIndex: 0, up: false });
    api.calls = [];
    m.reload(model(CONF.replace("lvs_sched rr", "lvs_sched wrr").slice(0, CONF.indexOf("virtual_server fwmark") + 1)));
    expect(api.calls.filter((c) => !c.startsWith("get"))).toEqual(["editService TCP 192.0.2.1:80", "deleteService FWM 7"]);
    expect(m.status().virtualServers[0]!.realServers[1]!.alive).toBe(false);
  });
});
