/**
 * End to end inside the ipvs-vm: the compiled vipd, run from a keepalived.conf in a director
 * namespace, programs IPVS exactly as the config says (ipvsadm -S -n and -Ln), clients'
 * requests are spread as rr and wrr say, the sorry server comes in when quorum is lost and
 * leaves when it returns, an external `ipvsadm -C` is repaired within the repair period,
 * TCP_CHECKs take a killed real server out within keepalived's bound and put it back (and
 * losing two of three brings in the sorry server), and a stop removes only vipd's entries. One daemon serves the cases in order (it is costly to
 * start under TCG); the lab is test/ipvs/lvs-lab.ts.
 */
import assert from "node:assert/strict";
import { suite, test } from "./harness.ts";
import { writeFileSync } from "node:fs";
import { D1, VIP, VIPD_BIN, Vipd, fetchMany, lab, savedRules, sh, startHttpd, staticVip, stopHttpd, tally, waitFor, waitHttpd } from "./lvs-lab.ts";

suite("lvs-director");

/** The director's config; `web` lists the real servers of VIP:80 (rr, sorry server, quorum 2). */
function config(web: string[] = ["203.0.113.11", "203.0.113.12", "203.0.113.13"]): string {
  return `
global_defs {
  router_id lvs-d1
}
virtual_server ${VIP} 80 {
  lb_algo rr
  lb_kind NAT
  protocol TCP
  quorum 2
  sorry_server 203.0.113.19 80
${web.map((ip) => `  real_server ${ip} 80 {\n    weight 1\n  }`).join("\n")}
}
virtual_server ${VIP} 8080 {
  lvs_sched wrr
  lvs_method NAT
  protocol TCP
  real_server 203.0.113.11 80 {
    weight 3
  }
  real_server 203.0.113.12 80 {
    weight 1
  }
}
virtual_server ${VIP} 443 {
  lb_algo lc
  lb_kind DR
  protocol TCP
  persistence_timeout 600
  persistence_granularity 255.255.255.0
  real_server 203.0.113.11 443 {
    weight 2
  }
  real_server 203.0.113.12 443 {
    weight 5
    uthreshold 100
    lthreshold 10
  }
}
virtual_server fwmark 7 {
  lb_algo sh
  sh-port
  sh-fallback
  lb_kind TUN
  real_server 203.0.113.13 {
    weight 4
  }
  real_server 203.0.113.12 {
    weight 1
    lvs_method TUN type gue port 6080 csum
  }
}
virtual_server ${VIP} 53 {
  lb_algo wlc
  ops
  protocol UDP
  real_server 203.0.113.11 5353 {
    weight 1
  }
}
virtual_server_group web2 {
  198.51.100.101-102 80
}
virtual_server group web2 {
  lb_algo wrr
  protocol TCP
  real_server 203.0.113.13 80 {
    weight 2
  }
}
`;
}

/** What ipvsadm -S -n must list for config() (sorted, as savedRules gives it). */
const EXPECTED = [
  `-A -t ${VIP}:80 -s rr`,
  `-a -t ${VIP}:80 -r 203.0.113.11:80 -m -w 1`,
  `-a -t ${VIP}:80 -r 203.0.113.12:80 -m -w 1`,
  `-a -t ${VIP}:80 -r 203.0.113.13:80 -m -w 1`,
  `-A -t ${VIP}:8080 -s wrr`,
  `-a -t ${VIP}:8080 -r 203.0.113.11:80 -m -w 3`,
  `-a -t ${VIP}:8080 -r 203.0.113.12:80 -m -w 1`,
  `-A -t ${VIP}:443 -s lc -p 600 -M 255.255.255.0`,
  `-a -t ${VIP}:443 -r 203.0.113.11:443 -g -w 2`,
  `-a -t ${VIP}:443 -r 203.0.113.12:443 -g -w 5`,
  "-A -f 7 -s sh -b sh-fallback,sh-port",
  "-a -f 7 -r 203.0.113.13:0 -i -w 4 --tun-type ipip",
  "-a -f 7 -r 203.0.113.12:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum",
  `-A -u ${VIP}:53 -s wlc -o`,
  `-a -u ${VIP}:53 -r 203.0.113.11:5353 -m -w 1`,
  "-A -t 198.51.100.101:80 -s wrr",
  "-a -t 198.51.100.101:80 -r 203.0.113.13:80 -m -w 2",
  "-A -t 198.51.100.102:80 -s wrr",
  "-a -t 198.51.100.102:80 -r 203.0.113.13:80 -m -w 2",
].sort();

