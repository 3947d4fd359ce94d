// The config commands through the real CLI (`bun src/main.ts …`): vipd check's exit codes and
// summary, host checks with and without --offline, convert round trips, dump-config defaults,
// format detection from content and the default path.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "../..");
const FIX = join(ROOT, "test/fixtures/configs");
const dir = mkdtempSync(join(tmpdir(), "vipd-cli-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number;
  out: string;
  err: string;
}
/** Runs `vipd ARGS` from source; `env` replaces the environment when given. */
function vipd(args: string[], env?: Record<string, string>): Run {
  const r = Bun.spawnSync([process.execPath, join(ROOT, "src/main.ts"), ...args], {
    cwd: dir,
    stdout: "pipe",
    stderr: "pipe",
    env: env ?? { ...process.env, VIPD_DEBUG: "" },
  });
  return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString() };
}

let n = 0;
/** Writes a config into the temp dir and returns its path. */
function file(text: string, name = `c${n++}.conf`): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const instance = (body: string, name = "VI_1") => `vrrp_instance ${name} {\n${body}\n}\n`;
const CLEAN = `global_defs {\n    router_id lb1\n    enable_script_security\n}\n${instance("    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority 100\n    virtual_ipaddress {\n        192.0.2.10/24\n        192.0.2.11/24\n    }")}`;

