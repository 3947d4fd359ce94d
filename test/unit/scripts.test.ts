import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CommandSyntaxError,
  ScriptRunner,
  defaultScriptIdentity,
  lookupIdentity,
  prepareScript,
  lingeringPipeCount,
  releaseLingeringPipes,
  runScript,
  shellCommandLine,
  splitCommand,
  waitBounded,
  type ScriptHandle,
} from "../../src/daemon/scripts.ts";

let dir = "";
const startedPids: number[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vipd-scripts-"));
});

afterAll(() => {
  // Anything a failed test left behind: kill its group, then remove the temp dir.
  for (const pid of startedPids) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {}
  }
  rmSync(dir, { recursive: true, force: true });
});

/** Writes an executable file in the temp dir and returns its path. */
function script(name: string, body: string, mode = 0o755): string {
  const p = join(dir, name);
  writeFileSync(p, body);
  chmodSync(p, mode);
  return p;
}

/** Alive = exists and is not a zombie (this VM's init does not reap orphans). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Measures how late a 5 ms setInterval fires while something runs. */
function lagMonitor(periodMs = 5): { stop(): number } {
  let max = 0;
  let last = performance.now();
  const t = setInterval(() => {
    const now = performance.now();
    max = Math.max(max, now - last - periodMs);
    last = now;
  }, periodMs);
  return {
    stop() {
      clearInterval(t);
      return max;
    },
  };
}

function track(h: ScriptHandle): ScriptHandle {
  if (h.pid !== undefined) startedPids.push(h.pid);
  return h;
}

async function waitForFile(path: string, maxMs = 2000): Promise<string> {
  const end = performance.now() + maxMs;
  while (performance.now() < end) {
    if (existsSync(path)) {
      const t = readFileSync(path, "utf8");
      if (t.trim() !== "") return t;
    }
    await Bun.sleep(10);
  }
  throw new Error(`timed out waiting for ${path}`);
}

