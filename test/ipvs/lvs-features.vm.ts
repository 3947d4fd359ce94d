/**
 * The remaining LVS features end to end inside the ipvs-vm, the compiled vipd against the real
 * IPVS kernel (observed with ipvsadm), each as keepalived does it:
 *  - lvs_flush (a foreign service is gone at start), lvs_timeouts (ipvsadm -L --timeout),
 *    lvs_flush_on_stop (SIGTERM leaves the whole table empty, foreign entries too);
 *  - alpha (a real server starts out of IPVS and joins on its first successful check; dead, it
 *    never joins, but its first failure still runs notify_down);
 *  - inhibit_on_failure (a failed real server stays in IPVS at weight 0, clients no longer reach
 *    it, and it gets its weight back when it recovers);
 *  - notify_up/notify_down and quorum_up/quorum_down scripts on those transitions (no extra args);
 *  - lvs_sync_daemon tied to a VRRP instance (master sync daemon while MASTER, backup otherwise);
 *  - ha_suspend (checkers off while the VIP is not local, on again once VRRP adds it).
 * Two daemons in turn in D1 (the shared lab, test/ipvs/lvs-lab.ts); the last case stops the
 * second, so D1's IPVS table and sync daemons are empty for the suites after this one.
 */
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { afterAll, suite, test } from "./harness.ts";
import { D1, VIP, Vipd, fetchMany, lab, savedRules, sh, startHttpd, staticVip, stopHttpd, tally, waitFor, waitHttpd } from "./lvs-lab.ts";

suite("lvs-features");

const DIR = "/tmp/vipdt-lvs-feat";
const NOTE = `${DIR}/note.sh`;
const NOTES = `${DIR}/notes.txt`;
const FOREIGN = "-A -t 192.0.2.9:80 -s rr";
const RS1 = "203.0.113.11";
const RS2 = "203.0.113.12";
const RS3 = "203.0.113.13";
/** Generous bounds: the VM runs under TCG beside the rest of the suite. */
const CHECK_MS = 8000;

/** The TCP_CHECK every case uses: every 0.5 s, one try, marked down on the first failure. */
const tcpCheck = (alpha: boolean) => `    TCP_CHECK {
${alpha ? "      alpha\n" : ""}      connect_timeout 0.5
      retry 0
      delay_before_retry 0.5
      warmup 0
    }`;

// ---- daemon 1: lvs_flush, lvs_timeouts, lvs_flush_on_stop, alpha, inhibit_on_failure, notifies, quorum scripts ----

const PORT = 8090;
const CONFIG = `
global_defs {
  router_id lvs-features
  script_user root
  lvs_timeouts tcp 600 tcpfin 30 udp 120
  lvs_flush
  lvs_flush_on_stop
}
virtual_server ${VIP} ${PORT} {
  lb_algo rr
  lb_kind NAT
  protocol TCP
  delay_loop 0.5
  quorum 2
  quorum_up "${NOTE} quorum up"
  quorum_down "${NOTE} quorum down"
  real_server ${RS1} 80 {
    weight 1
    inhibit_on_failure
    notify_up "${NOTE} rs1 up"
    notify_down "${NOTE} rs1 down"
${tcpCheck(false)}
  }
  real_server ${RS2} 80 {
    weight 1
    notify_up "${NOTE} rs2 up"
    notify_down "${NOTE} rs2 down"
${tcpCheck(true)}
  }
}
`;

const d = new Vipd(D1, "features");
const rules = () => savedRules(D1);
const svc = (port: number) => `-A -t ${VIP}:${port} -s rr`;
const dest = (port: number, ip: string, w: number) => `-a -t ${VIP}:${port} -r ${ip}:80 -m -w ${w}`;
/** The script runs so far, without the script's own path ("rs1 up", "quorum down", …). */
const notes = (): string[] => (existsSync(NOTES) ? readFileSync(NOTES, "utf8") : "").split("\n").filter((l) => l).map((l) => l.split(" ").slice(1).join(" "));
const ctx = (v: Vipd, what: string) => `${what}\n--- ipvsadm -S ---\n${rules().join("\n")}\n--- notes ---\n${notes().join("\n")}\n--- vipd ${v.name} log ---\n${v.logTail()}`;
const timeouts = () => sh(`ip netns exec ${D1} ipvsadm -L --timeout`).trim();
const rsStatus = async (v: Vipd, ip: string) => (await v.lvs()).virtualServers[0]!.realServers.find((r) => r.address === ip)!;

