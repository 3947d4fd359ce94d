// The YAML front-end: errors with line:col, unknown keys with suggestions, type errors, both
// forms of line blocks, scripts and checkers; and `vipd schema` as a draft 2020-12 schema that
// accepts every fixture converted to YAML and rejects unknown keys.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { type Diagnostic, formatDiagnostic } from "../../src/config/diagnostics.ts";
import { jsonSchema, toYaml } from "../../src/config/emit.ts";
import { loadConfig, loadConfigText } from "../../src/config/load.ts";
import { checkSchemaStructure, DRAFT_2020_12, type Schema, validate } from "./json-schema-check.ts";

const ROOT = join(import.meta.dir, "../..");
const FIX = join(ROOT, "test/fixtures/configs");
const BUN = process.execPath;

const yaml = (text: string) => loadConfigText(text, "t.yaml", { hostname: "testhost", format: "yaml" });
const errors = (text: string): Diagnostic[] => yaml(text).diagnostics.errors;
/** The one error at line:col whose text contains `needle`, or a failure listing what there was. */
function expectError(text: string, line: number, col: number, needle: string): Diagnostic {
  const all = yaml(text).diagnostics.items;
  const hit = all.find((d) => d.severity === "error" && d.pos.line === line && d.pos.col === col && formatDiagnostic(d).includes(needle));
  if (!hit) throw new Error(`no error at ${line}:${col} containing '${needle}'; got:\n${all.map(formatDiagnostic).join("\n")}`);
  expect(hit.pos.file).toBe("t.yaml");
  return hit;
}

const INSTANCE = (extra: string) => `vrrp_instance:\n  VI_1:\n    interface: eth0\n    virtual_router_id: 5\n${extra}`;

describe("YAML syntax errors carry line:col", () => {
  test("a plain scalar running over two lines", () => {
    expectError("global_defs:\n  router_id: r1\n  bad line here\n  x: 1\n", 3, 3, "YAML: Implicit keys need to be on a single line");
  });
  test("an unterminated quoted string is reported after the line it starts on, never at 1:1", () => {
    const e = errors('global_defs:\n  router_id: "unterminated\nvrrp_instance: {}\n');
    expect(e.some((d) => d.message.includes("Missing closing") && d.pos.line > 2)).toBe(true);
    expect(e.every((d) => d.fatal)).toBe(true);
  });
  test("bad indentation: a key less indented than its siblings", () => {
    expectError("vrrp_instance:\n  VI_1:\n    state: MASTER\n   interface: eth0\n", 4, 1, "All mapping items must start at the same column");
  });
  test("bad indentation: a key more indented than its siblings", () => {
    expectError("vrrp_instance:\n  VI_1:\n    state: MASTER\n      interface: eth0\n", 3, 12, "Nested mappings are not allowed");
  });
  test("a tab used for indentation", () => {
    expectError("vrrp_instance:\n\tVI_1: {}\n", 2, 1, "Tabs are not allowed");
  });
  test("a duplicate key points at the second occurrence", () => {
    expectError(INSTANCE("    priority: 100\n    state: BACKUP\n    priority: 101\n"), 7, 5, "Map keys must be unique");
  });
  test("a keyword given once directly and once through its alias warns at the second", () => {
    const l = yaml("virtual_server:\n  - ip: 192.0.2.1\n    port: 80\n    protocol: TCP\n    lb_algo: rr\n    lvs_sched: wrr\n");
    const w = l.diagnostics.warnings.find((d) => d.message.includes("given twice"));
    expect(w?.pos).toMatchObject({ line: 6, col: 5 });
    expect(l.model.virtual_server[0].lvs_sched).toBe("wrr");
  });
  test("a YAML syntax error makes the config unusable (fatal), and nothing else is interpreted", () => {
    const l = yaml("global_defs:\n  router_id: [a, b\n");
    expect(l.diagnostics.items.length).toBe(1);
    expect(l.diagnostics.items[0].fatal).toBe(true);
  });
});

