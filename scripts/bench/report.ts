/** Summary statistics and markdown tables for the benchmark's output. */

export interface Summary {
  n: number;
  min: number;
  median: number;
  max: number;
}

/** min/median/max of the values (median of an even count is the mean of the middle two); null if empty. */
export function summarize(values: number[]): Summary | null {
  if (values.length === 0) return null;
  const v = [...values].sort((x, y) => x - y);
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { n: v.length, min: v[0]!, median, max: v.at(-1)! };
}

/** A number with `digits` decimals, or "–" when missing. */
export function fmt(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits);
}

/** vipd/keepalived as "1.02×", or "–" when either side is missing or zero. */
export function ratio(vipd: number | null | undefined, keepalived: number | null | undefined): string {
  if (vipd == null || keepalived == null || !Number.isFinite(vipd) || !Number.isFinite(keepalived) || keepalived === 0) return "–";
  return `${(vipd / keepalived).toFixed(2)}×`;
}

/** A GitHub-flavoured markdown table; columns after the first `leftCols` are right-aligned. */
export function markdownTable(headers: string[], rows: string[][], leftCols = 1): string {
  const align = headers.map((_, i) => (i < leftCols ? "---" : "---:"));
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(headers), line(align), ...rows.map(line)].join("\n");
}
