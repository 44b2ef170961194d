import { join } from 'node:path';
import { chromium } from 'playwright-core';
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
  /** Also measure noVNC itself in Chromium, through Grove and through the bridge. */
  browser: boolean;
}

export const VNC_DEFAULTS: VncOptions = { rounds: 5, seconds: 6, browser: true };

const CHROMIUM = process.env['GROVE_CHROMIUM'] ?? '/usr/bin/chromium';

/**
 * Runs in the page before the UI's code (in-page code as text: this file is compiled against Node's types).
 * noVNC sends a FramebufferUpdateRequest (10 bytes, type 3) right after it has decoded and drawn each
 * FramebufferUpdate, so counting them counts frames on screen. With `?vnc=<url>` the screen tab's
 * WebSocket goes to that URL instead of Grove's `/vnc`: the very same noVNC, page and drawing, attached
 * by hand.
 */
const PAGE_HOOK = `(() => {
  const state = { requests: 0 };
  globalThis.__groveVnc = state;
  const target = new URLSearchParams(location.search).get('vnc');
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (ArrayBuffer.isView(data) && data.byteLength === 10 && new Uint8Array(data.buffer, data.byteOffset, 1)[0] === 3) state.requests++;
    return send.call(this, data);
  };
  // A plain function returning the native object, not a subclass: noVNC checks that the WebSocket's own
  // prototype has send/close/...
  const Native = WebSocket;
  function Redirected(url, protocols) { return new Native(target && String(url).endsWith('/vnc') ? target : url, protocols); }
  Redirected.prototype = Native.prototype;
  Object.assign(Redirected, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  globalThis.WebSocket = Redirected;
})()`;

interface Window { fps: number; mibps: number }

/**
 * (k) vnc: the screen's frame rate through `GET /vms/:id/vnc` (RFB over the daemon's WebSocket) against
 * the same RFB client attached to the same VM's VNC unix socket by hand, the way noVNC is without Grove:
 * through a websockify-like WebSocket bridge (the reference of the ratio), and, for scale, straight to the
 * socket with no WebSocket at all. One booted test guest keeps its VGA text screen changing (a shell loop
 * scrolling /proc/interrupts on tty1). Each client does what a viewer does: handshake, raw encoding, then
 * one incremental FramebufferUpdateRequest outstanding at a time for the window; the figure is
 * FramebufferUpdates per second. Windows rotate between the sides so load swings fall on all; ratio of
 * the medians. With `browser`, a second result (vnc-novnc) does the same with noVNC itself in Chromium.
 */
export async function benchVnc(o: VncOptions = VNC_DEFAULTS): Promise<BenchResult | BenchResult[]> {
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
    const browserResult = o.browser ? await benchNoVnc(bd.api.replace(/\/api\/v1$/, ''), bd.token, vm.id, bridge, o) : null;
    await bridge.close();
    const fps = sides.map((s) => median(s.windows.map((w) => w.fps)));
    const [grove, byHand, raw] = fps as [number, number, number];
    const res = resultLine('vnc', `${grove.toFixed(1)} updates/s`, `bridge by hand ${byHand.toFixed(1)} updates/s`, grove / byHand, { op: '>=', value: 0.9 });
    res.details.push(
      ...sides.map((s) => `  ${s.label}: ${s.windows.map((w) => w.fps.toFixed(1)).join(', ')} updates/s (${median(s.windows.map((w) => w.mibps)).toFixed(1)} MiB/s median)`),
      `  Grove against the raw socket (no WebSocket at all): ${(grove / raw).toFixed(2)}`,
    );
    return browserResult ? [res, browserResult] : res;
  } finally {
    await bd.close();
  }
}

/**
 * (k) vnc-novnc: noVNC itself in Chromium (the web UI's screen tab), frames drawn per second through
 * Grove's WebSocket against the same tab attached by hand through the bridge; windows alternate.
 */
async function benchNoVnc(origin: string, token: string, vmId: string, bridge: { url: string; connections: () => number }, o: VncOptions): Promise<BenchResult> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  const closeBrowser = onCleanup('chromium', () => browser.close());
  try {
    // The page's CSP allows WebSockets to its own origin only; the bridge listens on another port.
    const context = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 900 } });
    await context.addInitScript(PAGE_HOOK);
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(`${origin}/`);
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Virtual machines' }).waitFor();

    let load = 0;
    const measure = async (target: string | null): Promise<number> => {
      const query = target ? `vnc=${encodeURIComponent(target)}&r=${load++}` : `r=${load++}`;
      const bridged = bridge.connections();
      await page.goto(`${origin}/?${query}#/vm/${vmId}/screen`);
      await page.locator('.screen-tab .muted', { hasText: 'live' }).waitFor({ timeout: 30_000 }).catch(async (e: unknown) => {
        throw new Error(`the screen tab did not go live (${target ?? 'Grove'}): "${await page.locator('.screen-tab .muted').innerText().catch(() => '?')}"; page errors: ${errors.join(' | ')}; ${String(e)}`);
      });
      await page.waitForTimeout(1000); // the first full frame
      const sample = (): Promise<[number, number]> => page.evaluate<[number, number]>('[globalThis.__groveVnc.requests, performance.now()]');
      const [n0, t0] = await sample();
      await page.waitForTimeout(o.seconds * 1000);
      const [n1, t1] = await sample();
      if (n1 <= n0) throw new Error(`noVNC drew no frame in ${o.seconds} s (${target ?? 'Grove'})`);
      if ((bridge.connections() > bridged) !== (target !== null)) throw new Error(`the screen tab ${target ? 'did not go' : 'went'} through the bridge`);
      // The figure means something only if the tab stayed on the live screen (no fallback to screenshots).
      if (!(await page.locator('.screen-tab .muted', { hasText: 'live' }).isVisible())) throw new Error(`the screen tab left the live screen (${target ?? 'Grove'})`);
      return ((n1 - n0) * 1000) / (t1 - t0);
    };
    await measure(null);
    await measure(bridge.url);
    const grove: number[] = [];
    const hand: number[] = [];
    for (let i = 0; i < o.rounds; i++) {
      grove.push(await measure(null));
      hand.push(await measure(bridge.url));
    }
    const g = median(grove);
    const h = median(hand);
    const res = resultLine('vnc-novnc', `${g.toFixed(1)} frames/s`, `noVNC by hand ${h.toFixed(1)} frames/s`, g / h, { op: '>=', value: 0.9 });
    res.details.push(
      `  noVNC through Grove: ${grove.map((x) => x.toFixed(1)).join(', ')} frames/s`,
      `  noVNC by hand:       ${hand.map((x) => x.toFixed(1)).join(', ')} frames/s`,
    );
    return res;
  } finally {
    await closeBrowser();
  }
}

