/**
 * End to end inside the ipvs-vm: `nftables_ipvs` (keepalived's IPVS fwmark helper). vipd in
 * the director namespace turns a virtual_server_group of a /30 and a port into ONE IPVS fwmark
 * service and an nftables table that marks the group's packets; clients' requests to two
 * different group addresses reach the real servers through that one service; a reload keeps
 * the mark and updates the table; SIGTERM deletes the table and the service.
 * Needs nft in the VM (scripts/ipvs-vm-tests ships the host's /usr/sbin/nft).
 */
import assert from "node:assert/strict";
import { afterAll, suite, test } from "./harness.ts";
import { CLIENT, D1, GATEWAY, SERVERS, Vipd, lab, savedRules, sh, waitFor } from "./lvs-lab.ts";

suite("nftables-ipvs");

/** The group: 198.51.100.104/30 port 80 (other suites use .100-.102). */
const GROUP_ADDRS = ["198.51.100.104", "198.51.100.105", "198.51.100.106", "198.51.100.107"];
const TABLE = "keepalived_ipvs";

function config(extra = ""): string {
  return `
global_defs {
  router_id nft-d1
  nftables_ipvs
}
virtual_server_group nftgrp {
  198.51.100.104/30 80
${extra}}
virtual_server group nftgrp {
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 203.0.113.11 80 {
    weight 1
  }
  real_server 203.0.113.12 80 {
    weight 1
  }
}
`;
}

const d1 = new Vipd(D1, "nft-d1");
const ctx = (what: string) => `${what}\n--- vipd nft-d1 log ---\n${d1.logTail()}`;
/** ctx plus what explains lost traffic: IPVS counters, the ruleset, the real servers' ARP entry for the gateway. */
const trafficCtx = (what: string) => ctx(`${what}\n--- ipvsadm -Ln --stats ---\n${sh(`ip netns exec ${D1} ipvsadm -Ln --stats`)}` +
  `--- nft list ruleset ---\n${sh(`ip netns exec ${D1} nft list ruleset`)}` +
  `--- gateway ARP on the real servers ---\n${SERVERS.map((s) => sh(`ip -n ${s.ns} neigh show ${GATEWAY}; true`)).join("")}`);
/** `nft list table ip TABLE` in the director, or "" when there is no such table. */
const listTable = (): string => {
  const r = Bun.spawnSync(["ip", "netns", "exec", D1, "nft", "list", "table", "ip", TABLE], { stdout: "pipe", stderr: "pipe" });
  return r.exitCode === 0 ? r.stdout.toString() : "";
};
/** One GET of http://ADDR:port/ from the client ("" when it fails). */
const get = (addr: string, port = 80): string =>
  Bun.spawnSync(["ip", "netns", "exec", CLIENT, "timeout", "3", "wget", "-q", "-O", "-", `http://${addr}:${port}/`], { stdout: "pipe", stderr: "ignore" })
    .stdout.toString().trim();
/** Connections counted by the FWM 1000 service (ipvsadm --stats). */
const fwmConns = (): number => {
  const line = sh(`ip netns exec ${D1} ipvsadm -Ln --stats`).split("\n").find((l) => /^FWM\s+1000\b/.test(l));
  return line ? Number(line.trim().split(/\s+/)[2]) : -1;
};

let addressed = false;
function addresses(on: boolean): void {
  if (on) {
    sh(GROUP_ADDRS.map((a) => `ip -n ${D1} addr replace ${a}/32 dev out0`).join(" && ") + ` && ip -n ${D1} addr replace ${GATEWAY}/24 dev in0`);
    // An earlier suite's VRRP failover may have left the real servers' ARP entry for the
    // gateway pointing at d2: NAT replies must come back through d1.
    sh(SERVERS.map((s) => `ip -n ${s.ns} neigh flush to ${GATEWAY}`).join("; ") + "; true");
    addressed = true;
  } else if (addressed) {
    sh(`${GROUP_ADDRS.map((a) => `ip -n ${D1} addr del ${a}/32 dev out0 2>/dev/null`).join("; ")}; ip -n ${D1} addr del ${GATEWAY}/24 dev in0 2>/dev/null; true`);
    addressed = false;
  }
}
afterAll(async () => {
  await d1.stop().catch(() => undefined);
  try {
    addresses(false);
    sh(`ip netns exec ${D1} sh -c 'nft delete table ip ${TABLE} 2>/dev/null; true'`);
  } catch {
    // the lab's teardown removes the namespace anyway
  }
});

