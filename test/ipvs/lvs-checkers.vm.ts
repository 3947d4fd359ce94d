/**
 * Health checks driving IPVS, end to end inside the ipvs-vm: the compiled vipd's TCP_CHECKs
 * (delay_loop 0.5 s, retry 1, delay_before_retry 0.5 s) remove a real server whose httpd was
 * killed within the checker's bound and put it back when it answers again; losing two of
 * three servers drops the alive weight under quorum 2 and brings in the sorry server, which
 * leaves when they return.
 */
import assert from "node:assert/strict";
import { suite, test } from "./harness.ts";
import { D1, VIP, Vipd, fetchMany, lab, savedRules, startHttpd, staticVip, stopHttpd, tally, waitFor } from "./lvs-lab.ts";

suite("lvs-checkers");

/**
 * `vipd run` does not start the health checkers yet (src/check/ is not wired into
 * src/cli/run.ts): real servers stay "alive" whatever their checkers would say. Set to
 * undefined once run.ts starts the check scheduler.
 */
const NOT_WIRED: string | undefined = "health checkers are not wired into `vipd run` yet (src/cli/run.ts never starts src/check/)";

const DELAY_LOOP = 0.5;
const RETRY = 1;
const DELAY_BEFORE_RETRY = 0.5;
const CONNECT_TIMEOUT = 0.5;
/** keepalived's down bound for a refused port: the next check, then `retry` retries spaced by delay_before_retry. */
const DOWN_BOUND_MS = (DELAY_LOOP + RETRY * (DELAY_BEFORE_RETRY + CONNECT_TIMEOUT)) * 1000;
/** A down checker tries once per delay_loop; one success brings it up. */
const UP_BOUND_MS = (DELAY_LOOP + CONNECT_TIMEOUT) * 1000;
/** What a starved TCG guest adds to a daemon's timers and to our polling (measured and printed). */
const SLACK_MS = 1500;

const config = () => `
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

const d1 = new Vipd(D1, "checkers");
const dests = () => savedRules(D1).filter((l) => l.startsWith("-a ")).map((l) => l.split(" ")[4]!.replace(/:80$/, "")).sort();
const ctx = (what: string) => `${what}\n--- vipd log ---\n${d1.logTail()}`;

test("TCP_CHECK removes a killed real server within its bound and restores it; losing quorum brings in the sorry server", async () => {
  lab();
  staticVip(D1, true);
  try {
    await d1.start(config());
    // Every checker has run and is up; the three servers are in IPVS.
    await waitFor(async () => (await d1.lvs()).virtualServers[0]?.realServers.every((r) => r.checkers[0]?.hasRun && r.checkers[0].up), 10_000,
      () => ctx("every TCP_CHECK up"), 100);
    assert.deepEqual(dests(), ["203.0.113.11", "203.0.113.12", "203.0.113.13"]);

    // rs3's httpd dies: removed within the bound; the client only reaches rs1 and rs2.
    let t0 = performance.now();
    stopHttpd("rs3");
    await waitFor(() => !dests().includes("203.0.113.13"), DOWN_BOUND_MS + SLACK_MS, () => ctx(`rs3 removed: ${dests()}`), 50);
    const downMs = performance.now() - t0;
    assert.deepEqual(tally(fetchMany(4)), { rs1: 2, rs2: 2 });
    const rs3 = (await d1.lvs()).virtualServers[0]!.realServers.find((r) => r.address === "203.0.113.13")!;
    assert.equal(rs3.alive, false);
    assert.equal(rs3.ipvsWeight, null);

    // It answers again: back within a delay_loop (plus the connect).
    t0 = performance.now();
    startHttpd("rs3");
    await waitFor(() => dests().includes("203.0.113.13"), UP_BOUND_MS + SLACK_MS, () => ctx(`rs3 back: ${dests()}`), 50);
    const upMs = performance.now() - t0;
    console.log(`    down after ${Math.round(downMs)} ms (bound ${DOWN_BOUND_MS}), up after ${Math.round(upMs)} ms (bound ${UP_BOUND_MS})`);

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
    await waitFor(() => dests().join() === "203.0.113.11,203.0.113.12,203.0.113.13", UP_BOUND_MS + SLACK_MS, () => ctx(`all three back: ${dests()}`), 50);
    assert.equal((await d1.lvs()).virtualServers[0]!.sorryServer?.active, false);
    assert.deepEqual(tally(fetchMany(3)), { rs1: 1, rs2: 1, rs3: 1 });
  } finally {
    startHttpd("rs2");
    startHttpd("rs3");
    await d1.stop();
    staticVip(D1, false);
  }
}, NOT_WIRED ? { skip: NOT_WIRED } : {});
