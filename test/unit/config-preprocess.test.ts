import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Statement, Token } from "../../src/config/ast.ts";
import type { Diagnostic } from "../../src/config/diagnostics.ts";
import { expandBraces, hasGlobMagic, preprocess } from "../../src/config/preprocess.ts";
import { globFiles, readKeepalivedConfig, readKeepalivedText, type ReadOptions, type ReadResult } from "../../src/config/read-keepalived.ts";

const V = "/virt/keepalived.conf";
const noFiles: ReadOptions = {
  readFile: (p) => {
    throw Object.assign(new Error(`ENOENT: ${p}`), { code: "ENOENT" });
  },
  glob: () => [],
};

/** Reads `text` as /virt/keepalived.conf with config-id "main" and no files around it. */
function read(text: string, opts: ReadOptions = {}): ReadResult {
  return readKeepalivedText(text, V, { configId: "main", env: {}, randomSeed: 1, ...noFiles, ...opts });
}

/** The tree as indented text lines: `keyword args {`, children, `}`. */
function flat(sts: Statement[], ind = ""): string[] {
  const out: string[] = [];
  for (const st of sts) {
    const head = [st.keyword, ...st.args].map((t) => t.text).join(" ");
    if (st.children) {
      out.push(`${ind}${head} {`, ...flat(st.children, ind + "  "), `${ind}}`);
    } else out.push(ind + head);
  }
  return out;
}

/** Every token of the tree in order. */
function allTokens(sts: Statement[]): Token[] {
  return sts.flatMap((s) => [s.keyword, ...s.args, ...allTokens(s.children ?? [])]);
}

const at = (t: Token): string => `${t.text}@${t.pos.line}:${t.pos.col}`;
const where = (d: Diagnostic): string => `${d.severity} ${path.basename(d.pos.file)}:${d.pos.line}:${d.pos.col} ${d.message}`;
const errors = (r: ReadResult): string[] => r.diagnostics.filter((d) => d.severity === "error").map(where);

describe("blocks and braces", () => {
  test("braces split lines like keepalived, wherever they are", () => {
    const r = read("vrrp_instance VI_1{ state MASTER\n  virtual_ipaddress { 192.0.2.1/24 }}\nglobal_defs\n{\nrouter_id x } other");
    expect(errors(r)).toEqual([]);
    expect(flat(r.statements)).toEqual([
      "vrrp_instance VI_1 {",
      "  state MASTER",
      "  virtual_ipaddress {",
      "    192.0.2.1/24",
      "  }",
      "}",
      "global_defs {",
      "  router_id x",
      "}",
      "other",
    ]);
    const vi = r.statements[0];
    expect(vi.end).toEqual({ file: V, line: 2, col: 37 });
    expect(allTokens(r.statements).map(at)).toEqual([
      "vrrp_instance@1:1", "VI_1@1:15", "state@1:21", "MASTER@1:27", "virtual_ipaddress@2:3", "192.0.2.1/24@2:23",
      "global_defs@3:1", "router_id@5:1", "x@5:11", "other@5:15",
    ]);
  });

  test("an extra '}' is reported where it is", () => {
    const r = read("a {\n}\n  }\nb");
    expect(errors(r)).toEqual(["error keepalived.conf:3:3 unexpected '}': no block is open here (extra '}')"]);
    expect(r.diagnostics[0].expected).toBe("a keyword or the end of the file");
    expect(flat(r.statements)).toEqual(["a {", "}", "b"]);
  });

  test("a missing '}' is reported at the '{' it should close", () => {
    const r = read("vrrp_instance X {\n  virtual_ipaddress {\n    192.0.2.1\n  }\n");
    expect(errors(r)).toEqual(["error keepalived.conf:1:17 missing '}': the 'vrrp_instance' block opened here is never closed"]);
    expect(r.diagnostics[0].expected).toBe("'}'");
  });

  test("a '{' with no keyword before it is reported and its contents kept in place", () => {
    const r = read("a {\n}\n{\n  b\n}\nc");
    expect(errors(r)).toEqual(["error keepalived.conf:3:1 Unexpected '{'"]);
    expect(flat(r.statements)).toEqual(["a {", "}", "b", "c"]);
  });

  test("an unterminated quote is an error at the quote", () => {
    const r = read(`global_defs {\n  notification_email_from "ops@example\n}`);
    expect(errors(r)).toEqual(["error keepalived.conf:2:27 unterminated quoted string"]);
    expect(flat(r.statements)).toEqual(["global_defs {", "  notification_email_from ops@example", "}"]);
  });

  test("comments and blank lines vanish; CRLF line ends are accepted", () => {
    const r = read("# header\r\n\r\n! bang\r\nrouter_id r1 # trailing\r\n");
    expect(flat(r.statements)).toEqual(["router_id r1"]);
    expect(at(r.statements[0].args[0])).toBe("r1@4:11");
  });
});

