import type { Snapshot } from '../domain/snapshot.js';
import type { SnapshotRepo } from '../ports/repos.js';
import type { Db } from './db.js';

interface Row { id: string; vm_id: string; tag: string; name: string; description: string | null; kind: string; vm_state: string; disk_gb: number; created_at: string }

function fromRow(r: Row): Snapshot {
  return {
    id: r.id, vmId: r.vm_id, tag: r.tag, name: r.name, description: r.description, kind: r.kind as Snapshot['kind'],
    vmState: r.vm_state as Snapshot['vmState'], diskGB: r.disk_gb, createdAt: r.created_at,
  };
}

export class SqliteSnapshotRepo implements SnapshotRepo {
  private readonly q;
  constructor(db: Db) {
    this.q = {
      list: db.prepare<[string], Row>('SELECT * FROM snapshots WHERE vm_id = ? ORDER BY created_at, rowid'),
      all: db.prepare<[], Row>('SELECT * FROM snapshots ORDER BY vm_id, created_at'),
      get: db.prepare<[string], Row>('SELECT * FROM snapshots WHERE id = ?'),
      byName: db.prepare<[string, string], Row>('SELECT * FROM snapshots WHERE vm_id = ? AND name = ?'),
      insert: db.prepare(`INSERT INTO snapshots (id, vm_id, tag, name, description, kind, vm_state, disk_gb, created_at)
        VALUES (@id, @vm_id, @tag, @name, @description, @kind, @vm_state, @disk_gb, @created_at)`),
      del: db.prepare<[string]>('DELETE FROM snapshots WHERE id = ?'),
    };
  }

  list(vmId: string): Snapshot[] { return this.q.list.all(vmId).map(fromRow); }
  all(): Snapshot[] { return this.q.all.all().map(fromRow); }
  get(id: string): Snapshot | undefined { const r = this.q.get.get(id); return r && fromRow(r); }
  findByName(vmId: string, name: string): Snapshot | undefined { const r = this.q.byName.get(vmId, name); return r && fromRow(r); }

  insert(s: Snapshot): void {
    this.q.insert.run({ id: s.id, vm_id: s.vmId, tag: s.tag, name: s.name, description: s.description, kind: s.kind, vm_state: s.vmState, disk_gb: s.diskGB, created_at: s.createdAt });
  }

  delete(id: string): void { this.q.del.run(id); }
}
