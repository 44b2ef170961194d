/**
 * A small ISO 9660 image writer: one root directory of regular files, with Joliet names (what Linux,
 * blkid and cloud-init read) over ISO 9660 level 1 names (8.3, upper case, for readers without Joliet).
 * Pure: input to bytes, so it is unit-tested without tools and needs no genisoimage at run time.
 *
 * Layout (2 KiB sectors): 0–15 system area, 16 primary volume descriptor, 17 Joliet supplementary
 * descriptor, 18 terminator, 19–22 path tables (L and M, primary then Joliet), 23 primary root, 24 Joliet
 * root, then the files' data, each starting on a sector.
 */

export const SECTOR = 2048;

export interface IsoFile {
  /** Joliet name (up to 64 UCS-2 characters, no '/'). */
  name: string;
  data: Buffer;
}

export interface IsoOptions {
  /** Volume label (up to 16 characters; d-characters and lower case as mkisofs allows). */
  volumeId: string;
  files: IsoFile[];
  /** Recorded as every date in the image (default: now); fixed dates give identical bytes. */
  date?: Date;
}

const FIRST_DATA_SECTOR = 25;
const SECTORS = { pvd: 16, svd: 17, terminator: 18, lPrimary: 19, mPrimary: 20, lJoliet: 21, mJoliet: 22, rootPrimary: 23, rootJoliet: 24 } as const;
const PATH_TABLE_SIZE = 10; // one entry (the root): 8 bytes + a 1-byte name + 1 pad byte

export function buildIso9660(opts: IsoOptions): Buffer {
  const date = opts.date ?? new Date();
  if (opts.volumeId.length === 0 || opts.volumeId.length > 16 || !/^[A-Za-z0-9_]+$/.test(opts.volumeId)) throw new Error(`invalid ISO volume id '${opts.volumeId}'`);
  const seen = new Set<string>();
  for (const f of opts.files) {
    if (f.name.length === 0 || f.name.length > 64 || /[/\\\0;*:?]/.test(f.name)) throw new Error(`invalid ISO file name '${f.name}'`);
    if (seen.has(f.name)) throw new Error(`ISO file '${f.name}' given twice`);
    seen.add(f.name);
  }

  // Data first, so every directory record knows its file's extent.
  let next = FIRST_DATA_SECTOR;
  const placed = opts.files.map((f) => {
    const at = next;
    next += Math.max(1, Math.ceil(f.data.length / SECTOR));
    return { ...f, at, primaryName: '' };
  });
  const used = new Set<string>();
  for (const p of placed) p.primaryName = level1Name(p.name, used);
  const total = next;

  const primaryRoot = directory(SECTORS.rootPrimary, date,
    [...placed].sort((a, b) => cmp(a.primaryName, b.primaryName)).map((p) => ({ id: Buffer.from(`${p.primaryName};1`, 'ascii'), at: p.at, size: p.data.length })));
  const jolietRoot = directory(SECTORS.rootJoliet, date,
    [...placed].sort((a, b) => cmp16(a.name, b.name)).map((p) => ({ id: ucs2(p.name), at: p.at, size: p.data.length })));

  const img = Buffer.alloc(total * SECTOR);
  volumeDescriptor(img, 'primary', opts.volumeId, total, date);
  volumeDescriptor(img, 'joliet', opts.volumeId, total, date);
  const term = SECTORS.terminator * SECTOR;
  img[term] = 255;
  img.write('CD001', term + 1, 'ascii');
  img[term + 6] = 1;
  pathTable(img, SECTORS.lPrimary, SECTORS.rootPrimary, 'le');
  pathTable(img, SECTORS.mPrimary, SECTORS.rootPrimary, 'be');
  pathTable(img, SECTORS.lJoliet, SECTORS.rootJoliet, 'le');
  pathTable(img, SECTORS.mJoliet, SECTORS.rootJoliet, 'be');
  primaryRoot.copy(img, SECTORS.rootPrimary * SECTOR);
  jolietRoot.copy(img, SECTORS.rootJoliet * SECTOR);
  for (const p of placed) p.data.copy(img, p.at * SECTOR);
  return img;
}

function volumeDescriptor(img: Buffer, kind: 'primary' | 'joliet', volumeId: string, total: number, date: Date): void {
  const o = (kind === 'primary' ? SECTORS.pvd : SECTORS.svd) * SECTOR;
  const joliet = kind === 'joliet';
  img[o] = joliet ? 2 : 1;
  img.write('CD001', o + 1, 'ascii');
  img[o + 6] = 1;
  text(img, o + 8, 32, '', joliet); // system identifier
  text(img, o + 40, 32, volumeId, joliet);
  both32(img, o + 80, total);
  if (joliet) img.write('%/E', o + 88, 'ascii'); // UCS-2 level 3
  both16(img, o + 120, 1); // volume set size
  both16(img, o + 124, 1); // volume sequence number
  both16(img, o + 128, SECTOR);
  both32(img, o + 132, PATH_TABLE_SIZE);
  img.writeUInt32LE(joliet ? SECTORS.lJoliet : SECTORS.lPrimary, o + 140);
  img.writeUInt32BE(joliet ? SECTORS.mJoliet : SECTORS.mPrimary, o + 148);
  record({ id: Buffer.from([0]), at: joliet ? SECTORS.rootJoliet : SECTORS.rootPrimary, size: SECTOR, dir: true }, date).copy(img, o + 156);
  text(img, o + 190, 128, '', joliet); // volume set
  text(img, o + 318, 128, '', joliet); // publisher
  text(img, o + 446, 128, '', joliet); // data preparer
  text(img, o + 574, 128, 'GROVE', joliet); // application
  text(img, o + 702, 37, '', joliet); // copyright file
  text(img, o + 739, 37, '', joliet); // abstract file
  text(img, o + 776, 37, '', joliet); // bibliographic file
  longDate(img, o + 813, date); // creation
  longDate(img, o + 830, date); // modification
  longDate(img, o + 847, null); // expiration
  longDate(img, o + 864, date); // effective
  img[o + 881] = 1; // file structure version
}

