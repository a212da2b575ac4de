// The live viewer page (/live/<room>): the room's HLS stream (video + audio) with a subtitle track
// per caption language, a caption-language menu and the number of people watching.
//
// Interpretation: each interpreter channel is an audio rendition of the stream (the floor is the
// default); "Listen to" picks one through hls.js's audioTracks — the viewer's own language when the
// stream has it (or ?audio=<lang|floor>). The stream is reloaded when a channel is added.
//
// GET /api/live/<room>?viewer=<id> is polled every few seconds with a random id that stays the same
// for this tab: it says whether the room is live (or has ended) and in which languages, and counts
// this page as a viewer. Playback starts by itself when the room goes live. hls.js plays the stream
// where Media Source Extensions exist; elsewhere (iOS Safari) the browser's own HLS does.
// Protocol: docs/PROTOCOL.md ("Live streaming").

import { languageName, make } from './dom.js';
import { t } from './i18n.js';

const FLOOR = 'floor';

const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;
const POLL_MS = 5000; // the server counts viewers seen in the last 15 s
const RESTART_MS = 3000; // wait before reloading the stream after a fatal error
const QUIET_FAILURES = 4; // stream load failures right after going live are expected (no segment yet)
const MAX_MEDIA_RECOVERIES = 3;

const $ = (sel) => document.querySelector(sel);
const video = $('[data-testid="live-video"]');
const statusNode = $('[data-testid="live-status"]');
const menu = $('[data-testid="live-caption-language"]');
const viewerCount = $('[data-testid="viewer-count"]');
const indicator = $('[data-testid="live-indicator"]');
const roomName = $('[data-testid="room-name"]');
const titleNode = $('[data-testid="live-title"]');
const note = $('[data-testid="live-note"]');
const after = $('[data-testid="live-after"]');
const errorBox = $('[data-testid="error"]');
const channelMenu = $('[data-testid="audio-channel"]');
const channelBox = $('[data-testid="audio-channel-box"]');

const state = {
  room: null,
  viewer: viewerId(),
  info: null, // the last answer of /api/live/<room>
  stream: null, // started_at of the stream being played (a new one restarts playback)
  playlist: null,
  hls: null,
  native: false, // the browser's own HLS plays the stream
  captionLang: '', // '' = captions off
  wantedLang: null, // ?lang= or the browser's languages, until the stream's languages are known
  userPicked: false,
  audioChannel: null, // the channel picked ('floor' or a language); null: not yet decided
  failures: 0, // consecutive fatal stream errors
  mediaRecoveries: 0,
  restartTimer: 0,
  pollTimer: 0,
  stopped: false, // bad room: nothing more to do
  sawEnd: false, // the stream being played has ended (going live again starts a new one)
  playedStream: null, // the stream (started_at) this page has played: errors are no longer quiet
};

window.unionhubLive = {
  state,
  video,
  get hls() { return state.hls; },
};

// ---- helpers ------------------------------------------------------------------------------------

function viewerId() {
  const KEY = 'unionhub-live-viewer';
  try {
    const stored = sessionStorage.getItem(KEY);
    if (stored && /^[0-9a-f]{32}$/.test(stored)) return stored;
  } catch { /* storage disabled: a new id per page load */ }
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  const id = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  try {
    sessionStorage.setItem(KEY, id);
  } catch { /* ignore */ }
  return id;
}

let errorKind = null;

function showError(text, kind = 'general') {
  errorKind = kind;
  errorBox.textContent = text;
  errorBox.hidden = false;
}

function clearError(kind) {
  if (kind && kind !== errorKind) return;
  errorKind = null;
  errorBox.textContent = '';
  errorBox.hidden = true;
}

function setStatus(text) {
  statusNode.textContent = text || '';
  statusNode.hidden = !text;
}

function roomFromPath() {
  const m = location.pathname.match(/^\/live\/([^/]+)\/?$/);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return m[1];
  }
}

// ---- the room's live state ----------------------------------------------------------------------

/**
 * Behind a cluster's front proxy the page names the node that hosts the stream (`?node=`); the
 * status and the playlist carry it too (the playlists' own relative URLs go by a cookie).
 */
