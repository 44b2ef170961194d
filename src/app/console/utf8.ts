/**
 * The part of `buf` made of whole UTF-8 characters: leading continuation bytes (the tail of a character
 * that started before the range) are skipped, and a character cut off at the end is left for the next
 * read. Console offsets are byte offsets, so pages must end on character boundaries to be lossless.
 */
export function wholeCharacters(buf: Buffer): { start: number; end: number } {
  let start = 0;
  while (start < buf.length && start < 3 && isContinuation(buf[start]!)) start++;
  let end = buf.length;
  for (let back = 1; back <= 3 && end - back >= start; back++) {
    const b = buf[end - back]!;
    if (isContinuation(b)) continue;
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    if (need > back) end -= back;
    break;
  }
  return { start, end };
}

function isContinuation(b: number): boolean {
  return (b & 0xc0) === 0x80;
}
