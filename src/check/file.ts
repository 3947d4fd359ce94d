/**
 * FILE_CHECK: the real server follows a track_file's value. With weight 0, any non-zero value
 * is DOWN (reverse: zero is DOWN); otherwise value × weight (negated with reverse) is added to
 * the real server's weight, and a result at or below −2^31 is DOWN (track_file.c). There is
 * nothing to run: the state is known as soon as the value is.
 */

/** keepalived's IPVS_WEIGHT_FAULT. */
const WEIGHT_FAULT = -2147483648;
const WEIGHT_MAX = 2147483647;

/** The checker's state for a file value. */
export function fileCheckStatus(value: number, weight: number, reverse: boolean): { up: boolean; weightDelta: number } {
  if (weight === 0) {
    const fault = reverse ? value === 0 : value !== 0;
    return { up: !fault, weightDelta: 0 };
  }
  const status = Math.max(WEIGHT_FAULT, Math.min(WEIGHT_MAX, value * weight * (reverse ? -1 : 1)));
  return status <= WEIGHT_FAULT ? { up: false, weightDelta: 0 } : { up: true, weightDelta: status };
}

/** Reads a track_file's value like keepalived: the leading integer, 0 when missing or unreadable. */
export async function readTrackFileValue(path: string): Promise<number> {
  try {
    const m = /^\s*([-+]?(?:0x[0-9a-f]+|\d+))/i.exec(await Bun.file(path).text());
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}
