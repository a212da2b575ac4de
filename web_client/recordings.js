// The recordings library (/recordings): every recording, newest first, searchable as you type
// (titles, names and what was said, in any caption language), with rename / publish / delete for
// those allowed to manage the archive. API: recordings/http.py. Someone signed in also finds the
// PDFs of their twinning pairs (meetings/http.py, GET /api/twinnings/documents/search).

import { languageName, make } from './dom.js';
import { errorText, formatDateTime, formatNumber, formatRelative, t } from './i18n.js';

const SEARCH_DEBOUNCE_MS = 250;
const POLL_MS = 3000; // refresh while a recording is being made or processed

const $ = (sel) => document.querySelector(sel);
const list = $('#recording-list');
const search = $('[data-testid="recording-search"]');
const form = $('#search-form');
const summary = $('[data-testid="recording-count"]');
const empty = $('[data-testid="recording-empty"]');
const errorBox = $('[data-testid="error"]');
const docsSection = $('[data-testid="pair-documents"]');
const docsList = $('[data-testid="pair-document-list"]');

/** id -> {li, rec, refs, editing, confirming, busy} */
const items = new Map();
let canManage = false;
let query = '';
let inflight = null; // AbortController of the list request in flight
let debounceTimer = 0;
let pollTimer = 0;
let signedIn = Promise.resolve(false); // whether someone is signed in (asked once, as the pair page does)
let docsQuery = ''; // the search the documents shown answer
let docHits = [];

// ---- helpers ------------------------------------------------------------------------------------

export function formatDuration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return '';
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

function listFormat() {
  return new Intl.ListFormat(document.documentElement.lang, { type: 'unit', style: 'short' });
}

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = false;
}

function clearError() {
  errorBox.textContent = '';
  errorBox.hidden = true;
}

/** fetch + JSON, throwing an Error with the server's code and message on failure. */
async function api(url, options = {}) {
  const response = await fetch(url, { headers: { Accept: 'application/json' }, ...options });
  if (response.status === 204) return null;
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message = body && body.error && body.error.message;
    const err = new Error(message || t('common.serverAnswered', { status: response.status }));
    err.code = body && body.error && body.error.code;
    throw err;
  }
  return body;
}

// ---- loading ------------------------------------------------------------------------------------

async function load() {
  clearTimeout(pollTimer);
  if (inflight) inflight.abort();
  const controller = new AbortController();
  inflight = controller;
  const q = query.trim();
  const url = q ? `/api/recordings?q=${encodeURIComponent(q)}` : '/api/recordings';
  list.setAttribute('aria-busy', 'true');
  const documents = loadDocuments(q, controller.signal);
  try {
    const data = await api(url, { signal: controller.signal });
    canManage = data.can_manage !== false;
    render(Array.isArray(data.recordings) ? data.recordings : [], q);
    clearError();
  } catch (err) {
    if (err.name === 'AbortError') return;
    showError(t('library.loadFailed', { reason: errorText(err) }));
  } finally {
    const problem = await documents;
    if (problem && inflight === controller) showError(problem);
    if (inflight === controller) {
      inflight = null;
      list.removeAttribute('aria-busy');
    }
  }
  schedulePoll();
}

function schedulePoll() {
  clearTimeout(pollTimer);
  const active = [...items.values()].some(({ rec }) => rec.status === 'recording' || rec.status === 'processing');
  if (active) pollTimer = setTimeout(load, POLL_MS);
}

function render(recordings, q) {
  const seen = new Set();
  const nodes = recordings.map((rec) => {
    seen.add(rec.id);
    let entry = items.get(rec.id);
    if (!entry) {
      entry = createItem(rec);
      items.set(rec.id, entry);
    }
    updateItem(entry, rec);
    return entry.li;
  });
  for (const id of [...items.keys()]) if (!seen.has(id)) items.delete(id);
  // Only touch the DOM order when it changed, so focus (e.g. a rename in progress) survives polls.
  const current = [...list.children];
  if (current.length !== nodes.length || current.some((node, i) => node !== nodes[i])) {
    list.replaceChildren(...nodes);
  }
  renderSummary(q);
}

function renderSummary(q = query.trim()) {
  const n = items.size;
  summary.textContent = q ? t('library.countMatching', { count: n, query: q }) : t('library.count', { count: n });
  empty.hidden = n > 0;
  empty.textContent = q ? t('library.noMatch', { query: q }) : t('library.empty');
}

// ---- one recording ------------------------------------------------------------------------------

