/** "Did you mean": the closest known word to what was typed, when it is close enough. */

/** Edit distance where swapping two neighbouring letters counts as one edit (optimal string alignment). */
export function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known words nearest to `typed` (within a third of its length, at least 1; or a prefix of it). */
export function closest(typed: string, known: readonly string[]): string[] {
  const limit = Math.max(1, Math.floor(typed.length / 3));
  const scored = known.map((k) => ({ k, d: k.startsWith(typed) && typed.length >= 2 ? 0.5 : distance(typed, k) })).filter((s) => s.d <= limit);
  if (scored.length === 0) return [];
  const best = Math.min(...scored.map((s) => s.d));
  return [...new Set(scored.filter((s) => s.d === best).map((s) => s.k))];
}

/** `; did you mean 'x'?` (or nothing). */
export function suggest(typed: string, known: readonly string[]): string {
  const c = closest(typed, known);
  return c.length === 0 ? '' : `; did you mean ${c.map((x) => `'${x}'`).join(' or ')}?`;
}
