import { join } from 'node:path';
import type { Vm } from '../src/domain/vm.js';
import { RfbClient } from '../test/helpers/rfb-client.js';
import { onCleanup } from './lib/cleanup.js';
import { startBenchDaemon } from './lib/daemon.js';
import { median, resultLine, type BenchResult } from './lib/stats.js';

export interface VncOptions {
  /** Measurement windows per side, alternating (WebSocket, by hand, WebSocket, ...). */
  rounds: number;
  seconds: number;
}

export const VNC_DEFAULTS: VncOptions = { rounds: 5, seconds: 6 };

/**
 * (k) vnc: the screen's frame rate through `GET /vms/:id/vnc` (RFB over the daemon's WebSocket) against an
 * RFB client attached by hand to the same VM's VNC unix socket. One booted test guest keeps its VGA text
 * screen changing (a shell loop scrolling /proc/interrupts on tty1). Each client does what a viewer does:
 * handshake, raw encoding, then one incremental FramebufferUpdateRequest outstanding at a time for the
 * window; the figure is FramebufferUpdates per second. Windows alternate between the two clients so load
 * swings fall on both; ratio of the medians.
 */
export async function benchVnc(o: VncOptions = VNC_DEFAULTS): Promise<BenchResult> {
  const bd = await startBenchDaemon('vnc');
  try {
    const vm = (await bd.createGuestVm('bench-vnc')) as Vm;
    await bd.startReady(vm.id);
    await bd.client.ok('POST', `/vms/${vm.id}/console/execute`, { command: '(while :; do cat /proc/interrupts; done >/dev/tty1 2>&1 </dev/null &)', timeoutSeconds: 30 });
    const socket = join(bd.dataDir, 'vms', vm.id, 'vnc.sock');
    const wsUrl = `${bd.api.replace(/^http/, 'ws')}/vms/${vm.id}/vnc`;

    const viaWs = async (): Promise<RfbClient> => RfbClient.overWebSocket(wsUrl, { authorization: `Bearer ${bd.token}` });
    const byHand = async (): Promise<RfbClient> => RfbClient.overUnixSocket(socket);
    const measure = async (open: () => Promise<RfbClient>): Promise<{ fps: number; mibps: number }> => {
      const c = await open();
      const close = onCleanup('RFB client', () => c.close());
      try {
        await c.handshake();
        c.requestUpdate(false);
        await c.nextUpdate();
        const r = await c.frameRate(o.seconds * 1000);
        return { fps: r.fps, mibps: r.bytes / 2 ** 20 / o.seconds };
      } finally {
        await close();
      }
    };

    // Warm-up: both paths once (the guest's loop gets going, JIT, first connections).
    await measure(viaWs);
    await measure(byHand);
    const ws: { fps: number; mibps: number }[] = [];
    const hand: { fps: number; mibps: number }[] = [];
    for (let i = 0; i < o.rounds; i++) {
      ws.push(await measure(viaWs));
      hand.push(await measure(byHand));
    }
    const wsFps = median(ws.map((r) => r.fps));
    const handFps = median(hand.map((r) => r.fps));
    const res = resultLine('vnc', `${wsFps.toFixed(1)} updates/s`, `by hand ${handFps.toFixed(1)} updates/s`, wsFps / handFps, { op: '>=', value: 0.9 });
    res.details.push(
      `  WebSocket: ${ws.map((r) => r.fps.toFixed(1)).join(', ')} updates/s (${median(ws.map((r) => r.mibps)).toFixed(1)} MiB/s median)`,
      `  by hand:   ${hand.map((r) => r.fps.toFixed(1)).join(', ')} updates/s (${median(hand.map((r) => r.mibps)).toFixed(1)} MiB/s median)`,
    );
    return res;
  } finally {
    await bd.close();
  }
}
