import RFB from '@novnc/novnc';
import { api, errorText, wsUrl, quietly } from '../api.js';
import { h } from '../dom.js';

/**
 * The VM's screen: noVNC over /vms/:id/vnc (keyboard and mouse), and when that cannot connect, a
 * screenshot refreshed every two seconds so the screen is still visible.
 */
export function screenTab(vmId: string): { el: HTMLElement; dispose: () => void } {
  const view = h('div', { class: 'screen', 'aria-label': 'VM screen (keyboard and mouse go to the VM)' });
  const shot = h('img', { class: 'screenshot', alt: 'Screenshot of the VM screen', hidden: true });
  const note = h('span', { class: 'muted', role: 'status' }, 'connecting…');
  const cad = h('button', { type: 'button' }, 'Ctrl-Alt-Del');
  const mode = h('button', { type: 'button' }, 'Use screenshots');
  const el = h('div', { class: 'screen-tab' }, h('div', { class: 'toolbar' }, cad, mode, note), view, shot);

  let rfb: RFB | null = null;
  let timer: ReturnType<typeof setInterval> | null = null;
  let url: string | null = null;

  const refreshShot = async (): Promise<void> => {
    try {
      const r = await api.fetchRaw('GET', `/vms/${encodeURIComponent(vmId)}/screenshot`, { headers: { accept: 'image/jpeg' } });
      if (!r.ok) { note.textContent = `screenshot: HTTP ${r.status}`; return; }
      const next = URL.createObjectURL(await r.blob());
      shot.src = next;
      if (url) URL.revokeObjectURL(url);
      url = next;
    } catch (e) { note.textContent = `screenshot: ${errorText(e)}`; }
  };
  const screenshots = (why: string): void => {
    rfb?.disconnect();
    rfb = null;
    view.hidden = true;
    shot.hidden = false;
    note.textContent = `screenshots (${why})`;
    mode.textContent = 'Use live screen';
    if (!timer) { quietly(refreshShot()); timer = setInterval(() => { quietly(refreshShot()); }, 2000); }
  };
  const vnc = (): void => {
    if (timer) { clearInterval(timer); timer = null; }
    view.hidden = false;
    shot.hidden = true;
    mode.textContent = 'Use screenshots';
    note.textContent = 'connecting…';
    const r = new RFB(view, wsUrl(`/vms/${encodeURIComponent(vmId)}/vnc`), { shared: true });
    r.scaleViewport = true;
    r.background = 'transparent';
    r.addEventListener('connect', () => { note.textContent = 'live (keyboard and mouse go to the VM)'; r.focus(); });
    r.addEventListener('disconnect', (e) => {
      if (rfb !== r) return;
      const clean = (e as CustomEvent<{ clean: boolean }>).detail?.clean;
      screenshots(clean ? 'the live screen closed' : 'the live screen is unavailable');
    });
    rfb = r;
  };
  cad.addEventListener('click', () => { rfb?.sendCtrlAltDel(); });
  mode.addEventListener('click', () => { if (rfb) screenshots('chosen'); else vnc(); });
  requestAnimationFrame(vnc);
  return {
    el,
    dispose: () => {
      const r = rfb; rfb = null; r?.disconnect();
      if (timer) clearInterval(timer);
      if (url) URL.revokeObjectURL(url);
    },
  };
}
