/**
 * Runs one external script asynchronously, the way keepalived runs notify, vrrp_script and
 * MISC_CHECK commands: the command string split into argv like keepalived, exec'd directly
 * (falling back to `/bin/sh -c` when it is not directly executable), in its own process
 * group, with a scrubbed environment and an optional uid/gid, and a timeout that signals the
 * whole group (TERM, then KILL 2 s later, and KILL again 2 s after that).
 *
 * Nothing here blocks the event loop or throws into it: spawn failures become results.
 *
 * Differences from keepalived, on purpose:
 * - Bun.spawn cannot set PR_SET_PDEATHSIG, so scripts are not killed by the kernel when the
 *   daemon dies; ScriptRunner.shutdown() sends the group SIGTERM (then SIGKILL) instead.
 * - Supplementary groups: when a uid is given Bun's spawn clears them; the `:group` form
 *   (keepalived's "also set the user's supplementary groups") is accepted but not honoured.
 * - Through the `/bin/sh` fallback, exit 127/126 ("not found"/"cannot execute") is reported
 *   as a failure with a message, where keepalived's child exits 0.
 * - User and group names are looked up in /etc/passwd and /etc/group only (no NSS).
 */
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { unsafeReason } from "../config/host-check.ts";
import { readFile, readdir } from "node:fs/promises";
import { decodeEscape } from "../config/lexer.ts";
import type { ScriptRef } from "../config/schema/kinds.ts";

// --- command strings ---------------------------------------------------------------------------

/** A command string that keepalived would refuse to parse (unmatched quote, trailing `\`). */
export class CommandSyntaxError extends Error {
  override name = "CommandSyntaxError";
}

const isWhite = (c: string): boolean => c === " " || c === "\t" || c === "\f" || c === "\n" || c === "\r" || c === "\v";

/**
 * Splits a script command into argv like keepalived's alloc_strvec_quoted_escaped: words end
 * at unquoted blanks, `'…'` and `"…"` group (and touch their neighbours), backslash escapes
 * (`\n`, `\t`, `\xXX`, `\nnn`, `\cC`, `\C` = C) work everywhere. Throws CommandSyntaxError.
 */
export function splitCommand(cmd: string): string[] {
  const words: string[] = [];
  const n = cmd.length;
  let i = 0;
  while (i < n) {
    while (i < n && isWhite(cmd[i])) i++;
    if (i >= n) break;
    let word = "";
    let quote = "";
    while (i < n) {
      const c = cmd[i];
      if (c === "\\") {
        if (i + 1 >= n) throw new CommandSyntaxError(`missing escaped character at end of '${cmd}'`);
        const e = decodeEscape(cmd, i + 1);
        word += e.ch;
        i = e.next;
        continue;
      }
      if (quote) {
        if (c === quote) quote = "";
        else word += c;
        i++;
        continue;
      }
      if (c === '"' || c === "'") {
        quote = c;
        i++;
        continue;
      }
      if (isWhite(c)) break;
      word += c;
      i++;
    }
    if (quote) throw new CommandSyntaxError(`missing terminating ${quote} in '${cmd}'`);
    words.push(word);
  }
  return words;
}

/**
 * The `/bin/sh -c` text for argv, as keepalived's cmd_str builds it for system(): every word
 * single-quoted (`'` written as `'\''`), except a first word starting with `<` or `>`, which
 * is kept raw so redirection-only tests such as `</dev/tcp/host/port` keep working.
 */
export function shellCommandLine(argv: readonly string[]): string {
  return argv
    .map((a, i) => (i === 0 && (a.startsWith("<") || a.startsWith(">")) ? a : `'${a.replaceAll("'", "'\\''")}'`))
    .join(" ");
}

// --- identities --------------------------------------------------------------------------------

/** Who a script runs as. */
export interface Identity {
  uid: number;
  gid: number;
  user: string;
  group?: string;
}

/** Where user and group names are looked up (overridable for tests). */
export interface AccountFiles {
  passwd: string;
  group: string;
}

export const SYSTEM_ACCOUNT_FILES: AccountFiles = { passwd: "/etc/passwd", group: "/etc/group" };