const d1 = new Vipd(D1, "d1");
const rules = () => savedRules(D1);
/** A failure message with the daemon's log. */
const ctx = (what: string) => `${what}\n--- vipd d1 log ---\n${d1.logTail()}`;

/** `vipd run --dry-run` in the director's namespace: its output lines (exit code checked). */
function dryRun(): string[] {
  writeFileSync(d1.conf, config());
  const r = Bun.spawnSync(["ip", "netns", "exec", D1, VIPD_BIN, "run", "--dry-run", "-f", d1.conf, "-l"], { stdout: "pipe", stderr: "pipe", timeout: 60_000 });
  assert.equal(r.exitCode, 0, `dry run exited ${r.exitCode}: ${r.stderr.toString()}`);
  return r.stdout.toString().split("\n");
}

test("vipd run --dry-run diffs the config against the kernel's IPVS table and changes nothing", () => {
  lab();
  // A half-programmed table: one of the config's services with a wrong weight and a stale
  // real server, and a service the config does not name.
  sh(`printf '%s\\n' '-A -t ${VIP}:8080 -s wrr' '-a -t ${VIP}:8080 -r 203.0.113.11:80 -m -w 9' '-a -t ${VIP}:8080 -r 203.0.113.14:80 -m -w 1' '-A -t 192.0.2.9:80 -s rr' | ip netns exec ${D1} ipvsadm -R`);
  const before = rules();
  const lines = dryRun();
  assert.deepEqual(rules(), before, "the dry run changed the IPVS table");
  assert.ok(lines.includes("# IPVS (compared with the kernel's table):"), lines.join("\n"));
  const ipvs = lines.filter((l) => / ipvs /.test(l));
  // the service that is there is not added again; its wrong weight is edited, the stale one deleted
  assert.ok(!ipvs.some((l) => l.startsWith(`add ipvs service TCP ${VIP}:8080`)), ipvs.join("\n"));
  assert.ok(ipvs.includes(`edit ipvs real-server TCP ${VIP}:8080 -> 203.0.113.11:80 NAT weight 3`), ipvs.join("\n"));
  assert.ok(ipvs.includes(`delete ipvs real-server TCP ${VIP}:8080 -> 203.0.113.14:80`), ipvs.join("\n"));
  assert.ok(ipvs.includes(`add ipvs real-server TCP ${VIP}:8080 -> 203.0.113.12:80 NAT weight 1`), ipvs.join("\n"));
  assert.ok(ipvs.includes(`add ipvs service TCP ${VIP}:443 scheduler lc persistent 600`), ipvs.join("\n"));
  assert.ok(ipvs.includes("add ipvs service FWM 7 scheduler sh"), ipvs.join("\n"));
  // the operator's service is not vipd's: never planned away
  assert.ok(!ipvs.some((l) => l.includes("192.0.2.9")), ipvs.join("\n"));
  sh(`ip netns exec ${D1} ipvsadm -C`);
});

