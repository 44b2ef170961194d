import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { BUNDLE_FORMAT, BUNDLE_VERSION, type BundleManifest } from '../../domain/bundle.js';
import { invalid } from '../../domain/errors.js';
import { LIMITS, NAME_PATTERN } from '../../domain/vm.js';

const Name = Type.String({ pattern: NAME_PATTERN });
/** What Date#toISOString writes, the only form Grove stores. */
const Timestamp = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?Z$' });
const BundleFileEntry = Type.Object({
  size: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
}, { additionalProperties: false });

/**
 * `manifest.json` of a bundle (version 1), exactly as BundleService writes it: checked whole before
 * anything of the bundle is unpacked or stored. Unknown fields are refused, as everywhere else.
 */
export const BundleManifestSchema = Type.Object({
  format: Type.Literal(BUNDLE_FORMAT),
  version: Type.Literal(BUNDLE_VERSION),
  groveVersion: Type.String({ maxLength: 128 }),
  exportedAt: Timestamp,
  vm: Type.Object({
    name: Name,
    cpu: Type.Integer({ minimum: 1, maximum: LIMITS.cpuMax }),
    memoryMB: Type.Integer({ minimum: LIMITS.memoryMBMin, maximum: LIMITS.memoryMBMax }),
    diskGB: Type.Integer({ minimum: 1, maximum: LIMITS.diskGBMax }),
    cmdline: Type.Optional(Type.String({ maxLength: 4096 })),
    network: Type.Object({
      mode: Type.Union([Type.Literal('user'), Type.Literal('none')]),
      portForwards: Type.Array(Type.Object({
        host: Type.Integer({ minimum: LIMITS.hostPortMin, maximum: LIMITS.portMax }),
        guest: Type.Integer({ minimum: 1, maximum: LIMITS.portMax }),
        protocol: Type.Union([Type.Literal('tcp'), Type.Literal('udp')]),
      }, { additionalProperties: false }), { maxItems: 64 }),
    }, { additionalProperties: false }),
    // Its own checker (parseCloudInitConfig) runs next: the same one a seed is written from.
    cloudInit: Type.Optional(Type.Object({}, { additionalProperties: true })),
  }, { additionalProperties: false }),
  files: Type.Object({
    'disk.qcow2': Type.Optional(BundleFileEntry),
    kernel: Type.Optional(BundleFileEntry),
    initrd: Type.Optional(BundleFileEntry),
  }, { additionalProperties: false }),
  snapshots: Type.Array(Type.Object({
    tag: Type.String({ minLength: 1, maxLength: 128 }),
    name: Name,
    description: Type.Union([Type.String({ maxLength: 1024 }), Type.Null()]),
    kind: Type.Union([Type.Literal('live'), Type.Literal('disk')]),
    vmState: Type.Union([Type.Literal('running'), Type.Literal('paused'), Type.Literal('stopped')]),
    createdAt: Timestamp,
    diskGB: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.diskGBMax, description: 'The disk size the snapshot was taken at (absent in bundles from before disks with snapshots could grow)' })),
  }, { additionalProperties: false }), { maxItems: 10_000 }),
}, { additionalProperties: false });

/**
 * The manifest checked against the schema, then what a schema cannot say (two snapshots on one qcow2 tag
 * or with one name). A failure is VALIDATION_FAILED naming the field, e.g. `manifest.json/snapshots/1/createdAt`.
 */
export function checkBundleManifest(value: unknown): BundleManifest {
  const m = value as { format?: unknown; version?: unknown } | null;
  if (typeof m !== 'object' || m === null || m.format !== BUNDLE_FORMAT) throw invalid('manifest.json/format: not a Grove bundle manifest', { field: 'manifest.json/format' });
  if (m.version !== BUNDLE_VERSION) throw invalid(`manifest.json/version: bundle version ${String(m.version)} is not supported (this Grove reads version ${BUNDLE_VERSION})`, { field: 'manifest.json/version' });
  const e = Value.Errors(BundleManifestSchema, value).First();
  if (e) {
    const field = `manifest.json${e.path}`;
    throw invalid(`${field}: ${e.message}${e.path === '' ? '' : ` (got ${describe(e.value)})`}`, { field });
  }
  const manifest = value as BundleManifest;
  for (const key of ['tag', 'name'] as const) {
    const seen = new Map<string, number>();
    manifest.snapshots.forEach((s, i) => {
      const first = seen.get(s[key]);
      if (first !== undefined) throw invalid(`manifest.json/snapshots/${i}/${key}: '${s[key]}' is also snapshot ${first}'s ${key}; each snapshot needs its own`, { field: `manifest.json/snapshots/${i}/${key}` });
      seen.set(s[key], i);
    });
  }
  return manifest;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  const text = JSON.stringify(v) ?? typeof v;
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
