/**
 * Host checks for `vipd check` without --offline: configured interfaces exist, script files
 * exist, are executable and (with enable_script_security) cannot be modified by non-root users.
 */
import { accessSync, constants, existsSync, readdirSync, realpathSync, statSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import type { Diagnostics, SourcePos } from "./diagnostics.ts";
import type { Model } from "./model.ts";

/** The interfaces of the current network namespace. */
function hostInterfaces(): Set<string> | undefined {
  try {
    return new Set(readdirSync("/sys/class/net"));
  } catch {
    return undefined;
  }
}

/** First word of a command line, honouring quotes. */
export function commandPath(cmd: string): string {
  const m = /^\s*(?:"([^"]*)"|'([^']*)'|(\S+))/.exec(cmd);
  return m ? (m[1] ?? m[2] ?? m[3]) : "";
}

function searchPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Why a root-run script is unsafe: the file or a directory above it is writable by non-root. */
export function unsafeReason(path: string): string | undefined {
  let p = path;
  for (let i = 0; i < 64; i++) {
    const st = statSync(p);
    if (st.uid !== 0) return `${p} is owned by uid ${st.uid}`;
    // keepalived's rule: a sticky directory (like /tmp) is fine; group write only counts for a non-root group
    const sticky = st.isDirectory() && (st.mode & 0o1000) !== 0;
    if (!sticky && ((st.gid !== 0 && st.mode & 0o020) || st.mode & 0o002)) return `${p} is writable by ${st.mode & 0o002 ? "others" : `group ${st.gid}`}`;
    const up = dirname(p);
    if (up === p) return undefined;
    p = up;
  }
  return undefined;
}

export function checkHost(m: Model, diags: Diagnostics): void {
  const ifs = hostInterfaces();
  if (ifs) {
    const need = new Map<string, SourcePos>();
    for (const i of m.vrrp_instance) {
      if (i.interface && !need.has(i.interface)) need.set(i.interface, i.pos);
      for (const v of [...i.virtual_ipaddress, ...i.virtual_ipaddress_excluded]) if (v.dev && !need.has(v.dev)) need.set(v.dev, v.pos ?? i.pos);
      for (const t of i.track_interface) if (!need.has(t.name)) need.set(t.name, i.pos);
    }
    for (const [name, pos] of need)
      if (!ifs.has(name)) diags.warning(pos, `interface '${name}' does not exist on this host (use --offline to skip host checks)`);
  }
  const secure = m.global.enable_script_security;
  for (const s of m.scripts) {
    const pos = s.pos ?? { file: "-", line: 1, col: 1 };
    const word = commandPath(s.script.cmd);
    let path = word;
    if (!isAbsolute(word)) {
      const found = searchPath(word);
      if (!found) {
        diags.error(pos, `${s.what}: command '${word}' not found in PATH`, "an absolute path to an executable");
        continue;
      }
      diags.info(pos, `${s.what}: '${word}' found by PATH search as ${found}; an absolute path is safer`);
      path = found;
    }
    if (!existsSync(path)) {
      diags.error(pos, `${s.what}: script '${path}' does not exist`, "an existing executable file");
      continue;
    }
    try {
      accessSync(path, constants.X_OK);
    } catch {
      diags.error(pos, `${s.what}: '${path}' is not executable`, "chmod +x");
      continue;
    }
    if (secure && !s.script.user && !m.global.script_user) {
      const reason = unsafeReason(realpathSync(path));
      if (reason) diags.error(pos, `${s.what}: unsafe permissions, script disabled: ${reason}`, "a script owned by root and writable only by root");
    }
  }
}
