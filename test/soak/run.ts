// `make soak`: the long parallel-lifecycle soak, then the daemon SIGKILLed at random points of long
// operations. Prints progress, writes the figures as JSON (for RELIABILITY.md) and exits non-zero when a
// check fails.
//   node dist/test/soak/run.js [--minutes 10] [--workers 8] [--kills 50] [--warmup-minutes 3] [--settle-seconds 30]
//                              [--out soak-report.json]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runKills } from './kill-recovery.js';
import { runSoak } from './soak.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    workers: { type: 'string', default: '8' },
    kills: { type: 'string', default: '50' },
    'memory-mb': { type: 'string', default: '96' },
    out: { type: 'string', default: 'soak-report.json' },
    'settle-seconds': { type: 'string', default: '30' },
    'warmup-minutes': { type: 'string', default: '3' },
  },
});

const started = Date.now();
const log = (line: string): void => { console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s] ${line}`); };

const soak = await runSoak({
  workers: Number(values.workers), durationMs: Number(values.minutes) * 60_000, memoryMB: Number(values['memory-mb']),
  pacingMs: 2000, answerTimeoutMs: 240_000, settleMs: Number(values['settle-seconds']) * 1000, warmupMs: Number(values['warmup-minutes']) * 60_000, sampleEveryMs: 5000, sseReconnectEveryMs: 20_000, tolerance: 0.05, log,
});
log(`soak: ${soak.operations} operations, ${soak.cycles} cycles, fds ${soak.baseline.fds} → ${soak.end.fds}, RSS ${soak.baseline.rssKiB} → ${soak.end.rssKiB} KiB`);
const kills = Number(values.kills) > 0 ? await runKills({ kills: Number(values.kills), memoryMB: Number(values['memory-mb']), log }) : null;
if (kills) log(`kills: ${kills.kills} SIGKILLs, ${kills.problems.length} problems`);

const report = { command: process.argv.slice(1).join(' '), startedAt: new Date(started).toISOString(), totalSeconds: Math.round((Date.now() - started) / 1000), soak, kills };
writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
const problems = [...soak.problems, ...(kills?.problems ?? [])];
for (const p of problems) console.error(`FAIL: ${p}`);
log(problems.length === 0 ? `soak passed; figures in ${values.out}` : `soak FAILED (${problems.length} problems); figures in ${values.out}`);
process.exit(problems.length === 0 ? 0 : 1);
