import { Type } from '@sinclair/typebox';
import { DISTRO_ID, IMAGE_FORMATS } from '../../domain/distro.js';
import { DOWNLOAD_STATES } from '../../domain/download.js';
import { ERROR_CODES } from './common.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T, description?: string) =>
  Type.Union([t, Type.Null()], description ? { description } : {});
const Algorithm = Type.Union([Type.Literal('sha256'), Type.Literal('sha512')]);
const Hex = (description: string) => Type.String({ pattern: '^[0-9a-f]+$', description });

const DistroId = Type.String({ minLength: 1, maxLength: 63, pattern: DISTRO_ID.source, description: 'Catalog id, e.g. `debian-12`', examples: ['debian-12'] });

export const Distro = Type.Object({
  id: DistroId,
  name: Type.String(),
  version: Type.String(),
  arch: Type.String({ examples: ['x86_64'] }),
  format: Type.Union(IMAGE_FORMATS.map((f) => Type.Literal(f)), { description: 'Disk format of the image file' }),
  url: Type.String({ description: 'Where the image is downloaded from' }),
  sha256: Type.Optional(Hex('Pinned SHA-256 of the image (the checksum source when given)')),
  sha512: Type.Optional(Hex('Pinned SHA-512 of the image (the checksum source when given)')),
  checksumUrl: Type.Optional(Type.String({ description: 'Published sums file listing the image (SHA256SUMS, SHA512SUMS, CHECKSUM; GNU or BSD lines)' })),
  downloaded: Type.Boolean({ description: 'Whether a verified copy is in images/' }),
  image: Nullable(Type.Object({
    file: Type.String(),
    path: Type.String({ description: 'The verified image on the host' }),
    bytes: Type.Integer(),
    algorithm: Algorithm,
    digest: Hex('The digest it was verified against'),
    downloadedAt: Type.String({ format: 'date-time' }),
  }), 'The local verified image, or null'),
  download: Nullable(Type.Object({
    id: Type.String({ format: 'uuid' }),
    state: Type.Union([Type.Literal('queued'), Type.Literal('running')]),
    bytes: Type.Integer(),
    totalBytes: Nullable(Type.Integer()),
  }), 'The download under way, or null'),
}, { $id: 'Distro' });

export const DistroList = Type.Array(Type.Ref(Distro));

export const Download = Type.Object({
  id: Type.String({ format: 'uuid' }),
  distro: DistroId,
  url: Type.String(),
  file: Type.String({ description: 'File name under images/ (`<file>.part` while it downloads)' }),
  state: Type.Union(DOWNLOAD_STATES.map((s) => Type.Literal(s)), {
    description: 'queued: waiting for a slot (at most 2 run at once); running: transferring; completed: verified and in images/; failed: see `error`; cancelled',
  }),
  bytes: Type.Integer({ description: 'Bytes received so far' }),
  totalBytes: Nullable(Type.Integer(), 'Size of the image, once the server said'),
  bytesPerSecond: Nullable(Type.Integer(), 'Current rate (running only)'),
  retries: Type.Integer({ description: 'Dropped connections (or 5xx answers) retried, resuming with Range' }),
  restarts: Type.Integer({ description: 'Times the transfer started over from byte 0 (the server ignored Range, or the file changed)' }),
  algorithm: Nullable(Algorithm, 'Digest algorithm, once the checksum source was read'),
  expectedDigest: Nullable(Type.String(), 'The digest the image must have'),
  validator: Nullable(Type.String(), 'ETag or Last-Modified of the image (sent as If-Range when resuming)'),
  error: Nullable(Type.Object({
    code: Type.Union(ERROR_CODES.map((c) => Type.Literal(c)), { description: 'Problem code, e.g. DOWNLOAD_FAILED, CHECKSUM_MISMATCH, CHECKSUM_UNAVAILABLE, INSUFFICIENT_STORAGE, DOWNLOAD_CANCELLED' }),
    reason: Type.String(),
  }), 'Why it failed or was cancelled'),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  startedAt: Nullable(Type.String({ format: 'date-time' })),
  finishedAt: Nullable(Type.String({ format: 'date-time' })),
}, { $id: 'Download' });

export const DownloadRef = Type.Ref(Download);
export const DownloadList = Type.Array(DownloadRef);

export const StartDownloadBody = Type.Object({
  distro: DistroId,
}, { additionalProperties: false });

export const DownloadParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 128, description: 'Download id (UUID)' }),
}, { additionalProperties: false });

export const DownloadListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'Newest first' })),
}, { additionalProperties: false });

export const ImageParams = Type.Object({
  distro: Type.String({ minLength: 1, maxLength: 63, description: 'Catalog id of the image to remove' }),
}, { additionalProperties: false });
