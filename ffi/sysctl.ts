/**
 * /proc/sys values: read, write, and a journal that remembers each original value so vipd
 * can put the system back as it found it (VMAC arp_ignore/rp_filter, promote_secondaries).
 * /proc/sys/net shows the network namespace of the calling thread, so calls inside
 * withNetns() act on that namespace.
 */
import { readFileSync, writeFileSync } from "node:fs";

/** Path of a sysctl under /proc/sys from its components; interface names may contain dots ("vrrp.51"). */
export function sysctlPath(...parts: string[]): string {
  for (const p of parts) {
    if (!p || p.includes("/") || p === "." || p === "..") throw new Error(`invalid sysctl path component '${p}'`);
  }
  return `/proc/sys/${parts.join("/")}`;
}

/** /proc/sys/net/PROTO/conf/IFNAME/KEY, or /proc/sys/net/PROTO/KEY without an interface. */
export function netSysctlPath(c: { proto: string; ifname?: string; key: string }): string {
  return c.ifname === undefined ? sysctlPath("net", c.proto, c.key) : sysctlPath("net", c.proto, "conf", c.ifname, c.key);
}

/** net.ipv4.conf.<ifname>.<key> ("all" and "default" are valid ifnames). */
export function ipv4ConfPath(ifname: string, key: string): string {
  return sysctlPath("net", "ipv4", "conf", ifname, key);
}

/** net.ipv6.conf.<ifname>.<key>. */
export function ipv6ConfPath(ifname: string, key: string): string {
  return sysctlPath("net", "ipv6", "conf", ifname, key);
}

/** The value as text without its newline, or null if the sysctl does not exist. */
export function readSysctl(path: string): string | null {
  try {
    return readFileSync(path, "utf8").trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

/** Writes a value; throws (ENOENT, EACCES, EINVAL) with the path in the message. */
export function writeSysctl(path: string, value: string | number): void {
  try {
    writeFileSync(path, `${value}\n`);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(`sysctl ${path} = ${value}: ${err.code ?? ""} ${err.message}`.trim());
  }
}

/** How the journal touches /proc/sys; tests may pass a map-backed fake. */
export interface SysctlIo {
  read(path: string): string | null;
  write(path: string, value: string): void;
}

export const procSysIo: SysctlIo = { read: readSysctl, write: (p, v) => writeSysctl(p, v) };

interface Entry {
  original: string;
  written: string;
  owners: Set<string>;
}

/**
 * Sets sysctls on behalf of owners (a VMAC, an instance) and restores each original value
 * when the last owner releases it, but only if the value is still the one vipd wrote:
 * a later change by the operator wins, as keepalived's restore_rp_filter does.
 */
export class SysctlJournal {
  readonly #io: SysctlIo;
  readonly #entries = new Map<string, Entry>();

  constructor(io: SysctlIo = procSysIo) {
    this.#io = io;
  }

  /**
   * Sets `path` to `value` for `owner`. Returns the value found before (null when the
   * sysctl does not exist, in which case nothing is written). Unchanged values are not
   * written but still recorded, so a later release leaves them alone.
   */
  set(path: string, value: string | number, owner = "vipd"): string | null {
    const want = String(value);
    const existing = this.#entries.get(path);
    const current = this.#io.read(path);
    if (current === null) return null;
    if (current !== want) this.#io.write(path, want);
    if (existing) {
      existing.owners.add(owner);
      existing.written = want;
    } else {
      this.#entries.set(path, { original: current, written: want, owners: new Set([owner]) });
    }
    return current;
  }

  /** The original value recorded for `path`, if vipd changed it. */
  original(path: string): string | undefined {
    return this.#entries.get(path)?.original;
  }

  /** Paths currently held, with original and written values. */
  entries(): { path: string; original: string; written: string; owners: string[] }[] {
    return [...this.#entries].map(([path, e]) => ({ path, original: e.original, written: e.written, owners: [...e.owners] }));
  }

  /**
   * Drops `owner` from every path; paths left without owners are restored. Returns the
   * failures (a path that vanished with its interface is not one).
   */
  release(owner: string): { path: string; error: string }[] {
    const errors: { path: string; error: string }[] = [];
    for (const [path, e] of [...this.#entries]) {
      if (!e.owners.delete(owner) || e.owners.size) continue;
      this.#entries.delete(path);
      const err = this.#restoreOne(path, e);
      if (err) errors.push({ path, error: err });
    }
    return errors;
  }

  /** Restores everything (at shutdown), last change first; returns the failures. */
  restoreAll(): { path: string; error: string }[] {
    const errors: { path: string; error: string }[] = [];
    for (const [path, e] of [...this.#entries].reverse()) {
      this.#entries.delete(path);
      const err = this.#restoreOne(path, e);
      if (err) errors.push({ path, error: err });
    }
    return errors;
  }

  #restoreOne(path: string, e: Entry): string | null {
    try {
      const now = this.#io.read(path);
      if (now === null || now !== e.written || now === e.original) return null;
      this.#io.write(path, e.original);
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  }
}
