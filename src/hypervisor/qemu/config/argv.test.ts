import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildQemuOptions, renderArgv } from './argv.js';
import { escapeOptValue, renderOpts } from '../../../util/qemu-opts.js';
import type { Vm } from '../../../domain/vm.js';
import type { LaunchSpec } from '../../../ports/hypervisor.js';

const vm: Vm = {
  id: '6f1c1f3e-8c52-4b8a-9d1e-3c1f9a0b2c4d', name: 'web1', state: 'stopped', cpu: 2, memoryMB: 512, diskGB: 4,
  distro: null, boot: { kernel: '/d/vms/x/kernel', initrd: '/d/vms/x/initrd', cmdline: 'console=ttyS0 quiet' },
  network: { mode: 'user', portForwards: [{ host: 2222, guest: 22, protocol: 'tcp' }] }, order: 0,
  createdAt: '', updatedAt: '', startedAt: null, accelerator: null, lastError: null, cloudInit: null, autostart: false,
};

function spec(overrides: Partial<Vm> = {}, dir = '/d/vms/x'): LaunchSpec {
  return {
    vm: { ...vm, ...overrides },
    accelerator: 'tcg',
    paths: {
      dir, disk: `${dir}/disk.qcow2`, qmpSocket: `${dir}/qmp.sock`, consolePipe: `${dir}/console`,
      consoleIn: `${dir}/console.in`, consoleOut: `${dir}/console.out`, consoleHistory: `${dir}/console.history`, consoleStart: `${dir}/console.start`, guestAgentSocket: `${dir}/qga.sock`, pidFile: `${dir}/qemu.pid`,
      qemuLog: `${dir}/qemu.log`, savedState: `${dir}/state.bin`, savedStateMeta: `${dir}/state.json`, migrationSocket: `${dir}/migrate.sock`, seed: `${dir}/seed.iso`,
      vncSocket: `${dir}/vnc.sock`,
    },
  };
}

test('commas in user values are doubled', () => {
  assert.equal(escapeOptValue('a,b,,c'), 'a,,b,,,,c');
  assert.equal(renderOpts('file', { filename: '/x/disk.img,file.driver=ssh' }), 'file,filename=/x/disk.img,,file.driver=ssh');
  assert.throws(() => escapeOptValue('a\nb'));
});

test('a path with a comma cannot add options to -blockdev', () => {
  const argv = renderArgv(buildQemuOptions(spec({}, '/d/vms/evil,driver=ssh')));
  const blockdev = argv[argv.indexOf('-blockdev') + 1]!;
  assert.equal(blockdev, 'driver=file,filename=/d/vms/evil,,driver=ssh/disk.qcow2,node-name=disk0-file,cache.direct=off,discard=unmap');
});

test('direct-boot VM renders the expected argv', () => {
  const argv = renderArgv(buildQemuOptions(spec()));
  const pairs = (flag: string) => argv.flatMap((a, i) => (a === flag ? [argv[i + 1]] : []));
  assert.deepEqual(pairs('-machine'), ['q35,accel=tcg']);
  assert.deepEqual(pairs('-cpu'), ['max']);
  assert.deepEqual(pairs('-smp'), ['2']);
  assert.deepEqual(pairs('-m'), ['512M']);
  assert.deepEqual(pairs('-kernel'), ['/d/vms/x/kernel']);
  assert.deepEqual(pairs('-append'), ['console=ttyS0 quiet']);
  assert.deepEqual(pairs('-blockdev')[1], 'driver=qcow2,file=disk0-file,node-name=disk0,discard=unmap');
  assert.deepEqual(pairs('-netdev'), ['user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22']);
  assert.ok(pairs('-chardev').includes('pipe,id=serial0,path=/d/vms/x/console'));
  assert.ok(argv.includes('-daemonize'));
  assert.ok(argv.includes('-nodefaults'));
});

test('kvm uses the host cpu; network none adds no nic; iso adds a cdrom', () => {
  const s = spec({ network: { mode: 'none', portForwards: [] }, boot: { iso: '/d/images/x.iso' } });
  s.accelerator = 'kvm';
  const argv = renderArgv(buildQemuOptions(s));
  assert.equal(argv[argv.indexOf('-cpu') + 1], 'host');
  assert.equal(argv.includes('-netdev'), false);
  assert.equal(argv.includes('-kernel'), false);
  assert.ok(argv.some((a) => a.startsWith('ide-cd,drive=cdrom0')));
});

test('a VM with cloud-init gets its seed as a read-only virtio disk; one without gets none', () => {
  const cloudInit = {
    user: 'grove', hostname: 'web1', instanceId: vm.id, sshAuthorizedKeys: [], packages: [], timezone: null, password: false, userData: false,
  };
  const argv = renderArgv(buildQemuOptions(spec({ cloudInit }, '/d/vms/a,b')));
  const pairs = (flag: string) => argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));
  assert.deepEqual(pairs('-blockdev').slice(2), [
    'driver=file,filename=/d/vms/a,,b/seed.iso,node-name=seed0-file,read-only=on',
    'driver=raw,file=seed0-file,node-name=seed0,read-only=on',
  ]);
  const devices = pairs('-device');
  assert.ok(devices.includes('virtio-blk-pci,drive=seed0,id=seed0-dev'), devices.join(' '));
  assert.ok(devices.indexOf('virtio-blk-pci,drive=seed0,id=seed0-dev') > devices.findIndex((d) => d.startsWith('virtio-blk-pci,drive=disk0')),
    'the seed comes after the disk, so the disk stays the first virtio disk (vda)');

  const plain = renderArgv(buildQemuOptions(spec()));
  assert.equal(plain.some((a) => a.includes('seed')), false);
});

test('the screen is a VNC server on a unix socket in the VM folder, with absolute pointers', () => {
  const argv = renderArgv(buildQemuOptions(spec({}, '/d/vms/a,b')));
  assert.deepEqual(argv.flatMap((a, i) => (a === '-vnc' ? [argv[i + 1]] : [])), ['unix:/d/vms/a,,b/vnc.sock']);
  const devices = argv.flatMap((a, i) => (a === '-device' ? [argv[i + 1]!] : []));
  assert.ok(devices.includes('usb-tablet,id=tablet0,bus=usb0.0'));
  assert.ok(devices.includes('virtio-tablet-pci,id=tablet1'));
  // After the disk and network devices: their PCI slots stay where saved states put them.
  assert.ok(devices.indexOf('qemu-xhci,id=usb0') > devices.findIndex((d) => d.startsWith('virtio-net-pci')));
});
