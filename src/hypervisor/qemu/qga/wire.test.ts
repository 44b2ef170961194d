import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QgaFrameReader, classifyReply, encodeRequest } from './wire.js';

const FF = Buffer.from([0xff]);

test('lines split across chunks become one message each', () => {
  const r = new QgaFrameReader();
  assert.deepEqual(r.push(Buffer.from('{"return": {}, "id"')), []);
  assert.deepEqual(r.push(Buffer.from(': 1}\n{"return": 2}\n\n')), [
    { kind: 'message', msg: { return: {}, id: 1 } },
    { kind: 'message', msg: { return: 2 } },
  ]);
});

test('a multi-byte character split between chunks decodes whole', () => {
  const r = new QgaFrameReader();
  const line = Buffer.from('{"return": "grüße"}\n');
  const cut = line.indexOf(0xc3) + 1;
  assert.deepEqual(r.push(line.subarray(0, cut)), []);
  assert.deepEqual(r.push(line.subarray(cut)), [{ kind: 'message', msg: { return: 'grüße' } }]);
});

test('the sentinel is a frame of its own, and cuts a half line into garbage', () => {
  const r = new QgaFrameReader();
  const frames = r.push(Buffer.concat([Buffer.from('{"retu'), FF, Buffer.from('{"return": 7}\n')]));
  assert.equal(frames.length, 3);
  assert.equal(frames[0]!.kind, 'garbage');
  assert.deepEqual(frames[1], { kind: 'sentinel' });
  assert.deepEqual(frames[2], { kind: 'message', msg: { return: 7 } });
});

test('non-JSON and non-object lines are garbage; the reader carries on', () => {
  const r = new QgaFrameReader();
  const frames = r.push(Buffer.from('hello\n[1,2]\n{"return": 1}\n'));
  assert.deepEqual(frames.map((f) => f.kind), ['garbage', 'garbage', 'message']);
});

test('an oversize line is reported once and skipped up to its end', () => {
  const r = new QgaFrameReader(16);
  const frames = [...r.push(Buffer.from('{"return": "aaaaaaaaa')), ...r.push(Buffer.from('aaaaaaaaaaaaaaaaaaaa"}\n{"return": 1}\n'))];
  assert.deepEqual(frames.map((f) => f.kind), ['garbage', 'message']);
  assert.deepEqual(frames[1], { kind: 'message', msg: { return: 1 } });
});

test('replies are classified; other objects are not replies', () => {
  assert.deepEqual(classifyReply({ return: 5, id: 3 }), { kind: 'return', id: 3, value: 5 });
  assert.deepEqual(classifyReply({ error: { class: 'GenericError', desc: 'no' }, id: 'x' }), { kind: 'error', id: 'x', errorClass: 'GenericError', desc: 'no' });
  assert.equal(classifyReply({ event: 'X' }), null);
});

test('requests are one JSON line', () => {
  assert.equal(encodeRequest('guest-ping', undefined, 4), '{"execute":"guest-ping","id":4}\n');
  assert.equal(encodeRequest('guest-exec-status', { pid: 9 }, undefined), '{"execute":"guest-exec-status","arguments":{"pid":9}}\n');
});