test("one FWM service for a /30 group; the nftables table marks its packets; requests to two group addresses reach the real servers", async () => {
  assert.ok(Bun.which("nft") ?? Bun.which("nft", { PATH: "/usr/sbin:/sbin" }), "no nft in the VM (scripts/ipvs-vm-tests adds /usr/sbin/nft to IPVS_VM_EXTRA_BINS)");
  lab();
  addresses(true);
  await d1.start(config());
  const fwm = (): boolean => savedRules(D1).filter((l) => l.includes("-f 1000")).length === 3;
  await waitFor(fwm, 15_000, () => ctx(`FWM 1000 with two real servers: ${savedRules(D1).join(" | ")}`), 100);
  await waitFor(() => listTable().includes("@tcp_map"), 15_000, () => ctx("the nftables table"), 100);

  // IPVS: one fwmark service, no per-address service for the group.
  const rules = savedRules(D1);
  assert.deepEqual(rules.filter((l) => l.includes("-f 1000")), [
    "-A -f 1000 -s rr", "-a -f 1000 -r 203.0.113.11:80 -m -w 1", "-a -f 1000 -r 203.0.113.12:80 -m -w 1",
  ].sort());
  assert.ok(!rules.some((l) => l.includes("198.51.100.10")), `no per-address services: ${rules.join(" | ")}`);
  const ln = sh(`ip netns exec ${D1} ipvsadm -Ln`);
  assert.match(ln, /^FWM\s+1000 rr$/m, ln);

  // nftables: the map (nft prints the range back as its prefix) and the marking rule.
  const table = listTable();
  assert.match(table, /type ipv4_addr \. inet_service : mark/, table);
  assert.match(table, /198\.51\.100\.104\/30 \. 80 : 0x000003e8/, table);
  assert.match(table, /type filter hook input priority filter - 1; policy accept;/, table);
  assert.match(table, /meta mark set ip daddr \. tcp dport map @tcp_map counter packets \d+ bytes \d+ return/, table);

  // Traffic: two different group addresses, both through the one service (rr alternates across them).
  const before = fwmConns();
  const answers = [get("198.51.100.105"), get("198.51.100.107"), get("198.51.100.105"), get("198.51.100.107")];
  assert.deepEqual([...answers].sort(), ["rs1", "rs1", "rs2", "rs2"], trafficCtx(`answers ${JSON.stringify(answers)}`));
  assert.equal(fwmConns() - before, 4, ctx("the FWM service counted the four connections"));
  // A port outside the group is not marked: nothing on the director answers it.
  assert.equal(get("198.51.100.105", 8080), "");
});

test("a reload keeps the group's fwmark and rewrites the table", async () => {
  await d1.reloadAndWait(config("  198.51.100.120 80\n"));
  await waitFor(() => listTable().includes("198.51.100.120 . 80"), 15_000, () => ctx(`table after reload:\n${listTable()}`), 100);
  assert.match(listTable(), /198\.51\.100\.104\/30 \. 80 : 0x000003e8/);
  assert.match(listTable(), /198\.51\.100\.120 \. 80 : 0x000003e8/);
  assert.deepEqual(savedRules(D1).filter((l) => l.startsWith("-A -f")), ["-A -f 1000 -s rr"]);
  const again = [get("198.51.100.106"), get("198.51.100.106")];
  assert.deepEqual([...again].sort(), ["rs1", "rs2"], trafficCtx(`answers after the reload ${JSON.stringify(again)}`));
});

test("SIGTERM removes the table and the service; other tables stay", async () => {
  sh(`ip netns exec ${D1} nft add table ip vipdt_foreign`);
  try {
    assert.equal(await d1.stop(), 0, ctx("clean exit"));
    assert.equal(listTable(), "", "vipd's table is gone");
    assert.match(sh(`ip netns exec ${D1} nft list tables`), /table ip vipdt_foreign/);
    assert.ok(!savedRules(D1).some((l) => l.includes("-f 1000")), "FWM 1000 is gone");
  } finally {
    sh(`ip netns exec ${D1} sh -c 'nft delete table ip vipdt_foreign 2>/dev/null; true'`);
    addresses(false); // the director as the lab made it, for any suite after this one
  }
});
