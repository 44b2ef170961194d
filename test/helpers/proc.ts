import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/**
 * Whether process `pid` still holds (has an open fd for) the TCP connection between `serverPort` on its side
 * and `clientPort` on ours. Lets a test see that the server let go of a connection without reading from it.
 * Linux only (/proc).
 */
export function holdsConnection(pid: number, serverPort: number, clientPort: number): boolean {
  const inodes = new Set<string>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(f, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const local = parseInt(cols[1]!.split(':')[1]!, 16);
      const remote = parseInt(cols[2]!.split(':')[1]!, 16);
      if (local === serverPort && remote === clientPort && cols[9] !== '0') inodes.add(cols[9]!);
    }
  }
  if (inodes.size === 0) return false;
  let fds: string[] = [];
  try { fds = readdirSync(`/proc/${pid}/fd`); } catch { return false; }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m && inodes.has(m[1]!)) return true;
    } catch { /* fd closed meanwhile */ }
  }
  return false;
}
