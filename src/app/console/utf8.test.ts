import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wholeCharacters } from './utf8.js';

test('pages of any size over multi-byte text reassemble losslessly', () => {
  const text = 'aé€😀b'.repeat(7);
  const all = Buffer.from(text);
  for (let size = 4; size <= 9; size++) {
    let out = '';
    let off = 0;
    while (off < all.length) {
      const page = all.subarray(off, Math.min(all.length, off + size));
      const { start, end } = wholeCharacters(page);
      assert.equal(start, 0);
      out += page.subarray(start, end).toString('utf8');
      off += end;
    }
    assert.equal(out, text, `page size ${size}`);
  }
});

test('leading continuation bytes are skipped; complete text is untouched', () => {
  const e = Buffer.from('é');
  assert.deepEqual(wholeCharacters(Buffer.concat([e.subarray(1), Buffer.from('ab')])), { start: 1, end: 3 });
  assert.deepEqual(wholeCharacters(Buffer.from('plain')), { start: 0, end: 5 });
  assert.deepEqual(wholeCharacters(Buffer.from('😀').subarray(0, 3)), { start: 0, end: 0 });
});
