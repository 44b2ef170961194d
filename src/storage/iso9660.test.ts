import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SECTOR, buildIso9660 } from './iso9660.js';

interface ParsedVolume { type: number; volumeId: string; sectors: number; escapes: string; root: Map<string, { at: number; size: number; dir: boolean }> }

/** A reader written from ECMA-119 and the Joliet note, independent of the writer's code. */
function readVolume(img: Buffer, sector: number): ParsedVolume {
  const o = sector * SECTOR;
  assert.equal(img.toString('ascii', o + 1, o + 6), 'CD001');
  const type = img[o]!;
  const joliet = type === 2;
  const decode = (b: Buffer) => (joliet ? swap(b).toString('utf16le') : b.toString('ascii'));
  const le32 = (at: number) => img.readUInt32LE(at);
  assert.equal(le32(o + 80), img.readUInt32BE(o + 84), 'volume space size is both-endian');
  assert.equal(img.readUInt16LE(o + 128), SECTOR);
  const rootAt = le32(o + 156 + 2);
  const root = new Map<string, { at: number; size: number; dir: boolean }>();
  let p = rootAt * SECTOR;
  while (img[p]! > 0) {
    const len = img[p]!;
    const idLen = img[p + 32]!;
    const id = img.subarray(p + 33, p + 33 + idLen);
    const name = idLen === 1 && id[0]! <= 1 ? (id[0] === 0 ? '.' : '..') : decode(Buffer.from(id));
    root.set(name, { at: img.readUInt32LE(p + 2), size: img.readUInt32LE(p + 10), dir: (img[p + 25]! & 2) !== 0 });
    assert.equal(img.readUInt32BE(p + 6), img.readUInt32LE(p + 2), `${name}: extent is both-endian`);
    p += len;
  }
  return { type, volumeId: decode(img.subarray(o + 40, o + 72)).trimEnd(), sectors: le32(o + 80), escapes: img.toString('ascii', o + 88, o + 91), root };
}

function swap(b: Buffer): Buffer {
  const c = Buffer.from(b);
  for (let i = 0; i + 1 < c.length; i += 2) { const t = c[i]!; c[i] = c[i + 1]!; c[i + 1] = t; }
  return c;
}

const fixed = new Date(Date.UTC(2024, 4, 6, 7, 8, 9));

test('a cidata image: primary and Joliet volumes, files readable back byte for byte by both names', () => {
  const userData = Buffer.from('#cloud-config\nhostname: "x"\n' + 'y'.repeat(5000));
  const metaData = Buffer.from('instance-id: "abc"\n');
  const img = buildIso9660({ volumeId: 'cidata', files: [{ name: 'user-data', data: userData }, { name: 'meta-data', data: metaData }], date: fixed });
  assert.equal(img.length % SECTOR, 0);
  assert.ok(img.subarray(0, 16 * SECTOR).every((b) => b === 0), 'system area is empty');

  const pvd = readVolume(img, 16);
  const svd = readVolume(img, 17);
  assert.equal(img[18 * SECTOR], 255, 'descriptor set terminator');
  assert.deepEqual([pvd.type, pvd.volumeId, svd.type, svd.volumeId, svd.escapes], [1, 'cidata', 2, 'cidata', '%/E']);
  assert.equal(pvd.sectors, img.length / SECTOR);

  const read = (v: ParsedVolume, name: string) => {
    const e = v.root.get(name);
    assert.ok(e && !e.dir, `${name} in ${[...v.root.keys()].join(',')}`);
    return img.subarray(e.at * SECTOR, e.at * SECTOR + e.size);
  };
  assert.deepEqual([...svd.root.keys()], ['.', '..', 'meta-data', 'user-data'], 'Joliet names, sorted');
  assert.deepEqual(read(svd, 'user-data'), userData);
  assert.deepEqual(read(svd, 'meta-data'), metaData);
  assert.deepEqual([...pvd.root.keys()], ['.', '..', 'META_DAT.;1', 'USER_DAT.;1'], 'level 1 names, sorted');
  assert.deepEqual(read(pvd, 'USER_DAT.;1'), userData);
  assert.equal(pvd.root.get('.')!.dir, true);
});

test('same input, same bytes; names that clash at 8.3 stay distinct; bad names are refused', () => {
  const files = [{ name: 'network-config', data: Buffer.from('a') }, { name: 'network-config2', data: Buffer.alloc(0) }];
  const a = buildIso9660({ volumeId: 'cidata', files, date: fixed });
  assert.deepEqual(buildIso9660({ volumeId: 'cidata', files, date: fixed }), a);
  const pvd = readVolume(a, 16);
  assert.deepEqual([...pvd.root.keys()].slice(2).sort(), ['NETWORK_.;1', 'NETWOR~1.;1']);
  assert.equal(readVolume(a, 17).root.get('network-config2')!.size, 0);
  assert.throws(() => buildIso9660({ volumeId: 'cidata', files: [{ name: 'a/b', data: Buffer.alloc(1) }] }), /invalid ISO file name/);
  assert.throws(() => buildIso9660({ volumeId: 'ci data', files: [] }), /invalid ISO volume id/);
  assert.throws(() => buildIso9660({ volumeId: 'cidata', files: [files[0]!, files[0]!] }), /given twice/);
});
