import { invalid } from '../../domain/errors.js';

const NAMED: Record<string, string> = {
  enter: '\r', return: '\r', tab: '\t', backspace: '\x7f', escape: '\x1b', esc: '\x1b', space: ' ',
  up: '\x1b[A', down: '\x1b[B', right: '\x1b[C', left: '\x1b[D', home: '\x1b[H', end: '\x1b[F',
  insert: '\x1b[2~', delete: '\x1b[3~', pageup: '\x1b[5~', pagedown: '\x1b[6~',
  f1: '\x1bOP', f2: '\x1bOQ', f3: '\x1bOR', f4: '\x1bOS', f5: '\x1b[15~', f6: '\x1b[17~', f7: '\x1b[18~',
  f8: '\x1b[19~', f9: '\x1b[20~', f10: '\x1b[21~', f11: '\x1b[23~', f12: '\x1b[24~',
};

/** Key names as terminals send them; `ctrl-a`…`ctrl-z` and `ctrl-[ \ ] ^ _` map to their C0 codes. */
export function keysToBytes(keys: string[]): Buffer {
  return Buffer.from(keys.map(keyToString).join(''), 'latin1');
}

export const KEY_NAMES = [...Object.keys(NAMED), 'ctrl-a … ctrl-z', 'ctrl-[', 'ctrl-\\', 'ctrl-]', 'ctrl-^', 'ctrl-_'];

function keyToString(key: string): string {
  const k = key.toLowerCase();
  const named = NAMED[k];
  if (named !== undefined) return named;
  const m = /^(?:ctrl|c)-(.)$/.exec(k);
  if (m) {
    const c = m[1]!;
    if (c >= 'a' && c <= 'z') return String.fromCharCode(c.charCodeAt(0) - 96);
    const special: Record<string, string> = { '[': '\x1b', '\\': '\x1c', ']': '\x1d', '^': '\x1e', '_': '\x1f', '@': '\x00' };
    if (special[c] !== undefined) return special[c]!;
  }
  throw invalid(`unknown key '${key}' (known: ${KEY_NAMES.join(', ')})`, { field: 'keys' });
}