describe("conditional lines (@ID, @^ID)", () => {
  const text = [
    "@main router_id main_router",
    "@backup router_id backup_router",
    "unicast_peer {",
    "  @^main    192.0.2.4",
    "  @^backup  192.0.2.5",
    "}",
    "@main",
  ].join("\n");

  test("kept only when the id matches (or, with @^, does not)", () => {
    expect(flat(read(text, { configId: "main" }).statements)).toEqual(["router_id main_router", "unicast_peer {", "  192.0.2.5", "}"]);
    expect(flat(read(text, { configId: "backup" }).statements)).toEqual(["router_id backup_router", "unicast_peer {", "  192.0.2.4", "}"]);
    expect(flat(read(text, { configId: "other" }).statements)).toEqual(["unicast_peer {", "  192.0.2.4", "  192.0.2.5", "}"]);
  });

  test("tokens keep their columns after the @ID is removed", () => {
    const r = read(text, { configId: "backup" });
    expect(allTokens(r.statements).slice(0, 3).map(at)).toEqual(["router_id@2:9", "backup_router@2:19", "unicast_peer@3:1"]);
    expect(at(r.statements[1].children![0].keyword)).toBe("192.0.2.4@4:13");
  });
});

describe("parameters ($NAME=VALUE)", () => {
  test("$NAME and ${NAME} are replaced; positions are those of the '$'", () => {
    const r = read("$IF=eth0\n$NET=192.0.2\ninterface $IF\nvip ${NET}.1/24 dev ${IF}");
    expect(errors(r)).toEqual([]);
    expect(flat(r.statements)).toEqual(["interface eth0", "vip 192.0.2.1/24 dev eth0"]);
    expect(allTokens(r.statements).map(at)).toEqual(["interface@3:1", "eth0@3:11", "vip@4:1", "192.0.2.1/24@4:5", "dev@4:17", "eth0@4:21"]);
  });

  test("$NAME must be followed by a blank, ',', ')' or the end; undefined names stay verbatim", () => {
    const r = read(`$A=x\nk $A.y \${A}.y $A,1 ($A) $UNDEF "\${UNDEF} $HOME"`);
    expect(flat(r.statements)).toEqual(["k $A.y x.y x,1 (x) $UNDEF ${UNDEF} $HOME"]);
    // Unquoted, an undefined ${NAME} is split at its braces, exactly as keepalived does.
    expect(flat(read("k ${UNDEF} z").statements)).toEqual(["k $ {", "  UNDEF", "}", "z"]);
  });

  test("substitution is lazy and recursive (the man page example)", () => {
    const r = read([
      "$ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}",
      "$ADDRESS_BASE_SUB=0",
      "${ADDRESS_BASE}.100/32",
      "$ADDRESS_BASE_SUB=10",
      "${ADDRESS_BASE}.100/32",
    ].join("\n"));
    expect(flat(r.statements)).toEqual(["10.2.0.100/32", "10.2.10.100/32"]);
  });

  test("definitions combine with @ID, and a value may hold an @ID", () => {
    const text = "@main $PRIO=240\n@backup $PRIO=200\npriority $PRIO\n$IF_MAIN=@main\n$IF_MAIN weight 5";
    expect(flat(read(text, { configId: "main" }).statements)).toEqual(["priority 240", "weight 5"]);
    expect(flat(read(text, { configId: "backup" }).statements)).toEqual(["priority 200"]);
  });

  test("empty values, redefinition and no blank before '='", () => {
    const r = read("$E=\n$X=1\n$X=2\na${E}b $X\n$Y =3\n");
    expect(flat(r.statements)).toEqual(["ab 2", "$Y =3"]);
  });

  test("a substituted line that defines a parameter is a definition", () => {
    const r = read("$DEF=$Z=7\n$DEF\nz $Z");
    expect(flat(r.statements)).toEqual(["z 7"]);
  });

  test("multi-line definitions expand to whole blocks, at the reference's position", () => {
    const r = read([
      "$INSTANCE= \\",
      "vrrp_instance VI_${NUM} { \\",
      "    interface eth0.${NUM} \\",
      "    @high priority 130 \\",
      "    @main priority 120 \\",
      "    virtual_ipaddress { \\",
      "        10.0.${NUM}.254/24 \\",
      "    } \\",
      "}",
      "",
      "$NUM=0",
      "  $INSTANCE",
      "$NUM=1",
      "$INSTANCE",
    ].join("\n"));
    expect(errors(r)).toEqual([]);
    const one = (n: number): string[] => [`vrrp_instance VI_${n} {`, `  interface eth0.${n}`, "  priority 120", "  virtual_ipaddress {", `    10.0.${n}.254/24`, "  }", "}"];
    expect(flat(r.statements)).toEqual([...one(0), ...one(1)]);
    const first = allTokens([r.statements[0]]).map(at);
    expect(first).toHaveLength(8);
    expect(first.filter((s) => !s.endsWith("@12:3"))).toEqual([]);
    expect(r.statements[0].end).toEqual({ file: V, line: 12, col: 3 });
    expect(at(r.statements[1].keyword)).toBe("vrrp_instance@14:1");
  });

  test("multi-line definitions nest, and may set parameters inside", () => {
    const r = read([
      "$RS= \\",
      "real_server 192.0.2.${RS_NUM} 80 { \\",
      "    weight 1 \\",
      "}",
      "$VS= \\",
      "virtual_server 10.0.${VS_NUM}.4 80 { \\",
      "    $RS_NUM=1 \\",
      "    $RS \\",
      "    # a comment line inside is skipped",
      "    $RS_NUM=2 \\",
      "    $RS \\",
      "}",
      "$VS_NUM=7",
      "$VS",
    ].join("\n"));
    expect(errors(r)).toEqual([]);
    expect(flat(r.statements)).toEqual([
      "virtual_server 10.0.7.4 80 {",
      "  real_server 192.0.2.1 80 {",
      "    weight 1",
      "  }",
      "  real_server 192.0.2.2 80 {",
      "    weight 1",
      "  }",
      "}",
    ]);
  });

  test("a blank line ends a multi-line definition; a multi-line reference mid-line stays verbatim", () => {
    const r = read("$M=a \\\nb \\\n\nc\nx $M y\n$M");
    expect(flat(r.statements)).toEqual(["c", "x $M y", "a", "b"]);
  });

  test("runaway recursion is an error, not a hang", () => {
    const t0 = performance.now();
    const r = read("$A=$A\nk $A\n$B=x$B\nk $B\n$C=~ x $C\na $C\nlast");
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(errors(r)).toEqual([
      "error keepalived.conf:2:3 parameter substitution recursion limit exceeded",
      "error keepalived.conf:4:3 parameter substitution recursion limit exceeded",
      "error keepalived.conf:6:1 parameter substitution does not terminate (the line keeps producing '@' or '$' references)",
    ]);
    expect(flat(r.statements).at(-1)).toBe("last");
  });
});

