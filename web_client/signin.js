// Sign-in pages (/signin, /signin/link, /signout): identity-provider buttons, the e-mail link form,
// spending an e-mail link with one click, and signing out. API: meetings/signin.py.

import { make } from './dom.js';
import { errorText, getLocale, t } from './i18n.js';

const $ = (sel) => document.querySelector(sel);
const errorBox = $('[data-testid="error"]');
const sections = { in: $('#signed-in'), out: $('#signed-out'), link: $('#link') };
const params = new URLSearchParams(location.search);
/** Where to go once signed in: only a path on this hub (the server checks it again). */
const next = /^\/(?![/\\])/.test(params.get('next') || '') ? params.get('next') : '/';

function show(which) {
  for (const [name, node] of Object.entries(sections)) node.hidden = name !== which;
}

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

async function postJson(url, body, headers = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
    credentials: 'same-origin',
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const err = new Error(data?.error?.message || t('common.serverAnswered', { status: response.status }));
    err.code = data?.error?.code;
    throw err;
  }
  return data;
}

function renderSignedOut(me) {
  const list = $('[data-testid="providers"]');
  list.replaceChildren();
  for (const provider of me.providers) {
    const url = next === '/' ? provider.url : `${provider.url}?next=${encodeURIComponent(next)}`;
    list.append(make('a', { testid: 'provider', text: t('signin.withProvider', { provider: provider.label }),
      attrs: { href: url, 'data-provider': provider.name } }));
  }
  $('#email-form').hidden = !me.email;
  $('[data-testid="no-methods"]').hidden = me.email || me.providers.length > 0;
  show('out');
}

function renderSignedIn(me) {
  $('[data-testid="account-name"]').textContent = me.account.name;
  $('[data-testid="account-email"]').textContent = me.account.email;
  const button = $('[data-testid="signout"]');
  button.onclick = async () => {
    button.disabled = true;
    try {
      await postJson('/api/signin/signout', {}, { 'X-CSRF-Token': me.csrf });
      showError('');
      $('[data-testid="signed-out-note"]').hidden = false;
      await refresh();
    } catch (err) {
      showError(errorText(err));
    } finally {
      button.disabled = false;
    }
  };
  show('in');
}

async function refresh() {
  const response = await fetch('/api/signin/me', { credentials: 'same-origin' });
  const me = await response.json();
  if (me.account) renderSignedIn(me);
  else renderSignedOut(me);
  return me;
}

$('#email-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const submit = $('[data-testid="email-submit"]');
  submit.disabled = true;
  try {
    await postJson('/api/signin/email', { email: $('[data-testid="email"]').value, next, lang: getLocale() });
    showError('');
    $('[data-testid="email-sent"]').hidden = false;
  } catch (err) {
    showError(errorText(err));
  } finally {
    submit.disabled = false;
  }
});

function startLink() {
  const token = params.get('token') || '';
  // The token leaves the address bar (and history) at once; it is spent only by the click.
  history.replaceState(null, '', location.pathname);
  show('link');
  const button = $('[data-testid="link-confirm"]');
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const result = await postJson('/api/signin/email/verify', { token, next });
      location.assign(result.next || '/');
    } catch (err) {
      showError(errorText(err));
      await refresh();
    }
  });
}

/** Another interface language: the provider buttons are written again in it. */
document.addEventListener('unionhub:locale', () => {
  if (!sections.out.hidden) refresh().catch((err) => showError(errorText(err)));
});

if (location.pathname === '/signin/link' && params.get('token')) startLink();
else refresh().catch((err) => showError(errorText(err)));
