import { writeFile } from 'node:fs/promises';
import type { CreateSnapshot, Snapshot } from '../../client/index.js';
import type { Column } from '../format.js';
import { EXIT, UsageError, flag, str, type Command } from '../command.js';
import { bytes, json } from '../output.js';

export const suspend: Command = {
  name: 'suspend', synopsis: ['suspend VM'], summary: 'Save RAM and device state to disk and stop QEMU (start resumes exactly there)', args: [1, 1],
  async run(ctx, _v, [ref]) {
    const vm = await ctx.client.suspendVm(ref!);
    if (ctx.json) { ctx.out(json(vm)); return EXIT.OK; }
    const st = await ctx.client.suspendStatus(vm.id);
    ctx.out(`Suspended VM '${vm.name}' (${bytes(st.stateBytes ?? 0)} of saved state); 'grove start ${vm.name}' resumes it.\n`);
    return EXIT.OK;
  },
};

export const resize: Command = {
  name: 'resize', synopsis: ['resize VM SIZE_GB'], summary: 'Grow the disk to SIZE_GB GiB (online while running; never shrinks)', args: [2, 2],
  async run(ctx, _v, [ref, size]) {
    const sizeGB = Number(String(size).replace(/G(iB)?$/i, ''));
    if (!Number.isInteger(sizeGB) || sizeGB < 1) throw new UsageError(`SIZE_GB must be a whole number of GiB (got '${size}')`);
    const vm = await ctx.client.resizeDisk(ref!, sizeGB);
    ctx.out(ctx.json ? json(vm) : `Disk of '${vm.name}' is now ${vm.diskGB} GiB.\n`);
    return EXIT.OK;
  },
};

export const screenshot: Command = {
  name: 'screenshot', synopsis: ['screenshot VM [-o FILE] [--png] [--max-width PIXELS]'],
  summary: 'Save the VM display as JPEG (or PNG) to FILE (default <vm>.jpg / .png), shrunk to --max-width if given',
  options: { output: { type: 'string', short: 'o' }, png: { type: 'boolean' }, 'max-width': { type: 'string' } },
  args: [1, 1],
  async run(ctx, v, [ref]) {
    const format = flag(v, 'png') ? 'png' : 'jpeg';
    const maxWidth = str(v, 'max-width');
    // The API validates the number (a 400 names the allowed range); the CLI only passes it on.
    const shot = await ctx.client.screenshot(ref!, format, maxWidth !== undefined ? { maxWidth: Number(maxWidth) } : {});
    const file = str(v, 'output') ?? `${ref}.${format === 'png' ? 'png' : 'jpg'}`;
    await writeFile(file, Buffer.from(shot.data, 'base64'));
    ctx.out(ctx.json ? json({ file, format: shot.format, width: shot.width, height: shot.height }) : `Saved ${shot.width}×${shot.height} ${shot.format.toUpperCase()} to ${file}.\n`);
    return EXIT.OK;
  },
};

const SNAPSHOT_COLUMNS: Column<Snapshot>[] = [
  { name: 'name', value: (s) => s.name },
  { name: 'kind', value: (s) => s.kind },
  { name: 'restores-to', value: (s) => s.vmState },
  { name: 'created', value: (s) => s.createdAt },
  { name: 'id', value: (s) => s.id },
  { name: 'description', value: (s) => s.description ?? '' },
];

export const snapshotLs: Command = {
  name: 'snapshot ls', aliases: ['list'], synopsis: ['snapshot ls VM'], summary: 'List the snapshots of a VM', args: [1, 1], listing: true,
  async run(ctx, _v, [ref]) {
    ctx.listing(await ctx.client.listSnapshots(ref!), SNAPSHOT_COLUMNS);
    return EXIT.OK;
  },
};

export const snapshotCreate: Command = {
  name: 'snapshot create', synopsis: ['snapshot create VM [NAME] [--description TEXT] [--no-memory]'],
  summary: 'Snapshot a VM (running/paused: with RAM unless --no-memory; stopped: disk only)',
  options: { description: { type: 'string' }, 'no-memory': { type: 'boolean' } },
  args: [1, 2],
  async run(ctx, v, [ref, name]) {
    const body: CreateSnapshot = {};
    if (name !== undefined) body.name = name;
    const description = str(v, 'description');
    if (description !== undefined) body.description = description;
    if (flag(v, 'no-memory')) body.memory = false;
    const s = await ctx.client.createSnapshot(ref!, body);
    ctx.out(ctx.json ? json(s) : `Created ${s.kind} snapshot '${s.name}' of VM ${ref}.\n`);
    return EXIT.OK;
  },
};

export const snapshotRestore: Command = {
  name: 'snapshot restore', synopsis: ['snapshot restore VM SNAPSHOT [--force]'],
  summary: 'Restore a snapshot (--force: power a running VM off for a disk-only one)',
  options: { force: { type: 'boolean' } },
  args: [2, 2],
  async run(ctx, v, [ref, sid]) {
    const r = await ctx.client.restoreSnapshot(ref!, sid!, flag(v, 'force') ? { force: true } : {});
    ctx.out(ctx.json ? json(r) : `Restored '${r.snapshot.name}'; VM '${r.vm.name}' is ${r.vm.state}.\n`);
    return EXIT.OK;
  },
};

export const snapshotRm: Command = {
  name: 'snapshot rm', aliases: ['delete', 'remove'], synopsis: ['snapshot rm VM SNAPSHOT'], summary: 'Delete a snapshot', args: [2, 2],
  async run(ctx, _v, [ref, sid]) {
    await ctx.client.deleteSnapshot(ref!, sid!);
    ctx.out(ctx.json ? json({ deleted: true, vm: ref, snapshot: sid }) : `Deleted snapshot '${sid}' of VM ${ref}.\n`);
    return EXIT.OK;
  },
};