function withNode(path) {
  const node = new URLSearchParams(window.location.search).get('node');
  if (!node) return path;
  return `${path}${path.includes('?') ? '&' : '?'}node=${encodeURIComponent(node)}`;
}

async function poll() {
  clearTimeout(state.pollTimer);
  if (state.stopped) return;
  const url = withNode(`/api/live/${encodeURIComponent(state.room)}?viewer=${state.viewer}`);
  let response;
  try {
    response = await fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  } catch {
    showError(t('live.unreachable'), 'poll');
    schedulePoll();
    return;
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok || !body || typeof body !== 'object') {
    if (response.status === 404 || response.status === 400) {
      // A bad room name (or no live streaming on this server): polling will not change that.
      state.stopped = true;
      setStatus('');
      showError(t('live.noStream'), 'poll');
      indicator.hidden = true;
      viewerCount.hidden = true;
      return;
    }
    showError(response.status >= 500
      ? t('live.serverProblem', { status: response.status })
      : t('live.serverAnswered', { status: response.status }), 'poll');
    schedulePoll();
    return;
  }
  clearError('poll');
  update(body);
  schedulePoll();
}

function schedulePoll() {
  clearTimeout(state.pollTimer);
  if (!state.stopped) state.pollTimer = setTimeout(poll, POLL_MS);
}

function update(info) {
  state.info = info;
  const live = !!info.live;
  const ended = !live && !!info.ended;
  indicator.hidden = !live;
  // The server counts viewers of rooms that are (or were) live only.
  const viewers = (live || ended) && Number.isInteger(info.viewers) && info.viewers >= 0 ? info.viewers : null;
  viewerCount.hidden = viewers === null;
  if (viewers !== null) {
    viewerCount.dataset.count = String(viewers);
    viewerCount.textContent = t('live.watching', { count: viewers });
    viewerCount.title = t('live.watchingHint', { count: viewers });
  }
  renderMenu();
  after.hidden = !ended;

  if (live) {
    const playlist = withNode(typeof info.playlist === 'string' && info.playlist.startsWith('/')
      ? info.playlist : `/live/${encodeURIComponent(state.room)}/hls/index.m3u8`);
    // a new channel is a new master playlist: players read it once, so the stream is reloaded
    const channels = Array.isArray(info.channels) ? info.channels.join(',') : '';
    const stream = `${info.started_at ?? 'live'}|${channels}`;
    const restarting = state.restartTimer !== 0; // restartSoon() reloads it
    if (!restarting && (state.stream !== stream || !state.playlist || state.sawEnd)) start(playlist, stream);
  } else if (ended) {
    // The playlists end: the player plays out what it has buffered and stops.
    state.sawEnd = true;
    clearTimeout(state.restartTimer);
    state.restartTimer = 0;
    setStatus(t('live.ended'));
    clearError('stream');
  } else {
    stop();
    setStatus(t('live.notYet'));
  }
}

function isPlaying() {
  return !video.paused && !video.ended && video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA;
}

// ---- playback -----------------------------------------------------------------------------------

function hlsSupported() {
  return typeof window.Hls === 'function' && window.Hls.isSupported();
}

/** Start playing `playlist` (stream `stream`), replacing whatever played before. */
function start(playlist, stream) {
  stop();
  state.stream = stream;
  state.playlist = playlist;
  state.sawEnd = false;
  state.mediaRecoveries = 0;
  setStatus(startingText());
  // hls.js first: Chromium also claims native HLS now, but without our subtitle renditions in
  // video.textTracks; the browser's own HLS is for where there is no MSE (iOS Safari).
  if (hlsSupported()) {
    startHls(playlist);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    state.native = true;
    video.src = playlist;
    play();
  } else {
    state.stopped = true;
    clearTimeout(state.pollTimer);
    setStatus('');
    showError(t('live.unsupported'), 'unsupported');
  }
}

