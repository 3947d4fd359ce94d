import { describe, expect, test } from "bun:test";
import {
  byteString, cmdlineBytesNeeded, cmdlineFromArgv, matchSpecFromDoc, paramsMatch, processMatches, specWarning,
} from "../../src/vrrp/process-match.ts";

const cl = (...argv: string[]) => cmdlineFromArgv(argv);

describe("matchSpecFromDoc (keepalived parser rules)", () => {
  test("name only: comm match, no params", () => {
    expect(matchSpecFromDoc({ process: ["nginx"] })).toEqual({ path: "nginx", params: [], paramMatch: "none", fullCommand: false });
  });
  test("parameters imply exact param match and full_command", () => {
    expect(matchSpecFromDoc({ process: ["/usr/sbin/haproxy", "-f", "/etc/h.cfg"] }))
      .toEqual({ path: "/usr/sbin/haproxy", params: ["-f", "/etc/h.cfg"], paramMatch: "exact", fullCommand: true });
  });
  test("param_match initial/partial imply full_command", () => {
    expect(matchSpecFromDoc({ process: ["x", "a"], param_match: "initial" }).paramMatch).toBe("initial");
    expect(matchSpecFromDoc({ process: ["x"], param_match: "partial" })).toMatchObject({ paramMatch: "partial", fullCommand: true });
  });
  test("bare param_match means exact (no parameters allowed)", () => {
    expect(matchSpecFromDoc({ process: ["x"], param_match: true })).toMatchObject({ paramMatch: "exact", fullCommand: true });
  });
  test("full_command without params", () => {
    expect(matchSpecFromDoc({ process: ["/bin/x"], full_command: true })).toMatchObject({ paramMatch: "none", fullCommand: true });
  });
  test("non-ASCII names become byte strings", () => {
    expect(matchSpecFromDoc({ process: ["é"] }).path).toBe("\u00c3\u00a9");
    expect(byteString("é").length).toBe(2);
  });
});

describe("comm matching", () => {
  const spec = matchSpecFromDoc({ process: ["ssh"] });
  test("exact, not regex or prefix", () => {
    expect(processMatches(spec, "ssh", cl("/usr/bin/ssh", "host"))).toBe(true);
    expect(processMatches(spec, "sshd", cl("/usr/sbin/sshd"))).toBe(false);
    expect(processMatches(spec, "ss", "")).toBe(false);
  });
  test("cmdline is ignored without full_command", () => {
    expect(processMatches(spec, "ssh", cl("something-else"))).toBe(true);
    expect(processMatches(spec, "other", cl("ssh"))).toBe(false);
  });
});

describe("full_command matching", () => {
  test("argv[0] must equal the name; params ignored without param_match", () => {
    const spec = matchSpecFromDoc({ process: ["/usr/sbin/nginx"], full_command: true });
    expect(processMatches(spec, "nginx", cl("/usr/sbin/nginx", "-g", "daemon off;"))).toBe(true);
    expect(processMatches(spec, "nginx", cl("nginx"))).toBe(false);
  });
  test("setproctitle-style cmdline (no NULs) is one argv[0]", () => {
    const spec = matchSpecFromDoc({ process: ["nginx: master process /usr/sbin/nginx"], full_command: true });
    expect(processMatches(spec, "nginx", "nginx: master process /usr/sbin/nginx")).toBe(true);
    expect(processMatches(spec, "nginx", "nginx: worker process")).toBe(false);
  });
});

describe("parameter matching (check_params)", () => {
  const exact = matchSpecFromDoc({ process: ["/bin/prog", "-c", "conf"] });
  const partial = matchSpecFromDoc({ process: ["/bin/prog", "-c", "conf"], param_match: "partial" });
  const initial = matchSpecFromDoc({ process: ["/bin/prog", "-c", "conf"], param_match: "initial" });
  const noParams = matchSpecFromDoc({ process: ["/bin/prog"], param_match: true });

  test("exact: same parameters, no more, no fewer", () => {
    expect(processMatches(exact, "prog", cl("/bin/prog", "-c", "conf"))).toBe(true);
    expect(processMatches(exact, "prog", cl("/bin/prog", "-c", "conf", "-v"))).toBe(false);
    expect(processMatches(exact, "prog", cl("/bin/prog", "-c"))).toBe(false);
    expect(processMatches(exact, "prog", cl("/bin/prog", "-c", "conf2"))).toBe(false);
  });
  test("partial: the first n parameters exactly, more allowed", () => {
    expect(processMatches(partial, "prog", cl("/bin/prog", "-c", "conf"))).toBe(true);
    expect(processMatches(partial, "prog", cl("/bin/prog", "-c", "conf", "-v"))).toBe(true);
    expect(processMatches(partial, "prog", cl("/bin/prog", "-c", "conf2"))).toBe(false);
    expect(processMatches(partial, "prog", cl("/bin/prog", "-c"))).toBe(false);
  });
  test("initial: the last parameter may be a prefix", () => {
    expect(processMatches(initial, "prog", cl("/bin/prog", "-c", "conf"))).toBe(true);
    expect(processMatches(initial, "prog", cl("/bin/prog", "-c", "config.yaml"))).toBe(true);
    expect(processMatches(initial, "prog", cl("/bin/prog", "-c", "conf", "more"))).toBe(true);
    expect(processMatches(initial, "prog", cl("/bin/prog", "-c", "cof"))).toBe(false);
    expect(processMatches(initial, "prog", cl("/bin/prog", "-x", "conf"))).toBe(false);
  });
  test("param_match without parameters: the command must have none", () => {
    expect(processMatches(noParams, "prog", cl("/bin/prog"))).toBe(true);
    expect(processMatches(noParams, "prog", cl("/bin/prog", "-v"))).toBe(false);
  });
  test("partial/initial with no configured parameters accept anything", () => {
    const p = matchSpecFromDoc({ process: ["/bin/prog"], param_match: "partial" });
    expect(processMatches(p, "prog", cl("/bin/prog", "a", "b"))).toBe(true);
    expect(paramsMatch(p, "")).toBe(true);
  });
  test("an argument containing the separator does not fake a match", () => {
    expect(processMatches(exact, "prog", cl("/bin/prog", "-c conf"))).toBe(false);
  });
});

describe("warnings and read sizes", () => {
  test("comm names longer than 15 bytes can never match", () => {
    expect(specWarning("t", matchSpecFromDoc({ process: ["a-very-long-daemon-name"] }))).toContain("15-byte comm");
    expect(specWarning("t", matchSpecFromDoc({ process: ["a-very-long-daemon-name"], full_command: true }))).toBeNull();
    expect(specWarning("t", matchSpecFromDoc({ process: ["nginx"] }))).toBeNull();
    expect(specWarning("t", matchSpecFromDoc({}))).toContain("empty");
  });
  test("cmdline bytes needed covers path, params and one extra byte", () => {
    const s = matchSpecFromDoc({ process: ["/bin/prog", "-c", "conf"] });
    expect(cmdlineBytesNeeded(s)).toBeGreaterThan(cmdlineFromArgv(["/bin/prog", "-c", "conf"]).length);
  });
});