// a failed case can leave a daemon running: stop it (afterAll hooks run once all suites are done)
afterAll(async () => {
  await d.stop();
  await dv.stop();
});

test("lvs_flush removes a foreign service at start; lvs_timeouts are set; an alpha server whose check fails is not added", async () => {
  lab();
  staticVip(D1, true); // the clients reach the VIP through D1 (NAT: D1 is the real servers' gateway)
  mkdirSync(DIR, { recursive: true });
  writeFileSync(NOTE, `#!/bin/sh\necho "$0 $*" >> ${NOTES}\n`);
  chmodSync(NOTE, 0o755);
  writeFileSync(NOTES, "");
  sh(`ip netns exec ${D1} ipvsadm ${FOREIGN}`);
  const before = timeouts();
  stopHttpd("rs2"); // rs2 (alpha) is dead at start
  await d.start(CONFIG);
  // IPVS is programmed before the control socket answers: the table as start left it.
  assert.deepEqual(rules(), [svc(PORT), dest(PORT, RS1, 1)].sort(), ctx(d, "the table after start (foreign service flushed, alpha rs2 absent)"));
  assert.equal(timeouts(), "Timeout (tcp tcpfin udp): 600 30 120", `before vipd: ${before}`);
  // rs2's checker runs and fails: keepalived still runs notify_down for an alpha checker's first
  // failure; rs2 never was in IPVS (no "Removing" line), rs1's first success notifies nothing.
  await waitFor(async () => (await rsStatus(d, RS2)).checkers[0]!.hasRun && (await rsStatus(d, RS1)).checkers[0]!.hasRun, CHECK_MS, () => ctx(d, "both checkers run"), 100);
  await waitFor(() => notes().length > 0, CHECK_MS, () => ctx(d, "rs2's notify_down"), 100);
  await Bun.sleep(1500); // three more checks of a dead rs2
  assert.deepEqual(rules(), [svc(PORT), dest(PORT, RS1, 1)].sort(), ctx(d, "rs2 still absent"));
  assert.deepEqual(notes(), ["rs2 down"], ctx(d, "notes"));
  assert.doesNotMatch(d.logTail(200), /(Adding|Removing) service 203\.0\.113\.12:80 /, "rs2 was never in the pool");
  const vs = (await d.lvs()).virtualServers[0]!;
  assert.equal(vs.quorumUp, false, "weight 1 < quorum 2");
  assert.equal((await rsStatus(d, RS2)).alive, false);
});

test("alpha: the server joins IPVS on its first successful check; notify_up and quorum_up run", async () => {
  startHttpd("rs2");
  await waitHttpd("rs2", D1);
  await waitFor(() => rules().includes(dest(PORT, RS2, 1)), CHECK_MS, () => ctx(d, "rs2 added"), 100);
  assert.deepEqual(rules(), [svc(PORT), dest(PORT, RS1, 1), dest(PORT, RS2, 1)].sort());
  // notify_exec does not wait: the two scripts may finish in either order
  await waitFor(() => notes().length >= 3, CHECK_MS, () => ctx(d, "rs2 up and quorum up notes"), 100);
  assert.deepEqual(notes().slice(1).sort(), ["quorum up", "rs2 up"], ctx(d, "notes"));
  assert.equal((await d.lvs()).virtualServers[0]!.quorumUp, true);
  assert.deepEqual(tally(fetchMany(4, PORT)), { rs1: 2, rs2: 2 });
});

