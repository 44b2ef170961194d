/**
 * The guest addresses QEMU's user network (libslirp) aims its host port forwards at, from HMP
 * `info usernet` (QMP has no query for them), by host port. A line looks like
 * `  TCP[HOST_FORWARD]   8       127.0.0.1 22999       10.0.2.16    22     0     0`.
 */
export function hostForwardTargets(infoUsernet: string): Map<number, string> {
  const targets = new Map<number, string>();
  for (const line of infoUsernet.split(/\r?\n/)) {
    const m = /^\s*(?:TCP|UDP)\[HOST_FORWARD\]\s+-?\d+\s+\S+\s+(\d+)\s+(\d{1,3}(?:\.\d{1,3}){3})\s+\d+/.exec(line);
    if (m) targets.set(Number(m[1]), m[2]!);
  }
  return targets;
}
