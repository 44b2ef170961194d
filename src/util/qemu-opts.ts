/**
 * QEMU's option syntax (`key=value,key=value`) treats a comma as a separator; a literal comma inside a
 * value is written `,,`. Anything a user chose (a path, a name) goes through this before it is placed in
 * an option string, so `disk.img,file.driver=...` cannot smuggle extra options in.
 */
export function escapeOptValue(value: string): string {
  if (/[\0\n\r]/.test(value)) throw new Error('option values may not contain NUL or newlines');
  return value.replaceAll(',', ',,');
}

/** Renders `driver,key=value,...` from plain data; values are escaped, keys are ours. */
export function renderOpts(head: string | null, opts: Record<string, string | number | boolean | undefined>): string {
  const parts: string[] = head === null ? [] : [head];
  for (const [k, v] of Object.entries(opts)) {
    if (v === undefined) continue;
    const s = typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v);
    parts.push(`${k}=${escapeOptValue(s)}`);
  }
  return parts.join(',');
}

/**
 * The version from `qemu-system-* --version` or `qemu-img --version` output ("... version 7.2.0 (Debian
 * 1:7.2+dfsg-7)"); the first line when no version is named, "unknown" for empty output.
 */
export function parseQemuVersion(stdout: string): string {
  return /version\s+(\S+)/.exec(stdout)?.[1] ?? (stdout.split('\n')[0]?.trim() || 'unknown');
}
