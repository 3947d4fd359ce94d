/**
 * `vipd doctor` (the compiled binary) inside a lab namespace: a clean namespace passes the
 * firewall check; an nft rule dropping IP protocol 112, a rule dropping 224.0.0.18 and an
 * input policy of drop are each found, named, given a fix, and exit 2; `--json` carries the
 * same findings. The parsers are also checked against real `nft -j` output here.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { evaluateChains, parseIptablesSave, parseNftRuleset, vrrpPackets } from "../../src/doctor/firewall.ts";
import { VIPD_BIN } from "./daemon.ts";
import { createLab, type Lab } from "./lab.ts";

const ROOT = process.getuid?.() === 0;

const CONFIG = `global_defs {
    router_id d1
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 71
    priority 100
    advert_int 1
    virtual_ipaddress {
        192.0.2.200/32
    }
}
`;

interface Finding {
  check: string;
  severity: string;
  message: string;
  fix?: string;
}

describe.skipIf(!ROOT)("vipd doctor (netns)", () => {
  let lab: Lab | undefined;
  const dir = mkdtempSync(`${tmpdir()}/vipdt-doctor-`);
  const conf = `${dir}/keepalived.conf`;
  writeFileSync(conf, CONFIG);
  afterAll(() => {
    lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const ns = () => (lab ??= createLab({ purpose: "doctor", nodes: ["a", "b"], v4: "192.0.2.0/24" })).node("a").ns;
  const nft = (script: string) => {
    const r = Bun.spawnSync(["ip", "netns", "exec", ns(), "nft", "-f", "-"], { stdin: new TextEncoder().encode(script), stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`nft: ${r.stderr}`);
  };
  const doctor = (...extra: string[]) => {
    const r = Bun.spawnSync(["ip", "netns", "exec", ns(), VIPD_BIN, "doctor", "-f", conf, ...extra], { stdout: "pipe", stderr: "pipe", timeout: 20_000 });
    return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
  };
  const json = () => {
    const r = doctor("--json");
    return { code: r.code, doc: JSON.parse(r.out) as { exit: number; findings: Finding[] } };
  };

  test("a clean namespace: the firewall check is ok and nothing will-not-work (exit 0 or 1)", () => {
    const { code, doc } = json();
    expect(doc.exit).toBe(code);
    const fw = doc.findings.filter((f) => f.check === "firewall");
    expect(fw.map((f) => f.severity)).toEqual(["ok"]);
    expect(doc.findings.filter((f) => f.severity === "error")).toEqual([]);
    // the only warnings allowed come from the host, never from the firewall
    expect(code === 0 || code === 1).toBe(true);
    expect(doc.findings.find((f) => f.check === "raw-sockets")!.severity).toBe("ok");
    expect(doc.findings.find((f) => f.check === "capabilities")!.severity).toBe("ok");
  });

  test("an nft rule dropping protocol 112 is found, named, and given a fix; exit 2", () => {
    nft(`table inet vipdt_fw {
  chain input { type filter hook input priority 0; policy accept;
    tcp dport 22 accept
    ip protocol vrrp counter drop
  }
}
`);
    const r = doctor();
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/\[FAIL\] firewall: nft inet vipdt_fw input drops IPv4 VRRP \(IP protocol 112\) to 224\.0\.0\.18: rule drops it: nft inet vipdt_fw input handle \d+/);
    expect(r.out).toContain("fix: accept it before the drop: nft insert rule inet vipdt_fw input ip protocol vrrp ip daddr 224.0.0.18 accept");
    const { code, doc } = json();
    expect(code).toBe(2);
    expect(doc.exit).toBe(2);
    const f = doc.findings.find((x) => x.check === "firewall" && x.severity === "error")!;
    expect(f.fix).toContain("nft insert rule inet vipdt_fw input");
    nft("delete table inet vipdt_fw\n");
    expect(doctor().out).toMatch(/\[ok {2}\] firewall: nftables: nothing drops/);
  });

  test("the multicast group, a named set, and an input policy of drop are each caught; an accept for VRRP first clears it", () => {
    nft("table ip vipdt_g {\n chain input {\n type filter hook input priority 0\n ip daddr 224.0.0.0/24 drop\n }\n}\n");
    expect(doctor().out).toMatch(/\[FAIL\] firewall: nft ip vipdt_g input drops IPv4 VRRP .* to 224\.0\.0\.18: rule drops it/);
    nft("delete table ip vipdt_g\n");
    nft(`table inet vipdt_s {
  set bad { type inet_proto; elements = { vrrp, ah } }
  chain input {
    type filter hook input priority 0
    meta l4proto @bad drop
  }
}
`);
    expect(doctor().code).toBe(2);
    nft("delete table inet vipdt_s\n");
    nft("table inet vipdt_p {\n chain input {\n type filter hook input priority 0; policy drop\n tcp dport 22 accept\n }\n}\n");
    const r = doctor();
    expect(r.code).toBe(2);
    expect(r.out).toContain("policy drop and no rule accepts it");
    nft("flush chain inet vipdt_p input\nadd rule inet vipdt_p input ip protocol vrrp accept\n");
    expect(doctor().out).toMatch(/\[ok {2}\] firewall/);
    // a policy-drop chain whose only accept depends on the interface: a warning, not an error
    nft("flush chain inet vipdt_p input\nadd rule inet vipdt_p input iifname \"eth0\" accept\n");
    const w = doctor();
    expect(w.out).toMatch(/\[WARN\] firewall: .*policy drop; only a rule with conditions vipd cannot judge/);
    expect(w.out).not.toMatch(/\[FAIL\] firewall/);
    nft("delete table inet vipdt_p\n");
  }, 30_000);

  test("iptables-save text: -p vrrp -j DROP and -d 224.0.0.18 -j REJECT, an earlier ACCEPT wins", () => {
    const packets = vrrpPackets(undefined);
    const drop = parseIptablesSave("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -i eth0 -p tcp -j ACCEPT\n-A INPUT -p vrrp -j DROP\nCOMMIT\n", "inet");
    expect(evaluateChains(drop, packets).map((v) => [v.severity, v.reason])).toEqual([["error", "rule drops it: iptables -t filter INPUT: -A INPUT -p vrrp -j DROP"]]);
    const group = parseIptablesSave("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -d 224.0.0.18/32 -j REJECT\nCOMMIT\n", "inet");
    expect(evaluateChains(group, packets)).toHaveLength(1);
    const ok = parseIptablesSave("*filter\n:INPUT DROP [0:0]\n-A INPUT -p 112 -j ACCEPT\n-A INPUT -j DROP\nCOMMIT\n", "inet");
    expect(evaluateChains(ok, packets)).toEqual([]);
    const other = parseIptablesSave("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -j DROP\n-A INPUT ! -p vrrp -j DROP\nCOMMIT\n", "inet");
    expect(evaluateChains(other, packets)).toEqual([]);
    // real nft JSON is parsed the same way (an empty ruleset has no chains)
    expect(parseNftRuleset('{"nftables":[{"metainfo":{"json_schema_version":1}}]}')).toEqual([]);
  });
});
