import type { DigestAlgorithm, ImageFormat } from '../domain/distro.js';
import type { Download, DownloadState, LocalImage } from '../domain/download.js';
import type { ErrorCode } from '../domain/errors.js';
import type { DownloadRepo, ImageRepo } from '../ports/downloads.js';
import type { Db } from './db.js';

interface DownloadRow {
  id: string; distro: string; url: string; file: string; state: string; bytes: number; total_bytes: number | null; retries: number;
  restarts: number; algorithm: string | null; expected_digest: string | null; validator: string | null; error_code: string | null;
  error_reason: string | null; created_at: string; updated_at: string; started_at: string | null; finished_at: string | null;
}

interface ImageRow {
  distro: string; file: string; path: string; format: string; bytes: number; algorithm: string; digest: string; url: string;
  downloaded_at: string; download_id: string | null;
}

const fromRow = (r: DownloadRow): Download => ({
  id: r.id, distro: r.distro, url: r.url, file: r.file, state: r.state as DownloadState, bytes: r.bytes, totalBytes: r.total_bytes,
  retries: r.retries, restarts: r.restarts, algorithm: r.algorithm as DigestAlgorithm | null, expectedDigest: r.expected_digest,
  validator: r.validator, error: r.error_code !== null ? { code: r.error_code as ErrorCode, reason: r.error_reason ?? '' } : null,
  createdAt: r.created_at, updatedAt: r.updated_at, startedAt: r.started_at, finishedAt: r.finished_at,
});

const params = (d: Download) => ({
  id: d.id, distro: d.distro, url: d.url, file: d.file, state: d.state, bytes: d.bytes, total_bytes: d.totalBytes, retries: d.retries,
  restarts: d.restarts, algorithm: d.algorithm, expected_digest: d.expectedDigest, validator: d.validator, error_code: d.error?.code ?? null,
  error_reason: d.error?.reason ?? null, created_at: d.createdAt, updated_at: d.updatedAt, started_at: d.startedAt, finished_at: d.finishedAt,
});

const COLS = Object.keys(params({} as Download));

export class SqliteDownloadRepo implements DownloadRepo {
  private readonly q;

  constructor(db: Db) {
    this.q = {
      insert: db.prepare(`INSERT INTO downloads (${COLS.join(', ')}) VALUES (${COLS.map((c) => `@${c}`).join(', ')})`),
      update: db.prepare(`UPDATE downloads SET ${COLS.filter((c) => c !== 'id').map((c) => `${c} = @${c}`).join(', ')} WHERE id = @id`),
      get: db.prepare<[string], DownloadRow>('SELECT * FROM downloads WHERE id = ?'),
      list: db.prepare<[number], DownloadRow>('SELECT * FROM downloads ORDER BY created_at DESC, rowid DESC LIMIT ?'),
      unfinished: db.prepare<[], DownloadRow>("SELECT * FROM downloads WHERE state IN ('queued', 'running') ORDER BY state = 'queued', created_at, rowid"),
      prune: db.prepare<[number]>(`DELETE FROM downloads WHERE state NOT IN ('queued', 'running')
        AND id NOT IN (SELECT download_id FROM images WHERE download_id IS NOT NULL)
        AND id NOT IN (SELECT id FROM downloads WHERE state NOT IN ('queued', 'running') ORDER BY created_at DESC, rowid DESC LIMIT ?)`),
    };
  }

  insert(d: Download): void { this.q.insert.run(params(d)); }
  update(d: Download): void { this.q.update.run(params(d)); }
  get(id: string): Download | undefined { const r = this.q.get.get(id); return r ? fromRow(r) : undefined; }
  list(limit: number): Download[] { return this.q.list.all(limit).map(fromRow); }
  /** Running ones first: they had a slot before the restart. */
  unfinished(): Download[] { return this.q.unfinished.all().map(fromRow); }
  prune(keep: number): number { return this.q.prune.run(keep).changes; }
}

/** The verified images, cached: VM creation asks for them on every create. */
export class SqliteImageRepo implements ImageRepo {
  private readonly q;
  private cache: Map<string, LocalImage> | null = null;

  constructor(db: Db) {
    this.q = {
      all: db.prepare<[], ImageRow>('SELECT * FROM images ORDER BY distro'),
      put: db.prepare(`INSERT INTO images (distro, file, path, format, bytes, algorithm, digest, url, downloaded_at, download_id)
        VALUES (@distro, @file, @path, @format, @bytes, @algorithm, @digest, @url, @downloaded_at, @download_id)
        ON CONFLICT(distro) DO UPDATE SET file = excluded.file, path = excluded.path, format = excluded.format, bytes = excluded.bytes,
          algorithm = excluded.algorithm, digest = excluded.digest, url = excluded.url, downloaded_at = excluded.downloaded_at, download_id = excluded.download_id`),
      del: db.prepare<[string]>('DELETE FROM images WHERE distro = ?'),
    };
  }

  private all(): Map<string, LocalImage> {
    this.cache ??= new Map(this.q.all.all().map((r) => [r.distro, {
      distro: r.distro, file: r.file, path: r.path, format: r.format as ImageFormat, bytes: r.bytes, algorithm: r.algorithm as DigestAlgorithm,
      digest: r.digest, url: r.url, downloadedAt: r.downloaded_at, downloadId: r.download_id,
    }]));
    return this.cache;
  }

  list(): LocalImage[] { return [...this.all().values()]; }
  get(distro: string): LocalImage | undefined { return this.all().get(distro); }

  put(img: LocalImage): void {
    this.q.put.run({
      distro: img.distro, file: img.file, path: img.path, format: img.format, bytes: img.bytes, algorithm: img.algorithm, digest: img.digest,
      url: img.url, downloaded_at: img.downloadedAt, download_id: img.downloadId,
    });
    this.cache = null;
  }

  delete(distro: string): void {
    this.q.del.run(distro);
    this.cache = null;
  }
}
