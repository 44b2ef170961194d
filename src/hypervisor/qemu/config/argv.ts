import type { Accelerator, PortForward } from '../../../domain/vm.js';
import { macAddressOf } from '../../../domain/mac.js';
import type { LaunchSpec } from '../../../ports/hypervisor.js';
import { escapeOptValue, renderOpts } from '../../../util/qemu-opts.js';

/**
 * Names the VM's disk is given on the command line. The driver finds the disk by them in QMP answers;
 * a clone later puts overlays with other node names on top of DISK_NODE.
 */
export const DISK_FILE_NODE = 'disk0-file';
export const DISK_NODE = 'disk0';
export const DISK_DEVICE = 'disk0-dev';
const SEED_FILE_NODE = 'seed0-file';
const SEED_NODE = 'seed0';

/** The user network's netdev: host port forwards are changed on it by id (HMP hostfwd_add/remove). */
export const NETDEV_ID = 'net0';

/**
 * A host port forward as QEMU's user network writes it: `tcp:127.0.0.1:2222-:22`, or aimed at one guest
 * address (`-10.0.2.16:22`) when retargeted; the part before the dash alone names it for hostfwd_remove.
 */
export function hostForwardRule(f: PortForward, guestIp = ''): { host: string; rule: string } {
  const host = `${f.protocol}:127.0.0.1:${f.host}`;
  return { host, rule: `${host}-${guestIp}:${f.guest}` };
}

/** The machine every VM gets; the accelerator probe boots its guest on the same one. */
export const MACHINE_TYPE = 'q35';

/**
 * The CPU model for each accelerator. KVM passes the host CPU through (fastest, and what a guest kernel
 * tunes itself for); TCG emulates every feature it can. The accelerator probe proves KVM with this same
 * model, because on nested hosts one model can fail where another would start.
 */
export function cpuModel(accelerator: Accelerator): string {
  return accelerator === 'kvm' ? 'host' : 'max';
}

export interface QemuOption {
  flag: string;
  value?: string;
}

/**
 * The VM's QEMU configuration as plain data, rendered to argv at the end (the Incus way): tests compare it
 * with expected text without starting QEMU, and benchmarks launch the very same line by hand.
 */