test("vipd programs IPVS from keepalived.conf: ipvsadm -S -n and -Ln match the config exactly", async () => {
  lab();
  staticVip(D1, true);
  const t0 = performance.now();
  await d1.start(config());
  const started = performance.now() - t0;
  await waitFor(() => rules().length === EXPECTED.length, 5000, () => ctx(`${EXPECTED.length} rules, have:\n${rules().join("\n")}`));
  assert.deepEqual(rules(), EXPECTED, ctx("ipvsadm -S -n"));
  console.log(`    vipd up and IPVS programmed ${Math.round(performance.now() - t0)} ms after spawn (control socket at ${Math.round(started)} ms)`);

  // -Ln: the same table in the listing form (hash order: compare each service's block).
  const blocks = sh(`ip netns exec ${D1} ipvsadm -Ln`).split(/\n(?=TCP|UDP|FWM)/).slice(1).map((b) => b.trim().split("\n").map((l) => l.trim().split(/\s+/).join(" ")));
  const block = (head: string) => blocks.find((b) => b[0]!.startsWith(head)) ?? [];
  assert.equal(blocks.length, 7, blocks.map((b) => b[0]).join(" | "));
  assert.deepEqual(block(`TCP ${VIP}:80 `), [`TCP ${VIP}:80 rr`, "-> 203.0.113.11:80 Masq 1 0 0", "-> 203.0.113.12:80 Masq 1 0 0", "-> 203.0.113.13:80 Masq 1 0 0"]);
  assert.deepEqual(block(`TCP ${VIP}:8080 `), [`TCP ${VIP}:8080 wrr`, "-> 203.0.113.11:80 Masq 3 0 0", "-> 203.0.113.12:80 Masq 1 0 0"]);
  assert.deepEqual(block(`TCP ${VIP}:443 `), [`TCP ${VIP}:443 lc persistent 600 mask 255.255.255.0`, "-> 203.0.113.11:443 Route 2 0 0", "-> 203.0.113.12:443 Route 5 0 0"]);
  assert.deepEqual(block("FWM 7 "), ["FWM 7 sh (sh-fallback,sh-port)", "-> 203.0.113.12:0 Tunnel 1 0 0", "-> 203.0.113.13:0 Tunnel 4 0 0"]);
  assert.deepEqual(block(`UDP ${VIP}:53 `), [`UDP ${VIP}:53 wlc ops`, "-> 203.0.113.11:5353 Masq 1 0 0"]);
  assert.match(sh(`ip netns exec ${D1} ipvsadm -Ln --thresholds`), /-> 203\.0\.113\.12:443\s+100\s+10\s+0\s+0/);

  // The status (what `vipd status --json` prints, read from the control socket: a second Bun
  // process costs seconds under TCG) reports the same.
  const st = await d1.status();
  assert.equal(st.lvs?.available, true, JSON.stringify(st).slice(0, 400));
  const web = st.lvs!.virtualServers.find((v) => v.services.some((s) => s.includes(`${VIP}:80`) && s.toLowerCase().includes("tcp")));
  assert.ok(web, JSON.stringify(st.lvs!.virtualServers.map((v) => v.services)));
  assert.equal(web.quorumUp, true);
  assert.deepEqual(web.realServers.map((r) => [r.address, r.ipvsWeight]), [["203.0.113.11", 1], ["203.0.113.12", 1], ["203.0.113.13", 1]]);
  assert.equal(st.lvs!.virtualServers.length, 6);
});

test("--dry-run against the table vipd programmed plans no IPVS change", () => {
  const lines = dryRun();
  assert.ok(lines.includes("no IPVS changes at start"), lines.join("\n"));
});

test("a client's requests are spread as the scheduler says: rr evenly over 3, wrr 3:1, exact counts", () => {
  const rr = fetchMany(15, 80);
  assert.deepEqual(tally(rr), { rs1: 5, rs2: 5, rs3: 5 }, ctx(rr.join(",")));
  // rr takes the servers in a fixed cycle: every window of 3 consecutive answers has all three.
  for (let i = 0; i + 3 <= rr.length; i++) assert.equal(new Set(rr.slice(i, i + 3)).size, 3, rr.join(","));
  const wrr = fetchMany(24, 8080);
  assert.deepEqual(tally(wrr), { rs1: 18, rs2: 6 }, ctx(wrr.join(",")));
  // The kernel's connection table agrees (its counters fold in only every 2 s; the entries are there at once).
  const conns = sh(`ip netns exec ${D1} ipvsadm -Lnc`).split("\n").filter((l) => l.includes(` ${VIP}:8080 `));
  const perServer = tally(conns.map((l) => l.trim().split(/\s+/).pop()!));
  assert.deepEqual(perServer, { "203.0.113.11:80": 18, "203.0.113.12:80": 6 }, conns.join("\n"));
});

test("quorum lost (all real servers gone on reload) brings in the sorry server; quorum back removes it", async () => {
  d1.reload(config([]));
  await waitFor(() => rules().includes(`-a -t ${VIP}:80 -r 203.0.113.19:80 -m -w 1`), 5000, () => ctx(`the sorry server in:\n${rules().join("\n")}`));
  assert.deepEqual(rules().filter((l) => l.includes(`${VIP}:80 `)), [`-A -t ${VIP}:80 -s rr`, `-a -t ${VIP}:80 -r 203.0.113.19:80 -m -w 1`]);
  const lvs = await d1.lvs();
  const web = lvs.virtualServers.find((v) => v.services.some((s) => s.includes(`${VIP}:80`)) && v.scheduler === "rr")!;
  assert.equal(web.quorumUp, false);
  assert.equal(web.sorryServer?.active, true);
  assert.deepEqual(tally(fetchMany(4, 80)), { sorry: 4 });

  // Two servers back: weight 2 ≥ quorum 2, the sorry server leaves and both serve again.
  d1.reload(config(["203.0.113.11", "203.0.113.12"]));
  await waitFor(() => !rules().some((l) => l.includes("203.0.113.19")), 5000, () => ctx(`the sorry server out:\n${rules().join("\n")}`));
  assert.deepEqual(rules().filter((l) => l.includes(`${VIP}:80 `)),
    [`-A -t ${VIP}:80 -s rr`, `-a -t ${VIP}:80 -r 203.0.113.11:80 -m -w 1`, `-a -t ${VIP}:80 -r 203.0.113.12:80 -m -w 1`]);
  assert.deepEqual(tally(fetchMany(4, 80)), { rs1: 2, rs2: 2 });
  const web2 = (await d1.lvs()).virtualServers.find((v) => v.key === web.key)!;
  assert.equal(web2.quorumUp, true);
  assert.equal(web2.sorryServer?.active, false);
});