function startHls(playlist) {
  const Hls = window.Hls;
  const hls = new Hls({
    lowLatencyMode: false,
    // 3 s behind the live edge (hls.js's default is 3 segments, 6 s): glass to viewer ≈ one
    // segment (2 s) + 3 s + decoding, measured 5.x s (docs/BENCHMARKS.md). After a stall it catches
    // up by playing slightly faster rather than jumping.
    liveSyncDuration: 3,
    liveMaxLatencyDuration: 10,
    maxLiveSyncPlaybackRate: 1.1,
    renderTextTracksNatively: true, // subtitles become video.textTracks
    enableWorker: false, // a blob: worker is forbidden by the Content-Security-Policy
    subtitleDisplay: true,
    // Segments appear a few seconds after going live: retry the playlist a little before giving up
    // (then the page reloads the stream itself).
    manifestLoadPolicy: {
      default: {
        maxTimeToFirstByteMs: 10000,
        maxLoadTimeMs: 20000,
        timeoutRetry: { maxNumRetry: 2, retryDelayMs: 0, maxRetryDelayMs: 0 },
        errorRetry: { maxNumRetry: 3, retryDelayMs: 1000, maxRetryDelayMs: 4000, shouldRetry: retryAll },
      },
    },
  });
  state.hls = hls;
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    renderMenu();
    applyCaptionLanguage();
    renderChannels();
    play();
  });
  hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, () => renderChannels());
  hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, () => renderChannels());
  for (const event of [Hls.Events.MEDIA_ATTACHED, Hls.Events.SUBTITLE_TRACKS_UPDATED]) {
    hls.on(event, () => {
      renderMenu();
      applyCaptionLanguage();
    });
  }
  hls.on(Hls.Events.SUBTITLE_TRACK_SWITCH, () => applyTrackModes());
  hls.on(Hls.Events.FRAG_BUFFERED, () => {
    if (state.failures) {
      state.failures = 0;
      clearError('stream');
    }
  });
  hls.on(Hls.Events.ERROR, (event, data) => onHlsError(hls, data));
  hls.loadSource(playlist);
  hls.attachMedia(video);
}

function retryAll(retryConfig, retryCount) {
  return !!retryConfig && retryCount < retryConfig.maxNumRetry;
}

function onHlsError(hls, data) {
  if (hls !== state.hls || !data || !data.fatal) return;
  const Hls = window.Hls;
  if (data.type === Hls.ErrorTypes.MEDIA_ERROR && state.mediaRecoveries < MAX_MEDIA_RECOVERIES) {
    state.mediaRecoveries += 1;
    hls.recoverMediaError();
    return;
  }
  console.warn('unionhub: live stream error', data.type, data.details);
  state.failures += 1;
  const info = state.info || {};
  // Right after going live the playlists may not be there yet; once it played, say so at once.
  const quiet = state.playedStream === state.stream ? 0 : QUIET_FAILURES;
  if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
    if (state.failures > quiet) {
      showError(t('live.networkProblem'), 'stream');
    }
  } else if (state.failures > 1) {
    showError(t('live.playProblem'), 'stream');
  }
  if (info.ended) return; // nothing more to load
  restartSoon();
}

/** Reload the stream after a fatal error (if the room is still live then). */
function restartSoon() {
  const playlist = state.playlist;
  const stream = state.stream;
  stop();
  setStatus(startingText(stream));
  state.restartTimer = setTimeout(() => {
    state.restartTimer = 0;
    const info = state.info || {};
    if (info.live && playlist) start(playlist, stream);
  }, RESTART_MS);
}

function startingText(stream = state.stream) {
  return state.playedStream !== null && state.playedStream === stream
    ? t('live.reconnecting') : t('live.starting');
}

function stop() {
  clearTimeout(state.restartTimer);
  state.restartTimer = 0;
  if (state.hls) {
    state.hls.destroy();
    state.hls = null;
  }
  if (state.native) {
    video.removeAttribute('src');
    video.load();
    state.native = false;
  }
  state.stream = null;
  state.playlist = null;
  renderChannels();
}

function play() {
  const promise = video.play();
  if (promise) {
    promise.catch((err) => {
      if (err && err.name === 'NotAllowedError') {
        setStatus(t('live.pressPlay'));
      }
    });
  }
}

