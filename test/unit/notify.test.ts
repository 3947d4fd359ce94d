import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GlobalModel } from "../../src/config/model.ts";
import type { Logger } from "../../src/daemon/logger.ts";
import {
  VrrpNotifier,
  createNotifier,
  notifyCommands,
  prepareNotifyScripts,
  type NotifyInstance,
  type NotifyScripts,
} from "../../src/daemon/notify.ts";
import type { PreparedScript } from "../../src/daemon/scripts.ts";

let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vipd-notify-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    log: {
      info: (m) => lines.push(`info ${m}`),
      warn: (m) => lines.push(`warn ${m}`),
      error: (m) => lines.push(`error ${m}`),
      debug: (m) => lines.push(`debug ${m}`),
    },
  };
}

function script(name: string, body: string, mode = 0o755): string {
  const p = join(dir, name);
  writeFileSync(p, body);
  chmodSync(p, mode);
  return p;
}

/** A script that writes its argv (NUL-separated, $0 first) to `out`. */
function argvDumper(name: string): { path: string; out: string; read(): string[] } {
  const out = join(dir, `${name}.out`);
  const path = script(name, `#!/bin/sh\nprintf '%s\\0' "$0" "$@" > '${out}'\n`);
  return { path, out, read: () => readFileSync(out, "utf8").split("\0").slice(0, -1) };
}

const p = (argv: string[]): PreparedScript => ({ cmd: argv.join(" "), argv });

describe("notifyCommands (which scripts, in which order, with which arguments)", () => {
  const inst: NotifyScripts = {
    kind: "INSTANCE",
    name: "VI_1",
    specific: { notify_master: p(["/m.sh"]), notify_fault: p(["/f.sh", "x"]), notify_stop: p(["/s.sh"]) },
    generic: p(["/n.sh", "arg"]),
    notifyDeleted: false,
  };
  test("specific script first, then notify with INSTANCE NAME STATE PRIO", () => {
    expect(notifyCommands(inst, "MASTER", 150)).toEqual([
      { keyword: "notify_master", argv: ["/m.sh"] },
      { keyword: "notify", argv: ["/n.sh", "arg", "INSTANCE", "VI_1", "MASTER", "150"] },
    ]);
  });
  test("a state without its own script runs only the generic one", () => {
    expect(notifyCommands(inst, "BACKUP", 100)).toEqual([{ keyword: "notify", argv: ["/n.sh", "arg", "INSTANCE", "VI_1", "BACKUP", "100"] }]);
  });
  test("STOP notifies get the 1 s kill timer", () => {
    expect(notifyCommands(inst, "STOP", 0)).toEqual([
      { keyword: "notify_stop", argv: ["/s.sh"], timeoutMs: 1000 },
      { keyword: "notify", argv: ["/n.sh", "arg", "INSTANCE", "VI_1", "STOP", "0"], timeoutMs: 1000 },
    ]);
    expect(notifyCommands(inst, "STOP", 0, 250)[0].timeoutMs).toBe(250);
  });
  test("DELETED is reported as FAULT unless notify_deleted is configured", () => {
    expect(notifyCommands(inst, "DELETED", 90)).toEqual([
      { keyword: "notify_fault", argv: ["/f.sh", "x"] },
      { keyword: "notify", argv: ["/n.sh", "arg", "INSTANCE", "VI_1", "FAULT", "90"] },
    ]);
    const withDel: NotifyScripts = { ...inst, notifyDeleted: true, specific: { ...inst.specific, notify_deleted: p(["/d.sh"]) } };
    expect(notifyCommands(withDel, "DELETED", 90)).toEqual([
      { keyword: "notify_deleted", argv: ["/d.sh"] },
      { keyword: "notify", argv: ["/n.sh", "arg", "INSTANCE", "VI_1", "DELETED", "90"] },
    ]);
  });
  test("groups report priority 0", () => {
    const g: NotifyScripts = { kind: "GROUP", name: "G1", specific: {}, generic: p(["/n.sh"]), notifyDeleted: false };
    expect(notifyCommands(g, "FAULT", 200)).toEqual([{ keyword: "notify", argv: ["/n.sh", "GROUP", "G1", "FAULT", "0"] }]);
  });
  test("the commands carry the script's identity", () => {
    const id = { uid: 65534, gid: 65534, user: "nobody" };
    const s: NotifyScripts = { kind: "INSTANCE", name: "V", specific: {}, generic: { cmd: "/n", argv: ["/n"], identity: id }, notifyDeleted: false };
    expect(notifyCommands(s, "MASTER", 1)[0].identity).toEqual(id);
  });
});

