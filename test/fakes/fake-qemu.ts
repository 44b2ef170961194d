import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** How a fake `qemu-system-x86_64` behaves when the accelerator probe runs it. */
export type FakeQemuKind =
  /** What nested KVM does with `-cpu host`: an error on stderr, status 1. */
  | 'msr-error'
  /** The same as QEMU 7.2 really ends on a nested host: the error line, then abort() (SIGABRT). */
  | 'msr-abort'
  /** A guest stuck in the firmware: QEMU runs on, here as a shell waiting on a child `sleep`. */
  | 'hang'
  /** Boots "something" that writes other text to the serial port, then QEMU ends normally. */
  | 'no-marker'
  /** What a working KVM does: the guest's marker on the serial file, then isa-debug-exit's status 33. */
  | 'marker';

const SERIAL_ARG = 'file,id=probe-serial,path=';

const BODIES: Record<FakeQemuKind, string> = {
  'msr-error': `echo "qemu-system-x86_64: warning: host doesn't support requested feature: CPUID.01H:ECX.pni [bit 0]" >&2
echo 'qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69' >&2
exit 1`,
  'msr-abort': `echo 'qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69' >&2
echo 'qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3113: kvm_buf_set_msrs: Assertion failed.' >&2
kill -ABRT $$`,
  hang: `sleep 1000 &
echo $! > "$DIR/child.pid"
wait`,
  'no-marker': `printf 'SeaBIOS (version 1.16.2)\\r\\nBooting from Hard Disk...\\r\\n' > "$serial"
exit 0`,
  marker: `printf 'GROVE-ACCEL-PROBE-OK\\r\\n' > "$serial"
exit 33`,
};

export interface FakeQemu {
  binary: string;
  /** Whether the probe ran it at all. */
  ran: () => boolean;
  /** The argv it was given (one argument per line in the file). */
  argv: () => string[];
  /** Pid of the fake itself and of the child a 'hang' fake starts. */
  pids: () => number[];
  remove: () => void;
}

/** A shell script standing in for QEMU; it records its argv and pid in its own directory. */
export function fakeQemu(kind: FakeQemuKind): FakeQemu {
  const dir = mkdtempSync(join(tmpdir(), 'grove-fake-qemu-'));
  const binary = join(dir, 'qemu-system-x86_64');
  writeFileSync(binary, `#!/bin/sh
DIR='${dir}'
echo $$ > "$DIR/self.pid"
printf '%s\\n' "$@" > "$DIR/argv"
serial=/dev/null
for a in "$@"; do case "$a" in ${SERIAL_ARG}*) serial="\${a#${SERIAL_ARG}}";; esac; done
${BODIES[kind]}
`);
  chmodSync(binary, 0o755);
  const read = (name: string): string => (existsSync(join(dir, name)) ? readFileSync(join(dir, name), 'utf8') : '');
  return {
    binary,
    ran: () => existsSync(join(dir, 'argv')),
    argv: () => read('argv').split('\n').slice(0, -1),
    pids: () => ['self.pid', 'child.pid'].map(read).filter(Boolean).map((t) => Number(t.trim())),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
