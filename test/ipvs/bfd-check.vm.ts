/**
 * BFD_CHECK end to end inside the ipvs-vm: the director's vipd follows a BFD session to a
 * real server (whose own vipd runs the other end, bfd_instance only), so the real server is
 * in IPVS only while the session is Up: a SIGKILLed peer takes it out within the detection
 * time (bounded generously for TCG), a restarted peer puts it back. Uses the shared lab
 * (test/ipvs/lvs-lab.ts) and leaves the director's IPVS table empty for the next suites.
 */
import assert from "node:assert/strict";
import { afterAll, suite, test } from "./harness.ts";
import { D1, SERVERS, VIP, Vipd, lab, savedRules, waitFor } from "./lvs-lab.ts";

suite("bfd-check");

const RS1 = SERVERS[0];
const DIRECTOR_IP = "203.0.113.2";
const RULE = `-a -t ${VIP}:8081 -r ${RS1.ip}:80 -m -w 1`;

const bfd = (name: string, neighbor: string, source: string) =>
  `bfd_instance ${name} {\n  neighbor_ip ${neighbor}\n  source_ip ${source}\n  min_rx 100\n  min_tx 100\n  multiplier 3\n}\n`;

const DIRECTOR = `global_defs {
  router_id bfd-d1
}
${bfd("to_rs1", RS1.ip, DIRECTOR_IP)}
virtual_server ${VIP} 8081 {
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server ${RS1.ip} 80 {
    weight 1
    BFD_CHECK {
      name to_rs1
    }
  }
  real_server 203.0.113.12 80 {
    weight 1
  }
}
`;
const PEER = `global_defs {\n  router_id bfd-rs1\n}\n${bfd("to_d1", DIRECTOR_IP, RS1.ip)}`;

const director = new Vipd(D1, "bfd-d1");
const peer = new Vipd(RS1.ns, "bfd-rs1");
const rules = () => savedRules(D1);
const ctx = (what: string) => `${what}\n--- director ---\n${director.logTail()}\n--- peer ---\n${peer.logTail()}`;

// a failed case can leave the daemons running: stop them (afterAll hooks run once all suites are done)
afterAll(async () => {
  await director.stop();
  await peer.stop();
});

test("the real server joins IPVS when its BFD session comes Up", async () => {
  lab();
  await peer.start(PEER);
  await director.start(DIRECTOR);
  await waitFor(() => rules().includes(RULE), 15_000, () => ctx(`${RULE} in:\n${rules().join("\n")}`), 100);
  assert.ok(rules().includes(`-a -t ${VIP}:8081 -r 203.0.113.12:80 -m -w 1`), rules().join("\n"));
  const st = await director.status();
  const session = st.bfd?.find((s) => s.name === "to_rs1");
  assert.equal(session?.state, "Up", JSON.stringify(st.bfd));
  const rs = st.lvs!.virtualServers[0]!.realServers.find((r) => r.address === RS1.ip)!;
  assert.deepEqual(rs.checkers.map((c) => [c.type, c.up]), [["BFD_CHECK", true]], JSON.stringify(rs.checkers));
});

test("a SIGKILLed BFD peer takes the real server out; a restarted one puts it back", async () => {
  const t0 = performance.now();
  director.note("peer killed");
  await peer.kill();
  await waitFor(() => !rules().includes(RULE), 10_000, () => ctx(`${RULE} gone:\n${rules().join("\n")}`), 50);
  const outMs = performance.now() - t0;
  // detection time 3 × 100 ms; TCG and the 50 ms poll add to it, nothing else should
  assert.ok(outMs < 5000, `removed after ${Math.round(outMs)} ms`);
  assert.ok(rules().includes(`-a -t ${VIP}:8081 -r 203.0.113.12:80 -m -w 1`), "the other real server stays");
  console.log(`    BFD peer killed: real server out of IPVS after ${Math.round(outMs)} ms (detection time 300 ms)`);
  await peer.start(PEER);
  await waitFor(() => rules().includes(RULE), 15_000, () => ctx(`${RULE} back:\n${rules().join("\n")}`), 100);
  // done: the director removes what it added (the next suites expect an empty table)
  assert.equal(await director.stop(), 0, ctx("director exit code"));
  await peer.stop();
  assert.deepEqual(rules(), [], "the director's IPVS entries after its stop");
});