describe("prepareNotifyScripts", () => {
  test("bad scripts are logged and dropped; the rest are kept", () => {
    const { log, lines } = capture();
    const s = prepareNotifyScripts(
      "INSTANCE",
      "VI_1",
      { notify_master: { cmd: "/m.sh 'a b'" }, notify_backup: { cmd: "/b.sh 'oops" }, notify_fault: { cmd: "/f.sh", user: "no-such-user-vipd" }, notify: { cmd: "/n.sh" } },
      undefined,
      log,
    );
    expect(s.specific.notify_master?.argv).toEqual(["/m.sh", "a b"]);
    expect(s.specific.notify_backup).toBeUndefined();
    expect(s.specific.notify_fault).toBeUndefined();
    expect(s.generic?.argv).toEqual(["/n.sh"]);
    expect(lines.filter((l) => l.startsWith("error (VI_1) notify_backup:")).length).toBe(1);
    expect(lines.filter((l) => l.startsWith("error (VI_1) notify_fault:")).length).toBe(1);
  });
  test("without a usable default user, only scripts with their own user survive", () => {
    const { log, lines } = capture();
    const s = prepareNotifyScripts("GROUP", "G1", { notify_master: { cmd: "/m.sh" }, notify: { cmd: "/n.sh", user: "root" } }, { error: "no default" }, log);
    expect(s.specific.notify_master).toBeUndefined();
    expect(s.generic?.identity?.uid).toBe(0);
    expect(lines).toEqual(["error VRRP_Group(G1) Failed to set default user for notify_master script /m.sh - ignoring"]);
  });
  test("notify_deleted without a command still switches DELETED reporting on", () => {
    const { log } = capture();
    expect(prepareNotifyScripts("INSTANCE", "V", { notifyDeleted: true }, undefined, log).notifyDeleted).toBe(true);
    expect(prepareNotifyScripts("INSTANCE", "V", {}, undefined, log).notifyDeleted).toBe(false);
  });
});

function instance(name: string, refs: Partial<NotifyInstance>): NotifyInstance {
  return { name, ...refs };
}

describe("VrrpNotifier running real scripts", () => {
  test("notify gets INSTANCE VI_1 MASTER 150 after its own arguments", async () => {
    const { log } = capture();
    const gen = argvDumper("generic.sh");
    const n = new VrrpNotifier({ log });
    const results = await n.fireInstance(instance("VI_1", { notify: { cmd: `${gen.path} 'first arg'` } }), "MASTER", 150);
    expect(results.map((r) => r.ok)).toEqual([true]);
    expect(gen.read()).toEqual([gen.path, "first arg", "INSTANCE", "VI_1", "MASTER", "150"]);
  });

  test("the specific script runs first with no extra arguments, then the generic one", async () => {
    const { log, lines } = capture();
    const spec = argvDumper("master.sh");
    const who = script("who.sh", "#!/bin/sh\necho \"$1\"\n");
    const n = new VrrpNotifier({ log });
    const inst = instance("VI_1", { notify_master: { cmd: `${spec.path} x` }, notify: { cmd: `${who} generic` } });
    const results = await n.fireInstance(inst, "MASTER", 120);
    expect(spec.read()).toEqual([spec.path, "x"]);
    expect(results.map((r) => r.stdoutTail)).toEqual(["", "generic"]);
    const exec = lines.filter((l) => l.includes("Executing"));
    expect(exec).toEqual([
      `info (VI_1) Executing notify_master script ${spec.path} x`,
      `info (VI_1) Executing notify script ${who} generic INSTANCE VI_1 MASTER 120`,
    ]);
  });

  test("failures are logged with the exit status or the reason", async () => {
    const { log, lines } = capture();
    const fails = script("fails.sh", "#!/bin/sh\necho bad thing >&2\nexit 3\n");
    const noexec = script("noexec.sh", "#!/bin/sh\n", 0o644);
    const n = new VrrpNotifier({ log });
    await n.fireInstance(instance("VI_2", { notify_backup: { cmd: fails }, notify: { cmd: "/nonexistent/vipd-notify.sh" } }), "BACKUP", 50);
    await n.fireInstance(instance("VI_3", { notify_fault: { cmd: noexec } }), "FAULT", 50);
    expect(lines).toContain(`warn (VI_2) notify_backup script ${fails} failed with exit status 3 (stderr: bad thing)`);
    expect(lines.some((l) => l.startsWith("warn (VI_2) notify script /nonexistent/vipd-notify.sh INSTANCE VI_2 BACKUP 50 failed with exit status 127 - command not found"))).toBe(true);
    expect(lines.some((l) => l.startsWith(`error (VI_3) notify_fault script ${noexec} could not be run: `))).toBe(true);
  });

  test("instance() returns at once; the script runs in the background", async () => {
    const { log } = capture();
    const n = new VrrpNotifier({ log });
    const t0 = performance.now();
    n.instance(instance("VI_1", { notify_master: { cmd: "/bin/sleep 0.3" } }), "MASTER", 100);
    expect(performance.now() - t0).toBeLessThan(250); // the script itself sleeps 300 ms
    expect(n.runningCount).toBe(1);
    expect(await n.waitAll(50)).toBe(false);
    await n.settle(2000);
    expect(n.runningCount).toBe(0);
  });

  test("a hung notify_stop is SIGKILLed at its timer; shutdown waits for it and terminates the rest", async () => {
    const { log, lines } = capture();
    const n = new VrrpNotifier({ log, stopTimeoutMs: 300 });
    const master = instance("VI_1", { notify_master: { cmd: "/bin/sleep 100" } });
    const stopper = instance("VI_2", { notify_stop: { cmd: "/bin/sh -c 'trap \"\" TERM; sleep 100'" } });
    const masterRun = n.fireInstance(master, "MASTER", 100);
    const stopRun = n.fireInstance(stopper, "STOP", 0);
    await Bun.sleep(20);
    expect(n.runningCount).toBe(2);
    const t0 = performance.now();
    expect(await n.shutdown(2000, 300)).toBe(true);
    const took = performance.now() - t0;
    const [stopResult] = await stopRun;
    const [masterResult] = await masterRun;
    expect(stopResult).toMatchObject({ timedOut: true, signal: "SIGKILL" });
    expect(stopResult.durationMs).toBeGreaterThanOrEqual(290);
    expect(stopResult.durationMs).toBeLessThan(1000);
    expect(masterResult).toMatchObject({ timedOut: false, signal: "SIGTERM" });
    expect(took).toBeLessThan(1500);
    expect(n.runningCount).toBe(0);
    expect(lines.some((l) => l.startsWith("warn (VI_2) notify_stop script /bin/sh -c trap \"\" TERM; sleep 100 timed out after"))).toBe(true);
    expect(lines).toContain("info Terminating 1 notify script(s) still running");
  });
});