video.addEventListener('playing', () => {
  const info = state.info || {};
  if (state.stream !== null) state.playedStream = state.stream;
  if (info.live) setStatus('');
  clearError('stream');
  state.failures = 0;
  renderNote();
});
for (const event of ['volumechange', 'pause', 'ended', 'emptied']) video.addEventListener(event, renderNote);
video.addEventListener('ended', () => {
  if ((state.info || {}).ended) setStatus(t('live.ended'));
});
video.addEventListener('error', () => {
  if (!state.native || !video.error) return;
  state.failures += 1;
  if (state.failures > QUIET_FAILURES) {
    showError(t('live.loadProblem'), 'stream');
  }
  if ((state.info || {}).live) restartSoon();
});
// The native player's own captions menu: follow what the viewer picked there.
video.textTracks.addEventListener('change', () => {
  const showing = [...video.textTracks].find((t) => t.mode === 'showing' && t.kind !== 'metadata');
  const lang = showing ? showing.language : '';
  if (lang !== state.captionLang && (showing || state.captionLang)) {
    if (!showing && state.hls && state.hls.subtitleTrack >= 0) return; // a switch in progress
    state.captionLang = lang;
    state.userPicked = true;
    menu.value = lang;
  }
});

function renderNote() {
  note.hidden = !(video.muted && isPlaying());
  note.textContent = t('live.mutedNote');
}

// ---- captions -----------------------------------------------------------------------------------

/** The stream's caption languages: its subtitle renditions, and what the server says. */
function languages() {
  const langs = [];
  const add = (code) => {
    if (typeof code === 'string' && code && !langs.includes(code)) langs.push(code);
  };
  if (state.hls) for (const track of state.hls.subtitleTracks || []) add(track.lang || track.name);
  if (state.native) {
    for (const track of video.textTracks) {
      if (track.kind === 'subtitles' || track.kind === 'captions') add(track.language);
    }
  }
  for (const code of (state.info && state.info.languages) || []) add(code);
  return langs;
}

/** The entry of ``langs`` that is ``code`` (any case), else its base language ("pt-BR" → "pt"), else null. */
function matchLanguage(langs, code) {
  const lower = langs.map((l) => l.toLowerCase());
  const c = String(code || '').toLowerCase();
  let i = lower.indexOf(c);
  if (i < 0) i = lower.indexOf(c.split('-')[0]);
  return i < 0 ? null : langs[i];
}

function pickLanguage(langs) {
  const find = (code) => matchLanguage(langs, code);
  const wanted = new URLSearchParams(location.search).get('lang');
  if (wanted === 'off' || wanted === '') return '';
  if (wanted) return find(wanted) || '';
  for (const pref of navigator.languages || [navigator.language]) {
    const hit = find(pref);
    if (hit) return hit;
  }
  return '';
}

function renderMenu() {
  const langs = languages();
  const current = [...menu.options].map((o) => o.value);
  const wantedOptions = ['', ...langs];
  if (current.length !== wantedOptions.length || current.some((v, i) => v !== wantedOptions[i])) {
    const options = [make('option', { text: t('common.off'), attrs: { value: '' } })];
    for (const code of langs) {
      options.push(make('option', { text: `${languageName(code)} (${code})`, attrs: { value: code } }));
    }
    menu.replaceChildren(...options);
  }
  if (!state.userPicked && langs.length) {
    const pick = pickLanguage(langs);
    if (pick !== state.captionLang) {
      state.captionLang = pick;
      applyCaptionLanguage();
    }
  }
  menu.value = langs.includes(state.captionLang) ? state.captionLang : '';
  menu.disabled = langs.length === 0;
}

/** Make the chosen language's subtitles the ones loaded and shown (none when off). */
function applyCaptionLanguage() {
  const hls = state.hls;
  if (hls) {
    const tracks = hls.subtitleTracks || [];
    const index = state.captionLang
      ? tracks.findIndex((t) => (t.lang || t.name) === state.captionLang)
      : -1;
    hls.subtitleDisplay = true;
    if (hls.subtitleTrack !== index) hls.subtitleTrack = index;
  }
  applyTrackModes();
}

