/**
 * The accelerator probe's guest: one BIOS boot sector, assembled here by hand so no assembler is needed.
 * SeaBIOS loads it at 0000:7C00 and jumps to it; it writes PROBE_MARKER to COM1 and then asks QEMU to exit
 * through the isa-debug-exit device. Reaching the marker means the accelerator ran the firmware and real-mode
 * guest code on the chosen CPU model: on a nested host whose KVM cannot run guests, QEMU dies setting the
 * CPU's MSRs, or the firmware hangs before the boot sector ever runs.
 */

/** What the guest writes to COM1; the probe passes only when it is seen. */
export const PROBE_MARKER = 'GROVE-ACCEL-PROBE-OK';

/** The I/O port of `-device isa-debug-exit` (its default) and the byte the guest writes to it. */
export const DEBUG_EXIT_PORT = 0x501;
const DEBUG_EXIT_VALUE = 0x10;

/** isa-debug-exit makes QEMU exit with `(value << 1) | 1`: 33, a status QEMU never uses for its own errors. */
export const PROBE_EXIT_CODE = (DEBUG_EXIT_VALUE << 1) | 1;

/**
 * How large the disk image must be. SeaBIOS refuses a disk smaller than one cylinder of its default
 * geometry (16 heads x 63 sectors of 512 bytes: "could not read the boot disk"), so the sector is padded
 * with zeros; the file is sparse, so this costs one block on disk.
 */
export const PROBE_DISK_BYTES = 16 * 63 * 512;

const LOAD_ADDRESS = 0x7c00;
const COM1 = 0x3f8;
const lo = (w: number): number => w & 0xff;
const hi = (w: number): number => (w >> 8) & 0xff;

/** 16-bit real-mode code; `msg` is the address of the NUL-terminated marker right after it. */
function code(msg: number): number[] {
  return [
    0xfa, //                       7C00  cli                  no interrupts: nothing here handles them
    0xfc, //                       7C01  cld                  lodsb walks forwards
    0x31, 0xc0, //                 7C02  xor  ax, ax
    0x8e, 0xd8, //                 7C04  mov  ds, ax          the marker is addressed from segment 0
    0xbe, lo(msg), hi(msg), //     7C06  mov  si, msg
    0xba, lo(COM1), hi(COM1), //   7C09  mov  dx, 0x3F8       COM1 data register (QEMU sends at once, no set-up)
    0xac, //                 loop: 7C0C  lodsb                al = [ds:si++]
    0x84, 0xc0, //                 7C0D  test al, al
    0x74, 0x03, //                 7C0F  jz   done            +3: over the out and the jmp
    0xee, //                       7C11  out  dx, al
    0xeb, 0xf8, //                 7C12  jmp  loop            -8: back to 7C0C
    0xba, lo(DEBUG_EXIT_PORT), hi(DEBUG_EXIT_PORT), // done: 7C14  mov dx, 0x501
    0xb0, DEBUG_EXIT_VALUE, //     7C17  mov  al, 0x10
    0xee, //                       7C19  out  dx, al          QEMU exits with status 33
    0xf4, //                 halt: 7C1A  hlt                  if there is no debug-exit device, stay here
    0xeb, 0xfd, //                 7C1B  jmp  halt            -3: back to 7C1A
  ];
}

/** The 512-byte boot sector: code, marker, zeros, and the 0x55 0xAA signature the BIOS looks for. */
export function probeBootSector(): Buffer {
  const length = code(0).length;
  const message = Buffer.from(`${PROBE_MARKER}\r\n\0`, 'latin1');
  const sector = Buffer.alloc(512);
  Buffer.from(code(LOAD_ADDRESS + length)).copy(sector, 0);
  message.copy(sector, length);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}