const global = (over: Partial<GlobalModel> = {}): GlobalModel =>
  ({ router_id: "r", vrrp_version: 2, vrrp_strict: false, vrrp_mcast_group4: "224.0.0.18", vrrp_mcast_group6: "ff02::12", enable_script_security: false, garp: {}, doc: {}, ...over }) as GlobalModel;

describe("createNotifier", () => {
  test("sync group notifies get GROUP <name> <STATE> 0", async () => {
    const { log } = capture();
    const gen = argvDumper("group.sh");
    const spec = argvDumper("group-master.sh");
    const n = createNotifier({ global: global(), vrrp_sync_group: { G1: { group: ["VI_1"], notify: { cmd: gen.path }, notify_master: { cmd: spec.path } } } }, log);
    const results = await n.fireGroup("G1", "MASTER");
    expect(results.length).toBe(2);
    expect(spec.read()).toEqual([spec.path]);
    expect(gen.read()).toEqual([gen.path, "GROUP", "G1", "MASTER", "0"]);
    expect(await n.fireGroup("nope", "MASTER")).toEqual([]);
  });

  test.skipIf(process.getuid?.() !== 0)("script_user from global_defs is the default identity", async () => {
    const { log } = capture();
    const n = createNotifier({ global: global({ script_user: { user: "nobody" } }), vrrp_sync_group: {} }, log);
    const [r] = await n.fireInstance(instance("VI_1", { notify_master: { cmd: "/bin/sh -c 'id -u'" } }), "MASTER", 100);
    const [asRoot] = await n.fireInstance(instance("VI_2", { notify_master: { cmd: "/bin/sh -c 'id -u'", user: "root" } }), "MASTER", 100);
    expect(r.stdoutTail).toBe("65534");
    expect(asRoot.stdoutTail).toBe("0");
  });

  test("a reloaded (new) instance object is prepared afresh", async () => {
    const { log } = capture();
    const n = createNotifier({ global: global(), vrrp_sync_group: {} }, log);
    const a = argvDumper("reload-a.sh");
    const b = argvDumper("reload-b.sh");
    await n.fireInstance(instance("VI_1", { notify_master: { cmd: a.path } }), "MASTER", 1);
    await n.fireInstance(instance("VI_1", { notify_master: { cmd: `${b.path} new` } }), "MASTER", 1);
    expect(a.read()).toEqual([a.path]);
    expect(b.read()).toEqual([b.path, "new"]);
  });
});
