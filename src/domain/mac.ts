/**
 * The MAC address of a VM's NIC, derived from its id: stable across its boots, different for every VM
 * (QEMU's default would give every VM 52:54:00:12:34:56), in QEMU's locally administered 52:54:00 range.
 * FNV-1a over the id's characters: pure and dependency-free; 24 bits are plenty on one host's NAT.
 */
export function macAddressOf(vmId: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < vmId.length; i++) {
    h ^= vmId.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  const b = [(h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff];
  return ['52', '54', '00', ...b.map((x) => x.toString(16).padStart(2, '0'))].join(':');
}
