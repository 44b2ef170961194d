import { Type } from '@sinclair/typebox';
import { NAME_PATTERN } from '../../domain/vm.js';
import { ArgvString } from './common.js';

export const ExportBody = Type.Object({
  path: Type.Optional(ArgvString({ minLength: 1, maxLength: 4096, description: 'Write the bundle to this file in <data>/transfer (relative to it) instead of streaming it back' })),
  compression: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('gzip')], {
    description: 'Default: from `path` (gzip when it ends in `.gz` or `.tgz`), else none. A value contradicting the path (`none` with `.gz`/`.tgz`, `gzip` with `.tar`) is refused with 400. zstd is not offered: Node.js 20 has no zstd',
  })),
}, { additionalProperties: false });

export const ExportWritten = Type.Object({
  path: Type.String({ description: 'Where the bundle was written' }),
  bytes: Type.Integer(),
});

export const ImportJsonBody = Type.Object({
  path: ArgvString({ minLength: 1, maxLength: 4096, description: 'A bundle file in <data>/transfer' }),
  name: Type.Optional(Type.String({ pattern: NAME_PATTERN, description: "Name for the new VM (default: the bundle's)" })),
}, { additionalProperties: false });

export const ImportQuery = Type.Object({
  name: Type.Optional(Type.String({ pattern: NAME_PATTERN, description: "Name for the new VM when the bundle is uploaded as the body (default: the bundle's)" })),
}, { additionalProperties: false });