test("inhibit_on_failure: a failed server stays in IPVS at weight 0 (no new connections), and gets its weight back", async () => {
  writeFileSync(NOTES, "");
  stopHttpd("rs1");
  d.note("killed rs1's httpd");
  let removed = false;
  await waitFor(() => {
    const r = rules();
    if (!r.some((l) => l.startsWith(`-a -t ${VIP}:${PORT} -r ${RS1}:80 `))) removed = true;
    return r.includes(dest(PORT, RS1, 0));
  }, CHECK_MS, () => ctx(d, "rs1 at weight 0"), 50);
  assert.equal(removed, false, "rs1 left IPVS on the way (inhibit_on_failure keeps it)");
  assert.deepEqual(rules(), [svc(PORT), dest(PORT, RS1, 0), dest(PORT, RS2, 1)].sort());
  const rs1 = await rsStatus(d, RS1);
  assert.equal(rs1.alive, false);
  assert.equal(rs1.ipvsWeight, 0);
  assert.equal(rs1.inhibitOnFailure, true);
  assert.match(d.logTail(200), /Disabling service 203\.0\.113\.11:80 of VS /);
  // weight 0: the scheduler sends nothing to rs1
  assert.deepEqual(tally(fetchMany(3, PORT)), { rs2: 3 });
  // its notify_down and, weight 1 < quorum 2, quorum_down
  await waitFor(() => notes().length >= 2, CHECK_MS, () => ctx(d, "rs1 down and quorum down notes"), 100);
  assert.deepEqual(notes().sort(), ["quorum down", "rs1 down"]);

  writeFileSync(NOTES, "");
  startHttpd("rs1");
  await waitHttpd("rs1", D1);
  await waitFor(() => rules().includes(dest(PORT, RS1, 1)), CHECK_MS, () => ctx(d, "rs1 back at weight 1"), 50);
  assert.deepEqual(rules(), [svc(PORT), dest(PORT, RS1, 1), dest(PORT, RS2, 1)].sort());
  await waitFor(() => notes().length >= 2, CHECK_MS, () => ctx(d, "rs1 up and quorum up notes"), 100);
  assert.deepEqual(notes().sort(), ["quorum up", "rs1 up"]);
  assert.deepEqual(Object.keys(tally(fetchMany(4, PORT))).sort(), ["rs1", "rs2"]);
});

test("lvs_flush_on_stop: after SIGTERM the whole IPVS table is empty, foreign entries too", async () => {
  sh(`ip netns exec ${D1} ipvsadm ${FOREIGN}`);
  assert.ok(rules().includes(FOREIGN));
  writeFileSync(NOTES, "");
  assert.equal(await d.stop(), 0, ctx(d, "exit code"));
  assert.deepEqual(rules(), []);
  // no omega: stopping runs no notify (and a flush on stop never runs the real servers' ones)
  await Bun.sleep(300);
  assert.deepEqual(notes(), []);
  console.log(`    timeouts after the stop: ${timeouts()}`);
  staticVip(D1, false);
});

// ---- daemon 2: lvs_sync_daemon tied to a VRRP instance, ha_suspend ----

const SYNC_PORT = 8091;
const VRRP_CONFIG = `
global_defs {
  router_id lvs-features-vrrp
  vrrp_version 3
  lvs_sync_daemon out0 VI_SYNC id 7
}
vrrp_instance VI_SYNC {
  state BACKUP
  interface out0
  virtual_router_id 61
  priority 100
  advert_int 0.1
  virtual_ipaddress {
    ${VIP}/24 dev out0
  }
}
virtual_server ${VIP} ${SYNC_PORT} {
  lb_algo rr
  lb_kind NAT
  protocol TCP
  delay_loop 0.5
  ha_suspend
  real_server ${RS3} 80 {
    weight 1
${tcpCheck(true)}
  }
}
`;

const dv = new Vipd(D1, "features-vrrp");
const daemons = () => sh(`ip netns exec ${D1} ipvsadm -L --daemon`).trim();
const instanceState = async () => (await dv.status()).instances.find((i) => i.name === "VI_SYNC")?.state;
const vipLocal = () => sh(`ip -n ${D1} -4 -o addr show dev out0`).includes(` ${VIP}/`);
const suspended = async () => (await dv.lvs()).virtualServers[0]!.suspended;
const link = (up: boolean) => sh(`ip -n ${D1} link set out0 ${up ? "up" : "down"}`);
/** The one sync daemon line: "master …" or "backup …" on out0 with syncid 7. */
const syncLine = (state: "master" | "backup") => new RegExp(`^${state} sync daemon \\(mcast=out0, syncid=7[,)]`);
const onlyDaemon = (state: "master" | "backup") => {
  const lines = daemons().split("\n").filter((l) => l);
  return lines.length === 1 && syncLine(state).test(lines[0]!);
};

