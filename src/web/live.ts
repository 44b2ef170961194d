import type { GroveEvent } from '../client/types.js';
import { wsUrl } from './api.js';

type Listener = (e: GroveEvent) => void;

/**
 * One WebSocket on /api/v1/events for the whole page. It reconnects after a drop and replays from the
 * last id it saw (`?since=`), so a row never misses a state change.
 */
class LiveEvents {
  private ws: WebSocket | null = null;
  private lastId: number | null = null;
  private readonly listeners = new Set<Listener>();
  private retry = 500;
  private stopped = true;

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.ws?.close();
    this.ws = null;
  }

  on(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private connect(): void {
    const q: Record<string, string> = { types: 'vm.*,snapshot.*,download.*,agent.*' };
    if (this.lastId !== null) q['since'] = String(this.lastId);
    const ws = new WebSocket(wsUrl('/events', q));
    this.ws = ws;
    ws.onopen = () => { this.retry = 500; document.body.dataset['live'] = 'on'; };
    ws.onmessage = (m) => {
      const e = JSON.parse(String(m.data)) as GroveEvent;
      // A resync notice (replay point older than the retained log) carries no event id.
      if (typeof e.id !== 'number') return;
      this.lastId = e.id;
      // bench/webui.ts measures from here to the row's change (Performance API).
      if (e.type === 'vm.started') performance.mark('grove:vm.started', { detail: e.vmId });
      for (const l of this.listeners) l(e);
    };
    ws.onclose = () => {
      document.body.dataset['live'] = 'off';
      if (this.stopped || this.ws !== ws) return;
      setTimeout(() => { if (!this.stopped) this.connect(); }, this.retry);
      this.retry = Math.min(this.retry * 2, 10_000);
    };
  }
}

export const live = new LiveEvents();
