import type { Vm, VmState } from '../domain/vm.js';
import type { VmRepo } from '../ports/repos.js';
import type { Db } from './db.js';

interface Row {
  id: string; name: string; state: string; cpu: number; memory_mb: number; disk_gb: number;
  distro: string | null; boot: string; network: string; sort_order: number; created_at: string;
  updated_at: string; started_at: string | null; accelerator: string | null; last_error: string | null;
}

function fromRow(r: Row): Vm {
  return {
    id: r.id, name: r.name, state: r.state as VmState, cpu: r.cpu, memoryMB: r.memory_mb, diskGB: r.disk_gb,
    distro: r.distro, boot: JSON.parse(r.boot), network: JSON.parse(r.network), order: r.sort_order,
    createdAt: r.created_at, updatedAt: r.updated_at, startedAt: r.started_at,
    accelerator: r.accelerator as Vm['accelerator'], lastError: r.last_error,
  };
}

function toParams(vm: Vm): Record<string, unknown> {
  return {
    id: vm.id, name: vm.name, state: vm.state, cpu: vm.cpu, memory_mb: vm.memoryMB, disk_gb: vm.diskGB,
    distro: vm.distro, boot: JSON.stringify(vm.boot), network: JSON.stringify(vm.network), sort_order: vm.order,
    created_at: vm.createdAt, updated_at: vm.updatedAt, started_at: vm.startedAt, accelerator: vm.accelerator,
    last_error: vm.lastError,
  };
}

export class SqliteVmRepo implements VmRepo {
  private readonly q;
  constructor(private readonly db: Db) {
    this.q = {
      list: db.prepare<[], Row>('SELECT * FROM vms ORDER BY sort_order, created_at'),
      get: db.prepare<[string], Row>('SELECT * FROM vms WHERE id = ?'),
      byName: db.prepare<[string], Row>('SELECT * FROM vms WHERE name = ?'),
      insert: db.prepare(`INSERT INTO vms (id, name, state, cpu, memory_mb, disk_gb, distro, boot, network, sort_order,
        created_at, updated_at, started_at, accelerator, last_error) VALUES (@id, @name, @state, @cpu, @memory_mb,
        @disk_gb, @distro, @boot, @network, @sort_order, @created_at, @updated_at, @started_at, @accelerator, @last_error)`),
      update: db.prepare(`UPDATE vms SET name=@name, state=@state, cpu=@cpu, memory_mb=@memory_mb, disk_gb=@disk_gb,
        distro=@distro, boot=@boot, network=@network, sort_order=@sort_order, updated_at=@updated_at,
        started_at=@started_at, accelerator=@accelerator, last_error=@last_error WHERE id=@id`),
      del: db.prepare<[string]>('DELETE FROM vms WHERE id = ?'),
      setOrder: db.prepare<[number, string]>('UPDATE vms SET sort_order = ? WHERE id = ?'),
      maxOrder: db.prepare<[], { m: number | null }>('SELECT MAX(sort_order) AS m FROM vms'),
      clearOffset: db.prepare<[string], { console_clear_offset: number }>('SELECT console_clear_offset FROM vms WHERE id = ?'),
      setClearOffset: db.prepare<[number, string]>('UPDATE vms SET console_clear_offset = ? WHERE id = ?'),
    };
  }

  list(): Vm[] { return this.q.list.all().map(fromRow); }
  get(id: string): Vm | undefined { const r = this.q.get.get(id); return r && fromRow(r); }
  findByName(name: string): Vm | undefined { const r = this.q.byName.get(name); return r && fromRow(r); }
  insert(vm: Vm): void { this.q.insert.run(toParams(vm)); }
  update(vm: Vm): void { this.q.update.run(toParams(vm)); }

  setState(id: string, state: VmState, patch: Partial<Pick<Vm, 'startedAt' | 'lastError' | 'accelerator'>> = {}): Vm {
    const vm = this.get(id);
    if (!vm) throw new Error(`vm ${id} vanished from the store`);
    const next: Vm = { ...vm, ...patch, state, updatedAt: new Date().toISOString() };
    this.update(next);
    return next;
  }

  delete(id: string): void { this.q.del.run(id); }

  setOrder(ids: string[]): void {
    this.db.transaction(() => ids.forEach((id, i) => this.q.setOrder.run(i, id)))();
  }

  nextOrder(): number { return (this.q.maxOrder.get()?.m ?? -1) + 1; }
  consoleClearOffset(id: string): number { return this.q.clearOffset.get(id)?.console_clear_offset ?? 0; }
  setConsoleClearOffset(id: string, offset: number): void { this.q.setClearOffset.run(offset, id); }
}
