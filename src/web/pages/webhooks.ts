import type { Webhook } from '../../client/types.js';
import { act, api, showError } from '../api.js';
import { field, h, replace } from '../dom.js';

interface Delivery { id: string; eventId: number; eventType: string; status: string; attempts: number; lastStatusCode: number | null; lastError: string | null; createdAt: string; nextAttemptAt: string | null }

/** Registered webhooks, register / test / remove, and each one's delivery history. */
export async function webhooksPage(main: HTMLElement): Promise<() => void> {
  const list = h('div', { class: 'hooks' });
  const url = h('input', { name: 'url', type: 'url', required: true, placeholder: 'https://example.test/hook' });
  const events = h('input', { name: 'events', placeholder: 'vm.*, snapshot.created (empty: all)' });
  const secret = h('input', { name: 'secret', type: 'password', autocomplete: 'new-password', placeholder: 'optional' });
  const description = h('input', { name: 'description' });
  const add = h('button', { type: 'submit' }, 'Register');
  const form = h('form', { class: 'card form', 'aria-label': 'Register a webhook' }, h('h2', {}, 'Register'),
    field('URL', url), field('Events', events, 'Comma separated; wildcards like vm.* allowed'), field('Secret', secret, 'Signs deliveries (Standard Webhooks)'),
    field('Description', description), add);
  replace(main, h('h1', {}, 'Webhooks'), list, form);

  const load = async (): Promise<void> => {
    const hooks = await api.listWebhooks();
    replace(list, hooks.length === 0 ? h('p', { class: 'muted' }, 'No webhooks registered.') : hooks.map(card));
  };
  const card = (w: Webhook): HTMLElement => {
    const history = h('tbody');
    const test = h('button', { type: 'button' }, 'Send test');
    const del = h('button', { type: 'button', class: 'danger' }, 'Remove');
    const loadHistory = async (): Promise<void> => {
      const r = await api.request<{ deliveries: Delivery[] }>('GET', `/webhooks/${encodeURIComponent(w.id)}/deliveries`);
      replace(history, r.deliveries.length === 0 ? h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No deliveries yet')) : r.deliveries.map((d) => h('tr', {},
        h('td', {}, new Date(d.createdAt).toLocaleString()), h('td', {}, `${d.eventType} #${d.eventId}`), h('td', {}, h('span', { class: `delivery-${d.status}` }, d.status)),
        h('td', {}, String(d.attempts)), h('td', {}, d.lastStatusCode !== null ? String(d.lastStatusCode) : d.lastError ?? '—'))));
    };
    test.addEventListener('click', () => { act('Send test delivery', async () => { await api.request('POST', `/webhooks/${encodeURIComponent(w.id)}/test`, { body: {} }); await loadHistory(); }, test); });
    del.addEventListener('click', () => { if (confirm(`Remove the webhook to ${w.url}?`)) act('Remove webhook', async () => { await api.deleteWebhook(w.id); await load(); }, del); });
    loadHistory().catch(showError);
    return h('section', { class: 'card', 'aria-label': `Webhook ${w.url}` },
      h('h2', {}, w.url), h('p', { class: 'muted' }, `${w.events.join(', ') || 'all events'} · ${w.hasSecret ? 'signed' : 'unsigned'} · ${w.enabled ? 'enabled' : 'disabled (410 Gone)'}${w.description ? ` · ${w.description}` : ''}`),
      h('div', { class: 'actions' }, test, del),
      h('details', {}, h('summary', {}, 'Delivery history'), h('div', { class: 'table-wrap' }, h('table', { 'aria-label': 'Deliveries' },
        h('thead', {}, h('tr', {}, ['Created', 'Event', 'Status', 'Attempts', 'Last answer'].map((c) => h('th', { scope: 'col' }, c)))), history))));
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const ev = events.value.split(',').map((s) => s.trim()).filter(Boolean);
    act('Register webhook', async () => {
      await api.registerWebhook({ url: url.value, ...(ev.length ? { events: ev } : {}), ...(secret.value ? { secret: secret.value } : {}), ...(description.value ? { description: description.value } : {}) });
      form.reset();
      await load();
    }, add);
  });
  await load().catch(showError);
  return () => undefined;
}
