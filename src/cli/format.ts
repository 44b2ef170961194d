import { stringify as yamlStringify } from 'yaml';
import { UsageError } from './command.js';
import { suggest } from './suggest.js';

/** Output formats of listing commands (`--format`); `--json` is `--format json`. */
export const FORMATS = ['table', 'json', 'yaml', 'csv'] as const;
export type Format = (typeof FORMATS)[number];

/** One column of a listing: its name (`--columns`, csv/json keys) and how a row shows in it. */
export interface Column<T> {
  name: string;
  value(row: T): string;
  /** Shown only when `--columns` asks for it. */
  extra?: boolean;
}

export interface RenderOptions {
  format: Format;
  /** `--columns` (names as given), or null for the default set. */
  columns: string[] | null;
  /** The terminal's width for tables (null: not a terminal, nothing is cut). */
  width: number | null;
}

export function parseFormat(value: string | undefined, json: boolean): Format {
  if (value === undefined) return json ? 'json' : 'table';
  const f = value.toLowerCase();
  if (!(FORMATS as readonly string[]).includes(f)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')} (got '${value}')${suggest(f, FORMATS)}`);
  if (json && f !== 'json') throw new UsageError(`--json and --format ${f} contradict each other`);
  return f as Format;
}

export function pickColumns<T>(all: Column<T>[], asked: string[] | null): Column<T>[] {
  if (asked === null) return all.filter((c) => !c.extra);
  return asked.map((a) => {
    const c = all.find((x) => x.name === a.toLowerCase());
    if (!c) throw new UsageError(`unknown column '${a}'${suggest(a.toLowerCase(), all.map((x) => x.name))}; columns: ${all.map((x) => x.name).join(', ')}`);
    return c;
  });
}

/**
 * A listing in the format asked for. json/yaml give the API's own objects (`raw`), unless `--columns`
 * picks fields, then objects of those columns; table and csv give the columns.
 */
export function render<T>(rows: T[], all: Column<T>[], opts: RenderOptions, raw: unknown = rows): string {
  if ((opts.format === 'json' || opts.format === 'yaml') && opts.columns === null) {
    return opts.format === 'json' ? JSON.stringify(raw, null, 2) + '\n' : yamlStringify(raw);
  }
  const cols = pickColumns(all, opts.columns);
  const cells = rows.map((r) => cols.map((c) => c.value(r)));
  switch (opts.format) {
    case 'json':
    case 'yaml': {
      const objs = cells.map((row) => Object.fromEntries(cols.map((c, i) => [c.name, row[i]!])));
      return opts.format === 'json' ? JSON.stringify(objs, null, 2) + '\n' : yamlStringify(objs);
    }
    case 'csv':
      return [cols.map((c) => c.name), ...cells].map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
    default:
      return fitTable(cols.map((c) => c.name.toUpperCase()), cells, opts.width);
  }
}

function csvCell(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/**
 * An aligned table no wider than `width`: the widest columns give up characters first (their cells end
 * in `…`), down to a floor of 6 (or the header's length) per column.
 */
export function fitTable(headers: string[], rows: string[][], width: number | null): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const gap = 2;
  if (width !== null) {
    let total = widths.reduce((a, b) => a + b, 0) + gap * (widths.length - 1);
    const floor = headers.map((h) => Math.max(6, h.length));
    while (total > width) {
      let widest = -1;
      for (let i = 0; i < widths.length; i++) if (widths[i]! > floor[i]! && (widest === -1 || widths[i]! > widths[widest]!)) widest = i;
      if (widest === -1) break;
      widths[widest]!--;
      total--;
    }
  }
  const cut = (s: string, w: number) => (s.length > w ? `${s.slice(0, Math.max(0, w - 1))}…` : s);
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? cut(c, widths[i]!) : cut(c, widths[i]!).padEnd(widths[i]!))).join(' '.repeat(gap)).trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}
