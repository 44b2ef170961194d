import { summarizeCloudInit, type CloudInitRecord } from '../domain/cloud-init.js';
import type { Vm, VmState } from '../domain/vm.js';
import { VmNameTakenError, type VmRepo } from '../ports/repos.js';
import type { Db } from './db.js';
import type { TxHooks } from './transactions.js';

/** Without a transaction manager every write auto-commits, so memory follows at once. */
const AUTO_COMMIT: TxHooks = { afterCommit: (fn) => fn(), onRollback: () => undefined };

interface Row {
  id: string; name: string; state: string; cpu: number; memory_mb: number; disk_gb: number;
  distro: string | null; boot: string; network: string; sort_order: number; created_at: string;
  updated_at: string; started_at: string | null; accelerator: string | null; last_error: string | null; cloud_init: string | null;
  autostart: number;
}

function fromRow(r: Row): Vm {
  return {
    id: r.id, name: r.name, state: r.state as VmState, cpu: r.cpu, memoryMB: r.memory_mb, diskGB: r.disk_gb,
    distro: r.distro, boot: JSON.parse(r.boot) as Vm['boot'], network: JSON.parse(r.network) as Vm['network'], order: r.sort_order,
    createdAt: r.created_at, updatedAt: r.updated_at, startedAt: r.started_at,
    accelerator: r.accelerator as Vm['accelerator'], lastError: r.last_error,
    cloudInit: r.cloud_init !== null ? summarizeCloudInit(JSON.parse(r.cloud_init) as CloudInitRecord) : null,
    autostart: r.autostart !== 0,
  };
}

function toParams(vm: Vm): Record<string, unknown> {
  return {
    id: vm.id, name: vm.name, state: vm.state, cpu: vm.cpu, memory_mb: vm.memoryMB, disk_gb: vm.diskGB,
    distro: vm.distro, boot: JSON.stringify(vm.boot), network: JSON.stringify(vm.network), sort_order: vm.order,
    created_at: vm.createdAt, updated_at: vm.updatedAt, started_at: vm.startedAt, accelerator: vm.accelerator,
    last_error: vm.lastError, autostart: vm.autostart ? 1 : 0,
  };
}

/**
 * Write-through cache: the daemon is the database's only writer, so records are read from memory and
 * every write goes to SQLite first, then to the cache — once committed. Inside a transaction its own
 * writes are read back from a staging overlay, which a rollback drops and a commit applies, so no
 * reader outside it ever sees a record the database does not hold. Records handed out are frozen, so
 * a caller cannot change the cache behind the database's back.
 */
/** SQLite's refusal of a second VM with a name, as the port's typed error: callers never read SQLite's text. */
function nameUnique(vm: Vm, write: () => unknown): void {
  try {
    write();
  } catch (e) {
    if (e instanceof Error && 'code' in e && e.code === 'SQLITE_CONSTRAINT_UNIQUE' && e.message === 'UNIQUE constraint failed: vms.name') throw new VmNameTakenError(vm.name);
    throw e;
  }
}

export class SqliteVmRepo implements VmRepo {
  private readonly q;
  private readonly byId = new Map<string, Vm>();
  private sorted: readonly Vm[] | null = null;
  /** Records written by the open transaction (null: deleted), not yet committed. */
  private readonly staged = new Map<string, Vm | null>();

  constructor(private readonly db: Db, private readonly tx: TxHooks = AUTO_COMMIT) {
    this.q = {
      list: db.prepare<[], Row>('SELECT * FROM vms ORDER BY sort_order, created_at'),
      insert: db.prepare(`INSERT INTO vms (id, name, state, cpu, memory_mb, disk_gb, distro, boot, network, sort_order,
        created_at, updated_at, started_at, accelerator, last_error, cloud_init, autostart) VALUES (@id, @name, @state, @cpu, @memory_mb,
        @disk_gb, @distro, @boot, @network, @sort_order, @created_at, @updated_at, @started_at, @accelerator, @last_error, @cloud_init, @autostart)`),
      cloudInit: db.prepare<[string], { cloud_init: string | null }>('SELECT cloud_init FROM vms WHERE id = ?'),
      setState: db.prepare(`UPDATE vms SET state=@state, updated_at=@updated_at, started_at=@started_at,
        accelerator=@accelerator, last_error=@last_error WHERE id=@id`),
      update: db.prepare(`UPDATE vms SET name=@name, state=@state, cpu=@cpu, memory_mb=@memory_mb, disk_gb=@disk_gb,
        distro=@distro, boot=@boot, network=@network, sort_order=@sort_order, updated_at=@updated_at,
        started_at=@started_at, accelerator=@accelerator, last_error=@last_error, autostart=@autostart WHERE id=@id`),
      del: db.prepare<[string]>('DELETE FROM vms WHERE id = ?'),
      setOrder: db.prepare<[number, string]>('UPDATE vms SET sort_order = ? WHERE id = ?'),
      clearOffset: db.prepare<[string], { console_clear_offset: number }>('SELECT console_clear_offset FROM vms WHERE id = ?'),
      setClearOffset: db.prepare<[number, string]>('UPDATE vms SET console_clear_offset = ? WHERE id = ?'),
    };
    for (const row of this.q.list.all()) {
      const vm = deepFreeze(fromRow(row));
      this.byId.set(vm.id, vm);
    }
  }

