import { test } from 'node:test';
import assert from 'node:assert/strict';
import { algorithmOf, findDigest } from './checksums.js';

const H256 = 'a1'.repeat(32);
const H256b = 'b2'.repeat(32);
const H512 = 'c3'.repeat(64);

test('the algorithm follows from the digest length', () => {
  assert.equal(algorithmOf(H256), 'sha256');
  assert.equal(algorithmOf(H512), 'sha512');
  assert.equal(algorithmOf('ab'.repeat(20)), undefined);
  assert.equal(algorithmOf('zz'.repeat(32)), undefined);
});

test('GNU lines: "hex  name" (Debian SHA512SUMS) and "hex *name" (Ubuntu SHA256SUMS)', () => {
  const debian = `${'d4'.repeat(64)}  debian-12-generic-amd64.qcow2\n${H512}  debian-12-genericcloud-amd64.qcow2\n${'e5'.repeat(64)}  debian-12-genericcloud-amd64.raw\n`;
  assert.deepEqual(findDigest(debian, 'debian-12-genericcloud-amd64.qcow2'), { ok: true, algorithm: 'sha512', digest: H512 });
  const ubuntu = `${H256b} *ubuntu-24.04-server-cloudimg-amd64-disk-kvm.img\n${H256.toUpperCase()} *ubuntu-24.04-server-cloudimg-amd64.img\n`;
  assert.deepEqual(findDigest(ubuntu, 'ubuntu-24.04-server-cloudimg-amd64.img'), { ok: true, algorithm: 'sha256', digest: H256 });
});

test('BSD lines with comments and a PGP clear-signature around them (Fedora CHECKSUM, Rocky CHECKSUM)', () => {
  const fedora = [
    '-----BEGIN PGP SIGNED MESSAGE-----', 'Hash: SHA256', '',
    '# Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2: 574685184 bytes',
    `SHA256 (Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2) = ${H256}`,
    '# Fedora-Cloud-Base-AmazonEC2-43-1.6.x86_64.raw.xz: 1 bytes',
    `SHA256 (Fedora-Cloud-Base-AmazonEC2-43-1.6.x86_64.raw.xz) = ${H256b}`,
    '-----BEGIN PGP SIGNATURE-----', '', `${'f'.repeat(64)}`, 'iQIzBAEBCAAdFiEE=', '-----END PGP SIGNATURE-----', '',
  ].join('\r\n');
  assert.deepEqual(findDigest(fedora, 'Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2'), { ok: true, algorithm: 'sha256', digest: H256 });
  const rocky = `# Rocky-9-GenericCloud-Base.latest.x86_64.qcow2: 645988352 bytes\nSHA256 (Rocky-9-GenericCloud-Base.latest.x86_64.qcow2) = ${H256}\n`;
  assert.deepEqual(findDigest(rocky, 'Rocky-9-GenericCloud-Base.latest.x86_64.qcow2'), { ok: true, algorithm: 'sha256', digest: H256 });
  assert.deepEqual(findDigest(`SHA512 (x.img) = ${H512}\n`, 'x.img'), { ok: true, algorithm: 'sha512', digest: H512 });
});

test('a file holding one bare digest (a per-image .sha512) is that image\'s digest', () => {
  assert.deepEqual(findDigest(`${H512}\n`, 'nocloud_alpine-3.23.4-x86_64-bios-cloudinit-r0.qcow2'), { ok: true, algorithm: 'sha512', digest: H512 });
  assert.deepEqual(findDigest(`${H512}  nocloud_alpine.qcow2\n`, 'nocloud_alpine.qcow2'), { ok: true, algorithm: 'sha512', digest: H512 });
});

test('names are matched on the base name: "./x" and "dir/x" list x, "x.part" and "prefix-x" do not', () => {
  assert.equal(findDigest(`${H256}  ./images/x.qcow2\n`, 'x.qcow2').ok, true);
  const other = findDigest(`${H256}  x.qcow2.part\n${H256b}  my-x.qcow2\n`, 'x.qcow2');
  assert.deepEqual(other, { ok: false, reason: 'the checksum file has no entry for x.qcow2' });
});

test('SHA-512 wins over SHA-256 for the same file; two different digests of one algorithm are refused', () => {
  assert.deepEqual(findDigest(`${H256}  x.img\n${H512}  x.img\n`, 'x.img'), { ok: true, algorithm: 'sha512', digest: H512 });
  assert.deepEqual(findDigest(`${H256}  x.img\n${H256}  x.img\n`, 'x.img'), { ok: true, algorithm: 'sha256', digest: H256 });
  const r = findDigest(`${H256}  x.img\n${H256b}  x.img\n`, 'x.img');
  assert.equal(r.ok, false);
  assert.match(!r.ok ? r.reason : '', /2 different SHA256 digests for x\.img/);
});

test('a BSD tag that disagrees with the digest length is ignored; a file with no checksum lines says so', () => {
  assert.equal(findDigest(`SHA512 (x.img) = ${H256}\n`, 'x.img').ok, false);
  const html = findDigest('<html><body>404 Not Found</body></html>\n', 'x.img');
  assert.deepEqual(html, { ok: false, reason: 'the checksum file holds no checksum lines (expected "hex  name" or "SHA256 (name) = hex")' });
  // Two bare digests name nothing in particular.
  assert.equal(findDigest(`${H256}\n${H256b}\n`, 'x.img').ok, false);
});
