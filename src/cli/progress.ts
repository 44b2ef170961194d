import { bytes } from './output.js';

export interface ProgressFacts {
  bytes: number;
  totalBytes: number | null;
  bytesPerSecond: number | null;
}

/** `1:05`, `1:02:03`; `-` when unknown. */
export function eta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/**
 * One line of a download's progress, fitted to `width` columns:
 * `debian-12 [=======>        ]  45%  150.2 MiB / 331.0 MiB  12.3 MiB/s  ETA 0:15`.
 * Without a known size the bar is left out (bytes and rate only).
 */
export function progressLine(label: string, p: ProgressFacts, width: number): string {
  const rate = p.bytesPerSecond !== null ? `${bytes(p.bytesPerSecond)}/s` : '-/s';
  if (p.totalBytes === null || p.totalBytes <= 0) return fit(`${label}  ${bytes(p.bytes)}  ${rate}`, width);
  const frac = Math.min(1, p.bytes / p.totalBytes);
  const left = p.bytesPerSecond ? (p.totalBytes - p.bytes) / p.bytesPerSecond : null;
  const tail = `${String(Math.floor(frac * 100)).padStart(3)}%  ${bytes(p.bytes)} / ${bytes(p.totalBytes)}  ${rate}  ETA ${eta(left)}`;
  const barWidth = Math.max(0, Math.min(40, width - label.length - tail.length - 6));
  if (barWidth < 5) return fit(`${label}  ${tail}`, width);
  const filled = Math.floor(frac * barWidth);
  const bar = '='.repeat(filled) + (filled < barWidth ? '>' : '') + ' '.repeat(Math.max(0, barWidth - filled - 1));
  return fit(`${label} [${bar}] ${tail}`, width);
}

function fit(s: string, width: number): string {
  return s.length <= width ? s : s.slice(0, Math.max(0, width - 1));
}