function findEntry(path: string, name: string): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length >= 3 && f[0] === name) return f;
  }
  return undefined;
}

/**
 * Resolves `user [group]` to uid/gid like keepalived's set_uid_gid: the user's primary group
 * unless a group is named; a leading `:` on the group is accepted (see file comment).
 */
export function lookupIdentity(user: string, group?: string, files: AccountFiles = SYSTEM_ACCOUNT_FILES): Identity | { error: string } {
  const pw = findEntry(files.passwd, user);
  if (!pw) return { error: `Script user '${user}' does not exist` };
  const uid = Number(pw[2]);
  let gid = Number(pw[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) return { error: `Malformed passwd entry for '${user}'` };
  let groupName = group?.startsWith(":") ? group.slice(1) || undefined : group;
  if (groupName !== undefined) {
    const gr = findEntry(files.group, groupName);
    if (!gr) return { error: `Script group '${groupName}' does not exist` };
    gid = Number(gr[2]);
    if (!Number.isInteger(gid)) return { error: `Malformed group entry for '${groupName}'` };
  }
  return groupName !== undefined ? { uid, gid, user, group: groupName } : { uid, gid, user };
}

/**
 * The identity scripts without their own `user` run as (keepalived's default script user):
 * global `script_user`, else `keepalived_script` if it exists, else the daemon's own identity
 * (undefined). With enable_script_security a missing keepalived_script is an error.
 */
export function defaultScriptIdentity(
  global: { script_user?: { user: string; group?: string }; enable_script_security: boolean },
  files: AccountFiles = SYSTEM_ACCOUNT_FILES,
): Identity | undefined | { error: string } {
  if (global.script_user) return lookupIdentity(global.script_user.user, global.script_user.group, files);
  const ks = lookupIdentity("keepalived_script", undefined, files);
  if (!("error" in ks)) return ks;
  if (global.enable_script_security) return { error: "Unable to set default user keepalived_script for script" };
  return undefined;
}

/** A script ready to run: argv split once, identity resolved once. */
export interface PreparedScript {
  /** The command as configured (for logs). */
  cmd: string;
  argv: string[];
  identity?: Identity;
}

/** enable_script_security, set by the daemon from the configuration (start and reload). */
let scriptSecurity = false;
export function setScriptSecurity(on: boolean): void {
  scriptSecurity = on;
}

/** With enable_script_security, why a script that would run as root is unsafe (keepalived disables it). */
function unsafeScript(argv0: string): string | undefined {
  let path = argv0;
  if (!isAbsolute(path)) {
    const dir = (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":").find((d) => existsSync(join(d, argv0)));
    if (!dir) return undefined; // not found: the run itself reports it
    path = join(dir, argv0);
  }
  try {
    return unsafeReason(realpathSync(path));
  } catch {
    return undefined;
  }
}

/** Splits and resolves a configured ScriptRef; the error says why it cannot be run. */
export function prepareScript(
  ref: ScriptRef,
  defaultIdentity?: Identity,
  files: AccountFiles = SYSTEM_ACCOUNT_FILES,
): PreparedScript | { error: string } {
  let argv: string[];
  try {
    argv = splitCommand(ref.cmd);
  } catch (e) {
    return { error: `Unable to parse script '${ref.cmd}': ${(e as Error).message}` };
  }
  if (argv.length === 0 || argv[0] === "") return { error: `Unable to parse script '${ref.cmd}': empty command` };
  let identity = defaultIdentity;
  if (ref.user !== undefined) {
    const id = lookupIdentity(ref.user, ref.group, files);
    if ("error" in id) return { error: `Invalid user/group for script ${argv[0]}: ${id.error}` };
    identity = id;
  }
  if (scriptSecurity && (identity === undefined || identity.uid === 0)) {
    const why = unsafeScript(argv[0]);
    if (why) return { error: `Unsafe permissions found for script '${argv[0]}' (${why}) - disabling script; fix the permissions or run it as a non-root script_user` };
  }
  return identity ? { cmd: ref.cmd, argv, identity } : { cmd: ref.cmd, argv };
}

// --- running -----------------------------------------------------------------------------------

export interface RunOptions {
  /** Kill the script's process group after this long; 0 or absent = never. */
  timeoutMs?: number;
  /** First signal at the timeout: SIGTERM (vrrp_script, MISC_CHECK) or SIGKILL (notify_stop). */
  timeoutSignal?: "SIGTERM" | "SIGKILL";
  /** Gap between escalation steps (TERM → KILL → KILL); keepalived uses 2 s. */
  killIntervalMs?: number;
  identity?: Identity;
  /** Extra environment variables (after scrubbing). */
  env?: Record<string, string>;
  cwd?: string;
  /** How many trailing lines of stdout/stderr to keep (default 10). */
  tailLines?: number;
}

export interface ScriptResult {
  /** Exit status 0, not timed out, no spawn error. */
  ok: boolean;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
  /** Run through `/bin/sh -c` because the command was not directly executable. */
  viaShell: boolean;
  /** Why it failed to start or what the shell said (not found / cannot execute). */
  error?: string;
  stdoutTail: string;
  stderrTail: string;
  pid?: number;
}

export interface ScriptHandle {
  readonly pid: number | undefined;
  readonly result: Promise<ScriptResult>;
  /** True until the result is settled. */
  isRunning(): boolean;
  /** Sends `signal` (default SIGTERM) to the whole group now, then SIGKILL after `killAfterMs` (default 1 s), twice. */
  terminate(killAfterMs?: number, signal?: "SIGTERM" | "SIGKILL"): void;
}

/** Variables removed from scripts' environment, as keepalived does before exec. */
export const SCRUBBED_ENV = ["LD_PRELOAD", "LD_LIBRARY_PATH", "IFS"] as const;

const DEFAULT_KILL_INTERVAL_MS = 2000;
/** How long to keep reading a script's pipes after it exited (a daemonized child may hold them). */
const PIPE_LINGER_MS = 100;
const TAIL_CHARS = 8192;
/** How often to look whether a killed script's group is empty yet. */
const GROUP_POLL_MS = 50;

function scriptEnv(extra?: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !(SCRUBBED_ENV as readonly string[]).includes(k)) env[k] = v;
  }
  return extra ? Object.assign(env, extra) : env;
}