describe("predefined parameters", () => {
  test("${_PWD} is the directory of the current file; ${_INSTANCE} the config-id", () => {
    const r = read("script ${_PWD}/x.sh\nid ${_INSTANCE}", { configId: "lb7" });
    expect(flat(r.statements)).toEqual(["script /virt/x.sh", "id lb7"]);
  });

  test("${_RANDOM [MIN [MAX]]} is seeded and in range", () => {
    const text = "~SEQ(i, 20) r ${_RANDOM} ${_RANDOM 5} ${_RANDOM 3 4}";
    const a = flat(read(text, { randomSeed: 42 }).statements);
    const b = flat(read(text, { randomSeed: 42 }).statements);
    const c = flat(read(text, { randomSeed: 43 }).statements);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    for (const line of a) {
      const [, x, y, z] = line.split(" ").map(Number);
      expect(x >= 0 && x <= 32767 && y >= 5 && y <= 32767 && (z === 3 || z === 4)).toBe(true);
    }
    expect(new Set(a.map((l) => l.split(" ")[3])).size).toBe(2);
  });

  test("global_defs random_seed reseeds ${_RANDOM} from its line on (whatever the process seed)", () => {
    const text = "global_defs {\n  random_seed 7\n}\n~SEQ(i, 5) r ${_RANDOM}";
    const a = flat(read(text, { randomSeed: 1 }).statements);
    const b = flat(read(text, { randomSeed: 2 }).statements);
    expect(a).toEqual(b);
    expect(new Set(a.filter((l) => l.startsWith("r ")).map((l) => l.split(" ")[1])).size).toBeGreaterThan(1);
    // outside global_defs the keyword does nothing here
    const c = flat(read("random_seed 7\n~SEQ(i, 5) r ${_RANDOM}", { randomSeed: 1 }).statements);
    const d = flat(read("random_seed 7\n~SEQ(i, 5) r ${_RANDOM}", { randomSeed: 2 }).statements);
    expect(c).not.toEqual(d);
  });

  test("${_RANDOM} parameter errors", () => {
    const r = read('a "${_RANDOM x}"\nb "${_RANDOM 1 2 3}"\nc ${_RANDOM 9 2}\nd "${_ENV}"');
    expect(errors(r)).toEqual([
      "error keepalived.conf:1:4 Definition _RANDOM requires numeric parameters only.",
      "error keepalived.conf:2:4 Definition _RANDOM requires between 0 and 2 parameters, 3 specified.",
      "error keepalived.conf:3:3 ${_RANDOM}: min 9 exceeds max 2, using 9",
      "error keepalived.conf:4:4 Definition _ENV requires between 1 and 1 parameters, 0 specified.",
    ]);
    expect(flat(r.statements)).toEqual(["a ${_RANDOM x}", "b ${_RANDOM 1 2 3}", "c 9", "d ${_ENV}"]);
  });

  test("${_ENV VAR} reads the environment (empty when unset)", () => {
    const r = read("a ${_ENV SITE}x\nb x${_ENV NOPE}y", { env: { SITE: "ams" } });
    expect(flat(r.statements)).toEqual(["a amsx", "b xy"]);
  });

  test("${_HASH}/${_BANG} give # and !: literal in quotes, a deferred comment outside (as keepalived)", () => {
    const r = read(`k "a\${_HASH}b\${_BANG}"\n$OFF=\${_HASH}\n$OFF disabled line\nkept`);
    expect(flat(r.statements)).toEqual(["k a#b!", "kept"]);
  });
});

