import assert from 'node:assert/strict';

export interface Part { headers: Record<string, string>; body: string }

/**
 * The parts of a `multipart/mixed` user-data, read by RFC 2046's rules (the line break before a boundary
 * belongs to the boundary), base64 parts decoded: what cloud-init's email parser hands its handlers.
 */
export function readMultipart(text: string): Part[] {
  const head = text.split('\n\n', 1)[0]!;
  assert.match(head, /^Content-Type: multipart\/mixed; boundary="[^"]+"\nMIME-Version: 1\.0$/, `multipart header: ${head}`);
  const boundary = /boundary="([^"]+)"/.exec(head)![1]!;
  const chunks = text.split(`\n--${boundary}`);
  assert.equal(chunks.at(-1), '--\n', 'closing delimiter');
  return chunks.slice(1, -1).map((c) => {
    const at = c.indexOf('\n\n');
    const headers = Object.fromEntries(c.slice(1, at).split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
    const raw = c.slice(at + 2);
    return { headers, body: headers['Content-Transfer-Encoding'] === 'base64' ? Buffer.from(raw, 'base64').toString('utf8') : raw };
  });
}