describe("vipd check exit codes", () => {
  test("0: a clean config with enable_script_security and no scripts; the summary counts what it defines", () => {
    const r = vipd(["check", "--offline", "-f", file(CLEAN)]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const [summary, counts] = r.out.trim().split("\n");
    expect(summary).toContain("(keepalived)");
    expect(summary).toContain("1 vrrp_instance(s), 2 virtual address(es), 0 sync group(s), 0 vrrp_script(s), 0 virtual_server(s), 0 real_server(s), 0 checker(s)");
    expect(counts).toBe("0 error(s), 0 warning(s)");
  });

  test("3: a vrrp_instance without virtual_router_id cannot run", () => {
    const p = file(instance("    interface eth0\n    virtual_ipaddress {\n        192.0.2.10/24\n    }"));
    const r = vipd(["check", "--offline", "-f", p]);
    expect(r.code).toBe(3);
    expect(r.err).toContain(`${p}:1:1: error: vrrp_instance VI_1: missing virtual_router_id`);
    expect(r.out).toContain("1 error(s)");
  });

  test("4: errors that would still let it run (a priority out of range)", () => {
    const p = file(CLEAN.replace("priority 100", "priority 300"));
    const r = vipd(["check", "--offline", "-f", p]);
    expect(r.code).toBe(4);
    expect(r.err).toContain(`${p}:9:14: error: priority: value 300 out of range (expected an integer 1..255)`);
    expect(r.out).toContain("1 error(s), 0 warning(s)");
  });

  test("5: scripts without enable_script_security", () => {
    const p = file(CLEAN.replace("    enable_script_security\n", "").replace("priority 100", 'priority 100\n    notify_master "/usr/local/bin/up.sh"'));
    const r = vipd(["check", "--offline", "-f", p]);
    expect(r.code).toBe(5);
    expect(r.err).toContain("SECURITY VIOLATION - scripts are being executed but script_security not enabled");
    expect(r.out).toContain("0 error(s), 1 warning(s)");
  });

  test("6: a missing file", () => {
    const p = join(dir, "does-not-exist.conf");
    const r = vipd(["check", "-f", p]);
    expect(r.code).toBe(6);
    expect(r.err).toContain(`${p}:1:1: error: cannot read config file: no such file`);
    expect(r.out).toBe("");
  });

  test("a directory is not a config either (6)", () => {
    const r = vipd(["check", "-f", dir]);
    expect(r.code).toBe(6);
    expect(r.err).toContain("is a directory");
  });

  test("warnings alone keep exit 0 and are counted", () => {
    const p = file(CLEAN.replace("priority 100", "priority 100\n    priorty 5"));
    const r = vipd(["check", "--offline", "-f", p]);
    expect(r.code).toBe(0);
    expect(r.err).toContain("unknown keyword 'priorty' in vrrp_instance; did you mean 'priority'?");
    expect(r.out).toContain("0 error(s), 1 warning(s)");
  });

  test("a YAML config reports its format in the summary", () => {
    const p = file("global_defs:\n  enable_script_security: true\nvrrp_instance:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 5\n    virtual_ipaddress: [192.0.2.1/24]\n", "c.yaml");
    const r = vipd(["check", "--offline", "-f", p]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`${p} (yaml): 1 vrrp_instance(s), 1 virtual address(es)`);
  });

  test("bad options exit 2 with a usage line", () => {
    const r = vipd(["check", "--frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("usage: vipd check");
  });
});

describe("host checks", () => {
  const missingIf = "vipdt-nope0";
  const conf = CLEAN.replace("interface eth0", `interface ${missingIf}`);

  test("a missing interface is reported without --offline and not with it", () => {
    const p = file(conf);
    const online = vipd(["check", "-f", p]);
    expect(online.err).toContain(`interface '${missingIf}' does not exist on this host`);
    expect(online.code).toBe(0); // a warning: keepalived also starts and waits for the interface
    const offline = vipd(["check", "--offline", "-f", p]);
    expect(offline.err).not.toContain(missingIf);
  });

  test("an existing interface is not reported", () => {
    const r = vipd(["check", "-f", file(CLEAN.replace("interface eth0", "interface lo"))]);
    expect(r.err).not.toContain("does not exist on this host");
  });

  test("a world-writable script is reported with enable_script_security, and a missing one always", () => {
    const script = join(dir, "notify.sh");
    writeFileSync(script, "#!/bin/sh\nexit 0\n");
    chmodSync(script, 0o777);
    const withScript = (c: string) => c.replace("priority 100", `priority 100\n    notify_master "${script}"\n    notify_backup "${join(dir, "absent.sh")}"`);
    const secure = vipd(["check", "-f", file(withScript(CLEAN))]);
    expect(secure.err).toContain(`notify_master: unsafe permissions, script disabled: ${script} is writable by others`);
    expect(secure.err).toContain(`notify_backup: script '${join(dir, "absent.sh")}' does not exist`);
    expect(secure.code).toBe(4);
    // without script security vipd does not judge permissions (keepalived exits 5 then)
    const insecure = vipd(["check", "-f", file(withScript(CLEAN.replace("    enable_script_security\n", "")))]);
    expect(insecure.err).not.toContain("unsafe permissions");
    expect(insecure.err).toContain("does not exist");
    // --offline skips the file checks
    const offline = vipd(["check", "--offline", "-f", file(withScript(CLEAN))]);
    expect(offline.err).not.toContain("unsafe permissions");
    expect(offline.err).not.toContain("does not exist");
    expect(offline.code).toBe(0);
  });
});

/** The model without positions and raw documents, for comparing across formats. */
function model(r: Run): Record<string, unknown> {
  return JSON.parse(r.out, (k, v) => (k === "pos" || k === "doc" || k === "path" || k === "format" || k === "files" ? undefined : v));
}

describe("vipd convert", () => {
  for (const f of ["22-lvs-dr-tcp-check.conf", "14-sync-group-notify.conf", "36-include.conf"]) {
    test(`${f}: --to yaml, then --to keepalived, gives the same model and the same YAML again`, () => {
      const src = join(FIX, f);
      const toYaml = vipd(["convert", "-f", src, "--to", "yaml"]);
      expect(toYaml.code).toBe(0);
      expect(toYaml.out).toStartWith("# Generated by vipd convert\n");
      const y = file(toYaml.out, `${f}.yaml`);
      const back = vipd(["convert", "-f", y, "--to", "keepalived"]);
      expect(back.code).toBe(0);
      expect(back.out).not.toContain("include");
      const k = file(back.out, `${f}.back.conf`);
      const again = vipd(["convert", "-f", k, "--to", "yaml"]);
      expect(again.out).toBe(toYaml.out);
      const m0 = model(vipd(["dump-config", "-f", src]));
      expect(model(vipd(["dump-config", "-f", y]))).toEqual(m0);
      expect(model(vipd(["dump-config", "-f", k]))).toEqual(m0);
    });
  }

  test("--to must be yaml or keepalived", () => {
    const r = vipd(["convert", "-f", join(FIX, "01-basic-master.conf"), "--to", "json"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("--to must be 'yaml' or 'keepalived'");
  });

  test("a config that cannot run is not converted (3)", () => {
    const r = vipd(["convert", "-f", file("vrrp_instance VI_1 {\n"), "--to", "yaml"]);
    expect(r.code).toBe(3);
    expect(r.out).toBe("");
  });
});

describe("vipd dump-config", () => {
  const conf = file(
    `${instance("    state MASTER\n    interface eth0\n    virtual_router_id 7\n    virtual_ipaddress {\n        192.0.2.7\n    }")}` +
      "virtual_server 192.0.2.7 53 {\n    real_server 192.0.2.8 53 {\n    }\n}\n",
  );
  const r = vipd(["dump-config", "-f", conf]);
  const m = JSON.parse(r.out);

  test("prints JSON with path, format and the files read", () => {
    expect(r.code).toBe(0);
    expect(m).toMatchObject({ path: conf, format: "keepalived", files: [conf] });
  });
  test("state MASTER without priority means priority 255", () => {
    expect(m.vrrp_instance[0]).toMatchObject({ name: "VI_1", state: "MASTER", priority: 255, advert_int: 1, version: 2 });
  });
  test("lb_algo defaults to wlc, delay_loop to 60, the method to NAT", () => {
    expect(m.virtual_server[0]).toMatchObject({ id: "192.0.2.7 53", lvs_sched: "wlc", delay_loop: 60, lvs_method: "NAT" });
    expect(m.virtual_server[0].real_servers[0]).toMatchObject({ ip: "192.0.2.8", port: 53, weight: 1 });
  });
  test("a virtual_server without protocol is UDP, with a warning that says why", () => {
    expect(m.virtual_server[0].protocol).toBe("UDP");
    expect(r.err).toContain(`${conf}:9:1: warning: virtual_server 192.0.2.7 53: missing protocol; keepalived then uses UDP`);
  });
  test("BACKUP without priority means 100; lb_algo is an alias of lvs_sched", () => {
    const p = file(`${instance("    interface eth0\n    virtual_router_id 8\n    no_virtual_ipaddress")}virtual_server fwmark 3 {\n    lb_algo rr\n    lb_kind DR\n}\n`);
    const d = JSON.parse(vipd(["dump-config", "-f", p]).out);
    expect(d.vrrp_instance[0]).toMatchObject({ state: "BACKUP", priority: 100 });
    expect(d.virtual_server[0]).toMatchObject({ id: "fwmark 3", lvs_sched: "rr", lvs_method: "DR", protocol: "TCP" });
  });
});

describe("format detection and the default path", () => {
  test("an extension-less file is read as YAML or keepalived.conf by its content", () => {
    const y = file("# comment\nvrrp_instance:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 5\n    no_virtual_ipaddress: true\n", "vipd-config");
    const k = file("# comment\n! another\nvrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 5\n    no_virtual_ipaddress\n}\n", "keepalived-config");
    const dy = JSON.parse(vipd(["dump-config", "-f", y]).out);
    const dk = JSON.parse(vipd(["dump-config", "-f", k]).out);
    expect(dy.format).toBe("yaml");
    expect(dk.format).toBe("keepalived");
    expect(model({ code: 0, err: "", out: JSON.stringify(dy) })).toEqual(model({ code: 0, err: "", out: JSON.stringify(dk) }));
  });

  test("a .conf file is keepalived.conf and a .yml file YAML whatever they contain", () => {
    const y = vipd(["check", "--offline", "-f", file("vrrp_instance:\n  VI_1: {}\n", "looks-like-yaml.conf")]);
    expect(y.out).toContain("(keepalived)");
    const k = vipd(["check", "--offline", "-f", file("vrrp_instance VI_1 {\n}\n", "looks-like-conf.yml")]);
    expect(k.out).toContain("(yaml)");
  });

  const defaultsAbsent = !existsSync("/etc/vipd/vipd.yaml") && !existsSync("/etc/keepalived/keepalived.conf");
  test.skipIf(!defaultsAbsent)("without -f and with neither default file: exit 6, naming /etc/vipd/vipd.yaml", () => {
    const r = vipd(["check"], { PATH: process.env.PATH ?? "/usr/bin:/bin" });
    expect(r.code).toBe(6);
    expect(r.err).toContain("/etc/vipd/vipd.yaml:1:1: error: cannot read config file: no such file");
  });
});
