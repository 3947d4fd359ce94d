/**
 * global_defs `umask`, read as keepalived's umask_handler reads it: a number (strtol base 0:
 * 022 octal, 0x12 hex, 18 decimal) or S_I* bit names joined by `|` (IWGRP|IWOTH, spaces allowed).
 */

const BITS: Readonly<Record<string, number>> = {
  IRUSR: 0o400, IWUSR: 0o200, IXUSR: 0o100, IRWXU: 0o700,
  IRGRP: 0o040, IWGRP: 0o020, IXGRP: 0o010, IRWXG: 0o070,
  IROTH: 0o004, IWOTH: 0o002, IXOTH: 0o001, IRWXO: 0o007,
};

/** The umask bits of `text`, or keepalived's error message. */
export function parseUmask(text: string): { value: number } | { error: string } {
  const t = text.trim();
  if (/^\d/.test(t)) {
    if (/\s/.test(t)) return { error: "Extra parameter(s) to umask option" };
    const n = /^0x[0-9a-f]+$/i.test(t) ? parseInt(t.slice(2), 16) : /^0[0-7]*$/.test(t) ? parseInt(t, 8) : /^[1-9]\d*$/.test(t) ? parseInt(t, 10) : NaN;
    if (!Number.isInteger(n) || n < 0 || n & ~0o777) return { error: `invalid umask value ${t}` };
    return { value: n };
  }
  let value = 0;
  const parts = t.replace(/\s+/g, "").split("|");
  for (const p of parts) {
    if (p === "") return { error: parts.length > 1 ? `Invalid umask syntax ${t}` : "umask missing bit value" };
    const bit = BITS[p];
    if (bit === undefined) return { error: `Unknown umask bit ${p}` };
    value |= bit;
  }
  return { value };
}
