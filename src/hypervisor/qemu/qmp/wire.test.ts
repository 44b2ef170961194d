import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QmpProtocolError } from './errors.js';
import { LineSplitter, encodeCommand, parseMessage } from './wire.js';

test('splits CRLF and LF lines across chunks, skipping blank lines', () => {
  const s = new LineSplitter(1024);
  assert.deepEqual(s.push(Buffer.from('{"a":1}\r\n{"b"')).lines, ['{"a":1}']);
  assert.deepEqual(s.push(Buffer.from(':2}\n\r\n\n{"c":3}')).lines, ['{"b":2}']);
  assert.deepEqual(s.push(Buffer.from('\r')).lines, []);
  assert.deepEqual(s.push(Buffer.from('\n')).lines, ['{"c":3}']);
});

test('decodes a multi-byte UTF-8 character split between chunks', () => {
  const s = new LineSplitter(1024);
  const bytes = Buffer.from('{"desc":"é€"}\r\n');
  assert.deepEqual(s.push(bytes.subarray(0, 10)).lines, []);
  assert.deepEqual(s.push(bytes.subarray(10)).lines, ['{"desc":"é€"}']);
});

test('accepts a line of exactly maxMessageBytes, rejects one byte more', () => {
  const ok = new LineSplitter(8);
  assert.deepEqual(ok.push(Buffer.from('12345678\r\n')), { lines: ['12345678'] });
  const bad = new LineSplitter(8);
  const r = bad.push(Buffer.from('123456789\r\n'));
  assert.ok(r.error instanceof QmpProtocolError);
});

test('rejects an oversize line before its newline arrives and keeps earlier lines', () => {
  const s = new LineSplitter(16);
  const r1 = s.push(Buffer.from('{"ok":1}\n0123456789'));
  assert.deepEqual(r1, { lines: ['{"ok":1}'] });
  const r2 = s.push(Buffer.from('0123456789'));
  assert.deepEqual(r2.lines, []);
  assert.ok(r2.error instanceof QmpProtocolError);
  assert.match(r2.error.message, /exceeds 16 bytes/);
  assert.ok(s.push(Buffer.from('{}\n')).error instanceof QmpProtocolError, 'splitter stays failed');
});

test('parseMessage classifies replies, errors, events and greetings', () => {
  assert.deepEqual(parseMessage('{"return": {}, "id": 3}'), { kind: 'return', id: 3, value: {} });
  assert.deepEqual(parseMessage('{"id": 8, "error": {"class": "CommandNotFound", "desc": "nope"}}'), {
    kind: 'error',
    id: 8,
    error: { class: 'CommandNotFound', desc: 'nope' },
  });
  assert.deepEqual(parseMessage('{"timestamp": {"seconds": 5, "microseconds": 6}, "event": "STOP"}'), {
    kind: 'event',
    event: 'STOP',
    data: {},
    timestamp: { seconds: 5, microseconds: 6 },
  });
  assert.equal(parseMessage('{"QMP": {"version": {}}}').kind, 'greeting');
  assert.equal(parseMessage('{"what": 1}').kind, 'unknown');
  assert.throws(() => parseMessage('not json'), QmpProtocolError);
  assert.throws(() => parseMessage('[1,2]'), QmpProtocolError);
});

test('encodeCommand omits absent arguments and id', () => {
  assert.equal(encodeCommand('stop', undefined, undefined), '{"execute":"stop"}\r\n');
  assert.equal(encodeCommand('x', { a: 1 }, 7), '{"execute":"x","arguments":{"a":1},"id":7}\r\n');
});
