// The pair page (/t/<id>): the pair's sides, its next session in each side's local time (and the
// reader's), scheduled and past sessions, members and activity; organisers schedule sessions,
// invite and remove members and choose whether sessions are recorded here. API: meetings/http.py
// (docs/PROTOCOL.md, "Twinnings and sessions"). Activity entries are worded here, in the
// reader's language, from their kind and fields (older entries have only the server's text).

import { languageName, make } from './dom.js';
import { errorText, formatDateTime, formatNumber, getLocale, t } from './i18n.js';

const $ = (sel) => document.querySelector(sel);
const pairId = decodeURIComponent(location.pathname.split('/')[2] || '');
const errorBox = $('[data-testid="error"]');
let csrf = null;
let pair = null;

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

async function api(method, path, body) {
  const headers = {};
  const form = body instanceof FormData;
  if (body !== undefined && !form) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  const response = await fetch(path, {
    method, headers, credentials: 'same-origin', body: body === undefined || form ? body : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(data?.error?.message || t('common.serverAnswered', { status: response.status }));
    error.status = response.status;
    error.code = data?.error?.code;
    throw error;
  }
  return data;
}

/** "Mon 1 Mar, 14:00" as the reader's browser writes a UTC moment in ``timeZone``. */
function when(utc, timeZone) {
  return new Intl.DateTimeFormat(getLocale(), {
    weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
    timeZone, timeZoneName: 'short',
  }).format(new Date(utc));
}

function localTimes(occurrence) {
  const list = make('ul', { cls: 'local-times' });
  for (const side of occurrence.local) {
    const li = make('li', { testid: 'local-time' });
    li.append(make('strong', { text: `${side.branch}: ` }), `${when(occurrence.start, side.timezone)}`);
    list.append(li);
  }
  const mine = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!occurrence.local.some((side) => side.timezone === mine)) {
    list.append(make('li', { cls: 'muted', text: t('twin.you', { time: when(occurrence.start) }) }));
  }
  return list;
}

function sessionActions(session) {
  const actions = make('div', { cls: 'session-actions' });
  if (session.your_link) {
    actions.append(make('a', { testid: 'join-link', text: t('twin.join'), attrs: { href: session.your_link } }));
  }
  actions.append(make('a', { testid: 'ics-link', text: t('twin.ics'), attrs: { href: session.ics_url } }));
  if (pair.your_role === 'organiser' && session.status === 'scheduled') {
    const cancel = make('button', { cls: 'danger', testid: 'cancel-session', text: t('twin.cancelSession') });
    cancel.addEventListener('click', async () => {
      if (!confirm(t('twin.cancelConfirm', { title: session.title }))) return;
      try {
        await api('DELETE', `/api/twinnings/${pairId}/sessions/${session.id}`);
        await load();
      } catch (err) {
        showError(errorText(err));
      }
    });
    actions.append(cancel);
  }
  return actions;
}

function sizeText(bytes) {
  return bytes >= 1024 * 1024
    ? formatNumber(bytes / (1024 * 1024), { style: 'unit', unit: 'megabyte', maximumFractionDigits: 1 })
    : formatNumber(Math.max(1, Math.round(bytes / 1024)), { style: 'unit', unit: 'kilobyte' });
}

function renderDocuments(documents) {
  const list = $('[data-testid="documents"]');
  list.replaceChildren(...documents.map((d) => {
    const li = make('li', { testid: 'document' });
    li.append(make('a', { text: d.name, attrs: { href: d.url, download: d.name } }),
      make('span', { cls: 'muted', text: ` — ${t('twin.documentMeta', { count: d.pages, size: sizeText(d.size) })}` }));
    if (d.snippet) li.append(make('span', { cls: 'document-snippet', testid: 'document-snippet', text: d.snippet }));
    return li;
  }));
  if (!documents.length) list.replaceChildren(make('li', { cls: 'muted', text: t('twin.noDocuments') }));
}

