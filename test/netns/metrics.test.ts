/**
 * `vipd run --metrics 127.0.0.1:PORT` (the compiled binary) inside a lab namespace: the
 * scrape passes `promtool check metrics`, carries keepalived-exporter's series with the
 * live state (MASTER = 2, become_master, script status) and vipd's own (transitions, loop
 * lag, reloads after SIGHUP); only /metrics answers, and only on the given address.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { killAll, Proc, VIPD_BIN, waitFor } from "./daemon.ts";
import { createLab, type Lab } from "./lab.ts";

const ROOT = process.getuid?.() === 0;
const PORT = 19165;

afterAll(() => killAll());

function config(priority: number): string {
  return `global_defs {
    router_id m1
    script_user root
    enable_script_security
}
vrrp_script chk_ok {
    script "/bin/true"
    interval 1
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    version 3
    virtual_router_id 61
    priority ${priority}
    advert_int 0.1
    virtual_ipaddress {
        192.0.2.100/32 dev eth0
    }
    track_script {
        chk_ok
    }
}
`;
}

/** curl inside the namespace: [HTTP status, body]; status 0 when the connection fails. */
function curl(ns: string, url: string, method = "GET"): [number, string] {
  const r = Bun.spawnSync(["ip", "netns", "exec", ns, "curl", "-s", "-m", "3", "-X", method, "-o", "-", "-w", "\n%{http_code}", url], { stdout: "pipe", stderr: "pipe" });
  const out = r.stdout.toString();
  const nl = out.lastIndexOf("\n");
  return [Number(out.slice(nl + 1)) || 0, out.slice(0, nl)];
}

/** The value of the one sample line `name{labels}` that contains every `parts` string. */
function sample(text: string, name: string, ...parts: string[]): number | undefined {
  const line = text.split("\n").find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && parts.every((p) => l.includes(p)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe.skipIf(!ROOT)("vipd run --metrics (netns)", () => {
  let lab: Lab | undefined;
  let vipd: Proc | undefined;
  const dir = mkdtempSync(`${tmpdir()}/vipdt-metrics-`);
  afterAll(async () => {
    await vipd?.stop("SIGTERM", 3000);
    lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test("scrape passes promtool and shows the live state under the exporter's names", async () => {
    lab = createLab({ purpose: "metrics", nodes: ["a", "b"], v4: "192.0.2.0/24" });
    const ns = lab.node("a").ns;
    const conf = `${dir}/keepalived.conf`;
    writeFileSync(conf, config(150));
    vipd = new Proc("vipd@a", ["ip", "netns", "exec", ns, VIPD_BIN, "run", "-f", conf, "--pid-file", `${dir}/vipd.pid`, "--control", `${dir}/vipd.sock`,
      "--log-console", "--metrics", `127.0.0.1:${PORT}`]);
    await vipd.waitLine(/Serving metrics on http:\/\/127\.0\.0\.1:19165\/metrics/, 5000);
    await vipd.waitLine(/Entering MASTER STATE/, 5000);
    // the script's first result and a few loop-lag ticks
    const text = await waitFor(() => {
      const [code, body] = curl(ns, `http://127.0.0.1:${PORT}/metrics`);
      return code === 200 && sample(body, "keepalived_script_status", 'name="chk_ok"') === 1 && (sample(body, "vipd_event_loop_lag_seconds_count") ?? 0) >= 2 ? body : undefined;
    }, 5000, "a scrape with the script result and loop-lag samples", 200);

    const promtool = Bun.spawnSync(["promtool", "check", "metrics"], { stdin: new TextEncoder().encode(text), stdout: "pipe", stderr: "pipe" });
    expect(`${promtool.stdout}${promtool.stderr}`.trim()).toBe("");
    expect(promtool.exitCode).toBe(0);

    const vi1 = ['iname="VI_1"', 'intf="eth0"', 'vrid="61"'];
    expect(sample(text, "keepalived_up")).toBe(1);
    expect(sample(text, "keepalived_vrrp_state", ...vi1, 'ip_address="192.0.2.100"')).toBe(2);
    expect(sample(text, "keepalived_become_master_total", ...vi1)).toBe(1);
    expect(sample(text, "keepalived_advertisements_sent_total", ...vi1)).toBeGreaterThan(0);
    expect(sample(text, "keepalived_script_state", 'name="chk_ok"')).toBeDefined();
    expect(sample(text, "vipd_vrrp_transitions_total", ...vi1, 'from="BACKUP"', 'to="MASTER"')).toBe(1);
    expect(sample(text, "vipd_vrrp_effective_priority", ...vi1)).toBe(150);
    expect(sample(text, "vipd_config_reload_total", 'result="success"')).toBe(0);
    expect(text).not.toMatch(/vipd_checker|vipd_ipvs/); // no virtual_server: no LVS series
  }, 20_000);

  test("only GET /metrics answers, only on the configured address", () => {
    const ns = lab!.node("a").ns;
    expect(curl(ns, `http://127.0.0.1:${PORT}/`)[0]).toBe(404);
    expect(curl(ns, `http://127.0.0.1:${PORT}/metrics/x`)[0]).toBe(404);
    expect(curl(ns, `http://127.0.0.1:${PORT}/metrics`, "POST")[0]).toBe(405);
    // the namespace's own address on the same port: nothing listens there
    expect(curl(ns, `http://${lab!.node("a").v4}:${PORT}/metrics`)[0]).toBe(0);
    const ss = Bun.spawnSync(["ip", "netns", "exec", ns, "ss", "-Hltn"], { stdout: "pipe" }).stdout.toString();
    expect(ss.split("\n").filter((l) => l.includes(`:${PORT}`)).map((l) => l.trim().split(/\s+/)[3])).toEqual([`127.0.0.1:${PORT}`]);
  });

  test("a SIGHUP reload is counted with its duration; a new priority shows at once", async () => {
    const ns = lab!.node("a").ns;
    writeFileSync(`${dir}/keepalived.conf`, config(140));
    vipd!.kill("SIGHUP");
    await vipd!.waitLine(/Reloaded .* in [\d.]+ ms/, 5000);
    const [, text] = curl(ns, `http://127.0.0.1:${PORT}/metrics`);
    expect(sample(text, "vipd_config_reload_total", 'result="success"')).toBe(1);
    expect(sample(text, "vipd_config_reload_total", 'result="failure"')).toBe(0);
    expect(sample(text, "vipd_config_reload_duration_seconds")).toBeGreaterThan(0);
    expect(sample(text, "vipd_vrrp_priority", 'iname="VI_1"')).toBe(140);
    writeFileSync(`${dir}/keepalived.conf`, "vrrp_instance {\n"); // broken: rejected
    const n = vipd!.lines.length;
    vipd!.kill("SIGHUP");
    await vipd!.waitLine(/reload rejected/, 5000, n);
    expect(sample(curl(ns, `http://127.0.0.1:${PORT}/metrics`)[1], "vipd_config_reload_total", 'result="failure"')).toBe(1);
  }, 20_000);
});