describe("unknown keys are rejected with a suggestion", () => {
  test("at the top level", () => {
    expectError("global_def:\n  router_id: x\n", 1, 1, "unknown key 'global_def' in the top level; did you mean 'global_defs'?");
  });
  test("in a vrrp_instance", () => {
    expectError(INSTANCE("    priorty: 100\n"), 5, 5, "unknown key 'priorty' in vrrp_instance; did you mean 'priority'?");
  });
  test("in a real_server inside a virtual_server list", () => {
    const text = "virtual_server:\n  - ip: 192.0.2.1\n    port: 80\n    protocol: TCP\n    real_server:\n      - ip: 192.0.2.2\n        port: 80\n        wieght: 3\n";
    expectError(text, 8, 9, "unknown key 'wieght' in real_server; did you mean 'weight'?");
  });
  test("in the mapping form of a virtual_ipaddress line", () => {
    expectError(INSTANCE("    virtual_ipaddress:\n      - {address: 192.0.2.2/24, devv: eth1}\n"), 6, 33, "unknown key 'devv' in virtual_ipaddress; did you mean 'dev'?");
  });
  test("in a checker", () => {
    const text = "virtual_server:\n  - ip: 192.0.2.1\n    port: 80\n    protocol: TCP\n    real_server:\n      - ip: 192.0.2.2\n        port: 80\n        TCP_CHECK:\n          conect_timeout: 3\n";
    expectError(text, 9, 11, "unknown key 'conect_timeout' in TCP_CHECK; did you mean 'connect_timeout'?");
  });
  test("a key far from every keyword gets no suggestion but is still an error", () => {
    const e = expectError(INSTANCE("    zzzzzzzz: 1\n"), 5, 5, "unknown key 'zzzzzzzz'");
    expect(e.message).not.toContain("did you mean");
  });
});

describe("wrong types", () => {
  test("a string where an integer is expected", () => {
    expectError("vrrp_instance:\n  VI_1:\n    interface: eth0\n    virtual_router_id: five\n", 4, 24, "virtual_router_id: expected an integer, got 'five'");
  });
  test("an integer out of range", () => {
    expectError(INSTANCE("    priority: 300\n"), 5, 15, "priority: value 300 out of range");
  });
  test("a list where a single value is expected", () => {
    expectError("vrrp_instance:\n  VI_1:\n    interface: [eth0, eth1]\n    virtual_router_id: 5\n", 3, 16, "interface: expected a single value");
  });
  test("a mapping where a single value is expected", () => {
    expectError("global_defs:\n  router_id: {a: 1}\n", 2, 14, "router_id: expected a single value");
  });
  test("a flag that is not a boolean", () => {
    expectError(INSTANCE("    nopreempt: maybe\n"), 5, 16, "nopreempt: 'maybe' is not a boolean");
  });
  test("a named block given as a list", () => {
    expectError("vrrp_instance:\n  - interface: eth0\n", 2, 3, "vrrp_instance: expected a mapping of NAME: { keywords }");
  });
  test("a document that is not a mapping", () => {
    expectError("- a\n- b\n", 1, 1, "expected a mapping of keywords");
  });
  test("integers written as strings and booleans written as keepalived words are accepted", () => {
    const l = yaml(INSTANCE("    priority: '150'\n    nopreempt: 'on'\n    state: BACKUP\n    no_virtual_ipaddress: yes\n"));
    expect(l.diagnostics.errors).toEqual([]);
    expect(l.model.vrrp_instance[0]).toMatchObject({ priority: 150, nopreempt: true });
  });
});