test("instance in FAULT (out0 down): the backup sync daemon runs; ha_suspend keeps the checkers off, the alpha server stays out", async () => {
  lab();
  staticVip(D1, false);
  link(false);
  await dv.start(VRRP_CONFIG);
  await waitFor(async () => (await instanceState()) === "FAULT", CHECK_MS, () => ctx(dv, "VI_SYNC in FAULT"), 100);
  await waitFor(() => onlyDaemon("backup"), CHECK_MS, () => ctx(dv, `only the backup sync daemon:\n${daemons()}`), 100);
  assert.equal(vipLocal(), false);
  assert.equal(await suspended(), true, ctx(dv, "suspended"));
  await Bun.sleep(2000); // four delay_loops: a running checker would have run by now
  const rs3 = (await dv.lvs()).virtualServers[0]!.realServers[0]!;
  assert.equal(rs3.checkers[0]!.hasRun, false, ctx(dv, "the checker ran while suspended"));
  assert.deepEqual(rules(), [svc(SYNC_PORT)], ctx(dv, "only the service"));
});

test("instance MASTER (out0 up): the master sync daemon replaces the backup one; the VIP is local, checkers run, the server joins", async () => {
  link(true);
  await waitFor(async () => (await instanceState()) === "MASTER", CHECK_MS, () => ctx(dv, "VI_SYNC MASTER"), 100);
  await waitFor(() => onlyDaemon("master"), CHECK_MS, () => ctx(dv, `only the master sync daemon:\n${daemons()}`), 100);
  assert.equal(vipLocal(), true);
  // the address source is polled every second
  await waitFor(async () => !(await suspended()), CHECK_MS, () => ctx(dv, "checkers resumed"), 100);
  await waitFor(() => rules().includes(dest(SYNC_PORT, RS3, 1)), CHECK_MS, () => ctx(dv, "rs3 added"), 100);
  assert.match(dv.logTail(200), /Activating healthchecker for service/);
});

test("FAULT again: back to the backup sync daemon; suspended checkers leave a dead server in place until MASTER resumes them", async () => {
  try {
    link(false);
    await waitFor(async () => (await instanceState()) === "FAULT", CHECK_MS, () => ctx(dv, "VI_SYNC FAULT"), 100);
    await waitFor(() => onlyDaemon("backup"), CHECK_MS, () => ctx(dv, `only the backup sync daemon:\n${daemons()}`), 100);
    await waitFor(async () => await suspended(), CHECK_MS, () => ctx(dv, "checkers suspended"), 100);
    // rs3 dies while its checker is suspended: nothing notices (it keeps its place and state)
    stopHttpd("rs3");
    await Bun.sleep(2000);
    assert.ok(rules().includes(dest(SYNC_PORT, RS3, 1)), ctx(dv, "rs3 kept while suspended"));
    assert.equal((await dv.lvs()).virtualServers[0]!.realServers[0]!.alive, true);
    // MASTER again: the checker runs and takes the dead rs3 out
    link(true);
    await waitFor(async () => (await instanceState()) === "MASTER", CHECK_MS, () => ctx(dv, "VI_SYNC MASTER"), 100);
    await waitFor(() => !rules().includes(dest(SYNC_PORT, RS3, 1)), CHECK_MS + 2000, () => ctx(dv, "rs3 removed once checked"), 100);
    assert.ok(onlyDaemon("master"), daemons());
  } finally {
    startHttpd("rs3");
    link(true);
  }
  // done: a clean stop removes vipd's entries, its sync daemon and the VIP (the next suites expect an empty D1)
  assert.equal(await dv.stop(), 0, ctx(dv, "exit code"));
  assert.deepEqual(rules(), []);
  assert.equal(daemons(), "");
  assert.equal(vipLocal(), false);
});