function createItem(rec) {
  const li = make('li', { cls: 'recording-item', testid: 'recording-item' });
  li.dataset.id = rec.id;

  const main = make('div', { cls: 'rec-main' });
  const heading = make('h2', { cls: 'rec-heading' });
  const title = make('a', { cls: 'rec-title', testid: 'recording-title' });
  heading.append(title);

  const renameForm = make('form', { cls: 'rec-rename' });
  renameForm.hidden = true;
  const renameInput = make('input', {
    testid: 'recording-title-input',
    attrs: { maxlength: '200', 'aria-label': t('library.newTitle'), required: '' },
  });
  const renameSave = make('button', { testid: 'recording-rename-save', text: t('common.save'), attrs: { type: 'submit' } });
  const renameCancel = make('button', { testid: 'recording-rename-cancel', text: t('common.cancel'), attrs: { type: 'button' } });
  renameForm.append(renameInput, renameSave, renameCancel);

  const meta = make('p', { cls: 'rec-meta' });
  const date = make('time', { cls: 'rec-date', testid: 'recording-date' });
  const duration = make('span', { cls: 'rec-duration', testid: 'recording-duration' });
  const participants = make('span', { cls: 'rec-participants', testid: 'recording-participants' });
  meta.append(date, duration, participants);

  const langs = make('p', { cls: 'rec-langs', testid: 'recording-languages' });
  const channels = make('p', { cls: 'rec-channels', testid: 'recording-channels' });
  const state = make('p', { cls: 'rec-state' });
  const status = make('span', { cls: 'rec-status', testid: 'recording-status' });
  const progress = make('progress', { cls: 'rec-progress', testid: 'recording-progress', attrs: { max: '1' } });
  const published = make('span', { cls: 'badge rec-published', testid: 'recording-published' });
  state.append(status, progress, published);
  const match = make('p', { cls: 'rec-match', testid: 'recording-match' });
  main.append(heading, renameForm, meta, langs, channels, state, match);

  const actions = make('div', { cls: 'rec-actions' });
  const rename = make('button', { testid: 'recording-rename', text: t('library.rename'), attrs: { type: 'button' } });
  const publish = make('button', { testid: 'recording-publish', attrs: { type: 'button' } });
  const del = make('button', { cls: 'danger', testid: 'recording-delete', text: t('library.delete'), attrs: { type: 'button' } });
  const confirm = make('span', { cls: 'rec-confirm', attrs: { role: 'group', 'aria-label': t('library.confirmDeletion') } });
  confirm.hidden = true;
  const confirmYes = make('button', {
    cls: 'danger', testid: 'recording-delete-confirm', text: t('library.deleteForGood'), attrs: { type: 'button' },
  });
  const confirmNo = make('button', { testid: 'recording-delete-cancel', text: t('library.keep'), attrs: { type: 'button' } });
  confirm.append(confirmYes, confirmNo);
  actions.append(rename, publish, del, confirm);
  li.append(main, actions);

  const entry = {
    li, rec, editing: false, confirming: false, busy: false,
    refs: {
      title, renameForm, renameInput, date, duration, participants, langs, channels, status, progress,
      published, match, actions, rename, publish, del, confirm, confirmYes,
    },
  };

  rename.addEventListener('click', () => startRename(entry));
  renameCancel.addEventListener('click', () => stopRename(entry));
  renameInput.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') stopRename(entry);
  });
  renameForm.addEventListener('submit', (event) => {
    event.preventDefault();
    saveTitle(entry);
  });
  publish.addEventListener('click', () => togglePublished(entry));
  del.addEventListener('click', () => setConfirming(entry, true));
  confirmNo.addEventListener('click', () => setConfirming(entry, false));
  confirmYes.addEventListener('click', () => remove(entry));
  return entry;
}

function statusText(rec) {
  switch (rec.status) {
    case 'recording': return t('library.statusRecording');
    case 'processing':
      return typeof rec.progress === 'number'
        ? t('library.statusProcessingPercent', { percent: formatNumber(rec.progress, { style: 'percent' }) })
        : t('library.statusProcessing');
    case 'ready': return t('library.statusReady');
    case 'failed': return rec.error ? t('library.statusFailedReason', { reason: rec.error }) : t('library.statusFailed');
    default: return rec.status;
  }
}