test("an external ipvsadm -C, a changed weight and a missing dest are repaired within the 5 s repair period; foreign entries stay", async () => {
  const before = rules(); // vipd's table as the last case left it
  const t0 = performance.now();
  // Flush, then leave one of vipd's services half there with a wrong weight, and one that is
  // not vipd's: one `ipvsadm -R`, so vipd's repair tick cannot fall between the steps.
  sh(`printf '%s\\n' '-C' '-A -t 192.0.2.9:80 -s rr' '-A -t ${VIP}:8080 -s wrr' '-a -t ${VIP}:8080 -r 203.0.113.11:80 -m -w 9' | ip netns exec ${D1} ipvsadm -R`);
  const want = [...before, "-A -t 192.0.2.9:80 -s rr"].sort();
  await waitFor(() => rules().join("\n") === want.join("\n"), 12000, () => ctx(`repair after ipvsadm -C:\n${rules().join("\n")}`), 100);
  const ms = performance.now() - t0;
  // the next repair tick (≤ 5 s); under TCG emulation on a loaded host a tick can land late,
  // so allow up to a second period — nothing else would ever restore the table
  assert.ok(ms <= 10000, `repaired after ${Math.round(ms)} ms (period 5000)`);
  console.log(`    repaired ${Math.round(ms)} ms after ipvsadm -C`);
  const repaired = [...d1.logTail(200).matchAll(/IPVS: repaired (\d+) change\(s\) made outside vipd/g)].map((m) => Number(m[1]));
  // 18 entries were flushed; 2 came back by hand: 16 adds and one weight edit remain for vipd.
  assert.ok(repaired.some((n) => n >= 17), `repair log lines: ${repaired}`);
  assert.ok(before.includes(`-a -t ${VIP}:8080 -r 203.0.113.11:80 -m -w 3`) && before.includes(`-a -t ${VIP}:8080 -r 203.0.113.12:80 -m -w 1`));
});

// ---- health checks: TCP_CHECKs every 0.5 s (keepalived's timing; the daemon is reloaded into this config) ----

const DELAY_LOOP = 0.5;
const RETRY = 1;
const DELAY_BEFORE_RETRY = 0.5;
const CONNECT_TIMEOUT = 0.5;
/** keepalived's down bound for a refused port: the next check, then `retry` retries spaced by delay_before_retry. */
const DOWN_BOUND_MS = (DELAY_LOOP + RETRY * (DELAY_BEFORE_RETRY + CONNECT_TIMEOUT)) * 1000;
/** A down checker tries once per delay_loop; one success brings it up. */
const UP_BOUND_MS = (DELAY_LOOP + CONNECT_TIMEOUT) * 1000;
/** What a starved TCG guest adds to the daemon's timers (measured and printed; CI runs the VM beside the other tests). */
const TIMER_SLACK_MS = 1000;
/** …and to our polling of ipvsadm (one process per poll). */
const SLACK_MS = 2500;

const checkerConfig = () => `
global_defs {
  router_id lvs-checkers
}
virtual_server ${VIP} 80 {
  lb_algo rr
  lb_kind NAT
  protocol TCP
  quorum 2
  sorry_server 203.0.113.19 80
  delay_loop ${DELAY_LOOP}
${[11, 12, 13].map((i) => `  real_server 203.0.113.${i} 80 {
    weight 1
    TCP_CHECK {
      connect_timeout ${CONNECT_TIMEOUT}
      retry ${RETRY}
      delay_before_retry ${DELAY_BEFORE_RETRY}
      warmup 0
    }
  }`).join("\n")}
}
`;

const dests = () => rules().filter((l) => l.startsWith("-a ")).map((l) => l.split(" ")[4]!.replace(/:80$/, "")).sort();

