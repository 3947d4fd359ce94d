/**
 * Does a process match a `vrrp_track_process`? keepalived's rules (reference §1.9, and
 * keepalived/core/track_process.c `check_params`), as a pure function of the process's
 * comm (`/proc/PID/comm`, at most 15 bytes) and its raw cmdline (`/proc/PID/cmdline`:
 * NUL-terminated arguments, or one setproctitle()-style string). All strings are byte
 * strings (one char per byte; see `byteString`).
 *
 * - Without parameters or `full_command`, the configured name must equal comm exactly
 *   (no regex, no prefix: `ssh` does not match `sshd`).
 * - Otherwise argv[0] (the cmdline up to its first NUL) must equal the name, and the
 *   parameter bytes after it are compared: exactly (default), the first n parameters
 *   (`param_match partial`), or with the last configured parameter as a prefix
 *   (`param_match initial`). `param_match` without parameters means "no parameters".
 */
import type { Doc } from "../config/schema/kinds.ts";

/** How configured parameters are compared with the process's (keepalived's PARAM_MATCH_*). */
export type ParamMatch = "none" | "exact" | "partial" | "initial";

/** The matching half of one vrrp_track_process. */
export interface ProcessMatchSpec {
  /** The process name (comm) or, with fullCommand, argv[0]. */
  path: string;
  /** Configured parameters (may be empty). */
  params: string[];
  paramMatch: ParamMatch;
  /** Match the cmdline instead of comm (implied by parameters and by param_match). */
  fullCommand: boolean;
}

/** The kernel's comm is TASK_COMM_LEN (16) bytes with its NUL: longer names are cut. */
export const COMM_MAX = 15;

/**
 * A JS string as the bytes keepalived compares: UTF-8, one char per byte (the daemon
 * decodes /proc files as latin1, so both sides are byte strings).
 */
export function byteString(s: string): string {
  let out = "";
  for (const b of new TextEncoder().encode(s)) out += String.fromCharCode(b);
  return out;
}

/** Builds the match spec from a parsed `vrrp_track_process` document, as keepalived's parser does. */
export function matchSpecFromDoc(doc: Doc): ProcessMatchSpec {
  const raw = Array.isArray(doc.process) ? doc.process.map(String) : typeof doc.process === "string" ? [doc.process] : [];
  const words = raw.map(byteString);
  const path = words[0] ?? "";
  const params = words.slice(1);
  // The schema gives `{ mode?: "initial" | "partial" }`; a bare `param_match` is `{}` (EXACT).
  const raw_pm = doc.param_match;
  const pm = raw_pm !== null && typeof raw_pm === "object" ? ((raw_pm as { mode?: string }).mode ?? true) : raw_pm;
  let paramMatch: ParamMatch = pm === "initial" ? "initial" : pm === "partial" ? "partial" : pm !== undefined && pm !== null && pm !== false ? "exact" : "none";
  if (params.length > 0 && paramMatch === "none") paramMatch = "exact";
  const fullCommand = doc.full_command === true || paramMatch !== "none";
  return { path, params, paramMatch, fullCommand };
}

/** Joins argv as the kernel shows it in /proc/PID/cmdline (each argument NUL-terminated). */
export function cmdlineFromArgv(argv: readonly string[]): string {
  return argv.map((a) => `${a}\0`).join("");
}

/** The configured parameters in cmdline form ("p1\0p2\0"), as keepalived stores them. */
function paramBytes(params: readonly string[]): string {
  return cmdlineFromArgv(params);
}

/**
 * True when the bytes after argv[0] (`actual`, possibly "") satisfy the configured
 * parameters; a transliteration of keepalived's check_params() on strings.
 */
export function paramsMatch(spec: ProcessMatchSpec, actual: string): boolean {
  const want = spec.params.length > 0 ? paramBytes(spec.params) : null;
  const wantLen = want?.length ?? 0;
  if (spec.paramMatch === "exact" && want === null && actual.length === 0) return true;
  if (actual.length < wantLen) return false;
  if (spec.paramMatch === "exact") return actual.length === wantLen && (want === null || actual === want);
  if (want === null) return true;
  if (spec.paramMatch === "partial") return actual.startsWith(want);
  // initial: every parameter but the last exactly, the last as a prefix (its NUL not compared).
  return wantLen === 1 || actual.startsWith(want.slice(0, wantLen - 1));
}

/** True when a process with this comm and raw cmdline counts for the tracker. */
export function processMatches(spec: ProcessMatchSpec, comm: string, cmdline: string): boolean {
  if (!spec.fullCommand) return comm === spec.path;
  const nul = cmdline.indexOf("\0");
  const argv0 = nul < 0 ? cmdline : cmdline.slice(0, nul);
  if (argv0 !== spec.path) return false;
  if (spec.paramMatch === "none") return true;
  return paramsMatch(spec, nul < 0 ? "" : cmdline.slice(nul + 1));
}

/** Whether this spec needs /proc/PID/cmdline (else comm alone decides). */
export function needsCmdline(spec: ProcessMatchSpec): boolean {
  return spec.fullCommand;
}

/** Bytes of cmdline worth reading for this spec: enough to see one byte past what it compares. */
export function cmdlineBytesNeeded(spec: ProcessMatchSpec): number {
  return spec.path.length + 1 + paramBytes(spec.params).length + 2;
}

/**
 * A warning for specs that can never match, or null: a comm name longer than the kernel
 * keeps (keepalived silently never matches those), or an empty name.
 */
export function specWarning(name: string, spec: ProcessMatchSpec): string | null {
  if (spec.path === "") return `vrrp_track_process ${name} has an empty process name`;
  if (!spec.fullCommand && spec.path.length > COMM_MAX) {
    return `vrrp_track_process ${name}: process name '${spec.path}' is longer than the kernel's ${COMM_MAX}-byte comm and can never match; use full_command`;
  }
  return null;
}