/** Whether any process (zombies included) is left in group `pgid`. */
function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/**
 * Whether group `pgid` still has a member that is not a zombie. Zombies count for kill(2) but
 * are dead; they linger when init does not reap orphans (seen in minimal VMs and containers).
 * Scans /proc asynchronously; if /proc cannot be read, any member counts as live.
 */
async function groupHasLiveMembers(pgid: number): Promise<boolean> {
  if (!groupExists(pgid)) return false;
  let pids: string[];
  try {
    pids = (await readdir("/proc")).filter((n) => n.charCodeAt(0) >= 48 && n.charCodeAt(0) <= 57);
  } catch {
    return true;
  }
  for (const pid of pids) {
    let stat: string;
    try {
      stat = await readFile(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // Fields after "(comm) ": state ppid pgrp …
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(f[2]) === pgid && f[0] !== "Z") return true;
  }
  return false;
}

function signalGroup(pgid: number, signal: "SIGTERM" | "SIGKILL"): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: already gone.
  }
}

/** Reads a stream to its end keeping only the last characters; cancel() stops early. */
function drain(stream: ReadableStream<Uint8Array>): { done: Promise<void>; cancel(): void; tail(lines: number): string } {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  const done = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        if (buf.length > TAIL_CHARS * 2) buf = buf.slice(-TAIL_CHARS);
      }
    } catch {
      // cancelled or pipe error: keep what we have
    }
  })();
  return {
    done,
    cancel: () => {
      reader.cancel().catch(() => {});
    },
    tail: (lines) => {
      const all = buf.slice(-TAIL_CHARS).replace(/\n$/, "");
      if (all === "") return "";
      return all.split("\n").slice(-lines).join("\n");
    },
  };
}

/** Output pipes still open after their script exited (held by something it left running). */
const lingering = new Set<{ cancel(): void }>();

/**
 * Stops reading pipes that outlived their scripts (they keep the process alive); for daemon
 * exit. Returns how many were released.
 */