describe("~SEQ and ~LST", () => {
  test("~SEQ forms: end; start, end; start, step, end; descending; hex", () => {
    const r = read([
      "~SEQ(A, 3) a $A",
      "~SEQ(B, -2) b $B",
      "~SEQ(C, 5, 3) c $C",
      "~SEQ(D, 0, 5, 12) d $D",
      "~SEQx(E, 0x90, 0x10, 0xc0) ip fe80::20:${E}:1",
    ].join("\n"));
    expect(errors(r)).toEqual([]);
    expect(flat(r.statements)).toEqual([
      "a 1", "a 2", "a 3", "b -1", "b -2", "c 5", "c 4", "c 3", "d 0", "d 5", "d 10",
      "ip fe80::20:90:1", "ip fe80::20:a0:1", "ip fe80::20:b0:1", "ip fe80::20:c0:1",
    ]);
  });

  test("~SEQ parameters may be definitions; generated tokens keep ~SEQ-line columns", () => {
    const r = read("$N=2\nvirtual_ipaddress {\n  ~SEQ(S, 0, $N) 10.0.${S}.1/24 dev eth0\n}");
    expect(flat(r.statements)).toEqual(["virtual_ipaddress {", "  10.0.0.1/24 dev eth0", "  10.0.1.1/24 dev eth0", "  10.0.2.1/24 dev eth0", "}"]);
    const kids = r.statements[0].children!;
    expect(kids.map((s) => [s.keyword, ...s.args].map(at).join(" "))).toEqual([
      "10.0.0.1/24@3:18 dev@3:33 eth0@3:37",
      "10.0.1.1/24@3:18 dev@3:33 eth0@3:37",
      "10.0.2.1/24@3:18 dev@3:33 eth0@3:37",
    ]);
  });

  test("several ~SEQ/~LST on one line nest, left outermost", () => {
    const r = read("~SEQx(AD2, 0x90, 0x10, 0xa0) ~SEQx(AD1, 0x12, -1, 0x11) fe81::10:${AD2}:${AD1}");
    expect(flat(r.statements)).toEqual(["fe81::10:90:12", "fe81::10:90:11", "fe81::10:a0:12", "fe81::10:a0:11"]);
    const l = read("~LST({IP, IP1}, {10,1},{20,4}) ~SEQ(IP2,168,2,170) 192.${IP2}.${IP}.${IP1}");
    expect(flat(l.statements)).toEqual(["192.168.10.1", "192.170.10.1", "192.168.20.4", "192.170.20.4"]);
  });

  test("~LST with one variable, several variables, and missing values", () => {
    const r = read("~LST(IP, 1, 2, 3) x ${IP}\n~LST({A,B,C}, {1,2,3}, 4, {5 , 6}) y ${A}-${B}-${C}.");
    expect(errors(r)).toEqual([]);
    expect(flat(r.statements)).toEqual(["x 1", "x 2", "x 3", "y 1-2-3.", "y 4--.", "y 5-6-."]);
  });

  test("~SEQ feeding a multi-line definition repeats whole blocks", () => {
    const r = read("$VI= \\\nvrrp_instance V${ID} { \\\n  virtual_router_id ${ID} \\\n}\n~SEQ(ID, 1, 3) $VI\nend");
    expect(flat(r.statements)).toEqual([1, 2, 3].flatMap((n) => [`vrrp_instance V${n} {`, `  virtual_router_id ${n}`, "}"]).concat(["end"]));
  });

  test("bad ~SEQ/~LST are errors at the ~ with the expected form", () => {
    const r = read([
      "~SEQ(i 1, 3) a",
      "  ~SEQ(i, 1, 3 a",
      "~SEQ(i, 1, 0, 5) a",
      "~SEQ(i, 5, 1, 1) a",
      "~SEQx(i, -3, 1) a",
      "~SEQ(i, 1, 2, 3, 4) a",
      "~SEQ i, 1) a",
      "~SEQ(i, zz) a",
      "~LST({A,B}, {1,2,3}) a",
      "~LST A, 1) a",
      "~LST(A, 1, 2 a",
      "ok",
    ].join("\n"));
    expect(errors(r)).toEqual([
      "error keepalived.conf:1:1 Invalid ~SEQ definition '~SEQ(i 1, 3) a'",
      "error keepalived.conf:2:3 ~SEQ missing terminating ')' '~SEQ(i, 1, 3 a'",
      "error keepalived.conf:3:1 Invalid ~SEQ values '~SEQ(i, 1, 0, 5) a'",
      "error keepalived.conf:4:1 Invalid ~SEQ values '~SEQ(i, 5, 1, 1) a'",
      "error keepalived.conf:5:1 ~SEQx is only valid for positive numbers '~SEQx(i, -3, 1) a'",
      "error keepalived.conf:6:1 Invalid ~SEQ definition '~SEQ(i, 1, 2, 3, 4) a'",
      "error keepalived.conf:7:1 Invalid ~SEQ specification '~SEQ i, 1) a': '(' missing",
      "error keepalived.conf:8:1 Invalid ~SEQ definition '~SEQ(i, zz) a'",
      "error keepalived.conf:9:1 Invalid ~LST specification '~LST({A,B}, {1,2,3}) a': too many values",
      "error keepalived.conf:10:1 Invalid ~LST specification '~LST A, 1) a': '(' missing",
      "error keepalived.conf:11:1 Invalid ~LST specification '~LST(A, 1, 2 a': ',' expected between values",
    ]);
    expect(r.diagnostics[0].expected).toBe("~SEQ(VAR, [START,] [STEP,] END) TEXT");
    expect(flat(r.statements)).toEqual(["ok"]);
  });

  test("a huge ~SEQ is refused instead of hanging", () => {
    const r = read("~SEQ(i, 0, 1, 99999999999) x $i\nok");
    expect(errors(r)).toEqual(["error keepalived.conf:1:1 ~SEQ would repeat 100000000000 times (limit 100000) '~SEQ(i, 0, 1, 99999999999) x $i'"]);
    expect(flat(r.statements)).toEqual(["ok"]);
  });
});

