import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eta, progressLine } from './progress.js';

test('eta: m:ss under an hour, h:mm:ss above, - when unknown', () => {
  assert.equal(eta(0), '0:00');
  assert.equal(eta(75), '1:15');
  assert.equal(eta(3723), '1:02:03');
  assert.equal(eta(null), '-');
  assert.equal(eta(Number.POSITIVE_INFINITY), '-');
});

test('progress line: bar, percent, bytes of total, rate and ETA, fitted to the width', () => {
  const mib = 1024 * 1024;
  const line = progressLine('debian-12', { bytes: 150 * mib, totalBytes: 300 * mib, bytesPerSecond: 10 * mib }, 100);
  assert.match(line, /^debian-12 \[=+> +\]  50%  150\.0 MiB \/ 300\.0 MiB  10\.0 MiB\/s  ETA 0:15$/);
  assert.ok(line.length <= 100);
  const bar = /\[(.*)\]/.exec(line)![1]!;
  assert.equal(bar.indexOf('>'), Math.floor(bar.length / 2), 'half the bar is filled');
  assert.equal(progressLine('x', { bytes: 300 * mib, totalBytes: 300 * mib, bytesPerSecond: null }, 100).includes('100%'), true);
  // Narrow terminals drop the bar, then cut the line.
  assert.doesNotMatch(progressLine('debian-12', { bytes: 1, totalBytes: 2, bytesPerSecond: 1 }, 50), /\[/);
  assert.ok(progressLine('debian-12', { bytes: 1, totalBytes: 2, bytesPerSecond: 1 }, 20).length <= 20);
  // Unknown size: bytes and rate only.
  assert.equal(progressLine('a', { bytes: 2048, totalBytes: null, bytesPerSecond: 1024 }, 80), 'a  2.0 KiB  1.0 KiB/s');
});