describe("splitCommand", () => {
  const table: Array<[string, string[]]> = [
    ["/usr/local/bin/notify.sh 'a b' c", ["/usr/local/bin/notify.sh", "a b", "c"]],
    ['/x "b c" d', ["/x", "b c", "d"]],
    ["/x  \t  y", ["/x", "y"]],
    ["  /x  ", ["/x"]],
    ["/x a\\ b", ["/x", "a b"]],
    ["/x it''s", ["/x", "its"]],
    ['/x pre"mid dle"post', ["/x", "premid dlepost"]],
    ["/x '' b", ["/x", "", "b"]],
    ['/x ""', ["/x", ""]],
    ["/x 'a\\'b'", ["/x", "a'b"]],
    ['/x "say \\"hi\\""', ["/x", 'say "hi"']],
    ["/x a\\tb", ["/x", "a\tb"]],
    ["/x \\x41\\101", ["/x", "AA"]],
    ["/x '$HOME' \"$1\"", ["/x", "$HOME", "$1"]],
    ["/x \\cA", ["/x", "\x01"]],
    ["", []],
    ["   ", []],
  ];
  for (const [input, want] of table) {
    test(JSON.stringify(input), () => {
      expect(splitCommand(input)).toEqual(want);
    });
  }
  test("unterminated quote and trailing backslash are errors", () => {
    expect(() => splitCommand("/x 'a b")).toThrow(CommandSyntaxError);
    expect(() => splitCommand('/x "a')).toThrow(/missing terminating "/);
    expect(() => splitCommand("/x a\\")).toThrow(/missing escaped character/);
  });
});

describe("shellCommandLine", () => {
  test("quotes every word; keeps a leading redirection raw", () => {
    expect(shellCommandLine(["/x", "a b", "it's"])).toBe("'/x' 'a b' 'it'\\''s'");
    expect(shellCommandLine(["</dev/null"])).toBe("</dev/null");
    expect(shellCommandLine(["/x", "<y"])).toBe("'/x' '<y'");
  });
  test("the shell gets back exactly the original words", async () => {
    const words = ["printf", "%s|", "a b", "it's", "", '"q"', "$HOME", "`id`", "\\n", "tab\there"];
    const p = Bun.spawn(["/bin/sh", "-c", shellCommandLine(words)], { stdout: "pipe" });
    const out = await new Response(p.stdout).text();
    expect(await p.exited).toBe(0);
    expect(out).toBe(words.slice(2).map((w) => w + "|").join(""));
  });
});

describe("identities", () => {
  let files = { passwd: "", group: "" };
  beforeAll(() => {
    files = { passwd: join(dir, "passwd"), group: join(dir, "group") };
    writeFileSync(files.passwd, "root:x:0:0:root:/root:/bin/sh\nalice:x:1500:1600::/home/alice:/bin/sh\nkeepalived_script:x:990:991::/:/bin/false\n");
    writeFileSync(files.group, "root:x:0:\nstaff:x:50:alice\nalice:x:1600:\n");
  });
  test("user alone takes the primary group; a named group overrides it", () => {
    expect(lookupIdentity("alice", undefined, files)).toEqual({ uid: 1500, gid: 1600, user: "alice" });
    expect(lookupIdentity("alice", "staff", files)).toEqual({ uid: 1500, gid: 50, user: "alice", group: "staff" });
    expect(lookupIdentity("alice", ":staff", files)).toEqual({ uid: 1500, gid: 50, user: "alice", group: "staff" });
  });
  test("unknown user or group is an error, not a throw", () => {
    expect(lookupIdentity("bob", undefined, files)).toEqual({ error: "Script user 'bob' does not exist" });
    expect(lookupIdentity("alice", "wheel", files)).toEqual({ error: "Script group 'wheel' does not exist" });
    expect("error" in lookupIdentity("alice", undefined, { passwd: join(dir, "nope"), group: files.group })).toBe(true);
  });
  test("default script user: script_user, else keepalived_script, else the daemon's own", () => {
    expect(defaultScriptIdentity({ script_user: { user: "alice" }, enable_script_security: false }, files)).toEqual({ uid: 1500, gid: 1600, user: "alice" });
    expect(defaultScriptIdentity({ enable_script_security: false }, files)).toEqual({ uid: 990, gid: 991, user: "keepalived_script" });
    const noKs = { passwd: join(dir, "passwd2"), group: files.group };
    writeFileSync(noKs.passwd, "root:x:0:0:root:/root:/bin/sh\n");
    expect(defaultScriptIdentity({ enable_script_security: false }, noKs)).toBeUndefined();
    expect(defaultScriptIdentity({ enable_script_security: true }, noKs)).toEqual({ error: "Unable to set default user keepalived_script for script" });
  });
  test("prepareScript splits once and resolves the identity", () => {
    const alice = { uid: 1500, gid: 1600, user: "alice" };
    expect(prepareScript({ cmd: "/x 'a b'" }, undefined, files)).toEqual({ cmd: "/x 'a b'", argv: ["/x", "a b"] });
    expect(prepareScript({ cmd: "/x" }, alice, files)).toEqual({ cmd: "/x", argv: ["/x"], identity: alice });
    expect(prepareScript({ cmd: "/x", user: "root" }, alice, files)).toEqual({ cmd: "/x", argv: ["/x"], identity: { uid: 0, gid: 0, user: "root" } });
    expect(prepareScript({ cmd: "/x 'a" }, undefined, files)).toHaveProperty("error");
    expect(prepareScript({ cmd: "  " }, undefined, files)).toHaveProperty("error");
    expect(prepareScript({ cmd: "/x", user: "bob" }, undefined, files)).toHaveProperty("error");
  });
});

describe("runScript", () => {
  test("the script receives exactly the split argv", async () => {
    const out = join(dir, "argv.out");
    const s = script("dump-argv.sh", `#!/bin/sh\nprintf '%s\\0' "$0" "$@" > '${out}'\n`);
    const argv = splitCommand(`${s} 'a b' "c 'd'" '' e\\ f $HOME`);
    const r = await runScript(argv).result;
    expect(r).toMatchObject({ ok: true, exitCode: 0, signal: null, timedOut: false, viaShell: false });
    expect(readFileSync(out, "utf8").split("\0").slice(0, -1)).toEqual([s, "a b", "c 'd'", "", "e f", "$HOME"]);
  });

  test("exit status, stdout/stderr tails, stdin is /dev/null", async () => {
    const s = script("noisy.sh", "#!/bin/sh\nfor i in $(seq 1 30); do echo line$i; done\necho oops >&2\ncat\nexit 3\n");
    const r = await runScript([s], { tailLines: 3, timeoutMs: 5000 }).result;
    expect(r.ok).toBe(false);
    expect(r.exitCode).toBe(3);
    expect(r.timedOut).toBe(false);
    expect(r.stdoutTail).toBe("line28\nline29\nline30");
    expect(r.stderrTail).toBe("oops");
  });

  test("a lot of output never blocks the child", async () => {
    const s = script("flood.sh", "#!/bin/sh\nhead -c 3000000 /dev/zero | tr '\\0' x\necho\necho END\n");
    const r = await runScript([s], { timeoutMs: 10000 }).result;
    expect(r.ok).toBe(true);
    expect(r.stdoutTail.endsWith("END")).toBe(true);
  });

  test("a background child holding stdout neither delays the result nor gets its pipe closed", async () => {
    const flag = join(dir, "bg.alive");
    const s = script("bg.sh", `#!/bin/sh\n(sleep 0.4; echo late; echo ok > '${flag}') &\necho early\n`);
    const r = await runScript([s]).result;
    // the result came before the background child finished (not "after N ms": load varies)
    expect(existsSync(flag)).toBe(false);
    expect(r).toMatchObject({ ok: true, stdoutTail: "early" });
    // The background child writes after the result: it must not die of SIGPIPE.
    expect((await waitForFile(flag, 3000)).trim()).toBe("ok");
    // its pipe reaches EOF on its own once it exits (bounded wait: the EOF is asynchronous)
    for (let i = 0; i < 100 && lingeringPipeCount() > 0; i++) await Bun.sleep(20);
    expect(releaseLingeringPipes()).toBe(0);
    const s2 = script("bg2.sh", "#!/bin/sh\n(exec sleep 100) &\necho $!\n");
    const r2 = await runScript([s2]).result;
    const pid = Number(r2.stdoutTail);
    startedPids.push(pid);
    expect(releaseLingeringPipes()).toBe(1);
    process.kill(pid, "SIGKILL");
  });

  test("environment is scrubbed of LD_PRELOAD, LD_LIBRARY_PATH and IFS", async () => {
    const saved = { IFS: process.env.IFS, LD_LIBRARY_PATH: process.env.LD_LIBRARY_PATH, KEEP: process.env.VIPD_TEST_KEEP };
    process.env.IFS = "x";
    process.env.LD_LIBRARY_PATH = "/nonexistent-vipd";
    process.env.VIPD_TEST_KEEP = "kept";
    try {
      const r = await runScript(["/usr/bin/env"], { tailLines: 10000, env: { VIPD_EXTRA: "yes" } }).result;
      const vars = new Set(r.stdoutTail.split("\n").map((l) => l.split("=")[0]));
      expect(r.ok).toBe(true);
      expect(vars.has("VIPD_TEST_KEEP")).toBe(true);
      expect(vars.has("VIPD_EXTRA")).toBe(true);
      expect(vars.has("IFS")).toBe(false);
      expect(vars.has("LD_LIBRARY_PATH")).toBe(false);
      expect(vars.has("LD_PRELOAD")).toBe(false);
    } finally {
      for (const [k, v] of [["IFS", saved.IFS], ["LD_LIBRARY_PATH", saved.LD_LIBRARY_PATH], ["VIPD_TEST_KEEP", saved.KEEP]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  test("runs in its own process group", async () => {
    const r = await runScript(["/bin/sh", "-c", "ps -o pgid= -p $$; echo $$"], { tailLines: 2 }).result;
    const [pgid, pid] = r.stdoutTail.split("\n").map((l) => Number(l.trim()));
    expect(pgid).toBe(pid);
    expect(pgid).not.toBe(process.pid);
  });

  test("a hung sleep is killed with SIGTERM at its timeout; the loop stays responsive", async () => {
    const lag = lagMonitor();
    const h = track(runScript(["/bin/sleep", "100"], { timeoutMs: 200 }));
    const r = await h.result;
    const maxLate = lag.stop();
    expect(r).toMatchObject({ ok: false, timedOut: true, signal: "SIGTERM", exitCode: null });
    expect(r.durationMs).toBeGreaterThanOrEqual(190);
    expect(r.durationMs).toBeLessThan(1500);
    expect(isAlive(h.pid!)).toBe(false);
    expect(maxLate).toBeLessThan(150); // blocked would be ~200 ms; margin for a loaded CI machine
  });

  test("a shell trapping TERM gets TERM, then KILL 2 s later, with its whole group", async () => {
    const log = join(dir, "trap.log");
    const childFile = join(dir, "trap.child");
    const s = script(
      "trap.sh",
      `#!/bin/sh\ntrap 'echo TERM >> "$1"' TERM\n(trap '' TERM; exec sleep 100) &\necho $! > "$2"\nwhile :; do sleep 0.05; done\n`,
    );
    const lag = lagMonitor();
    const h = track(runScript([s, log, childFile], { timeoutMs: 300 }));
    const child = Number((await waitForFile(childFile)).trim());
    expect(isAlive(child)).toBe(true);
    const r = await h.result;
    const maxLate = lag.stop();
    expect(r).toMatchObject({ ok: false, timedOut: true, signal: "SIGKILL" });
    expect(r.durationMs).toBeGreaterThanOrEqual(2250);
    expect(r.durationMs).toBeLessThan(4000);
    expect(readFileSync(log, "utf8")).toBe("TERM\n"); // TERM first, exactly once, then KILL
    expect(isAlive(child)).toBe(false);
    expect(isAlive(h.pid!)).toBe(false);
    expect(maxLate).toBeLessThan(250); // a blocked loop would be ~2000 ms late; the margin absorbs a loaded CI machine
  }, 10000);

  test("a group member outliving the leader is killed too before the result settles", async () => {
    const childFile = join(dir, "orphan.child");
    const s = script("orphan.sh", `#!/bin/sh\n(trap '' TERM; exec sleep 100) &\necho $! > "$1"\nexec sleep 100\n`);
    const h = track(runScript([s, childFile], { timeoutMs: 200, killIntervalMs: 300 }));
    const child = Number((await waitForFile(childFile)).trim());
    const r = await h.result;
    expect(r).toMatchObject({ timedOut: true, signal: "SIGTERM" }); // the leader died at TERM
    expect(r.durationMs).toBeGreaterThanOrEqual(480);
    expect(isAlive(child)).toBe(false);
  }, 10000);

  test("terminate() stops a running script now", async () => {
    const h = track(runScript(["/bin/sleep", "100"]));
    expect(h.isRunning()).toBe(true);
    await Bun.sleep(50);
    h.terminate(500);
    const r = await h.result;
    expect(r).toMatchObject({ signal: "SIGTERM", timedOut: false, ok: false });
    expect(r.durationMs).toBeLessThan(1000);
    expect(h.isRunning()).toBe(false);
  });

  test("a missing script is reported cleanly (through the shell: 127)", async () => {
    const r = await runScript(["/nonexistent/vipd/x.sh", "a"]).result;
    expect(r).toMatchObject({ ok: false, exitCode: 127, viaShell: true, timedOut: false });
    expect(r.error).toBe("command not found: /nonexistent/vipd/x.sh");
  });

  test("a non-executable script is reported cleanly", async () => {
    const s = script("noexec.sh", "#!/bin/sh\nexit 0\n", 0o644);
    const r = await runScript([s]).result;
    expect(r).toMatchObject({ ok: false, exitCode: null, viaShell: false });
    expect(r.error).toContain("permission denied");
  });

  test("an empty argv is an error result", async () => {
    const r = await runScript([]).result;
    expect(r).toMatchObject({ ok: false, error: "empty command" });
  });

  test("a script without a shebang runs through /bin/sh with its arguments", async () => {
    const out = join(dir, "noshebang.out");
    const s = script("noshebang.sh", `printf '%s\\n' "$@" > '${out}'\n`);
    const r = await runScript([s, "x y", "z"]).result;
    expect(r).toMatchObject({ ok: true, viaShell: true, exitCode: 0 });
    expect(readFileSync(out, "utf8")).toBe("x y\nz\n");
  });

  test("a redirection-only test runs through /bin/sh", async () => {
    expect(await runScript(["</etc/passwd"]).result).toMatchObject({ ok: true, viaShell: true });
    const bad = await runScript(["</nonexistent/vipd"]).result;
    expect(bad.viaShell).toBe(true);
    expect(bad.ok).toBe(false);
  });

  test("a bare command name is found on PATH", async () => {
    expect(await runScript(["true"]).result).toMatchObject({ ok: true, viaShell: false });
  });

  test.skipIf(process.getuid?.() !== 0)("runs as another user (nobody)", async () => {
    const id = lookupIdentity("nobody");
    if ("error" in id) throw new Error(id.error);
    const r = await runScript(["/bin/sh", "-c", "id -u; id -g"], { identity: id, tailLines: 2 }).result;
    expect(r.ok).toBe(true);
    expect(r.stdoutTail).toBe(`${id.uid}\n${id.gid}`);
  });
});

describe("ScriptRunner", () => {
  test("refuses a key whose previous run is still going", async () => {
    const runner = new ScriptRunner();
    const first = runner.run("chk", ["/bin/sleep", "0.3"]);
    if (first === "skipped") throw new Error("first run skipped");
    track(first);
    expect(runner.isRunning("chk")).toBe(true);
    expect(runner.run("chk", ["/bin/true"])).toBe("skipped");
    const other = runner.run("other", ["/bin/true"]);
    expect(other).not.toBe("skipped");
    const unkeyed = [runner.run(undefined, ["/bin/true"]), runner.run(undefined, ["/bin/true"])];
    expect(unkeyed).not.toContain("skipped");
    expect(runner.runningCount).toBeGreaterThanOrEqual(1);
    expect((await first.result).ok).toBe(true);
    await Bun.sleep(0);
    expect(runner.isRunning("chk")).toBe(false);
    const again = runner.run("chk", ["/bin/true"]);
    expect(again).not.toBe("skipped");
    if (again !== "skipped") expect((await again.result).ok).toBe(true);
  });

  test("a failed start does not leave the key busy", async () => {
    const runner = new ScriptRunner();
    const s = script("noexec2.sh", "#!/bin/sh\n", 0o644);
    const h = runner.run("k", [s]);
    expect(h).not.toBe("skipped");
    expect(runner.isRunning("k")).toBe(false);
    expect(runner.run("k", [s])).not.toBe("skipped");
  });

  test("shutdown terminates everything still running, bounded", async () => {
    const runner = new ScriptRunner();
    const hs = [runner.run("a", ["/bin/sleep", "100"]), runner.run(undefined, ["/bin/sleep", "100"])];
    for (const h of hs) if (h !== "skipped") track(h);
    expect(runner.runningCount).toBe(2);
    const t0 = performance.now();
    expect(await runner.shutdown(300)).toBe(true);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(runner.runningCount).toBe(0);
    for (const h of hs) if (h !== "skipped") expect((await h.result).signal).toBe("SIGTERM");
  });

  test("waitAll and waitBounded give up after their bound", async () => {
    const runner = new ScriptRunner();
    const h = runner.run("slow", ["/bin/sleep", "100"]);
    if (h !== "skipped") track(h);
    expect(await runner.waitAll(100)).toBe(false);
    expect(await waitBounded([Bun.sleep(10)], 1000)).toBe(true);
    expect(await waitBounded([], 0)).toBe(true);
    expect(await runner.shutdown(200)).toBe(true);
  });
});

describe("enable_script_security", () => {
  test("a root-run script that others can modify is refused with a clear message; a safe one is prepared", async () => {
    const { setScriptSecurity } = await import("../../src/daemon/scripts.ts");
    const unsafeDir = mkdtempSync(join(tmpdir(), "vipd-sec-"));
    chmodSync(unsafeDir, 0o777); // world-writable without the sticky bit: unsafe (sticky /tmp itself is fine)
    const bad = join(unsafeDir, "bad.sh");
    writeFileSync(bad, "#!/bin/sh\n");
    chmodSync(bad, 0o755);
    setScriptSecurity(true);
    try {
      const r = prepareScript({ cmd: bad });
      expect("error" in r && r.error).toContain("Unsafe permissions");
      const ok = prepareScript({ cmd: "/bin/true" });
      expect("error" in ok).toBe(false);
      setScriptSecurity(false);
      expect("error" in prepareScript({ cmd: bad })).toBe(false);
    } finally {
      setScriptSecurity(false);
      rmSync(unsafeDir, { recursive: true, force: true });
    }
  });
});
