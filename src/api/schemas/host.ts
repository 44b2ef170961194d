import { Type } from '@sinclair/typebox';

export const Health = Type.Object({
  status: Type.Literal('ok'),
  version: Type.String(),
  uptimeSeconds: Type.Integer(),
});

export const HostInfo = Type.Object({
  hostname: Type.String(), os: Type.String(), kernel: Type.String(), arch: Type.String(),
  cpus: Type.Integer(), cpuModel: Type.String(), memoryBytes: Type.Integer(), freeMemoryBytes: Type.Integer(),
  uptimeSeconds: Type.Integer(), loadAverage: Type.Array(Type.Number(), { minItems: 3, maxItems: 3 }),
  dataDir: Type.String(), freeDiskBytes: Type.Integer(), qemuVersion: Type.String(),
  accelerator: Type.Union([Type.Literal('kvm'), Type.Literal('tcg')]),
  acceleratorReason: Type.String({ description: 'Why this accelerator: how KVM was proven to boot a test guest, or why TCG is used (the KVM probe\'s failure with QEMU\'s error line, or the configuration).' }),
  groveVersion: Type.String(), daemonUptimeSeconds: Type.Integer(),
});

export const MetricsQuery = Type.Object({
  format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('prometheus')], {
    description: 'prometheus: the text exposition format. Without it, the Accept header decides: text/plain or application/openmetrics-text (what a Prometheus scraper sends) without application/json gives the text format, anything else JSON.',
  })),
}, { additionalProperties: false });

export const Metrics = Type.Object({
  host: Type.Object({
    cpuPercent: Type.Number(), memoryBytes: Type.Integer(), freeMemoryBytes: Type.Integer(), freeDiskBytes: Type.Integer(),
    loadAverage: Type.Array(Type.Number()),
  }),
  vms: Type.Array(Type.Object({
    id: Type.String(), name: Type.String(), state: Type.String(), cpuPercent: Type.Union([Type.Number(), Type.Null()]),
    rssBytes: Type.Union([Type.Integer(), Type.Null()]), diskBytes: Type.Integer(),
  })),
});
