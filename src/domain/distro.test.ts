import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CatalogError, checksumSource, imageFileName, validateCatalog } from './distro.js';

const good = {
  id: 'debian-12', name: 'Debian 12', version: '12', arch: 'x86_64', format: 'qcow2',
  url: 'https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2',
  checksumUrl: 'https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS',
};
const catalogOf = (...distros: unknown[]) => ({ distros });
const refused = (doc: unknown, message: RegExp): void => {
  assert.throws(() => validateCatalog(doc), (e: unknown) => e instanceof CatalogError && message.test(e.message), `expected ${message}`);
};

test('the shipped catalog is valid: the current x86-64 cloud images, each with a checksum source', () => {
  const path = fileURLToPath(new URL('../../../catalog/distros.json', import.meta.url));
  const c = validateCatalog(JSON.parse(readFileSync(path, 'utf8')));
  assert.deepEqual(c.distros.map((d) => d.id), ['debian-12', 'debian-13', 'ubuntu-22.04', 'ubuntu-24.04', 'fedora-43', 'alpine-3.23', 'almalinux-9', 'rocky-9']);
  for (const d of c.distros) {
    assert.equal(d.arch, 'x86_64', d.id);
    assert.equal(d.format, 'qcow2', d.id);
    assert.match(d.url, /^https:\/\//, d.id);
    assert.equal(checksumSource(d).kind, 'sums', d.id);
  }
});

test('a valid entry comes back typed; pinned digests are lower-cased and are the checksum source', () => {
  const c = validateCatalog(catalogOf(good, { ...good, id: 'pinned', url: 'http://mirror.local/x/other.img', checksumUrl: undefined, sha256: 'AB'.repeat(32) }));
  assert.equal(c.distros[0]!.id, 'debian-12');
  assert.deepEqual(checksumSource(c.distros[0]!), { kind: 'sums', url: good.checksumUrl });
  assert.deepEqual(checksumSource(c.distros[1]!), { kind: 'pinned', algorithm: 'sha256', digest: 'ab'.repeat(32) });
  assert.equal(c.distros[1]!.sha256, 'ab'.repeat(32));
});

test('the image file name is the URL path\'s last segment, percent-decoded', () => {
  assert.equal(imageFileName(good.url), 'debian-12-genericcloud-amd64.qcow2');
  assert.equal(imageFileName('http://h/a/b%2Bc.img?x=1'), 'b+c.img');
});

test('the document shape: an object with a distros array and nothing else', () => {
  refused([], /JSON object with a "distros" array/);
  refused({}, /"distros" must be an array/);
  refused({ distros: [], extra: 1 }, /unknown top-level field "extra"/);
  refused({ distros: [42] }, /^distros\[0\]: must be an object/);
});

test('errors name the entry (index and id) and the field', () => {
  refused(catalogOf(good, { ...good, id: 'x', bogus: true }), /^distros\[1\] \("x"\)\.bogus: unknown field/);
  refused(catalogOf({ ...good, name: '' }), /^distros\[0\] \("debian-12"\)\.name: required/);
  refused(catalogOf({ ...good, version: undefined }), /\.version: required/);
  refused(catalogOf({ ...good, id: 'Debian 12' }), /^distros\[0\] \("Debian 12"\)\.id: must be lower-case/);
  refused(catalogOf({ ...good, format: 'vmdk' }), /\.format: must be qcow2 or raw \(got "vmdk"\)/);
  refused(catalogOf({ ...good, arch: 'x86 64' }), /\.arch: "x86 64" is not an architecture name/);
  refused(catalogOf({ ...good, url: 'ftp://h/x.img' }), /\.url: must be http or https \(got "ftp"\)/);
  refused(catalogOf({ ...good, url: 'not a url' }), /\.url: "not a url" is not an absolute URL/);
  refused(catalogOf({ ...good, url: 'https://u:p@h/x.img' }), /\.url: must not carry credentials/);
  refused(catalogOf({ ...good, url: 'https://h/dir/' }), /\.url: its file name "" is not usable/);
  refused(catalogOf({ ...good, url: 'https://h/x.img.part' }), /\.url: its file name "x\.img\.part" is not usable/);
  refused(catalogOf({ ...good, checksumUrl: 'file:///etc/passwd' }), /\.checksumUrl: must be http or https/);
  refused(catalogOf({ ...good, checksumUrl: undefined, sha512: 'abc' }), /\.sha512: must be 128 hex digits/);
  refused(catalogOf({ ...good, checksumUrl: undefined, sha256: 'g'.repeat(64) }), /\.sha256: must be 64 hex digits/);
});

test('names and versions are shown on terminals as they are: control and bidi-override characters are refused', () => {
  refused(catalogOf({ ...good, name: 'Debian\u001b[2J\u001b[31m 12' }), /^distros\[0\] \("debian-12"\)\.name: holds a control character/);
  refused(catalogOf({ ...good, version: '12\r' }), /\.version: holds a control character/);
  refused(catalogOf({ ...good, name: 'Debian \u202e21' }), /\.name: holds a control character/);
  refused(catalogOf({ ...good, name: 'Debian \u009b2J' }), /\.name: holds a control character/);
  assert.equal(validateCatalog(catalogOf({ ...good, name: 'Débian 12 — “bookworm”' })).distros[0]!.name, 'Débian 12 — “bookworm”');
});

test('exactly one checksum source per entry', () => {
  refused(catalogOf({ ...good, checksumUrl: undefined }), /\.checksumUrl: no checksum source/);
  refused(catalogOf({ ...good, sha256: 'a'.repeat(64) }), /give exactly one checksum source/);
});

test('ids and image file names are unique', () => {
  refused(catalogOf(good, { ...good, url: 'https://h/other.qcow2' }), /^distros\[1\] \("debian-12"\)\.id: duplicate of distros\[0\]/);
  refused(catalogOf(good, { ...good, id: 'copy', url: 'https://mirror/elsewhere/debian-12-genericcloud-amd64.qcow2' }),
    /^distros\[1\] \("copy"\)\.url: file name "debian-12-genericcloud-amd64\.qcow2" is also used by "debian-12"/);
});
