// The short soak of `make test` (issue #9): 4 VMs for 75 s (the long `make soak` runs 8 for 10 minutes) cycled
// through create/start/exec/clone/pause/resume/snapshot/restore/stop/delete by two REST and two MCP clients,
// with an SSE consumer reconnecting with Last-Event-ID and a webhook receiver. Figures: test/soak/run.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSoak } from '../soak/soak.js';

test('parallel lifecycles: no 5xx, every answer, fds/RSS back, no orphans or strays, every event delivered', async () => {
  const r = await runSoak({
    workers: 4, durationMs: 75_000, memoryMB: 96, pacingMs: 2000, answerTimeoutMs: 240_000,
    settleMs: 30_000, sampleEveryMs: 5000, sseReconnectEveryMs: 15_000, tolerance: 0.05,
    // 75 s is too short for the daemon's V8 heap to reach its steady size from the small one the lazy
    // loading leaves at start (it grew 7–15 % here, 36 % without --optimize-for-size, not back after a
    // 30 s settle); the 5 % bound on RSS is `make soak`'s, over 10 minutes. Open fds keep 5 % here.
    rssTolerance: 0.25,
    ...(process.env['GROVE_E2E_DEBUG'] ? { log: (l: string) => console.log(l) } : {}),
  });
  assert.deepEqual(r.problems, [], JSON.stringify(r, null, 1));
  // Every kind of operation ran, over both faces.
  for (const op of ['create', 'start', 'exec', 'clone', 'deleteClone', 'pause', 'resume', 'snapshot', 'restore', 'stop', 'delete']) {
    assert.ok((r.byOp[op] ?? 0) >= 4, `${op} ran ${r.byOp[op] ?? 0} times`);
  }
  assert.ok((r.byFace['rest'] ?? 0) > 0 && (r.byFace['mcp'] ?? 0) > 0);
  assert.ok(r.events.sseReconnects >= 2, `the SSE consumer reconnected ${r.events.sseReconnects} times`);
});
