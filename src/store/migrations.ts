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
  // Webhooks and their durable delivery outbox (one row per hook × event; times in Unix ms).
  `
  CREATE TABLE webhooks (
    id               TEXT PRIMARY KEY,
    url              TEXT NOT NULL,
    events           TEXT NOT NULL,
    secret           TEXT,
    description      TEXT,
    enabled          INTEGER NOT NULL DEFAULT 1,
    disabled_reason  TEXT,
    created_at       TEXT NOT NULL,
    disabled_at      TEXT
  );
  CREATE TABLE webhook_deliveries (
    id                TEXT PRIMARY KEY,
    hook_id           TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id          INTEGER NOT NULL,
    event_type        TEXT NOT NULL,
    body              TEXT NOT NULL,
    status            TEXT NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    next_attempt_at   INTEGER,
    last_attempt_at   INTEGER,
    last_status_code  INTEGER,
    last_error        TEXT,
    finished_at       INTEGER,
    UNIQUE (hook_id, event_id)
  );
  CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
  CREATE INDEX webhook_deliveries_hook_due ON webhook_deliveries(hook_id, status, next_attempt_at);
  CREATE INDEX webhook_deliveries_hook_created ON webhook_deliveries(hook_id, created_at);
  `,
  // Snapshots: metadata for the internal qcow2 snapshots (`tag` is the name inside the qcow2 file).
  `
  CREATE TABLE snapshots (
    id           TEXT PRIMARY KEY,
    vm_id        TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    tag          TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT,
    kind         TEXT NOT NULL,
    vm_state     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (vm_id, name)
  );
  `,
  // cloud-init: the config a VM's seed is written from (password only as a hash) and the seed's facts, as JSON.
  `
  ALTER TABLE vms ADD COLUMN cloud_init TEXT;
  `,
  // Distro image downloads (resumed after a restart) and the verified images they produced.
  `
  CREATE TABLE downloads (
    id               TEXT PRIMARY KEY,
    distro           TEXT NOT NULL,
    url              TEXT NOT NULL,
    file             TEXT NOT NULL,
    state            TEXT NOT NULL,
    bytes            INTEGER NOT NULL DEFAULT 0,
    total_bytes      INTEGER,
    retries          INTEGER NOT NULL DEFAULT 0,
    restarts         INTEGER NOT NULL DEFAULT 0,
    algorithm        TEXT,
    expected_digest  TEXT,
    validator        TEXT,
    error_code       TEXT,
    error_reason     TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT
  );
  CREATE INDEX downloads_state ON downloads(state, created_at);
  CREATE TABLE images (
    distro         TEXT PRIMARY KEY,
    file           TEXT NOT NULL,
    path           TEXT NOT NULL,
    format         TEXT NOT NULL,
    bytes          INTEGER NOT NULL,
    algorithm      TEXT NOT NULL,
    digest         TEXT NOT NULL,
    url            TEXT NOT NULL,
    downloaded_at  TEXT NOT NULL,
    download_id    TEXT
  );
  `,
  // Each snapshot's disk size, which a restore brings back. Until now a disk with snapshots could not be
  // resized, so every existing snapshot has its VM's present size.
  `
  ALTER TABLE snapshots ADD COLUMN disk_gb INTEGER NOT NULL DEFAULT 0;
  UPDATE snapshots SET disk_gb = (SELECT vms.disk_gb FROM vms WHERE vms.id = snapshots.vm_id);
  `,
  // Durable exec jobs: what runs in which guest (the agent's pid), and how it ended.
  `
  CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    vm_id            TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    argv             TEXT NOT NULL,
    state            TEXT NOT NULL,
    guest_pid        INTEGER,
    guest_dir        TEXT NOT NULL,
    open_stdin       INTEGER NOT NULL,
    stdin_closed     INTEGER NOT NULL,
    exit_code        INTEGER,
    signal           INTEGER,
    timed_out        INTEGER NOT NULL DEFAULT 0,
    reason           TEXT,
    max_output_bytes INTEGER NOT NULL,
    timeout_seconds  REAL,
    streams          TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    ended_at         TEXT
  );
  CREATE INDEX jobs_vm ON jobs(vm_id, created_at);
  CREATE INDEX jobs_state ON jobs(state);
  `,
  // Autostart: the VMs the daemon starts when it starts (off for every VM there was).
  `
  ALTER TABLE vms ADD COLUMN autostart INTEGER NOT NULL DEFAULT 0;
  `,
];