function updateItem(entry, rec) {
  entry.rec = rec;
  const r = entry.refs;
  entry.li.dataset.status = rec.status;
  entry.li.dataset.published = String(!!rec.published);

  r.title.textContent = rec.title;
  r.title.href = rec.url || `/recordings/${encodeURIComponent(rec.id)}`;
  r.title.hidden = entry.editing;

  const started = new Date(rec.started_at * 1000);
  r.date.dateTime = started.toISOString();
  r.date.textContent = formatDateTime(started);
  r.date.title = formatRelative(started);
  r.duration.textContent = formatDuration(rec.duration);
  r.duration.hidden = !r.duration.textContent;
  const people = Array.isArray(rec.participants) ? rec.participants : [];
  r.participants.textContent = listFormat().format(people.map(String));
  r.participants.hidden = people.length === 0;

  const languages = Array.isArray(rec.languages) ? rec.languages : [];
  r.langs.replaceChildren(...languages.map((code) => {
    const badge = make('span', { cls: 'badge rec-lang', text: code.toUpperCase(), attrs: { title: languageName(code) } });
    badge.dataset.lang = code;
    return badge;
  }));
  r.langs.hidden = languages.length === 0;
  r.langs.setAttribute('aria-label', t('library.captionsIn', { languages: listFormat().format(languages.map(languageName)) }));
  // interpreter channels: the player's "Listen to" offers them
  const channels = (Array.isArray(rec.channels) ? rec.channels : []).map((c) => c && c.lang).filter(Boolean);
  r.channels.textContent = t('library.interpretation', { languages: listFormat().format(channels.map(languageName)) });
  r.channels.hidden = channels.length === 0;

  r.status.textContent = statusText(rec);
  r.status.dataset.status = rec.status;
  r.progress.hidden = rec.status !== 'processing';
  if (typeof rec.progress === 'number') r.progress.value = rec.progress;
  else r.progress.removeAttribute('value'); // indeterminate
  r.published.textContent = rec.published ? t('library.published') : t('library.private');
  r.published.classList.toggle('on', !!rec.published);

  renderMatch(r.match, rec);

  r.actions.hidden = !canManage;
  r.publish.textContent = rec.published ? t('library.unpublish') : t('library.publish');
  r.publish.setAttribute('aria-pressed', String(!!rec.published));
  r.publish.title = rec.published ? t('library.unpublishHint') : t('library.publishHint');
  const recording = rec.status === 'recording';
  r.del.title = recording ? t('library.stopBeforeDelete') : t('library.deleteHint');
  for (const button of [r.rename, r.publish, r.del, r.confirmYes]) button.disabled = entry.busy;
  r.del.disabled = entry.busy || recording;
  r.del.hidden = entry.confirming;
  r.confirm.hidden = !entry.confirming;
}

/** ``snippet`` with the ``[start, end)`` ranges of ``highlights`` in <mark>, appended to ``node``. */
function appendMarked(node, snippet, highlights) {
  let pos = 0;
  for (const [start, end] of Array.isArray(highlights) ? highlights : []) {
    if (!(start >= pos && end > start && end <= snippet.length)) continue;
    node.append(snippet.slice(pos, start), make('mark', { text: snippet.slice(start, end) }));
    pos = end;
  }
  node.append(snippet.slice(pos));
}

/** The search hit: time (a link to that moment), speaker and the snippet with its matches marked. */
function renderMatch(node, rec) {
  const match = rec.match;
  if (!match || typeof match.time !== 'number' || !match.snippet) {
    node.hidden = true;
    node.replaceChildren();
    return;
  }
  const params = new URLSearchParams({ t: String(Math.floor(match.time)) });
  if (match.lang) params.set('lang', match.lang);
  const at = make('a', { cls: 'rec-match-time', text: formatDuration(match.time) });
  at.href = `${rec.url || `/recordings/${encodeURIComponent(rec.id)}`}?${params}`;
  at.title = t('library.playFromHere');
  const parts = [at];
  if (match.speaker) parts.push(make('span', { cls: 'rec-match-speaker', text: `${match.speaker}:` }));
  const text = make('span', { cls: 'rec-match-text' });
  text.dir = 'auto';
  if (match.lang) text.lang = match.lang;
  appendMarked(text, String(match.snippet), match.highlights);
  parts.push(text);
  if (match.hits > 1) parts.push(make('span', { cls: 'rec-match-more', text: t('library.matches', { count: match.hits }) }));
  node.replaceChildren(...parts);
  node.hidden = false;
}

// ---- documents of the pairs one belongs to -------------------------------------------------------

async function whoIsSignedIn() {
  try {
    const me = await api('/api/signin/me');
    return !!(me && me.account);
  } catch {
    return false; // no sign-in on this hub: the library is the recordings only
  }
}

/** Search the signed-in person's pairs' documents for ``q``; the error text to show, if any. */
async function loadDocuments(q, signal) {
  if (!q || !(await signedIn)) {
    docsQuery = q;
    docHits = [];
    renderDocuments();
    return null;
  }
  if (q === docsQuery) return null; // a poll of the recordings: the documents have not changed
  try {
    const data = await api(`/api/twinnings/documents/search?q=${encodeURIComponent(q)}`, { signal });
    docsQuery = q;
    docHits = Array.isArray(data.documents) ? data.documents : [];
    renderDocuments();
    return null;
  } catch (err) {
    if (err.name === 'AbortError') return null;
    docHits = [];
    renderDocuments();
    if (err.code === 'sign-in-required') {
      signedIn = Promise.resolve(false); // signed out in another tab: back to the recordings only
      return null;
    }
    return t('library.documentsFailed', { reason: errorText(err) });
  }
}

