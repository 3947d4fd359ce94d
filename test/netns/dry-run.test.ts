/**
 * `vipd run --dry-run` (the compiled binary) in a lab namespace: a VIP left by a previous
 * run and a static route show up as planned changes (delete the stale VIP, add the route,
 * the static address, the nft drop table for a non-accept instance); nothing changes on the
 * system (`ip -j addr/route/rule`, nft ruleset and links compared before and after), and an
 * entry already present is not planned again.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { VIPD_BIN } from "./daemon.ts";
import { createLab, type Lab } from "./lab.ts";

const ROOT = process.getuid?.() === 0;

const CONFIG = `global_defs {
    router_id dr1
}
static_ipaddress {
    203.0.113.5/24 dev eth0
}
static_routes {
    198.51.100.0/24 via 192.0.2.254 dev eth0
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 81
    priority 100
    advert_int 1
    no_accept
    virtual_ipaddress {
        192.0.2.77/32 dev eth0
    }
}
`;

describe.skipIf(!ROOT)("vipd run --dry-run (netns)", () => {
  let lab: Lab | undefined;
  const dir = mkdtempSync(`${tmpdir()}/vipdt-dryrun-`);
  const conf = `${dir}/keepalived.conf`;
  writeFileSync(conf, CONFIG);
  afterAll(() => {
    lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const state = (ns: string) => ["addr", "route", "-6 route", "rule", "link"].map((what) =>
    Bun.spawnSync(["ip", "-n", ns, "-j", ...what.split(" ").filter((w) => w.startsWith("-")), what.replace(/^-6 /, "")], { stdout: "pipe" }).stdout.toString())
    .concat(Bun.spawnSync(["ip", "netns", "exec", ns, "nft", "list", "ruleset"], { stdout: "pipe" }).stdout.toString());
  const dryRun = (ns: string) => {
    const r = Bun.spawnSync(["ip", "netns", "exec", ns, VIPD_BIN, "run", "--dry-run", "-f", conf, "--pid-file", `${dir}/vipd.pid`, "--control", `${dir}/vipd.sock`],
      { stdout: "pipe", stderr: "pipe", timeout: 20_000 });
    return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
  };

  test("a stale VIP and a static route are planned; nothing on the system changes", () => {
    lab = createLab({ purpose: "dryrun", nodes: ["a", "b"], v4: "192.0.2.0/24" });
    const ns = lab.node("a").ns;
    lab.exec("a", ["ip", "addr", "add", "192.0.2.77/32", "dev", "eth0"]); // left by a "crashed" run
    const before = state(ns);
    expect(before[0]).toContain("192.0.2.77");
    const r = dryRun(ns);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const lines = r.out.trim().split("\n");
    if (process.env.VIPDT_SHOW) console.log(r.out);
    expect(lines[0]).toMatch(/^# vipd run --dry-run: .* \(nothing was changed\)$/);
    expect(lines).toContain("delete address 192.0.2.77/32 dev eth0");
    expect(lines).toContain("add address 203.0.113.5/24 dev eth0");
    expect(lines.some((l) => /^add route 198\.51\.100\.0\/24 via 192\.0\.2\.254 dev eth0/.test(l))).toBe(true);
    expect(lines.some((l) => l.startsWith("apply nft setup:"))).toBe(true); // no_accept drop table
    expect(lines).toContain("# (VI_1) when MASTER: add 192.0.2.77/32 dev eth0");
    const after = state(ns);
    expect(after).toEqual(before);
    // no control socket, no pid file, no raw socket: the process only read
    expect(Bun.spawnSync(["test", "-e", `${dir}/vipd.sock`]).exitCode).toBe(1);
    expect(Bun.spawnSync(["test", "-e", `${dir}/vipd.pid`]).exitCode).toBe(1);
  });

  test("entries already present are not planned again", () => {
    const ns = lab!.node("a").ns;
    lab!.exec("a", ["ip", "addr", "del", "192.0.2.77/32", "dev", "eth0"]);
    lab!.exec("a", ["ip", "addr", "add", "203.0.113.5/24", "dev", "eth0"]);
    lab!.exec("a", ["ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.254", "dev", "eth0"]);
    const before = state(ns);
    const r = dryRun(ns);
    expect(r.code).toBe(0);
    expect(r.out).not.toMatch(/address 192\.0\.2\.77/);
    expect(r.out).not.toMatch(/^add address 203\.0\.113\.5/m);
    expect(r.out).not.toMatch(/^add route/m);
    expect(state(ns)).toEqual(before);
  });

  test("IPVS without ip_vs loaded: planned against an empty table, nftables_ipvs marking table shown, nothing applied", () => {
    const ns = lab!.node("a").ns;
    const lvsConf = `${dir}/lvs.conf`;
    writeFileSync(lvsConf, `global_defs {
    nftables_ipvs
}
virtual_server_group web {
    198.51.100.104/30 80
}
virtual_server group web {
    lvs_sched rr
    protocol TCP
    real_server 203.0.113.11 80 {
        weight 1
    }
}
`);
    const before = state(ns);
    const r = Bun.spawnSync(["ip", "netns", "exec", ns, VIPD_BIN, "run", "--dry-run", "-f", lvsConf], { stdout: "pipe", stderr: "pipe", timeout: 20_000 });
    const out = r.stdout.toString();
    if (process.env.VIPDT_SHOW) console.log(out);
    expect(r.exitCode).toBe(0);
    const lines = out.split("\n");
    // this kernel has no IPVS: the plan says so instead of pretending to compare
    expect(lines).toContain("# IPVS (IPVS is not loaded (no /proc/net/ip_vs): vipd would load it; planned against an empty table):");
    expect(lines).toContain("add ipvs service FWM 1000 scheduler rr");
    expect(lines).toContain("add ipvs real-server FWM 1000 -> 203.0.113.11:80 NAT weight 1");
    const nft = lines.indexOf("apply nft nftables_ipvs:");
    expect(nft).toBeGreaterThan(0);
    expect(lines.slice(nft).join("\n")).toContain("elements = { 198.51.100.104-198.51.100.107 . 80 : 1000 }");
    // nothing changed: no nft table, addresses, routes
    expect(state(ns)).toEqual(before);
  });
});
