// One recording (/recordings/<id>): the composed video with a subtitle track per caption language,
// a language menu, and a transcript that follows playback (click a line to jump there). Deep links:
// ?t=90, ?t=1m30s or ?t=1:30 start at that time; ?lang=es picks the caption language.
// API: recordings/http.py.
//
// Interpretation: a recording keeps the floor and each interpreter channel as files of their own
// (the same video, each with its audio). "Listen to" switches file at the same moment, playing on if
// it played; the default is the viewer's own language when there is a channel for it
// (?audio=<lang|floor> picks one).

import { languageName, make } from './dom.js';
import { errorText, formatDateTime, formatNumber, t } from './i18n.js';

const POLL_MS = 3000; // while the recording is still being processed
const USER_SCROLL_HOLD_MS = 4000; // don't auto-scroll the transcript right after the user scrolled
const EPSILON = 0.05; // seconds: a seek to a line's start must land inside that line

const $ = (sel) => document.querySelector(sel);
const video = $('[data-testid="recording-video"]');
const titleNode = $('[data-testid="recording-title"]');
const metaNode = $('[data-testid="recording-meta"]');
const message = $('[data-testid="recording-message"]');
const menu = $('[data-testid="caption-language-menu"]');
const momentLink = $('[data-testid="moment-link"]');
const downloads = $('[data-testid="downloads"]');
const transcriptNode = $('[data-testid="transcript"]');
const transcriptEmpty = $('[data-testid="transcript-empty"]');
const transcriptLang = $('[data-testid="transcript-language"]');
const errorBox = $('[data-testid="error"]');
const channelMenu = $('[data-testid="audio-channel"]');
const channelBox = $('[data-testid="audio-channel-box"]');
const FLOOR = 'floor';

const state = {
  rec: null,
  captionLang: '', // '' = subtitles off
  transcriptLang: '',
  lines: [], // [{start, end, speaker, text}] sorted by start
  nodes: [], // <li> per line
  current: -1,
  pendingSeek: null, // seconds to seek to once the video has metadata
  mediaAttached: false,
  userScrolledAt: 0,
  transcriptRequest: 0,
  audioChannel: FLOOR, // 'floor' or the language of an interpreter channel
};

window.unionhubRecording = { state, video };

// ---- helpers ------------------------------------------------------------------------------------

export function formatTime(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return '0:00';
  const total = Math.floor(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** "90", "90.5", "1m30s", "1h2m", "45s", "1:30", "1:02:03" → seconds; anything else → null. */
export function parseTime(value) {
  if (!value) return null;
  const v = String(value).trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(v)) return parseFloat(v);
  let m = v.match(/^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/);
  if (m && (m[1] || m[2] || m[3])) {
    return Number(m[1] || 0) * 3600 + Number(m[2] || 0) * 60 + parseFloat(m[3] || '0');
  }
  m = v.match(/^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$/);
  if (m) return Number(m[1] || 0) * 3600 + Number(m[2]) * 60 + parseFloat(m[3]);
  return null;
}

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = false;
}

function showMessage(text) {
  message.textContent = text || '';
  message.hidden = !text;
}

async function api(url) {
  const response = await fetch(url, { headers: { Accept: 'application/json' } });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const err = new Error((body && body.error && body.error.message)
      || t('common.serverAnswered', { status: response.status }));
    err.status = response.status;
    err.code = body && body.error && body.error.code;
    throw err;
  }
  return body;
}

function recordingId() {
  const m = location.pathname.match(/^\/recordings\/([^/]+)\/?$/);
  if (!m) return null;
  let id = m[1];
  try {
    id = decodeURIComponent(id);
  } catch {
    return null;
  }
  return /^[0-9a-f]{8,32}$/.test(id) ? id : null;
}

