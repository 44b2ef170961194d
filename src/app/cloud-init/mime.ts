import { createHash } from 'node:crypto';

export interface MimePart {
  contentType: string;
  filename: string;
  body: string;
  headers?: Record<string, string>;
}

/**
 * A `multipart/mixed` message as cloud-init reads user-data parts (Python's email parser). The boundary
 * is derived from the parts' hash, so the same parts give the same bytes and no part can contain it.
 * A part that is not plain ASCII is sent base64: cloud-init decodes 8-bit text parts as Latin-1.
 */
export function multipartMixed(parts: MimePart[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p.body).update('\0');
  const boundary = `grove-${h.digest('hex').slice(0, 40)}`;
  const lines = [`Content-Type: multipart/mixed; boundary="${boundary}"`, 'MIME-Version: 1.0', ''];
  for (const p of parts) {
    const ascii = /^[\x00-\x7f]*$/.test(p.body);
    lines.push(
      `--${boundary}`,
      `Content-Type: ${p.contentType}; charset="utf-8"`,
      'MIME-Version: 1.0',
      `Content-Transfer-Encoding: ${ascii ? '7bit' : 'base64'}`,
      `Content-Disposition: attachment; filename="${p.filename}"`,
      ...Object.entries(p.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
      '',
      // The line break before a boundary belongs to the boundary: the body keeps its own last newline.
      ascii ? p.body : wrap(Buffer.from(p.body, 'utf8').toString('base64')),
    );
  }
  lines.push(`--${boundary}--`, '');
  return lines.join('\n');
}

function wrap(b64: string): string {
  return b64.match(/.{1,76}/g)?.join('\n') ?? '';
}
