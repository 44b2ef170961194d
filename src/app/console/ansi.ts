// CSI (ESC [ ... final), OSC (ESC ] ... BEL/ST), two-byte escapes, and stray C0 controls except \t \n \r \b.
const ANSI_RE = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]|[\x00-\x07\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]/g;

export function stripAnsi(s: string): string {
  return s.replace(ANSI_RE, '');
}