describe("include (real files in a temp directory)", () => {
  let dir = "";
  const w = (rel: string, text: string, mode = 0o644): string => {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, text);
    fs.chmodSync(p, mode);
    return p;
  };
  const readMain = (text: string, opts: ReadOptions = {}): ReadResult => {
    const main = w("keepalived.conf", text);
    return readKeepalivedConfig(main, { configId: "main", env: {}, randomSeed: 1, ...opts });
  };

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "vipd-inc-"));
    w("global.conf", "global_defs {\n    router_id r1\n}\n");
    w("conf.d/20-b.conf", "b_kw 2\n");
    w("conf.d/10-a.conf", "a_kw 1\n");
    w("conf.d/.hidden.conf", "hidden 1\n");
    w("conf.d/notes.txt", "txt 1\n");
    w("lvs/web.conf", "web 1\n");
    w("lvs/mail.conf", "mail 1\n");
    w("sub/outer.conf", "outer 1\ninclude inner/inner.conf\nouter_pwd ${_PWD}\n");
    w("sub/inner/inner.conf", "\n  inner   ${_PWD}\n");
    w("cycle/a.conf", "in_a\ninclude b.conf\n");
    w("cycle/b.conf", "in_b\ninclude a.conf\nafter_b\n");
    w("exec.conf", "x 1\n", 0o755);
    fs.mkdirSync(path.join(dir, "adir"), { recursive: true });
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("plain include, glob (sorted, no dot files) and csh braces, relative to the including file", () => {
    const r = readMain("include global.conf\ninclude conf.d/*.conf\ninclude lvs/{web,mail}.conf\nlast");
    expect(r.diagnostics).toEqual([]);
    expect(flat(r.statements)).toEqual(["global_defs {", "  router_id r1", "}", "a_kw 1", "b_kw 2", "web 1", "mail 1", "last"]);
    expect(r.files).toEqual(["keepalived.conf", "global.conf", "conf.d/10-a.conf", "conf.d/20-b.conf", "lvs/web.conf", "lvs/mail.conf"].map((f) => path.join(dir, f)));
    const rid = r.statements[0].children![0];
    expect(rid.keyword.pos).toEqual({ file: path.join(dir, "global.conf"), line: 2, col: 5 });
    expect(r.statements[5].keyword.pos).toEqual({ file: path.join(dir, "keepalived.conf"), line: 4, col: 1 });
  });

  test("nested includes resolve against each file's own directory; ${_PWD} follows the file", () => {
    const r = readMain("include sub/outer.conf");
    expect(r.diagnostics).toEqual([]);
    expect(flat(r.statements)).toEqual(["outer 1", `inner ${path.join(dir, "sub/inner")}`, `outer_pwd ${path.join(dir, "sub")}`]);
    expect(r.statements[1].keyword.pos).toEqual({ file: path.join(dir, "sub/inner/inner.conf"), line: 2, col: 3 });
    expect(r.statements[1].args[0].pos).toEqual({ file: path.join(dir, "sub/inner/inner.conf"), line: 2, col: 11 });
  });

  test("include works after a brace and on conditional lines", () => {
    const r = readMain("blk { include global.conf\n}\n@main include lvs/web.conf\n@other include lvs/mail.conf");
    expect(errors(r)).toEqual([]);
    expect(flat(r.statements)).toEqual(["blk {", "  global_defs {", "    router_id r1", "  }", "}", "web 1"]);
  });

  test("a missing file is only a warning for plain include", () => {
    const r = readMain("include nothere.conf\ninclude conf.d/*.none\ninclude nodir/*.conf\nok");
    expect(r.diagnostics.map(where)).toEqual([
      "warning keepalived.conf:1:9 Config files missing 'nothere.conf'.",
      "warning keepalived.conf:3:9 Config files missing 'nodir/*.conf'.",
    ]);
    expect(flat(r.statements)).toEqual(["ok"]);
  });

  test("includem / includew / includeb / includea / includer checks give errors", () => {
    const r = readMain([
      "includem nothere.conf",
      "includew conf.d/*.none",
      "includer conf.d/*.none",
      "includeb lvs/{web,gone}.conf",
      "includea adir",
      "includer exec.conf",
      "include exec.conf",
      "includer adir/",
      "last",
    ].join("\n"));
    expect(r.diagnostics.map(where)).toEqual([
      "error keepalived.conf:1:10 Config files missing 'nothere.conf'.",
      "error keepalived.conf:2:10 No config files matched 'conf.d/*.none'.",
      "error keepalived.conf:4:10 Some config files missing: \"lvs/{web,gone}.conf\".",
      "error keepalived.conf:5:10 Configuration file 'adir/' is a directory - skipping",
      "error keepalived.conf:6:10 Configuration file 'exec.conf' is not a regular non-executable file - skipping",
      "warning keepalived.conf:7:9 Configuration file 'exec.conf' is not a regular non-executable file - skipping",
      "error keepalived.conf:8:10 Configuration file 'adir/' is a directory - skipping",
    ]);
    // includeb with a missing alternative skips the whole include.
    expect(flat(r.statements)).toEqual(["last"]);
    // Plain include of a partly missing brace pattern reads what exists and warns.
    const p = readMain("include lvs/{web,gone}.conf");
    expect(p.diagnostics.map(where)).toEqual(["warning keepalived.conf:1:9 Some config files missing: \"lvs/{web,gone}.conf\"."]);
    expect(flat(p.statements)).toEqual(["web 1"]);
  });

  test("include_check in global_defs turns plain include problems into errors, per file", () => {
    w("check/inner.conf", "global_defs {\n  include_check -match\n}\ninclude nothere1.conf\n");
    const r = readMain([
      "global_defs {",
      "  include_check",
      "}",
      "include check/inner.conf",
      "include nothere2.conf",
      "global_defs {",
      "  include_check +brace_match -match bogus",
      "}",
      "include nothere3.conf",
    ].join("\n"));
    expect(r.diagnostics.map(where)).toEqual([
      "warning inner.conf:4:9 Config files missing 'nothere1.conf'.",
      "error keepalived.conf:5:9 Config files missing 'nothere2.conf'.",
      "error keepalived.conf:7:37 Duplicate include_check 'bogus' specified - ignoring",
      "warning keepalived.conf:9:9 Config files missing 'nothere3.conf'.",
    ]);
  });

  test("include_check outside global_defs has no effect", () => {
    const r = readMain("vrrp_instance X {\n  include_check\n}\ninclude nothere.conf");
    expect(r.diagnostics.map(where)).toEqual(["warning keepalived.conf:4:9 Config files missing 'nothere.conf'."]);
    expect(flat(r.statements)).toEqual(["vrrp_instance X {", "  include_check", "}"]);
  });

  test("a glob that matches the including file is a cycle for that file only", () => {
    w("self/main.conf", "m 1\ninclude *.conf\n");
    w("self/other.conf", "o 1\n");
    const r = readKeepalivedConfig(path.join(dir, "self/main.conf"), { configId: "x" });
    expect(errors(r)).toHaveLength(1);
    expect(errors(r)[0]).toStartWith("error main.conf:2:9 include cycle: ");
    expect(flat(r.statements)).toEqual(["m 1", "o 1"]);
  });

  test("include cycles are errors and stop", () => {
    const r = readMain("include cycle/a.conf\nend");
    expect(errors(r)).toEqual(["error b.conf:2:9 include cycle: '" + path.join(dir, "cycle/a.conf") + "' is already being read (" +
      [path.join(dir, "keepalived.conf"), path.join(dir, "cycle/a.conf"), path.join(dir, "cycle/b.conf"), path.join(dir, "cycle/a.conf")].join(" -> ") + ")"]);
    expect(flat(r.statements)).toEqual(["in_a", "in_b", "after_b", "end"]);
  });

  test("a missing main file is flagged distinctly", () => {
    const r = readKeepalivedConfig(path.join(dir, "absent.conf"), { configId: "x" });
    expect(r.missingMain).toBe(true);
    expect(r.statements).toEqual([]);
    expect(errors(r)).toContain(`error absent.conf:1:1 Failed to open configuration file '${path.join(dir, "absent.conf")}'`);
    expect(r.diagnostics.find((d) => d.message.startsWith("Failed"))!.fatal).toBe(true);
    const d = readKeepalivedConfig(path.join(dir, "adir"), { configId: "x" });
    expect(d.missingMain).toBe(true);
    expect(readMain("a").missingMain).toBe(false);
  });

  test("globFiles marks directories, sorts, and returns paths in the pattern's form", () => {
    expect(globFiles("conf.d/*", dir)).toEqual(["conf.d/10-a.conf", "conf.d/20-b.conf", "conf.d/notes.txt"]);
    expect(globFiles("conf.d/.h*", dir)).toEqual(["conf.d/.hidden.conf"]);
    expect(globFiles("conf.d/[12]?-[!b]*", dir)).toEqual(["conf.d/10-a.conf"]);
    expect(globFiles("a*", dir)).toEqual(["adir/"]);
    expect(globFiles(path.join(dir, "lvs/*.conf"), "/")).toEqual([path.join(dir, "lvs/mail.conf"), path.join(dir, "lvs/web.conf")]);
    expect(globFiles("global.conf", dir)).toEqual(["global.conf"]);
    expect(globFiles("none.conf", dir)).toEqual([]);
  });
});

