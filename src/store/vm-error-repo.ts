import type { VmErrorRecord, VmErrorRepo } from '../ports/repos.js';
import type { Db } from './db.js';

const KEEP_PER_VM = 200;

export class SqliteVmErrorRepo implements VmErrorRepo {
  private readonly q;
  constructor(db: Db) {
    this.q = {
      add: db.prepare<[string, string, string, string]>('INSERT INTO vm_errors (vm_id, at, source, message) VALUES (?, ?, ?, ?)'),
      trim: db.prepare<[string, string, number]>(
        'DELETE FROM vm_errors WHERE vm_id = ? AND id < (SELECT MIN(id) FROM (SELECT id FROM vm_errors WHERE vm_id = ? ORDER BY id DESC LIMIT ?))'),
      list: db.prepare<[string, number], VmErrorRecord>('SELECT id, at, source, message FROM vm_errors WHERE vm_id = ? ORDER BY id DESC LIMIT ?'),
      del: db.prepare<[string]>('DELETE FROM vm_errors WHERE vm_id = ?'),
    };
  }

  add(vmId: string, source: VmErrorRecord['source'], message: string): void {
    this.q.add.run(vmId, new Date().toISOString(), source, message.slice(0, 4000));
    this.q.trim.run(vmId, vmId, KEEP_PER_VM);
  }

  list(vmId: string, limit: number): VmErrorRecord[] { return this.q.list.all(vmId, limit); }
  deleteFor(vmId: string): void { this.q.del.run(vmId); }
}