export function buildQemuOptions(spec: LaunchSpec): QemuOption[] {
  const { vm, paths, accelerator } = spec;
  const o: QemuOption[] = [];
  const add = (flag: string, value?: string): void => { o.push(value === undefined ? { flag } : { flag, value }); };

  add('-name', renderOpts(null, { guest: vm.name, 'debug-threads': true }));
  add('-uuid', vm.id);
  add('-machine', renderOpts(MACHINE_TYPE, { accel: accelerator }));
  add('-cpu', cpuModel(accelerator));
  add('-smp', String(vm.cpu));
  add('-m', `${vm.memoryMB}M`);
  add('-nodefaults');
  add('-no-user-config');
  add('-display', 'none');
  // A display device without a window, so screendump works on a headless host.
  add('-device', renderOpts('VGA', { id: 'video0' }));
  // The screen for viewers (noVNC through the daemon's WebSocket): a unix socket in the VM folder, never a
  // TCP port; no password because only the daemon (and root) can open the folder. Several viewers share it.
  add('-vnc', `unix:${escapeOptValue(paths.vncSocket)}`);

  add('-chardev', renderOpts('socket', { id: 'qmp', path: paths.qmpSocket, server: true, wait: false }));
  add('-mon', renderOpts(null, { chardev: 'qmp', mode: 'control' }));
  // A pipe chardev: QEMU writes output straight into a regular file (kept while no daemon is attached,
  // and never retried: a socket chardev's `logfile=` logs a byte again each time a full socket makes the
  // UART retry it), and reads input from a FIFO it opens read-write, so it never sees EOF when the
  // daemon goes away and comes back.
  add('-chardev', renderOpts('pipe', { id: 'serial0', path: paths.consolePipe }));
  add('-serial', 'chardev:serial0');

  add('-device', renderOpts('virtio-serial-pci', { id: 'vser0' }));
  add('-chardev', renderOpts('socket', { id: 'qga0', path: paths.guestAgentSocket, server: true, wait: false }));
  add('-device', renderOpts('virtserialport', { chardev: 'qga0', name: 'org.qemu.guest_agent.0' }));

  // Formats are always named, never probed: a guest-written image must not be able to name host files.
  add('-blockdev', renderOpts(null, {
    driver: 'file', filename: paths.disk, 'node-name': DISK_FILE_NODE, 'cache.direct': false, discard: 'unmap',
  }));
  add('-blockdev', renderOpts(null, { driver: 'qcow2', file: DISK_FILE_NODE, 'node-name': DISK_NODE, discard: 'unmap' }));
  add('-device', renderOpts('virtio-blk-pci', { drive: DISK_NODE, id: DISK_DEVICE, bootindex: 1 }));

  if (vm.boot.iso) {
    add('-blockdev', renderOpts(null, { driver: 'file', filename: vm.boot.iso, 'node-name': 'cdrom0-file', 'read-only': true }));
    add('-blockdev', renderOpts(null, { driver: 'raw', file: 'cdrom0-file', 'node-name': 'cdrom0', 'read-only': true }));
    add('-device', renderOpts('ide-cd', { drive: 'cdrom0', bus: 'ide.0', id: 'cdrom0-dev', bootindex: 0 }));
  }
  if (vm.cloudInit !== null) {
    // virtio-blk, not a CD: every cloud kernel has virtio_blk (its root disk needs it), while ATA/SCSI
    // CD drivers may be modules a minimal initramfs lacks. cloud-init finds it by its `cidata` label.
    add('-blockdev', renderOpts(null, { driver: 'file', filename: paths.seed, 'node-name': SEED_FILE_NODE, 'read-only': true }));
    add('-blockdev', renderOpts(null, { driver: 'raw', file: SEED_FILE_NODE, 'node-name': SEED_NODE, 'read-only': true }));
    add('-device', renderOpts('virtio-blk-pci', { drive: SEED_NODE, id: 'seed0-dev' }));
  }
  if (vm.boot.kernel) add('-kernel', vm.boot.kernel);
  if (vm.boot.initrd) add('-initrd', vm.boot.initrd);
  if (vm.boot.kernel && vm.boot.cmdline !== undefined) add('-append', vm.boot.cmdline);

  if (vm.network.mode === 'user') {
    const fwd = vm.network.portForwards.map((f) => `hostfwd=${hostForwardRule(f).rule}`);
    add('-netdev', ['user', `id=${NETDEV_ID}`, ...fwd].join(','));
    // No option ROM: Grove never network-boots, and iPXE's start-up costs every boot time under TCG.
    add('-device', renderOpts('virtio-net-pci', { netdev: NETDEV_ID, id: 'net0-dev', mac: macAddressOf(vm.id), romfile: '' }));
  }

  // Absolute pointers, so a click lands where it is aimed (a relative PS/2 mouse drifts with the guest's
  // acceleration). A USB tablet for guests with USB (Windows, installers, desktop kernels) and a virtio one
  // for kernels without USB (cloud kernels); QEMU routes the events to whichever the guest drives. Added
  // after every other device so the PCI addresses of those stay what earlier saved states expect.
  add('-device', renderOpts('qemu-xhci', { id: 'usb0' }));
  add('-device', renderOpts('usb-tablet', { id: 'tablet0', bus: 'usb0.0' }));
  add('-device', renderOpts('virtio-tablet-pci', { id: 'tablet1' }));

  if (spec.loadSnapshot !== undefined) add('-loadvm', spec.loadSnapshot);
  if (spec.incoming) add('-incoming', 'defer');

  add('-pidfile', paths.pidFile);
  // QEMU keeps stderr open (instead of /dev/null) after -daemonize when -D names a log file.
  add('-D', paths.qemuLog);
  add('-daemonize');
  return o;
}

export function renderArgv(options: QemuOption[]): string[] {
  return options.flatMap((x) => (x.value === undefined ? [x.flag] : [x.flag, x.value]));
}