describe("line blocks, scripts and checkers", () => {
  test("virtual_ipaddress as keepalived strings and as mappings give the same entries", () => {
    const strings = yaml(INSTANCE("    virtual_ipaddress:\n      - 192.0.2.1/24 dev eth1 label eth1:vip\n      - 192.0.2.2\n"));
    const maps = yaml(INSTANCE("    virtual_ipaddress:\n      - {address: 192.0.2.1/24, dev: eth1, label: 'eth1:vip'}\n      - address: 192.0.2.2\n"));
    expect(strings.diagnostics.errors).toEqual([]);
    expect(maps.diagnostics.errors).toEqual([]);
    const strip = (l: ReturnType<typeof yaml>) => l.model.vrrp_instance[0].virtual_ipaddress.map(({ pos, ...e }) => e);
    expect(strip(strings)).toEqual([
      { address: "192.0.2.1", prefixlen: 24, family: "inet", dev: "eth1", label: "eth1:vip" },
      { address: "192.0.2.2", prefixlen: 32, family: "inet" },
    ]);
    expect(strip(maps)).toEqual(strip(strings));
  });
  test("an error inside a string line points at the word", () => {
    expectError(INSTANCE("    virtual_ipaddress:\n      - 192.0.2.1/24 dev eth1 scope galaxy\n"), 6, 37, "'galaxy' is not one of global");
  });
  test("a mapping line missing its first field", () => {
    expectError(INSTANCE("    virtual_ipaddress:\n      - {dev: eth1}\n"), 6, 9, "missing 'address'");
  });
  test("scripts as a string and as {cmd, user, group}", () => {
    const l = yaml(
      INSTANCE("    no_virtual_ipaddress: true\n    notify_master: /usr/local/bin/up.sh\n    notify_backup: {cmd: /usr/local/bin/down.sh arg, user: nobody, group: nogroup}\n    notify_fault: '\"/usr/local/bin/fault.sh\" nobody'\n"),
    );
    expect(l.diagnostics.errors).toEqual([]);
    const i = l.model.vrrp_instance[0];
    expect(i.notify_master).toEqual({ cmd: "/usr/local/bin/up.sh" });
    expect(i.notify_backup).toEqual({ cmd: "/usr/local/bin/down.sh arg", user: "nobody", group: "nogroup" });
    expect(i.notify_fault).toEqual({ cmd: "/usr/local/bin/fault.sh", user: "nobody" });
    expect(l.model.scripts.map((s) => s.what)).toEqual(["VI_1 notify_master", "VI_1 notify_backup", "VI_1 notify_fault"]);
  });
  test("a script mapping without cmd is an error", () => {
    expectError(INSTANCE("    notify_master: {user: nobody}\n"), 5, 20, "missing 'cmd'");
  });
  test("a checker as one mapping or as a list of mappings", () => {
    const text =
      "virtual_server:\n  - ip: 192.0.2.1\n    port: 80\n    protocol: TCP\n    real_server:\n" +
      "      - ip: 192.0.2.2\n        port: 80\n        TCP_CHECK: {connect_timeout: 3}\n" +
      "      - ip: 192.0.2.3\n        port: 80\n        TCP_CHECK: [{connect_timeout: 3}, {connect_port: 81}]\n";
    const l = yaml(text);
    expect(l.diagnostics.errors).toEqual([]);
    const rs = l.model.virtual_server[0].real_servers;
    expect(rs[0].checkers).toEqual([{ type: "TCP_CHECK", doc: { connect_timeout: 3 } }]);
    expect(rs[1].checkers).toEqual([{ type: "TCP_CHECK", doc: { connect_timeout: 3 } }, { type: "TCP_CHECK", doc: { connect_port: 81 } }]);
  });
  test("a virtual_server given as one mapping instead of a list", () => {
    const l = yaml("virtual_server:\n  fwmark: 7\n  lb_algo: rr\n");
    expect(l.diagnostics.errors).toEqual([]);
    expect(l.model.virtual_server[0]).toMatchObject({ fwmark: 7, lvs_sched: "rr", protocol: "TCP" });
  });
});