/** How many pipes of finished scripts are still being drained. */
export function lingeringPipeCount(): number {
  return lingering.size;
}

export function releaseLingeringPipes(): number {
  const n = lingering.size;
  for (const e of lingering) e.cancel();
  lingering.clear();
  return n;
}

type Spawned = Bun.Subprocess<"ignore", "pipe", "pipe">;

function spawnOnce(argv: string[], opts: RunOptions): Spawned | { code: string; message: string } {
  try {
    return Bun.spawn(argv, {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      detached: true, // setsid(): own session and process group, so the group can be killed
      env: scriptEnv(opts.env),
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
      ...(opts.identity ? { uid: opts.identity.uid, gid: opts.identity.gid } : {}),
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { code: err.code ?? "EUNKNOWN", message: err.message };
  }
}

function settledHandle(result: ScriptResult): ScriptHandle {
  return { pid: undefined, result: Promise.resolve(result), isRunning: () => false, terminate: () => {} };
}

/**
 * Starts argv without waiting for it. The handle's result resolves when the script has exited
 * (and, after a timeout or terminate(), when its process group is gone or the last SIGKILL
 * has been sent). Never throws.
 */
export function runScript(argv: readonly string[], opts: RunOptions = {}): ScriptHandle {
  const started = performance.now();
  const tailLines = opts.tailLines ?? 10;
  const failed = (error: string, viaShell = false): ScriptHandle =>
    settledHandle({ ok: false, exitCode: null, signal: null, timedOut: false, durationMs: performance.now() - started, viaShell, error, stdoutTail: "", stderrTail: "" });

  if (argv.length === 0 || argv[0] === "") return failed("empty command");
  let viaShell = false;
  let spawned = spawnOnce([...argv], opts);
  if ("code" in spawned && (spawned.code === "ENOENT" || spawned.code === "ENOEXEC")) {
    // keepalived's system() fallback: not a file we can exec directly (no shebang, not found,
    // a redirection test) — let the shell have a go.
    viaShell = true;
    spawned = spawnOnce(["/bin/sh", "-c", shellCommandLine(argv)], opts);
  }
  if ("code" in spawned) {
    const why = spawned.code === "EACCES" ? "permission denied (not executable?)" : spawned.message;
    return failed(`cannot run ${argv[0]}: ${why}`, viaShell);
  }
  const proc = spawned;
  const pgid = proc.pid;
  const out = drain(proc.stdout);
  const err = drain(proc.stderr);

  let running = true;
  let timedOut = false;
  let killing = false;
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let escalationDone: () => void = () => {};
  const escalated = new Promise<void>((resolve) => (escalationDone = resolve));
  const clearTimers = (): void => {
    for (const t of timers) clearTimeout(t);
    timers.clear();
  };
  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  /** Signals the group, then SIGKILL twice at `interval`; each step stops if the group is gone. */
  const startKilling = (first: "SIGTERM" | "SIGKILL", interval: number): void => {
    if (killing || !running) return;
    killing = true;
    clearTimers();
    const steps: Array<"SIGTERM" | "SIGKILL"> = [first, "SIGKILL", "SIGKILL"];
    const step = (i: number): void => {
      if (!groupExists(pgid)) {
        escalationDone();
        return;
      }
      signalGroup(pgid, steps[i]);
      if (i + 1 < steps.length) later(interval, () => step(i + 1));
      else escalationDone();
    };
    step(0);
  };

  if (opts.timeoutMs && opts.timeoutMs > 0) {
    later(opts.timeoutMs, () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return; // finished just in time
      timedOut = true;
      startKilling(opts.timeoutSignal ?? "SIGTERM", opts.killIntervalMs ?? DEFAULT_KILL_INTERVAL_MS);
    });
  }

  const result = (async (): Promise<ScriptResult> => {
    let exitCode: number | null = null;
    try {
      await proc.exited;
      exitCode = proc.exitCode;
    } catch {
      // exited never rejects in practice; treat as unknown status
    }
    // The leader is gone; after a kill, wait (bounded by the kill steps) for the rest of its
    // group, checking every GROUP_POLL_MS — there is no event for "group empty".
    if (killing) {
      let stepsOver = false;
      void escalated.then(() => (stepsOver = true));
      while (!stepsOver && (await groupHasLiveMembers(pgid))) {
        await Promise.race([escalated, Bun.sleep(GROUP_POLL_MS)]);
      }
    }
    clearTimers();
    // A child the script left in the background may hold the pipes open. Do not close them on
    // it (its next write would SIGPIPE it, where keepalived gives scripts /dev/null): keep
    // draining in the background until EOF or releaseLingeringPipes().
    const pipesDone = Promise.all([out.done, err.done]);
    let linger: ReturnType<typeof setTimeout> | undefined;
    const closed = await Promise.race([pipesDone.then(() => true), new Promise<false>((r) => (linger = setTimeout(() => r(false), PIPE_LINGER_MS)))]);
    clearTimeout(linger);
    if (!closed) {
      const entry = { cancel: () => (out.cancel(), err.cancel()) };
      lingering.add(entry);
      void pipesDone.then(() => lingering.delete(entry));
    }
    running = false;
    const signal = proc.signalCode === null ? null : String(proc.signalCode);
    let error: string | undefined;
    if (viaShell && exitCode === 127) error = `command not found: ${argv[0]}`;
    else if (viaShell && exitCode === 126) error = `cannot execute: ${argv[0]}`;
    const res: ScriptResult = {
      ok: exitCode === 0 && !timedOut,
      exitCode,
      signal,
      timedOut,
      durationMs: performance.now() - started,
      viaShell,
      stdoutTail: out.tail(tailLines),
      stderrTail: err.tail(tailLines),
      pid: proc.pid,
    };
    if (error) res.error = error;
    return res;
  })();

  return {
    pid: proc.pid,
    result,
    isRunning: () => running,
    terminate: (killAfterMs = 1000, signal = "SIGTERM") => startKilling(signal, killAfterMs),
  };
}

// --- the runner --------------------------------------------------------------------------------

/** Runs scripts, remembers which are still going, and stops them all at shutdown. */
export class ScriptRunner {
  private readonly byKey = new Map<string, ScriptHandle>();
  private readonly live = new Set<ScriptHandle>();

  /**
   * Starts argv. With a key, refuses ("skipped") while the previous run with that key is still
   * going (vrrp_script's "previous run still active"); without a key, always runs.
   */
  run(key: string | undefined, argv: readonly string[], opts: RunOptions = {}): ScriptHandle | "skipped" {
    if (key !== undefined && this.isRunning(key)) return "skipped";
    const h = runScript(argv, opts);
    if (!h.isRunning()) return h;
    this.live.add(h);
    if (key !== undefined) this.byKey.set(key, h);
    void h.result.then(() => {
      this.live.delete(h);
      if (key !== undefined && this.byKey.get(key) === h) this.byKey.delete(key);
    });
    return h;
  }

  /** Whether the last run started with `key` is still going. */
  isRunning(key: string): boolean {
    return this.byKey.get(key)?.isRunning() ?? false;
  }

  /** How many scripts are running now. */
  get runningCount(): number {
    return this.live.size;
  }

  /** Resolves when every running script has finished, or after `maxMs`; true if all finished. */
  async waitAll(maxMs: number): Promise<boolean> {
    return waitBounded([...this.live].map((h) => h.result), maxMs);
  }

  /**
   * Stops everything still running (SIGTERM to each group, SIGKILL after `killAfterMs`, as
   * keepalived's script_killall at exit) and waits, bounded, for them to go.
   */
  async shutdown(killAfterMs = 1000): Promise<boolean> {
    const live = [...this.live];
    for (const h of live) h.terminate(killAfterMs);
    const done = await waitBounded(live.map((h) => h.result), 2 * killAfterMs + 500);
    releaseLingeringPipes();
    return done;
  }
}

/** Awaits all promises, giving up after `maxMs`; true if they all settled in time. */
export async function waitBounded(promises: Array<Promise<unknown>>, maxMs: number): Promise<boolean> {
  if (promises.length === 0) return true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), maxMs)));
  const all = Promise.allSettled(promises).then(() => true as const);
  const r = await Promise.race([all, timeout]);
  clearTimeout(timer);
  return r;
}
