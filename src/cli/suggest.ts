/** "Did you mean": the closest known word to what was typed, when it is close enough. */

export function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
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
