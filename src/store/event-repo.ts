import type { EventType, GroveEvent, NewEvent } from '../domain/events.js';
import type { EventRepo } from '../ports/repos.js';
import type { Db } from './db.js';

interface Row { id: number; type: string; timestamp: string; vm_id: string | null; vm_name: string | null; data: string }

function fromRow(r: Row): GroveEvent {
  const e: GroveEvent = { id: r.id, type: r.type as EventType, timestamp: r.timestamp, data: JSON.parse(r.data) as GroveEvent['data'] };
  if (r.vm_id !== null) e.vmId = r.vm_id;
  if (r.vm_name !== null) e.vmName = r.vm_name;
  return e;
}

/** AUTOINCREMENT (not plain rowid) so ids never go back after pruning or a restart. */
export class SqliteEventRepo implements EventRepo {
  private readonly q;
  constructor(db: Db) {
    this.q = {
      insert: db.prepare('INSERT INTO events (type, timestamp, vm_id, vm_name, data) VALUES (?, ?, ?, ?, ?)'),
      since: db.prepare<[number, number], Row>('SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?'),
      oldest: db.prepare<[], { id: number | null }>('SELECT MIN(id) AS id FROM events'),
      latest: db.prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'events'"),
      prune: db.prepare<[number]>('DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?'),
    };
  }

  append(e: NewEvent): GroveEvent {
    const timestamp = new Date().toISOString();
    const info = this.q.insert.run(e.type, timestamp, e.vmId ?? null, e.vmName ?? null, JSON.stringify(e.data));
    const out: GroveEvent = { id: Number(info.lastInsertRowid), type: e.type, timestamp, data: e.data };
    if (e.vmId !== undefined) out.vmId = e.vmId;
    if (e.vmName !== undefined) out.vmName = e.vmName;
    return out;
  }

  since(afterId: number, limit: number): GroveEvent[] { return this.q.since.all(afterId, limit).map(fromRow); }
  oldestId(): number | undefined { return this.q.oldest.get()?.id ?? undefined; }
  latestId(): number { return this.q.latest.get()?.seq ?? 0; }
  prune(keep: number): number { return this.q.prune.run(keep).changes; }
}