describe("preprocess (logical lines)", () => {
  test("yields words and single-brace lines with positions, and lists the files read", () => {
    const host = { configId: "main", env: {}, randomSeed: 1, readFile: noFiles.readFile!, glob: noFiles.glob! };
    const r = preprocess("/v/k.conf", host, "a b {c\n  } d\n$X=1\n@main e $X");
    expect(r.lines.map((l) => l.map(at).join(" "))).toEqual(["a@1:1 b@1:3", "{@1:5", "c@1:6", "}@2:3", "d@2:5", "e@4:7 1@4:9"]);
    expect(r.files).toEqual(["/v/k.conf"]);
    expect(r.missingMain).toBe(false);
    expect(r.diagnostics.items).toEqual([]);
  });
});

describe("include with injected files", () => {
  test("readFile/glob are injectable; include errors name the include line", () => {
    const files: Record<string, string> = { "/virt/a.conf": "from_a 1\n  bad }" };
    const r = read("include a.conf\nincluder b.conf", {
      readFile: (p) => {
        if (p in files) return files[p];
        throw Object.assign(new Error("EACCES"), { code: "EACCES" });
      },
      glob: (pat) => (pat === "a.conf" || pat === "b.conf" ? [pat] : []),
    });
    expect(r.diagnostics.map(where)).toEqual([
      "error a.conf:2:7 unexpected '}': no block is open here (extra '}')",
      "error keepalived.conf:2:10 Configuration file 'b.conf' open problem (EACCES) - skipping",
    ]);
    expect(flat(r.statements)).toEqual(["from_a 1", "bad"]);
  });

  test("brace expansion and glob magic helpers", () => {
    expect(expandBraces("foo/{,cat,dog},bar")).toEqual(["foo/,bar", "foo/cat,bar", "foo/dog,bar"]);
    expect(expandBraces("{foo/{,cat,dog},bar}")).toEqual(["foo/", "foo/cat", "foo/dog", "bar"]);
    expect(expandBraces("a{b,c}d{1,2}")).toEqual(["abd1", "abd2", "acd1", "acd2"]);
    expect(expandBraces("a{b")).toEqual(["a{b"]);
    expect(expandBraces("a\\{b,c}")).toEqual(["a\\{b,c}"]);
    expect(hasGlobMagic("a/*.conf")).toBe(true);
    expect(hasGlobMagic("a/b\\*.conf")).toBe(false);
  });
});

