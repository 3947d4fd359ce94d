/** "Did you mean …": the closest known word to a misspelt one, if it is close enough. */

/** Damerau-style edit distance (insert, delete, substitute, swap of neighbours). */
export function editDistance(a: string, b: string): number {
  const m = a.length;
  const n = b.length;
  const d: number[][] = Array.from({ length: m + 1 }, (_, i) => [i, ...new Array<number>(n).fill(0)]);
  for (let j = 1; j <= n; j++) d[0][j] = j;
  for (let i = 1; i <= m; i++) {
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[m][n];
}

/** The best candidate within a distance that grows with the word's length, or undefined. */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  const limit = Math.max(1, Math.min(3, Math.floor(w.length / 3)));
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    // the distance is at least the length difference: skip the O(m·n) table when it cannot win
    // (a 20,000-character token against every keyword took seconds)
    if (Math.abs(c.length - w.length) > limit) continue;
    const dist = editDistance(w, c.toLowerCase());
    if (dist < bestD && dist <= limit) {
      best = c;
      bestD = dist;
    }
  }
  // a prefix/suffix slip such as "virtual_router_idd" is also worth suggesting
  if (!best) for (const c of candidates) if (w.length > 5 && (c.startsWith(w) || w.startsWith(c))) return c;
  return best;
}
