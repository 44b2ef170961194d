import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';
import { act, wsUrl } from '../api.js';
import { h } from '../dom.js';

/** The serial console in xterm.js over the console WebSocket (raw bytes both ways). */
export function terminalTab(vmId: string): { el: HTMLElement; dispose: () => void } {
  const host = h('div', { class: 'term', 'aria-label': 'Serial terminal' });
  const note = h('span', { class: 'muted', role: 'status' }, 'connecting…');
  const copy = h('button', { type: 'button' }, 'Copy selection');
  const paste = h('button', { type: 'button' }, 'Paste');
  const reconnect = h('button', { type: 'button' }, 'Reconnect');
  const el = h('div', { class: 'terminal-tab' }, h('div', { class: 'toolbar' }, copy, paste, reconnect, note), host);

  const dark = matchMedia('(prefers-color-scheme: dark)').matches || document.documentElement.dataset['theme'] === 'dark';
  const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 14, scrollback: 5000, screenReaderMode: false,
    theme: dark ? undefined : { background: '#1e1e1e' } });
  const fit = new FitAddon();
  term.loadAddon(fit);
  let ws: WebSocket | null = null;

  const connect = (): void => {
    ws?.close();
    const sock = new WebSocket(wsUrl(`/vms/${encodeURIComponent(vmId)}/console/ws`));
    sock.binaryType = 'arraybuffer';
    ws = sock;
    sock.onopen = () => { note.textContent = 'connected'; term.focus(); };
    sock.onmessage = (m) => { term.write(typeof m.data === 'string' ? m.data : new Uint8Array(m.data as ArrayBuffer)); };
    sock.onclose = (c) => { if (ws === sock) note.textContent = `disconnected${c.reason ? `: ${c.reason}` : ''}`; };
  };
  term.onData((d) => { if (ws?.readyState === WebSocket.OPEN) ws.send(d); });

  copy.addEventListener('click', () => { act('Copy', () => navigator.clipboard.writeText(term.getSelection())); });
  paste.addEventListener('click', () => { act('Paste', async () => { term.paste(await navigator.clipboard.readText()); term.focus(); }); });
  reconnect.addEventListener('click', connect);

  // Open once the element is in the page, so xterm can measure its cells.
  requestAnimationFrame(() => { term.open(host); fit.fit(); connect(); });
  const ro = new ResizeObserver(() => { try { fit.fit(); } catch { /* not laid out */ } });
  ro.observe(host);
  return { el, dispose: () => { ro.disconnect(); ws?.close(); ws = null; term.dispose(); } };
}