describe("robustness", () => {
  function sampleConfig(): string {
    return [
      "! sample",
      "$IF=eth0",
      "@main $PRIO=200",
      "$RS= \\",
      "  real_server 198.51.100.${N} 80 { \\",
      "    weight 1 \\",
      "  }",
      "global_defs {",
      "  router_id lb1 # comment",
      '  notification_email_from "a@b \\x41"',
      "}",
      "vrrp_instance VI_1 {",
      "  interface $IF",
      "  priority ${PRIO}",
      "  virtual_ipaddress {",
      "    ~SEQ(S, 1, 3) 192.0.2.${S}/24",
      "  }",
      "  notify \"/bin/n.sh 'a b'\"",
      "}",
      "virtual_server 192.0.2.1 80 {",
      "  ~LST(N, 1, 2) $RS",
      "}",
      "include nothing.conf",
    ].join("\n");
  }

  test("2,000 random byte edits of a sample config never throw", () => {
    const base = new TextEncoder().encode(sampleConfig());
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const special = [..."{}\"'\\$@~#!(),\n \t"].map((c) => c.charCodeAt(0));
    const dec = new TextDecoder();
    const t0 = performance.now();
    let statements = 0;
    for (let i = 0; i < 2000; i++) {
      const bytes = base.slice();
      const edits = 1 + rnd(4);
      for (let k = 0; k < edits; k++) bytes[rnd(bytes.length)] = rnd(2) ? special[rnd(special.length)] : rnd(256);
      const r = read(dec.decode(bytes));
      expect(Array.isArray(r.statements)).toBe(true);
      statements += r.statements.length;
    }
    expect(statements).toBeGreaterThan(2000);
    expect(performance.now() - t0).toBeLessThan(20_000);
  });

  test("over-long lines are refused; a line of many braces stays fast", () => {
    const t0 = performance.now();
    const r = read(`a ${"x".repeat(20_000)}\nb${" { x".repeat(500)}${" }".repeat(500)}\nc`);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(errors(r)).toEqual(["error keepalived.conf:1:1 line too long (20002 characters) - ignoring"]);
    let depth = 0;
    for (let s: Statement | undefined = r.statements[0]; s?.children; s = s.children[0]) depth++;
    expect(depth).toBe(500);
    expect(flat(r.statements).at(-1)).toBe("c");
  });

  test("1,000 vrrp_instances and 1,000 real_servers (~30k lines) preprocess in well under a second", () => {
    const lines: string[] = ["global_defs {", "  router_id big", "}"];
    for (let i = 0; i < 1000; i++) {
      lines.push(
        `vrrp_instance VI_${i} {`, "  state BACKUP", `  interface eth${i % 4}`, `  virtual_router_id ${(i % 255) + 1}`,
        "  priority 100", "  advert_int 1", "  nopreempt", "  garp_master_delay 1", "  authentication {", "    auth_type PASS",
        "    auth_pass secret", "  }", "  track_interface {", `    eth${(i + 1) % 4} weight -10`, "  }",
        "  virtual_ipaddress {", `    192.0.2.${i % 250}/24 dev eth0 # vip`, "  }", "}",
      );
    }
    lines.push("virtual_server 203.0.113.1 80 {", "  delay_loop 6", "  lb_algo rr", "  lb_kind NAT", "  protocol TCP");
    for (let i = 0; i < 1000; i++) {
      lines.push(`  real_server 198.51.${Math.floor(i / 250)}.${i % 250} 80 {`, "    weight 1", "    TCP_CHECK {", "      connect_timeout 3", "      connect_port 80",
        "      retry 3", "      delay_before_retry 2", "    }", "  }");
    }
    lines.push("}");
    expect(lines.length).toBeGreaterThan(28_000);
    const text = lines.join("\n");
    read(text); // warm up
    const t0 = performance.now();
    const r = read(text);
    const ms = performance.now() - t0;
    expect(r.diagnostics).toEqual([]);
    expect(r.statements).toHaveLength(1002);
    expect(r.statements[1001].children).toHaveLength(1004);
    expect(ms).toBeLessThan(2000); // ~150 ms warm here; generous for a loaded CI machine
  });
});

describe("runaway input stays bounded", () => {
  test("a multi-line parameter that uses itself is refused, not expanded forever", () => {
    const r = read("$RS= \\\n  x \\\n  $RS\n$RS\nok");
    expect(errors(r).some((e) => e.includes("refers to itself"))).toBe(true);
    expect(flat(r.statements)).toContain("ok");
  });
});