function pathTable(img: Buffer, sector: number, rootSector: number, endian: 'le' | 'be'): void {
  const o = sector * SECTOR;
  img[o] = 1; // length of the directory identifier
  if (endian === 'le') { img.writeUInt32LE(rootSector, o + 2); img.writeUInt16LE(1, o + 6); } else { img.writeUInt32BE(rootSector, o + 2); img.writeUInt16BE(1, o + 6); }
  // identifier 0x00 (the root) and a pad byte: already zero
}

function directory(self: number, date: Date, entries: { id: Buffer; at: number; size: number }[]): Buffer {
  const records = [
    record({ id: Buffer.from([0]), at: self, size: SECTOR, dir: true }, date),
    record({ id: Buffer.from([1]), at: self, size: SECTOR, dir: true }, date),
    ...entries.map((e) => record({ ...e, dir: false }, date)),
  ];
  const out = Buffer.concat(records);
  // A record may not cross a sector boundary; one sector holds dozens of these.
  if (out.length > SECTOR) throw new Error('too many files for a one-sector ISO directory');
  return Buffer.concat([out, Buffer.alloc(SECTOR - out.length)]);
}

function record(r: { id: Buffer; at: number; size: number; dir: boolean }, date: Date): Buffer {
  const len = 33 + r.id.length + (r.id.length % 2 === 0 ? 1 : 0);
  const b = Buffer.alloc(len);
  b[0] = len;
  both32(b, 2, r.at);
  both32(b, 10, r.size);
  const d = date;
  b[18] = d.getUTCFullYear() - 1900;
  b[19] = d.getUTCMonth() + 1;
  b[20] = d.getUTCDate();
  b[21] = d.getUTCHours();
  b[22] = d.getUTCMinutes();
  b[23] = d.getUTCSeconds();
  b[24] = 0; // GMT offset
  b[25] = r.dir ? 2 : 0;
  both16(b, 28, 1); // volume sequence number
  b[32] = r.id.length;
  r.id.copy(b, 33);
  return b;
}

/** An 8.3 upper-case name, unique among `used` (a `~n` suffix on a clash). */
function level1Name(name: string, used: Set<string>): string {
  const clean = (s: string) => s.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  const dot = name.lastIndexOf('.');
  const base = clean(dot > 0 ? name.slice(0, dot) : name) || '_';
  const ext = dot > 0 ? clean(name.slice(dot + 1)).slice(0, 3) : '';
  for (let i = 0; ; i++) {
    const suffix = i === 0 ? '' : `~${i}`;
    const candidate = `${base.slice(0, 8 - suffix.length)}${suffix}.${ext}`;
    if (!used.has(candidate)) { used.add(candidate); return candidate; }
  }
}

function ucs2(s: string): Buffer {
  const le = Buffer.from(s, 'utf16le');
  for (let i = 0; i < le.length; i += 2) { const t = le[i]!; le[i] = le[i + 1]!; le[i + 1] = t; }
  return le;
}

function text(img: Buffer, at: number, width: number, value: string, joliet: boolean): void {
  if (joliet) {
    for (let i = 0; i < width - 1; i += 2) img.writeUInt16BE(0x20, at + i);
    ucs2(value).copy(img, at, 0, Math.min(width - (width % 2), value.length * 2));
  } else {
    img.fill(0x20, at, at + width);
    img.write(value.slice(0, width), at, 'ascii');
  }
}

function longDate(img: Buffer, at: number, date: Date | null): void {
  if (date === null) { img.fill(0x30, at, at + 16); img[at + 16] = 0; return; }
  const p = (n: number, w: number) => String(n).padStart(w, '0');
  const s = `${p(date.getUTCFullYear(), 4)}${p(date.getUTCMonth() + 1, 2)}${p(date.getUTCDate(), 2)}${p(date.getUTCHours(), 2)}${p(date.getUTCMinutes(), 2)}${p(date.getUTCSeconds(), 2)}00`;
  img.write(s, at, 'ascii');
  img[at + 16] = 0; // GMT offset
}

function both16(b: Buffer, at: number, v: number): void { b.writeUInt16LE(v, at); b.writeUInt16BE(v, at + 2); }
function both32(b: Buffer, at: number, v: number): void { b.writeUInt32LE(v, at); b.writeUInt32BE(v, at + 4); }
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const cmp16 = (a: string, b: string): number => Buffer.compare(ucs2(a), ucs2(b));
