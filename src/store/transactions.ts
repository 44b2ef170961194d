import type { Db } from './db.js';

/** What a store needs to keep memory in step with the database: act once the data is committed, undo on rollback. */
export interface TxHooks {
  /** Runs `fn` after the outermost transaction commits; at once when no transaction is open (the write auto-committed). */
  afterCommit(fn: () => void): void;
  /** Runs `fn` if the transaction (or savepoint) open now rolls back; nothing outside a transaction. */
  onRollback(fn: () => void): void;
}

interface Scope { commits: (() => void)[]; rollbacks: (() => void)[] }

/**
 * SQLite transactions with commit and rollback hooks. Caches and event subscribers must only ever see
 * committed data: a change applied to memory (or sent to an SSE client) before a rollback would be a
 * change that never happened. A nested call is a savepoint: its rollback undoes only what it registered.
 */
export class Transactions implements TxHooks {
  private scope: Scope | null = null;

  constructor(private readonly db: Db) {}

  readonly run = <T>(fn: () => T): T => {
    const outer = this.scope === null;
    const scope = this.scope ?? { commits: [], rollbacks: [] };
    this.scope = scope;
    const commitMark = scope.commits.length;
    const rollbackMark = scope.rollbacks.length;
    let result: T;
    try {
      result = this.db.transaction(fn)();
    } catch (e) {
      scope.commits.splice(commitMark);
      const undo = scope.rollbacks.splice(rollbackMark).reverse();
      if (outer) this.scope = null;
      for (const u of undo) u();
      throw e;
    }
    if (outer) {
      this.scope = null;
      // Every one runs even if one throws: a cache left half-applied would be worse than the error.
      let failure: { e: unknown } | null = null;
      for (const c of scope.commits) {
        try { c(); } catch (e) { failure ??= { e }; }
      }
      if (failure !== null) throw failure.e;
    }
    return result;
  };

  readonly afterCommit = (fn: () => void): void => {
    if (this.scope === null) fn();
    else this.scope.commits.push(fn);
  };

  readonly onRollback = (fn: () => void): void => {
    this.scope?.rollbacks.push(fn);
  };
}