function renderDocuments() {
  docsList.replaceChildren(...docHits.map(documentItem));
  docsSection.hidden = docHits.length === 0;
}

/** One document: its name (the download link), pages, its pair (a link to the pair page), the snippet. */
function documentItem(d) {
  const li = make('li', { cls: 'document-hit', testid: 'pair-document' });
  const name = make('a', {
    cls: 'document-hit-name', testid: 'pair-document-link', text: d.name,
    attrs: { href: d.url, download: d.name, title: t('library.downloadDocument', { name: d.name }) },
  });
  name.dir = 'auto';
  const meta = make('p', { cls: 'document-hit-meta' });
  meta.append(make('span', { text: t('library.documentPages', { count: d.pages }) }));
  if (d.pair) {
    const pair = make('a', {
      testid: 'pair-document-pair', text: d.pair.name, attrs: { href: d.pair.url, title: t('library.openPair') },
    });
    pair.dir = 'auto';
    meta.append(pair);
  }
  li.append(name, meta);
  if (d.snippet) {
    const snippet = make('p', { cls: 'document-hit-snippet', testid: 'pair-document-snippet' });
    snippet.dir = 'auto';
    appendMarked(snippet, String(d.snippet), d.highlights);
    li.append(snippet);
  }
  return li;
}

// ---- actions ------------------------------------------------------------------------------------

async function patch(entry, body) {
  entry.busy = true;
  updateItem(entry, entry.rec);
  try {
    const rec = await api(`/api/recordings/${encodeURIComponent(entry.rec.id)}`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
    });
    clearError();
    return { ...rec, match: entry.rec.match };
  } catch (err) {
    showError(t('library.updateFailed', { title: entry.rec.title, reason: errorText(err) }));
    return null;
  } finally {
    entry.busy = false;
  }
}

function startRename(entry) {
  setConfirming(entry, false);
  entry.editing = true;
  const r = entry.refs;
  r.renameInput.value = entry.rec.title;
  r.renameForm.hidden = false;
  r.title.hidden = true;
  r.renameInput.focus();
  r.renameInput.select();
}

function stopRename(entry) {
  entry.editing = false;
  entry.refs.renameForm.hidden = true;
  entry.refs.title.hidden = false;
  entry.refs.rename.focus();
}

async function saveTitle(entry) {
  const title = entry.refs.renameInput.value.trim();
  if (!title) {
    entry.refs.renameInput.focus();
    return;
  }
  if (title === entry.rec.title) {
    stopRename(entry);
    return;
  }
  const rec = await patch(entry, { title });
  if (rec) {
    entry.editing = false;
    entry.refs.renameForm.hidden = true;
    updateItem(entry, rec);
    entry.refs.rename.focus();
  } else {
    updateItem(entry, entry.rec);
  }
}

async function togglePublished(entry) {
  const rec = await patch(entry, { published: !entry.rec.published });
  updateItem(entry, rec || entry.rec);
}

function setConfirming(entry, on) {
  entry.confirming = on;
  updateItem(entry, entry.rec);
  (on ? entry.refs.confirmYes : entry.refs.del).focus();
}

async function remove(entry) {
  entry.busy = true;
  updateItem(entry, entry.rec);
  try {
    await api(`/api/recordings/${encodeURIComponent(entry.rec.id)}`, { method: 'DELETE' });
    items.delete(entry.rec.id);
    entry.li.remove();
    renderSummary();
    clearError();
    search.focus();
  } catch (err) {
    entry.busy = false;
    entry.confirming = false;
    updateItem(entry, entry.rec);
    showError(t('library.deleteFailed', { title: entry.rec.title, reason: errorText(err) }));
  }
}

// ---- search -------------------------------------------------------------------------------------

function setQuery(value) {
  query = value;
  const url = new URL(location.href);
  if (value.trim()) url.searchParams.set('q', value.trim());
  else url.searchParams.delete('q');
  history.replaceState(null, '', url);
  load();
}

/** Another interface language: the items are built again in it. */
document.addEventListener('unionhub:locale', () => {
  items.clear();
  list.replaceChildren();
  renderDocuments();
  load();
});

function main() {
  signedIn = whoIsSignedIn();
  const fromUrl = new URLSearchParams(location.search).get('q') || '';
  // What someone typed before this script ran (a slow network) is searched, not wiped.
  const typed = search.value;
  search.addEventListener('input', () => {
    clearTimeout(debounceTimer);
    debounceTimer = setTimeout(() => setQuery(search.value), SEARCH_DEBOUNCE_MS);
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearTimeout(debounceTimer);
    setQuery(search.value);
  });
  if (typed.trim() && typed.trim() !== fromUrl.trim()) {
    setQuery(typed);
  } else {
    query = fromUrl;
    search.value = query;
    load();
  }
}

main();
