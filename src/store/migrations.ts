/**
 * Append-only: a migration, once released, is never edited; a change is a new entry. The index + 1 is
 * the schema version recorded in `PRAGMA user_version`.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE vms (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    state         TEXT NOT NULL,
    cpu           INTEGER NOT NULL,
    memory_mb     INTEGER NOT NULL,
    disk_gb       INTEGER NOT NULL,
    distro        TEXT,
    boot          TEXT NOT NULL,
    network       TEXT NOT NULL,
    sort_order    INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    started_at    TEXT,
    accelerator   TEXT,
    last_error    TEXT,
    console_clear_offset INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    type       TEXT NOT NULL,
    timestamp  TEXT NOT NULL,
    vm_id      TEXT,
    vm_name    TEXT,
    data       TEXT NOT NULL
  );
  CREATE INDEX events_vm ON events(vm_id, id);
  CREATE TABLE vm_errors (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    vm_id    TEXT NOT NULL,
    at       TEXT NOT NULL,
    source   TEXT NOT NULL,
    message  TEXT NOT NULL
  );
  CREATE INDEX vm_errors_vm ON vm_errors(vm_id, id);
  `,
];