const roleText = (role) => (role === 'organiser' ? t('twin.roleOrganiser') : t('twin.roleMember'));

/** Each activity kind in the reader's words (meetings/activity.py has the English the API sends). */
const ACTIVITY = {
  created: (f) => t('twin.act.created', { pair: f.pair }),
  'member-added': (f) => t('twin.act.memberAdded', { name: f.name, role: roleText(f.role) }),
  'member-removed': (f) => t('twin.act.memberRemoved', { name: f.name }),
  'session-scheduled': (f) => t('twin.act.sessionScheduled', { title: f.title }),
  'session-changed': (f) => t('twin.act.sessionChanged', { title: f.title }),
  'session-cancelled': (f) => t('twin.act.sessionCancelled', { title: f.title }),
  'session-held': (f) => t('twin.act.sessionHeld', { title: f.title }),
  'document-added': (f) => t('twin.act.documentAdded', { name: f.name, count: f.pages }),
  'recording-on': () => t('twin.act.recordingOn'),
  'recording-off': () => t('twin.act.recordingOff'),
};

function activityText(entry) {
  const word = entry.fields ? ACTIVITY[entry.kind] : null;
  return word ? word(entry.fields) : entry.text;
}

function memberItem(m) {
  const name = m.name || m.email;
  const role = roleText(m.role);
  const li = make('li', {
    testid: 'member',
    text: m.branch !== null ? t('twin.memberOf', { name, role, branch: pair.branches[m.branch].name })
      : t('twin.memberRole', { name, role }),
  });
  if (pair.your_role === 'organiser') {
    const remove = make('button', { cls: 'danger small', testid: 'remove-member', text: t('twin.remove') });
    remove.addEventListener('click', async () => {
      if (!confirm(t('twin.removeConfirm', { name }))) return;
      try {
        await api('DELETE', `/api/twinnings/${pairId}/members/${encodeURIComponent(m.email)}`);
        await load();
      } catch (err) {
        showError(errorText(err));
      }
    });
    li.append(' ', remove);
  }
  return li;
}

function render() {
  $('#pair').hidden = false;
  document.title = t('twin.pageTitleNamed', { name: pair.name });
  $('[data-testid="pair-name"]').textContent = pair.name;
  const branches = $('[data-testid="branches"]');
  branches.replaceChildren(...pair.branches.map((b) => {
    const li = make('li', { testid: 'branch' });
    const langs = b.languages.map(languageName).join(', ');
    li.append(make('strong', { text: b.name }), ` ${[b.union, b.country, b.timezone, langs].filter(Boolean).join(' · ')}`);
    return li;
  }));

  const next = $('[data-testid="next-session"]');
  if (pair.next) {
    next.replaceChildren(make('h3', { text: pair.next.title }), localTimes(pair.next.next), sessionActions(pair.next));
  } else {
    next.replaceChildren(make('p', { cls: 'muted', text: t('twin.noSession') }));
  }

  const sessions = $('[data-testid="sessions"]');
  sessions.replaceChildren(...pair.sessions.filter((s) => s.next || s.status === 'cancelled').map((s) => {
    const li = make('li', { testid: 'session', cls: s.status === 'cancelled' ? 'cancelled' : '' });
    li.append(make('strong', { text: s.title }));
    if (s.next) {
      li.append(` — ${when(s.next.start)}${s.rrule ? ` ${t('twin.repeatsRule', { rule: s.rrule })}` : ''}`, sessionActions(s));
    } else li.append(` — ${t('twin.cancelled')}`);
    return li;
  }));

  const past = $('[data-testid="past-sessions"]');
  past.replaceChildren(...pair.past.map((p) => make('li', { testid: 'past-session', text: `${p.title} — ${when(p.start)}` })));
  if (!pair.past.length) past.replaceChildren(make('li', { cls: 'muted', text: t('twin.noneYet') }));

  if (!$('#document-query').value.trim()) renderDocuments(pair.documents || []);

  $('[data-testid="members"]').replaceChildren(...pair.members.map(memberItem));
  $('[data-testid="activity"]').replaceChildren(...pair.activity.map((a) => make('li', {
    testid: 'activity-item', text: `${formatDateTime(new Date(a.at * 1000))}: ${activityText(a)}`,
  })));
  $('[data-testid="recording-setting"]').textContent = pair.record_sessions ? t('twin.recorded') : t('twin.notRecorded');
  $('[data-testid="record-sessions"]').checked = pair.record_sessions;

  const organiser = pair.your_role === 'organiser';
  for (const section of document.querySelectorAll('.organiser-only')) section.hidden = !organiser;
  const zones = [...new Set(pair.branches.map((b) => b.timezone))];
  const zoneSelect = $('[data-testid="session-timezone"]');
  if (!zoneSelect.options.length) zoneSelect.replaceChildren(...zones.map((z) => make('option', { text: z, attrs: { value: z } })));
  const branchSelect = $('[data-testid="invite-branch"]');
  if (!branchSelect.options.length) {
    branchSelect.replaceChildren(...pair.branches.map((b, i) => make('option', { text: b.name, attrs: { value: String(i) } })));
  }
}