function fileName(title, ext) {
  const base = String(title || 'recording').replace(/[\\/:*?"<>|\u0000-\u001f]+/g, ' ').trim().slice(0, 120);
  return `${base || 'recording'}.${ext}`;
}

// ---- page ---------------------------------------------------------------------------------------

function renderInfo(rec) {
  document.title = `${rec.title} — unionhub`;
  titleNode.textContent = rec.title;
  const parts = [];
  const started = new Date(rec.started_at * 1000);
  if (!Number.isNaN(started.getTime())) {
    parts.push(formatDateTime(started));
  }
  if (typeof rec.duration === 'number') parts.push(formatTime(rec.duration));
  if (Array.isArray(rec.participants) && rec.participants.length) {
    parts.push(new Intl.ListFormat(document.documentElement.lang, { type: 'unit', style: 'short' })
      .format(rec.participants.map(String)));
  }
  metaNode.textContent = parts.join(' · ');
}

function renderStatus(rec) {
  if (rec.status === 'ready') {
    showMessage('');
  } else if (rec.status === 'processing') {
    showMessage(typeof rec.progress === 'number'
      ? t('player.preparingPercent', { percent: formatNumber(rec.progress, { style: 'percent' }) })
      : t('player.preparing'));
  } else if (rec.status === 'recording') {
    showMessage(t('player.stillRecording'));
  } else if (rec.status === 'failed') {
    showMessage(rec.error ? t('player.failedReason', { reason: rec.error }) : t('player.failed'));
  } else {
    showMessage(t('player.status', { status: rec.status }));
  }
}

function renderDownloads(rec) {
  const items = [];
  const link = (text, href, testid, download, lang) => {
    const li = make('li');
    const a = make('a', { text, testid, attrs: { href, download } });
    if (lang) a.dataset.lang = lang;
    li.append(a);
    return li;
  };
  if (rec.status === 'ready' && rec.video) {
    items.push(link(t('player.videoFile'), rec.video, 'download-video', fileName(rec.title, 'mp4')));
  }
  if (rec.status === 'ready' && rec.audio) {
    items.push(link(t('player.audioFile'), rec.audio, 'download-audio', fileName(rec.title, 'm4a')));
  }
  for (const channel of rec.status === 'ready' ? channels(rec) : []) {
    const li = make('li', { cls: 'download-channel' });
    li.dataset.lang = channel.lang;
    li.append(`${t('player.channelFiles', { language: languageName(channel.lang) })} `);
    const name = `${rec.title} ${channel.lang}`;
    li.append(make('a', { text: t('player.videoFile'), testid: 'download-channel-video', attrs: { href: channel.video, download: fileName(name, 'mp4') } }),
      ' · ', make('a', { text: t('player.audioFile'), testid: 'download-channel-audio', attrs: { href: channel.audio, download: fileName(name, 'm4a') } }));
    items.push(li);
  }
  for (const lang of rec.languages || []) {
    const urls = (rec.captions || {})[lang];
    if (!urls) continue;
    const li = make('li', { cls: 'download-captions' });
    li.append(`${t('player.captionsFiles', { language: languageName(lang) })} `);
    const vtt = make('a', { text: 'WebVTT', testid: 'download-vtt', attrs: { href: urls.vtt, download: fileName(`${rec.title} ${lang}`, 'vtt') } });
    const srt = make('a', { text: 'SRT', testid: 'download-srt', attrs: { href: urls.srt, download: fileName(`${rec.title} ${lang}`, 'srt') } });
    vtt.dataset.lang = lang;
    srt.dataset.lang = lang;
    li.append(vtt, ' · ', srt);
    items.push(li);
  }
  downloads.replaceChildren(...items);
  downloads.closest('section').hidden = items.length === 0;
}

function renderMenu(rec) {
  const options = [make('option', { text: t('common.off'), attrs: { value: '' } })];
  for (const lang of rec.languages || []) {
    options.push(make('option', { text: `${languageName(lang)} (${lang})`, attrs: { value: lang } }));
  }
  menu.replaceChildren(...options);
  menu.value = state.captionLang;
  menu.disabled = (rec.languages || []).length === 0;
}

/** The one of `languages` that is `code` (or its base language: es-MX → es); null if none. */
function findLanguage(languages, code) {
  const lower = languages.map((l) => l.toLowerCase());
  const c = String(code || '').toLowerCase();
  let i = lower.indexOf(c);
  if (i < 0) i = lower.indexOf(c.split('-')[0]);
  return i < 0 ? null : languages[i];
}

function pickLanguage(languages, wanted) {
  const find = (code) => findLanguage(languages, code);
  if (wanted) {
    const hit = find(wanted);
    if (hit) return hit;
  }
  for (const pref of navigator.languages || [navigator.language]) {
    const hit = find(pref);
    if (hit) return hit;
  }
  return languages[0] || '';
}

// ---- interpreter channels -----------------------------------------------------------------------

function channels(rec) {
  return Array.isArray(rec.channels) ? rec.channels.filter((c) => c && typeof c.lang === 'string' && c.video) : [];
}

/** The file that plays `channel` (the floor's when the recording has no such channel). */
function channelVideo(rec, channel) {
  const found = channels(rec).find((c) => c.lang === channel);
  return found ? found.video : rec.video;
}

function renderChannels(rec) {
  const list = channels(rec);
  channelBox.hidden = list.length === 0;
  const options = [make('option', { text: t('interp.floorOption'), attrs: { value: FLOOR } })];
  for (const c of list) options.push(make('option', { text: languageName(c.lang), attrs: { value: c.lang, lang: c.lang } }));
  channelMenu.replaceChildren(...options);
  channelMenu.value = state.audioChannel;
}

/** ?audio=, else the viewer's own language when a channel has it, else the floor. */
function pickChannel(rec, wanted) {
  const langs = channels(rec).map((c) => c.lang);
  if (wanted) return findLanguage(langs, wanted) || FLOOR;
  for (const pref of navigator.languages || [navigator.language]) {
    const hit = findLanguage(langs, pref);
    if (hit) return hit;
  }
  return FLOOR;
}

/** Play `channel` from where the viewer is now (and on, if it was playing). */
function setAudioChannel(channel) {
  const rec = state.rec;
  state.audioChannel = channel;
  channelMenu.value = channel;
  updateMomentLink();
  if (!rec || !state.mediaAttached) return;
  const url = channelVideo(rec, channel);
  if (video.getAttribute('src') === url) return;
  const at = currentTime();
  const playing = !video.paused && !video.ended;
  state.pendingSeek = at; // (the loadedmetadata handler seeks there)
  video.src = url;
  if (playing) video.play().catch(() => { /* the viewer presses play */ });
}

// ---- video and subtitle tracks ------------------------------------------------------------------

function attachMedia(rec) {
  if (state.mediaAttached || rec.status !== 'ready' || !rec.video) return;
  state.mediaAttached = true;
  for (const lang of rec.languages || []) {
    const urls = (rec.captions || {})[lang];
    if (!urls) continue;
    const track = make('track', {
      attrs: { kind: 'subtitles', srclang: lang, label: languageName(lang), src: urls.vtt },
    });
    video.append(track);
  }
  video.src = channelVideo(rec, state.audioChannel);
  applyTrackModes();
}

/** Show the chosen language's subtitles, no others (browsers may auto-enable a track). */
function applyTrackModes() {
  for (const track of video.textTracks) {
    const mode = state.captionLang && track.language === state.captionLang ? 'showing' : 'disabled';
    if (track.mode !== mode) track.mode = mode;
  }
}

function setCaptionLanguage(lang) {
  state.captionLang = lang;
  menu.value = lang;
  applyTrackModes();
  if (lang && lang !== state.transcriptLang) loadTranscript(lang);
  updateMomentLink();
}

function seek(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return;
  if (state.mediaAttached && video.readyState >= HTMLMediaElement.HAVE_METADATA) {
    const max = Number.isFinite(video.duration) ? video.duration : seconds;
    video.currentTime = Math.min(seconds, max);
    state.pendingSeek = null;
  } else {
    state.pendingSeek = seconds;
  }
  highlightAt(seconds);
  updateMomentLink(seconds);
}

function currentTime() {
  return state.pendingSeek !== null ? state.pendingSeek : video.currentTime || 0;
}

function updateMomentLink(at = currentTime()) {
  const params = new URLSearchParams({ t: String(Math.floor(at)) });
  if (state.captionLang) params.set('lang', state.captionLang);
  if (state.audioChannel !== FLOOR) params.set('audio', state.audioChannel);
  momentLink.href = `${location.pathname}?${params}`;
}

// ---- transcript ---------------------------------------------------------------------------------

async function loadTranscript(lang) {
  const request = ++state.transcriptRequest;
  state.transcriptLang = lang;
  transcriptLang.textContent = lang ? `(${languageName(lang)})` : '';
  const urls = (state.rec.captions || {})[lang];
  if (!urls) {
    renderTranscript([]);
    return;
  }
  transcriptNode.setAttribute('aria-busy', 'true');
  try {
    const data = await api(urls.transcript);
    if (request !== state.transcriptRequest) return;
    renderTranscript(Array.isArray(data.lines) ? data.lines : [], lang);
  } catch (err) {
    if (request !== state.transcriptRequest) return;
    renderTranscript([]);
    transcriptEmpty.textContent = t('player.transcriptFailed', { reason: errorText(err) });
  } finally {
    if (request === state.transcriptRequest) transcriptNode.removeAttribute('aria-busy');
  }
}

function renderTranscript(lines, lang) {
  state.lines = lines
    .filter((l) => l && typeof l.start === 'number' && typeof l.end === 'number')
    .sort((a, b) => a.start - b.start);
  state.current = -1;
  state.nodes = state.lines.map((line, index) => {
    const li = make('li', { cls: 'transcript-line', testid: 'transcript-line' });
    li.dataset.index = String(index);
    li.dataset.start = String(line.start);
    li.dataset.end = String(line.end);
    const time = make('button', {
      cls: 't-time', text: formatTime(line.start),
      attrs: { type: 'button', 'aria-label': t('player.playFrom', { time: formatTime(line.start) }) },
    });
    const speaker = make('span', { cls: 't-speaker', text: line.speaker || '' });
    speaker.hidden = !line.speaker;
    const text = make('span', { cls: 't-text', text: line.text || '' });
    text.dir = 'auto';
    if (lang) text.lang = lang;
    li.append(time, speaker, text);
    return li;
  });
  transcriptNode.replaceChildren(...state.nodes);
  transcriptEmpty.hidden = state.lines.length > 0;
  transcriptEmpty.textContent = ((state.rec && state.rec.languages) || []).length
    ? t('player.noCaptionsInLanguage')
    : t('player.noCaptions');
  highlightAt(currentTime());
}

/** Index of the line playing at `t`: the latest-starting line that contains it, or -1. */
function lineAt(t) {
  const lines = state.lines;
  let lo = 0;
  let hi = lines.length - 1;
  let last = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (lines[mid].start <= t + EPSILON) {
      last = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  for (let i = last; i >= 0 && i > last - 8; i -= 1) {
    if (t < lines[i].end) return i;
  }
  return -1;
}

function highlightAt(t) {
  const index = lineAt(t);
  if (index === state.current) return;
  const old = state.nodes[state.current];
  if (old) {
    old.classList.remove('current');
    old.removeAttribute('aria-current');
  }
  state.current = index;
  const node = state.nodes[index];
  if (!node) return;
  node.classList.add('current');
  node.setAttribute('aria-current', 'true');
  if (Date.now() - state.userScrolledAt > USER_SCROLL_HOLD_MS) scrollIntoPanel(node);
}

function scrollIntoPanel(node) {
  const panel = transcriptNode;
  const box = panel.getBoundingClientRect();
  const line = node.getBoundingClientRect();
  if (line.top >= box.top && line.bottom <= box.bottom) return;
  panel.scrollTop += line.top - box.top - box.height / 3;
}

// ---- start-up -----------------------------------------------------------------------------------

async function refresh() {
  let rec;
  try {
    rec = await api(`/api/recordings/${state.rec.id}`);
  } catch (err) {
    if (err.status === 404) {
      showMessage(t('player.gone'));
      return;
    }
    setTimeout(refresh, POLL_MS * 2);
    return;
  }
  const languagesChanged = JSON.stringify(rec.languages) !== JSON.stringify(state.rec.languages);
  const channelsChanged = JSON.stringify(rec.channels) !== JSON.stringify(state.rec.channels);
  state.rec = rec;
  if (channelsChanged) {
    state.audioChannel = pickChannel(rec, new URLSearchParams(location.search).get('audio'));
    renderChannels(rec);
  }
  renderInfo(rec);
  renderStatus(rec);
  renderDownloads(rec);
  if (languagesChanged) {
    renderMenu(rec);
    const languages = Array.isArray(rec.languages) ? rec.languages : [];
    if (!state.transcriptLang && languages.length) setCaptionLanguage(pickLanguage(languages, null));
  }
  if (rec.status === 'ready') {
    attachMedia(rec);
  } else if (rec.status === 'recording' || rec.status === 'processing') {
    setTimeout(refresh, POLL_MS);
  }
}

function wire() {
  menu.addEventListener('change', () => setCaptionLanguage(menu.value));
  channelMenu.addEventListener('change', () => setAudioChannel(channelMenu.value));
  video.textTracks.addEventListener('addtrack', applyTrackModes);
  video.addEventListener('loadedmetadata', () => {
    applyTrackModes();
    if (state.pendingSeek !== null) seek(state.pendingSeek);
  });
  video.addEventListener('timeupdate', () => {
    if (state.pendingSeek !== null) return;
    highlightAt(video.currentTime);
    updateMomentLink(video.currentTime);
  });
  video.addEventListener('seeked', () => highlightAt(video.currentTime));
  video.addEventListener('error', () => {
    if (!state.mediaAttached) return;
    const code = video.error ? video.error.code : 0;
    showMessage(code === 4 ? t('player.cannotPlay') : t('player.videoFailed'));
  });
  transcriptNode.addEventListener('click', (event) => {
    const li = event.target.closest('[data-testid="transcript-line"]');
    if (!li || !transcriptNode.contains(li)) return;
    const line = state.lines[Number(li.dataset.index)];
    if (!line) return;
    state.userScrolledAt = 0;
    seek(line.start);
  });
  for (const kind of ['wheel', 'touchmove']) {
    transcriptNode.addEventListener(kind, () => { state.userScrolledAt = Date.now(); }, { passive: true });
  }
  transcriptNode.addEventListener('keydown', (event) => {
    if (['ArrowUp', 'ArrowDown', 'PageUp', 'PageDown'].includes(event.key)) state.userScrolledAt = Date.now();
  });
}

/** Another interface language: what this page wrote is written again in it. */
function relabel() {
  if (!state.rec) return;
  renderInfo(state.rec);
  renderStatus(state.rec);
  renderDownloads(state.rec);
  renderMenu(state.rec);
  renderChannels(state.rec);
  const lang = state.transcriptLang;
  state.transcriptLang = '';
  if (lang) loadTranscript(lang);
  else renderTranscript([]);
}

async function main() {
  wire();
  document.addEventListener('unionhub:locale', relabel);
  const id = recordingId();
  if (!id) {
    showError(t('player.badAddress'));
    return;
  }
  const params = new URLSearchParams(location.search);
  const start = parseTime(params.get('t'));
  let rec;
  try {
    rec = await api(`/api/recordings/${id}`);
  } catch (err) {
    titleNode.textContent = t('player.notFoundTitle');
    showError(err.status === 404 ? t('player.notFound') : t('player.loadFailed', { reason: errorText(err) }));
    renderTranscript([]);
    return;
  }
  state.rec = rec;
  renderInfo(rec);
  renderStatus(rec);
  renderDownloads(rec);
  const languages = Array.isArray(rec.languages) ? rec.languages : [];
  state.captionLang = pickLanguage(languages, params.get('lang'));
  renderMenu(rec);
  state.audioChannel = pickChannel(rec, params.get('audio'));
  renderChannels(rec);
  attachMedia(rec);
  if (state.captionLang) loadTranscript(state.captionLang);
  else renderTranscript([]);
  applyTrackModes();
  if (start !== null) seek(start);
  else updateMomentLink(0);
  if (rec.status === 'recording' || rec.status === 'processing') setTimeout(refresh, POLL_MS);
}

main();
