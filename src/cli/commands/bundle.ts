import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { EXIT, UsageError, flag, str, type Command } from '../command.js';
import { bytes, json } from '../output.js';

export const bundleExport: Command = {
  name: 'export', synopsis: ['export VM [-f FILE|-] [--gzip]', 'export VM --transfer PATH [--gzip]'],
  summary: 'Export a stopped VM as a bundle (tar: manifest, disk with snapshots, boot files)',
  help: `Streams the bundle to FILE (default NAME.grove.tar, or .tar.gz with --gzip; '-' for stdout). With
--transfer PATH the daemon writes it into its own <data>/transfer folder instead (PATH relative to it).`,
  options: { file: { type: 'string', short: 'f' }, gzip: { type: 'boolean' }, transfer: { type: 'string' } },
  args: [1, 1],
  async run(ctx, v, [ref]) {
    const gzip = flag(v, 'gzip');
    const transfer = str(v, 'transfer');
    if (transfer !== undefined) {
      if (str(v, 'file') !== undefined) throw new UsageError('--file and --transfer exclude each other');
      const r = await ctx.client.exportToTransfer(ref!, transfer, gzip);
      ctx.out(ctx.json ? json(r) : `Exported '${ref}' to ${r.path} on the daemon's host (${bytes(r.bytes)}).\n`);
      return EXIT.OK;
    }
    const vm = await ctx.client.getVm(ref!);
    const file = str(v, 'file') ?? `${vm.name}.grove.tar${gzip ? '.gz' : ''}`;
    if (file === '-' && process.stdout.isTTY) throw new UsageError('refusing to write a bundle to a terminal; use -f FILE or a pipe');
    const stream = await ctx.client.exportStream(vm.id, gzip);
    if (file === '-') {
      await pipeline(stream, process.stdout, { end: false });
      return EXIT.OK;
    }
    // 'wx': an existing file is not overwritten by accident.
    const handle = await open(file, 'wx').catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot write '${file}': ${e.code === 'EEXIST' ? 'it exists' : e.code ?? 'error'}`);
    });
    let written = 0;
    stream.on('data', (c: Buffer) => { written += c.length; });
    await pipeline(stream, createWriteStream('', { fd: handle.fd }));
    ctx.out(ctx.json ? json({ file, bytes: written, vm: vm.name }) : `Exported '${vm.name}' to ${file} (${bytes(written)}).\n`);
    return EXIT.OK;
  },
};

export const bundleImport: Command = {
  name: 'import', synopsis: ['import FILE|- [--name NAME]', 'import --transfer PATH [--name NAME]'],
  summary: 'Create a VM from a bundle made by export (uploaded, or from the daemon\'s transfer folder)',
  options: { name: { type: 'string' }, transfer: { type: 'string' } },
  args: [0, 1], vmArg: null,
  async run(ctx, v, [file]) {
    const name = str(v, 'name');
    const transfer = str(v, 'transfer');
    if ((transfer === undefined) === (file === undefined)) throw new UsageError('name a bundle FILE, or --transfer PATH on the daemon\'s host');
    const vm = transfer !== undefined
      ? await ctx.client.importFromTransfer(transfer, name)
      : await ctx.client.importStream(file === '-' ? process.stdin : createReadStream(file!), await isGzip(file!), name);
    ctx.out(ctx.json ? json(vm) : `Imported VM '${vm.name}' (${vm.id}).\n`);
    return EXIT.OK;
  },
};

/** gzip's magic bytes (stdin is taken as a plain tar: it cannot be peeked without buffering). */
async function isGzip(file: string): Promise<boolean> {
  if (file === '-') return false;
  const h = await open(file, 'r').catch((e: NodeJS.ErrnoException) => { throw new UsageError(`cannot read '${file}' (${e.code ?? 'error'})`); });
  try {
    const b = Buffer.alloc(2);
    await h.read(b, 0, 2, 0);
    return b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await h.close();
  }
}