/** Only the chosen language's text track is showing (browsers and hls.js may enable others). */
function applyTrackModes() {
  for (const track of video.textTracks) {
    if (track.kind !== 'subtitles' && track.kind !== 'captions') continue;
    const mode = state.captionLang && track.language === state.captionLang ? 'showing' : 'disabled';
    if (track.mode !== mode) track.mode = mode;
  }
}

menu.addEventListener('change', () => {
  state.userPicked = true;
  state.captionLang = menu.value;
  applyCaptionLanguage();
  const params = new URLSearchParams(location.search);
  if (state.captionLang) params.set('lang', state.captionLang);
  else params.set('lang', 'off');
  history.replaceState(null, '', `${location.pathname}?${params}`);
});

// ---- interpreter channels (audio renditions) ------------------------------------------------------

/** The stream's channels: the language of each audio rendition (the floor's has none). */
function channelLanguages() {
  const tracks = (state.hls && state.hls.audioTracks) || [];
  return tracks.map((track) => track.lang || '').filter((lang) => lang);
}

function channelIndex(channel) {
  const tracks = (state.hls && state.hls.audioTracks) || [];
  return tracks.findIndex((track) => (channel === FLOOR ? !track.lang : track.lang === channel));
}

/** The channel a viewer who has not picked one hears: ?audio=, else their own language, else the floor. */
function defaultChannel(langs) {
  const find = (code) => matchLanguage(langs, code);
  const wanted = new URLSearchParams(location.search).get('audio');
  if (wanted) return find(wanted) || FLOOR;
  for (const pref of navigator.languages || [navigator.language]) {
    const hit = find(pref);
    if (hit) return hit;
  }
  return FLOOR;
}

function renderChannels() {
  const langs = channelLanguages();
  channelBox.hidden = langs.length === 0;
  const wantedOptions = [FLOOR, ...langs];
  const current = [...channelMenu.options].map((o) => o.value);
  if (current.length !== wantedOptions.length || current.some((v, i) => v !== wantedOptions[i])) {
    const options = [make('option', { text: t('interp.floorOption'), attrs: { value: FLOOR } })];
    for (const code of langs) {
      options.push(make('option', { text: languageName(code), attrs: { value: code, lang: code } }));
    }
    channelMenu.replaceChildren(...options);
  }
  if (!langs.length) return;
  if (state.audioChannel === null || (state.audioChannel !== FLOOR && !langs.includes(state.audioChannel))) {
    state.audioChannel = defaultChannel(langs);
  }
  channelMenu.value = state.audioChannel;
  const index = channelIndex(state.audioChannel);
  if (index >= 0 && state.hls.audioTrack !== index) state.hls.audioTrack = index;
}

channelMenu.addEventListener('change', () => {
  state.audioChannel = channelMenu.value;
  renderChannels();
  const params = new URLSearchParams(location.search);
  params.set('audio', state.audioChannel);
  history.replaceState(null, '', `${location.pathname}?${params}`);
});

// ---- start --------------------------------------------------------------------------------------

function main() {
  const room = roomFromPath();
  if (room === null || !ROOM_RE.test(room)) {
    setStatus('');
    showError(room === null ? t('live.noRoom') : t('join.badRoomNamed', { room }));
    return;
  }
  state.room = room;
  roomName.textContent = room;
  titleNode.textContent = t('live.roomHeading', { room });
  document.title = `${t('live.roomHeading', { room })} — unionhub`;
  if (!hlsSupported() && !video.canPlayType('application/vnd.apple.mpegurl')) {
    showError(typeof window.Hls !== 'function' ? t('live.playerMissing') : t('live.unsupported'), 'unsupported');
  }
  poll();
}

/** Another interface language: the room's title and the last state are written again in it. */
document.addEventListener('unionhub:locale', () => {
  if (!state.room) return;
  titleNode.textContent = t('live.roomHeading', { room: state.room });
  document.title = `${t('live.roomHeading', { room: state.room })} — unionhub`;
  menu.replaceChildren();
  channelMenu.replaceChildren();
  if (state.info) update(state.info);
  renderChannels();
});

main();
