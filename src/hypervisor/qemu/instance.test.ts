import assert from 'node:assert/strict';
import { test } from 'node:test';
import { imageFileName } from './instance.js';

test('a plain image name is the file', () => {
  assert.equal(imageFileName('/data/disks/a.qcow2'), '/data/disks/a.qcow2');
});

test('a json: pseudo-filename (a node added with backing: null) yields its file child\'s name', () => {
  const name = 'json:{"backing": null, "driver": "qcow2", "file": {"driver": "file", "filename": "/data/disks/b.qcow2"}}';
  assert.equal(imageFileName(name), '/data/disks/b.qcow2');
});

test('a pseudo-filename without a file name is an error, not a guess', () => {
  assert.throws(() => imageFileName('json:{"driver": "qcow2"}'), /no file name/);
  assert.throws(() => imageFileName('json:{not json'), /unreadable/);
});