async function load() {
  try {
    pair = await api('GET', `/api/twinnings/${encodeURIComponent(pairId)}`);
    showError('');
    render();
  } catch (err) {
    if (err.status === 401) {
      $('#signed-out').hidden = false;
      $('[data-testid="signin-link"]').href = `/signin?next=${encodeURIComponent(location.pathname)}`;
    } else {
      showError(errorText(err));
    }
  }
}

$('#schedule-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const repeat = form.get('repeat');
  const body = {
    title: form.get('title'),
    start: String(form.get('start')).slice(0, 16),
    timezone: form.get('timezone'),
    duration_minutes: Number(form.get('duration_minutes')),
    rrule: repeat ? `${repeat};COUNT=${Number(form.get('count')) || 1}` : null,
  };
  try {
    await api('POST', `/api/twinnings/${pairId}/sessions`, body);
    event.target.reset();
    await load();
  } catch (err) {
    showError(errorText(err));
  }
});

$('#invite-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    await api('POST', `/api/twinnings/${pairId}/members`, {
      email: form.get('email'), name: form.get('name'), role: form.get('role'), branch: Number(form.get('branch')),
    });
    event.target.reset();
    await load();
  } catch (err) {
    showError(errorText(err));
  }
});

$('[data-testid="record-sessions"]').addEventListener('change', async (event) => {
  try {
    await api('PATCH', `/api/twinnings/${pairId}`, { record_sessions: event.target.checked });
  } catch (err) {
    showError(errorText(err));
  }
  await load();
});

let searchTimer = 0;
$('#document-query').addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(async () => {
    const query = $('#document-query').value.trim();
    try {
      const found = await api('GET', `/api/twinnings/${pairId}/documents?q=${encodeURIComponent(query)}`);
      renderDocuments(found.documents);
    } catch (err) {
      showError(errorText(err));
    }
  }, 250);
});
$('#document-search').addEventListener('submit', (event) => event.preventDefault());

$('#upload-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    await api('POST', `/api/twinnings/${pairId}/documents`, new FormData(event.target));
    event.target.reset();
    await load();
  } catch (err) {
    showError(errorText(err));
  }
});

async function start() {
  try {
    const me = await api('GET', '/api/signin/me');
    csrf = me.csrf;
    const link = $('[data-testid="account-link"]');
    if (me.account) {
      link.textContent = me.account.name || me.account.email;
      link.href = '/signin';
    } else {
      link.href = `/signin?next=${encodeURIComponent(location.pathname)}`;
    }
  } catch {
    // sign-in not available: the page still answers "sign in" below
  }
  await load();
}

start();
