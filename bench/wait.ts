import { ConsoleBuffer } from '../src/app/console/console-buffer.js';
import { startBenchDaemon } from './lib/daemon.js';
import { ApiClient } from './lib/http.js';
import { fmtMs, fmtRatio, median, nowMs, resultLine, type BenchResult, type Target } from './lib/stats.js';

export interface WaitBenchOptions {
  /** Lines waited for; each is watched by both clients at once. */
  runs: number;
  /** The polling client's period. */
  pollMs: number;
}

export const WAIT_DEFAULTS: WaitBenchOptions = { runs: 20, pollMs: 100 };

const TARGET: Target = { op: '>=', value: 2 };

/**
 * (l) Latency from a console line's appearance to the client knowing it.
 *   grove: POST /vms/:id/wait { until: [{ console: LINE }] }, made before the line is printed.
 *   poll:  what a client does without it: GET /vms/:id/console?since=<offset> every 100 ms, looking for LINE.
 * Both watch the same line at once. The line's appearance is when the daemon received its bytes from
 * QEMU (ConsoleBuffer.append is wrapped in this process). The guest prints it 300–700 ms after it is
 * asked to (a random sleep, so it falls anywhere in the poll period). Ratio poll / wait of the medians.
 */
export async function benchWait(o: WaitBenchOptions = WAIT_DEFAULTS): Promise<BenchResult> {
  const bd = await startBenchDaemon('wait');
  const original = Object.getOwnPropertyDescriptor(ConsoleBuffer.prototype, 'append')!;
  try {
    const vm = await bd.createGuestVm('bench-wait');
    await bd.startReady(vm.id);
    // The ready line comes before the serial shell: typed lines count only once it reads them.
    await bd.client.ok('POST', `/vms/${vm.id}/console/execute`, { command: 'true', timeoutSeconds: 120 }, 200, 130_000);
    const seen = new Map<string, number>();
    let watching: string | null = null;
    const append = original.value as (this: ConsoleBuffer, chunk: Buffer, offset: number) => void;
    // Serial output arrives in small chunks: a line may be split between two.
    let tail = '';
    ConsoleBuffer.prototype.append = function (this: ConsoleBuffer, chunk: Buffer, offset: number): void {
      tail = (tail + chunk.toString('latin1')).slice(-256);
      if (watching && !seen.has(watching) && tail.includes(watching)) seen.set(watching, nowMs());
      append.call(this, chunk, offset);
    };
    // A client of its own: the bench client has one socket, which the waiting request holds.
    const waiter = new ApiClient(bd.api, bd.token);
    const waitLat: number[] = [];
    const pollLat: number[] = [];
    for (let i = 0; i < o.runs; i++) {
      const line = `BENCH-WAIT-${i}-DONE`;
      const start = ((await bd.client.ok('GET', `/vms/${vm.id}/console?limit=1`)) as { nextOffset: number }).nextOffset;
      watching = line;
      const waited = waiter.ok('POST', `/vms/${vm.id}/wait`, { until: [{ console: line, since: start }], timeoutSeconds: 60 }).then(() => nowMs());
      const polled = (async () => {
        let since = start;
        let text = '';
        const deadline = nowMs() + 60_000;
        for (;;) {
          if (nowMs() > deadline) throw new Error(`polling never saw ${line}`);
          const t = nowMs();
          const page = (await bd.client.ok('GET', `/vms/${vm.id}/console?since=${since}`)) as { data: string; nextOffset: number };
          text = (text + page.data).slice(-4096);
          since = page.nextOffset;
          if (text.includes(line)) return nowMs();
          await new Promise((r) => setTimeout(r, Math.max(0, o.pollMs - (nowMs() - t))));
        }
      })();
      // The typed command echoes `BENCH-WAIT-$((i))-DONE`, which is not the line; only its output is.
      const sleepMs = 300 + Math.floor(Math.random() * 400);
      await bd.client.ok('POST', `/vms/${vm.id}/console`, { text: `usleep ${sleepMs * 1000}; echo BENCH-WAIT-$((${i}))-DONE\n` });
      const [w, p] = await Promise.all([waited, polled]);
      const at = seen.get(line);
      if (at === undefined) throw new Error(`line ${line} was never seen arriving`);
      waitLat.push(w - at);
      pollLat.push(p - at);
    }
    waiter.close();
    const w = median(waitLat);
    const p = median(pollLat);
    const res = resultLine('wait-console', `POST wait median ${fmtMs(w)}`, `GET console every ${o.pollMs} ms median ${fmtMs(p)}`, p / w, TARGET);
    res.details.push(
      `  ${o.runs} lines, both clients watching each at once; latency from the line reaching the daemon to the client knowing; ratio poll/wait of the medians`,
      `  wait: ${waitLat.map(fmtMs).join(', ')}`,
      `  poll: ${pollLat.map(fmtMs).join(', ')}`,
      `  max: wait ${fmtMs(Math.max(...waitLat))}, poll ${fmtMs(Math.max(...pollLat))}; poll requests cost the daemon ${fmtRatio(1000 / o.pollMs)} requests/s per waiting client, wait one request`,
    );
    return res;
  } finally {
    Object.defineProperty(ConsoleBuffer.prototype, 'append', original);
    await bd.close();
  }
}
