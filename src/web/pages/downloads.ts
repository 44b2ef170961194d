import type { Distro, Download, GroveEvent } from '../../client/types.js';
import { act, api, showError, quietly } from '../api.js';
import { bytes, h, replace } from '../dom.js';
import { live } from '../live.js';

/** Distro images: the catalog, and downloads with progress bars fed by download.* events. */
export async function downloadsPage(main: HTMLElement): Promise<() => void> {
  const catalog = h('tbody');
  const transfers = h('tbody');
  const downloads = new Map<string, Download>();
  replace(main, h('h1', {}, 'Downloads'),
    h('h2', {}, 'In progress and recent'),
    h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Downloads' },
      h('thead', {}, h('tr', {}, ['Distro', 'State', 'Progress', 'Rate', ''].map((c) => h('th', { scope: 'col' }, c)))), transfers)),
    h('h2', {}, 'Catalog'),
    h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Distro catalog' },
      h('thead', {}, h('tr', {}, ['Distro', 'Version', 'Arch', 'Local', ''].map((c) => h('th', { scope: 'col' }, c)))), catalog)));

  const renderDownloads = (): void => {
    const list = [...downloads.values()].sort((a, b) => (a.startedAt ?? '') < (b.startedAt ?? '') ? 1 : -1);
    replace(transfers, list.length === 0 ? h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No downloads')) : list.map((d) => {
      const pct = d.totalBytes ? Math.floor((d.bytes / d.totalBytes) * 100) : null;
      const cancel = h('button', { type: 'button', 'aria-label': `Cancel ${d.distro}` }, 'Cancel');
      cancel.addEventListener('click', () => { act(`Cancel ${d.distro}`, () => api.cancelDownload(d.id), cancel); });
      return h('tr', { 'data-download': d.distro },
        h('th', { scope: 'row' }, d.distro), h('td', {}, d.state, d.error ? h('span', { class: 'error-text' }, `: ${d.error.reason}`) : null),
        h('td', {}, h('progress', { max: 100, ...(pct !== null ? { value: pct } : {}), 'aria-label': `${d.distro} progress` }), ` ${bytes(d.bytes)} / ${bytes(d.totalBytes)}`),
        h('td', {}, d.bytesPerSecond ? `${bytes(d.bytesPerSecond)}/s` : '—'),
        h('td', {}, d.state === 'running' || d.state === 'queued' ? cancel : null));
    }));
  };
  const renderCatalog = (distros: Distro[]): void => {
    replace(catalog, distros.map((d) => {
      const get = h('button', { type: 'button', 'aria-label': `Download ${d.name} ${d.version}` }, 'Download');
      get.addEventListener('click', () => { act(`Download ${d.id}`, async () => { const dl = await api.startDownload(d.id); downloads.set(dl.id, dl); renderDownloads(); }, get); });
      return h('tr', {}, h('th', { scope: 'row' }, d.name), h('td', {}, d.version), h('td', {}, d.arch), h('td', {}, d.downloaded ? 'yes' : 'no'), h('td', {}, d.downloaded ? null : get));
    }));
  };

  const off = live.on((e: GroveEvent) => {
    if (!e.type.startsWith('download.')) return;
    const data = e.data as { downloadId?: string; bytes?: number; totalBytes?: number | null; bytesPerSecond?: number | null };
    const id = data.downloadId;
    if (!id) return;
    const known = downloads.get(id);
    // Progress carries its figures: the bar moves without a request per event.
    if (known && e.type === 'download.progress' && data.bytes !== undefined) {
      Object.assign(known, { bytes: data.bytes, totalBytes: data.totalBytes ?? known.totalBytes, bytesPerSecond: data.bytesPerSecond ?? null, state: 'running' });
      renderDownloads();
      return;
    }
    api.getDownload(id).then((d) => { downloads.set(d.id, d); renderDownloads(); if (d.state === 'completed') quietly(api.listDistros().then(renderCatalog)); }).catch(() => undefined);
  });
  live.start();
  try {
    for (const d of await api.listDownloads()) downloads.set(d.id, d);
    renderDownloads();
    renderCatalog(await api.listDistros());
  } catch (e) { showError(e); }
  return off;
}