test("health checks (TCP_CHECK) remove a killed real server within its bound and restore it; losing quorum brings in the sorry server", async () => {
  try {
    // Reloaded into the checker config (the other virtual servers go; the foreign service stays).
    await d1.reloadAndWait(checkerConfig());
    // Every checker has run and is up; the three servers are in IPVS.
    await waitFor(async () => (await d1.lvs()).virtualServers[0]?.realServers.every((r) => r.checkers[0]?.hasRun && r.checkers[0].up), 10_000,
      () => ctx("every TCP_CHECK up"), 100);
    assert.deepEqual(dests(), ["203.0.113.11", "203.0.113.12", "203.0.113.13"]);

    // rs3's httpd dies: removed within the bound; the client only reaches rs1 and rs2.
    let t0 = performance.now();
    stopHttpd("rs3");
    d1.note("killed rs3's httpd");
    await waitFor(() => !dests().includes("203.0.113.13"), DOWN_BOUND_MS + SLACK_MS, () => ctx(`rs3 removed: ${dests()}`), 50);
    const downMs = performance.now() - t0;
    assert.deepEqual(tally(fetchMany(4)), { rs1: 2, rs2: 2 });
    const rs3 = (await d1.lvs()).virtualServers[0]!.realServers.find((r) => r.address === "203.0.113.13")!;
    assert.equal(rs3.alive, false);
    assert.equal(rs3.ipvsWeight, null);

    // It answers again: back within a delay_loop (plus the connect).
    // The bound runs from when it answers again; the note goes in first (the checker may well
    // succeed while waitHttpd is still polling), so the delay counts from the restart.
    d1.note("rs3's httpd answers again");
    startHttpd("rs3");
    await waitHttpd("rs3", D1);
    t0 = performance.now();
    await waitFor(() => dests().includes("203.0.113.13"), UP_BOUND_MS + SLACK_MS, () => ctx(`rs3 back: ${dests()}`), 50);
    const upMs = performance.now() - t0;
    // The checker's own transitions, by the daemon's log timestamps, within keepalived's bounds
    // (plus a little for a starved TCG guest's timers); IPVS followed (polled above, looser).
    const downLog = d1.logDelay("killed rs3's httpd", /TCP_CHECK on service \[203\.0\.113\.13\]:tcp:80 failed/);
    const upLog = d1.logDelay("rs3's httpd answers again", /TCP_CHECK on service \[203\.0\.113\.13\]:tcp:80 succeeded/);
    console.log(`    checker down ${downLog} ms after the kill (bound ${DOWN_BOUND_MS}), up ${upLog} ms after it answers (bound ${UP_BOUND_MS}); ` +
      `seen in ipvsadm after ${Math.round(downMs)} and ${Math.round(upMs)} ms`);
    assert.ok(downLog !== undefined && downLog <= DOWN_BOUND_MS + TIMER_SLACK_MS, ctx(`checker down after ${downLog} ms`));
    assert.ok(upLog !== undefined && upLog <= UP_BOUND_MS + TIMER_SLACK_MS, ctx(`checker up after ${upLog} ms`));

    // Two servers die: alive weight 1 < quorum 2, only the sorry server is in the pool.
    stopHttpd("rs2");
    stopHttpd("rs3");
    await waitFor(() => dests().join() === "203.0.113.19", DOWN_BOUND_MS + SLACK_MS, () => ctx(`only the sorry server: ${dests()}`), 50);
    const vs = (await d1.lvs()).virtualServers[0]!;
    assert.equal(vs.quorumUp, false);
    assert.equal(vs.sorryServer?.active, true);
    assert.deepEqual(tally(fetchMany(3)), { sorry: 3 });
    // They return: quorum is back, the sorry server leaves and the three serve again.
    startHttpd("rs2");
    startHttpd("rs3");
    await waitHttpd("rs2", D1);
    await waitHttpd("rs3", D1);
    await waitFor(() => dests().join() === "203.0.113.11,203.0.113.12,203.0.113.13", UP_BOUND_MS + SLACK_MS, () => ctx(`all three back: ${dests()}`), 50);
    assert.equal((await d1.lvs()).virtualServers[0]!.sorryServer?.active, false);
    assert.deepEqual(tally(fetchMany(3)), { rs1: 1, rs2: 1, rs3: 1 });
  } finally {
    startHttpd("rs2");
    startHttpd("rs3");
  }
});

test("SIGTERM: vipd removes only what it added (the foreign service stays)", async () => {
  assert.ok(rules().includes("-A -t 192.0.2.9:80 -s rr") && rules().length > 1, rules().join("\n"));
  const code = await d1.stop();
  assert.equal(code, 0, ctx("exit code"));
  assert.deepEqual(rules(), ["-A -t 192.0.2.9:80 -s rr"]);
  sh(`ip netns exec ${D1} ipvsadm -C`);
  staticVip(D1, false);
});
