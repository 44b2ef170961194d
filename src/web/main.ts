import './styles.css';
import { api, act, clearError, isUnauthorized, showError, whenUnauthorized } from './api.js';
import { field, h, replace } from './dom.js';
import { live } from './live.js';
import { downloadsPage } from './pages/downloads.js';
import { hostPage } from './pages/host.js';
import { vmCreatePage } from './pages/vm-create.js';
import { vmListPage } from './pages/vm-list.js';
import { vmPage } from './pages/vm-page.js';
import { webhooksPage } from './pages/webhooks.js';

const main = document.getElementById('main')!;
const nav = document.getElementById('nav')!;
const signOutBtn = document.getElementById('signout') as HTMLButtonElement;
let leave: () => void = () => undefined;

function signedIn(on: boolean): void {
  nav.hidden = !on;
  signOutBtn.hidden = !on;
}

function signInPage(): void {
  leave(); leave = () => undefined;
  live.stop();
  signedIn(false);
  const token = h('input', { type: 'password', name: 'token', required: true, autocomplete: 'current-password', spellcheck: 'false' });
  const go = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'card form signin', 'aria-label': 'Sign in' }, h('h1', {}, 'Sign in to Grove'),
    field('API token', token, 'The token in <data dir>/token, as printed at first start. It is sent once; the browser keeps a session cookie.'), go);
  replace(main, form);
  token.focus();
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    act('Sign in', async () => {
      await api.request('POST', '/session', { body: { token: token.value } });
      token.value = '';
      if (!location.hash || location.hash === '#/signin') location.hash = '#/vms';
      await route();
    }, go);
  });
}

async function route(): Promise<void> {
  leave(); leave = () => undefined;
  clearError();
  const parts = (location.hash.replace(/^#\/?/, '') || 'vms').split('/').map(decodeURIComponent);
  for (const a of nav.querySelectorAll('a')) {
    if (a.getAttribute('href') === `#/${parts[0]}`) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  try {
    await api.request('GET', '/session');
  } catch (e) {
    if (isUnauthorized(e)) { signInPage(); return; }
    showError(e);
    return;
  }
  signedIn(true);
  switch (parts[0]) {
    case 'create': leave = await vmCreatePage(main); break;
    case 'vm': leave = await vmPage(main, parts[1] ?? '', parts[2]); break;
    case 'downloads': leave = await downloadsPage(main); break;
    case 'host': leave = await hostPage(main); break;
    case 'webhooks': leave = await webhooksPage(main); break;
    default: leave = await vmListPage(main);
  }
}

signOutBtn.addEventListener('click', () => {
  act('Sign out', async () => { await api.request('DELETE', '/session'); signInPage(); }, signOutBtn);
});

const THEME_KEY = 'grove-theme';
function applyTheme(t: string | null): void {
  if (t) document.documentElement.dataset['theme'] = t; else delete document.documentElement.dataset['theme'];
}
applyTheme(localStorage.getItem(THEME_KEY));
document.getElementById('theme')!.addEventListener('click', () => {
  const dark = document.documentElement.dataset['theme'] === 'dark' || (!document.documentElement.dataset['theme'] && matchMedia('(prefers-color-scheme: dark)').matches);
  const next = dark ? 'light' : 'dark';
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
});

whenUnauthorized(signInPage);
addEventListener('hashchange', () => { route().catch(showError); });
route().catch(showError);
