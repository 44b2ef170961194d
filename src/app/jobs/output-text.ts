/**
 * Text when the bytes are UTF-8. A character cut at the end of a read that is not the stream's end is
 * left for the next read (`used` says how many bytes the text covers) rather than turning it all to base64.
 */
export function asText(b: Buffer, ended: boolean): { data: string; encoding: 'utf8' | 'base64'; used: number } {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (let trim = 0; trim <= (ended ? 0 : 3) && trim < Math.max(1, b.length); trim++) {
    try {
      return { data: decoder.decode(b.subarray(0, b.length - trim)), encoding: 'utf8', used: b.length - trim };
    } catch { /* not UTF-8 (yet) */ }
  }
  return { data: b.toString('base64'), encoding: 'base64', used: b.length };
}

