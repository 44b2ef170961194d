import { join } from 'node:path';
import type { Vm } from '../src/domain/vm.js';
import { RfbClient } from '../test/helpers/rfb-client.js';
import { onCleanup } from './lib/cleanup.js';
import { startBenchDaemon } from './lib/daemon.js';
import { median, resultLine, type BenchResult } from './lib/stats.js';
import { startWsBridge } from './lib/ws-bridge.js';

export interface VncOptions {
  /** Measurement windows per side, in rotation (Grove's WebSocket, bridge by hand, raw socket, ...). */
  rounds: number;
  seconds: number;
}

export const VNC_DEFAULTS: VncOptions = { rounds: 5, seconds: 6 };

interface Window { fps: number; mibps: number }

/**
 * (k) vnc: the screen's frame rate through `GET /vms/:id/vnc` (RFB over the daemon's WebSocket) against
 * the same RFB client attached to the same VM's VNC unix socket by hand, the way noVNC is without Grove:
 * through a websockify-like WebSocket bridge (the reference of the ratio), and, for scale, straight to the
 * socket with no WebSocket at all. One booted test guest keeps its VGA text screen changing (a shell loop
 * scrolling /proc/interrupts on tty1). Each client does what a viewer does: handshake, raw encoding, then
 * one incremental FramebufferUpdateRequest outstanding at a time for the window; the figure is
 * FramebufferUpdates per second. Windows rotate between the sides so load swings fall on all; ratio of
 * the medians.
 */
export async function benchVnc(o: VncOptions = VNC_DEFAULTS): Promise<BenchResult> {
  const bd = await startBenchDaemon('vnc');
  try {
    const vm = (await bd.createGuestVm('bench-vnc')) as Vm;
    await bd.startReady(vm.id);
    await bd.client.ok('POST', `/vms/${vm.id}/console/execute`, { command: '(while :; do cat /proc/interrupts; done >/dev/tty1 2>&1 </dev/null &)', timeoutSeconds: 30 });
    const socket = join(bd.dataDir, 'vms', vm.id, 'vnc.sock');
    const wsUrl = `${bd.api.replace(/^http/, 'ws')}/vms/${vm.id}/vnc`;
    const bridge = await startWsBridge(socket);

    const sides: { label: string; open: () => Promise<RfbClient>; windows: Window[] }[] = [
      { label: 'Grove WebSocket', open: () => RfbClient.overWebSocket(wsUrl, { authorization: `Bearer ${bd.token}` }), windows: [] },
      { label: 'bridge by hand ', open: () => RfbClient.overWebSocket(bridge.url, {}), windows: [] },
      { label: 'raw socket     ', open: () => RfbClient.overUnixSocket(socket), windows: [] },
    ];
    const measure = async (open: () => Promise<RfbClient>): Promise<Window> => {
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

    // Warm-up: each path once (the guest's loop gets going, JIT, first connections).
    for (const s of sides) await measure(s.open);
    for (let i = 0; i < o.rounds; i++) {
      for (const s of sides) s.windows.push(await measure(s.open));
    }
    await bridge.close();
    const fps = sides.map((s) => median(s.windows.map((w) => w.fps)));
    const [grove, byHand, raw] = fps as [number, number, number];
    const res = resultLine('vnc', `${grove.toFixed(1)} updates/s`, `bridge by hand ${byHand.toFixed(1)} updates/s`, grove / byHand, { op: '>=', value: 0.9 });
    res.details.push(
      ...sides.map((s) => `  ${s.label}: ${s.windows.map((w) => w.fps.toFixed(1)).join(', ')} updates/s (${median(s.windows.map((w) => w.mibps)).toFixed(1)} MiB/s median)`),
      `  Grove against the raw socket (no WebSocket at all): ${(grove / raw).toFixed(2)}`,
    );
    return res;
  } finally {
    await bd.close();
  }
}