  /** Records a write the database has taken: visible to the transaction now, to everyone once committed. */
  private remember(vm: Vm): Vm {
    return this.stage(vm.id, deepFreeze(vm))!;
  }

  private forget(id: string): void {
    this.stage(id, null);
  }

  private stage(id: string, vm: Vm | null): Vm | null {
    const had = this.staged.has(id);
    const before = this.staged.get(id);
    this.staged.set(id, vm);
    this.sorted = null;
    this.tx.onRollback(() => {
      if (had) this.staged.set(id, before!);
      else this.staged.delete(id);
      this.sorted = null;
    });
    this.tx.afterCommit(() => {
      if (!this.staged.has(id)) return;
      const v = this.staged.get(id)!;
      this.staged.delete(id);
      if (v === null) this.byId.delete(id);
      else this.byId.set(id, v);
      this.sorted = null;
    });
    return vm;
  }

  private current(): Map<string, Vm> {
    if (this.staged.size === 0) return this.byId;
    const view = new Map(this.byId);
    for (const [id, vm] of this.staged) {
      if (vm === null) view.delete(id);
      else view.set(id, vm);
    }
    return view;
  }

  /** The same array object is returned until a VM changes, so callers may cache what they derive from it. */
  list(): readonly Vm[] {
    // createdAt is an ISO 8601 UTC timestamp: its code-unit order is its time order (localeCompare would
    // bring in ICU's collation tables for nothing).
    this.sorted ??= Object.freeze([...this.current().values()].sort((a, b) => a.order - b.order || (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0)));
    return this.sorted;
  }

  get(id: string): Vm | undefined {
    if (this.staged.has(id)) return this.staged.get(id) ?? undefined;
    return this.byId.get(id);
  }

  findByName(name: string): Vm | undefined {
    for (const vm of this.current().values()) if (vm.name === name) return vm;
    return undefined;
  }

  /** `cloudInit`: what the VM's seed was written from (kept out of the record, which clients see). */
  insert(vm: Vm, cloudInit: CloudInitRecord | null = null): void {
    nameUnique(vm, () => this.q.insert.run({ ...toParams(vm), cloud_init: cloudInit !== null ? JSON.stringify(cloudInit) : null }));
    this.remember({ ...vm });
  }

  cloudInit(id: string): CloudInitRecord | null {
    const raw = this.q.cloudInit.get(id)?.cloud_init ?? null;
    return raw !== null ? JSON.parse(raw) as CloudInitRecord : null;
  }
  update(vm: Vm): void { nameUnique(vm, () => this.q.update.run(toParams(vm))); this.remember({ ...vm }); }

  setState(id: string, state: VmState, patch: Partial<Pick<Vm, 'startedAt' | 'lastError' | 'accelerator'>> = {}): Vm {
    const vm = this.get(id);
    if (!vm) throw new Error(`vm ${id} vanished from the store`);
    const next: Vm = { ...vm, ...patch, state, updatedAt: new Date().toISOString() };
    this.q.setState.run({ id, state, updated_at: next.updatedAt, started_at: next.startedAt, accelerator: next.accelerator, last_error: next.lastError });
    return this.remember(next);
  }

  delete(id: string): void { this.q.del.run(id); this.forget(id); }

  setOrder(ids: string[]): void {
    this.db.transaction(() => ids.forEach((id, i) => this.q.setOrder.run(i, id)))();
    ids.forEach((id, order) => { const vm = this.get(id); if (vm) this.remember({ ...vm, order }); });
  }

  nextOrder(): number {
    let max = -1;
    for (const vm of this.current().values()) max = Math.max(max, vm.order);
    return max + 1;
  }
  consoleClearOffset(id: string): number { return this.q.clearOffset.get(id)?.console_clear_offset ?? 0; }
  setConsoleClearOffset(id: string, offset: number): void { this.q.setClearOffset.run(offset, id); }
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}