describe("vipd schema", () => {
  const cli = Bun.spawnSync([BUN, join(ROOT, "src/main.ts"), "schema"], { stdout: "pipe", stderr: "pipe" });
  const schema = JSON.parse(cli.stdout.toString()) as Record<string, unknown>;

  test("prints the generator's schema and exits 0", () => {
    expect(cli.exitCode).toBe(0);
    expect(schema).toEqual(jsonSchema());
  });

  test("is a structurally valid draft 2020-12 schema within the checker's subset", () => {
    expect(schema.$schema).toBe(DRAFT_2020_12);
    expect(checkSchemaStructure(schema)).toEqual([]);
    expect(schema.type).toBe("object");
    expect(schema.additionalProperties).toBe(false);
  });

  const fixtures = readdirSync(FIX).filter((f) => f.endsWith(".conf")).sort();
  test("every fixture converted to YAML validates against it", () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(30);
    const failures: string[] = [];
    for (const f of fixtures) {
      const path = join(FIX, f);
      const id = /^# config-id:\s*(\S+)/m.exec(readFileSync(path, "utf8"))?.[1];
      const doc = parseYaml(toYaml(loadConfig(path, { configId: id, hostname: "testhost", env: {} }).doc));
      for (const e of validate(schema as Schema, doc)) failures.push(`${f}: ${e}`);
    }
    expect(failures).toEqual([]);
  });

  const sample = () => parseYaml(toYaml(loadConfig(join(FIX, "22-lvs-dr-tcp-check.conf"), { hostname: "testhost" }).doc));
  test("a document with an unknown key fails it", () => {
    const doc = sample();
    expect(validate(schema as Schema, doc)).toEqual([]);
    doc.vrrp_instance.VI_DIRECTOR.priorty = 100;
    expect(validate(schema as Schema, doc)).toEqual(["/vrrp_instance/VI_DIRECTOR: unknown property 'priorty'"]);
  });
  test("a nested unknown key, a wrong type and an out-of-range value fail it", () => {
    const doc = sample();
    doc.virtual_server[0].real_server[0].TCP_CHECK[0].conect_timeout = 3;
    doc.vrrp_instance.VI_DIRECTOR.priority = "high";
    doc.vrrp_instance.VI_DIRECTOR.virtual_router_id = 256;
    doc.virtual_server[0].lvs_sched = "fastest";
    const errs = validate(schema as Schema, doc).join("\n");
    expect(errs).toContain("/vrrp_instance/VI_DIRECTOR/priority: expected integer, got string");
    expect(errs).toContain("/vrrp_instance/VI_DIRECTOR/virtual_router_id: 256 > maximum 255");
    expect(errs).toContain("/virtual_server/0/lvs_sched: \"fastest\" is not one of");
    expect(errs).toContain("/virtual_server: matches none of oneOf"); // the list branch fails deeper: conect_timeout
  });
  test("aliases are accepted by the schema like their keywords", () => {
    const doc = sample();
    doc.virtual_server[0].lb_algo = doc.virtual_server[0].lvs_sched;
    delete doc.virtual_server[0].lvs_sched;
    expect(validate(schema as Schema, doc)).toEqual([]);
  });
});

describe("the schema checker itself", () => {
  const s: Schema = {
    type: "object",
    properties: {
      n: { type: "integer", minimum: 1, maximum: 3 },
      e: { type: "string", enum: ["a", "b"] },
      p: { type: "string", pattern: "^x+$", maxLength: 3 },
      l: { type: "array", items: { type: "boolean" } },
      o: { oneOf: [{ type: "string" }, { type: "object", properties: { k: { type: "string" } }, required: ["k"], additionalProperties: false }] },
    },
    additionalProperties: false,
  };
  test("accepts a valid value and reports each broken rule", () => {
    expect(validate(s, { n: 2, e: "a", p: "xx", l: [true], o: { k: "v" } })).toEqual([]);
    expect(validate(s, { n: 2.5 })).toEqual(["/n: expected integer, got number"]);
    expect(validate(s, { n: 0 })).toEqual(["/n: 0 < minimum 1"]);
    expect(validate(s, { n: 4 })).toEqual(["/n: 4 > maximum 3"]);
    expect(validate(s, { e: "c" })).toEqual(['/e: "c" is not one of ["a","b"]']);
    expect(validate(s, { p: "xy" })).toEqual(["/p: 'xy' does not match /^x+$/"]);
    expect(validate(s, { p: "xxxx" })).toEqual(["/p: longer than 3"]);
    expect(validate(s, { l: [1] })).toEqual(["/l/0: expected boolean, got number"]);
    expect(validate(s, { o: {} })[0]).toStartWith("/o: matches none of oneOf");
    expect(validate(s, { z: 1 })).toEqual(["/: unknown property 'z'"]);
  });
  test("oneOf fails when more than one branch matches", () => {
    expect(validate({ oneOf: [{ type: "number" }, { type: "integer" }] }, 1)).toEqual(["/: matches 2 branches of oneOf (exactly one allowed)"]);
  });
  test("refuses keywords outside its subset instead of ignoring them", () => {
    expect(() => validate({ type: "string", minLength: 2 }, "a")).toThrow("unsupported schema keyword 'minLength'");
    expect(checkSchemaStructure({ $schema: DRAFT_2020_12, anyOf: [] })).toEqual(["#/anyOf: keyword outside the supported subset"]);
    expect(checkSchemaStructure({ $schema: DRAFT_2020_12, type: "text", pattern: "(" }).length).toBe(2);
  });
});
