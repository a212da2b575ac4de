// DOM rendering: video tiles, participant list, chat, errors and status. No protocol logic here.

import { formatDateTime, t } from './i18n.js';

const $ = (sel) => document.querySelector(sel);

export const el = {
  joinView: $('#join-view'),
  joinForm: $('#join-form'),
  joinRoom: $('#join-room'),
  joinName: $('#join-name'),
  joinLang: $('#join-lang'),
  joinVideo: $('#join-video'),
  joinAudio: $('#join-audio'),
  joinAudioOnly: $('#join-audio-only'),
  joinMessage: $('#join-message'),
  callView: $('#call-view'),
  leftView: $('#left-view'),
  passcodeView: $('#passcode-view'),
  lobbyView: $('#lobby-view'),
  goneView: $('#gone-view'),
  notice: $('[data-testid="notice"]'),
  noticeText: $('[data-testid="notice-text"]'),
  noticeClose: $('[data-testid="notice-close"]'),
  noticeAction: $('[data-testid="notice-action"]'),
  rejoinLink: $('#rejoin-link'),
  roomName: $('[data-testid="room-name"]'),
  status: $('[data-testid="status"]'),
  error: $('[data-testid="error"]'),
  tiles: $('#tiles'),
  audioSink: $('#audio-sink'),
  enableAudio: $('#enable-audio'),
  participants: $('#participants'),
  chatLog: $('#chat-log'),
  chatForm: $('#chat-form'),
  chatInput: $('#chat-input'),
  micToggle: $('[data-testid="mic-toggle"]'),
  cameraToggle: $('[data-testid="camera-toggle"]'),
  audioOnlyToggle: $('[data-testid="audio-only"]'),
  screenShare: $('[data-testid="screen-share"]'),
  raiseHand: $('[data-testid="raise-hand"]'),
  recordToggle: $('[data-testid="record-toggle"]'),
  recordingIndicator: $('[data-testid="recording-indicator"]'),
  liveToggle: $('[data-testid="live-toggle"]'),
  liveIndicator: $('[data-testid="live-indicator"]'),
  liveLink: $('[data-testid="live-link"]'),
  rtmpPanel: $('[data-testid="rtmp-panel"]'),
  rtmpForm: $('[data-testid="rtmp-form"]'),
  rtmpUrl: $('[data-testid="rtmp-url"]'),
  rtmpKey: $('[data-testid="rtmp-key"]'),
  rtmpStart: $('[data-testid="rtmp-start"]'),
  rtmpStop: $('[data-testid="rtmp-stop"]'),
  rtmpStatus: $('[data-testid="rtmp-status"]'),
  leave: $('[data-testid="leave"]'),
};

/** One of the page's views: join, passcode, lobby, call, left, gone. */
export function showView(name) {
  el.joinView.hidden = name !== 'join';
  el.passcodeView.hidden = name !== 'passcode';
  el.lobbyView.hidden = name !== 'lobby';
  el.callView.hidden = name !== 'call';
  el.leftView.hidden = name !== 'left';
  el.goneView.hidden = name !== 'gone';
}

// ---- errors and status -------------------------------------------------------------------

let errorKind = null;

/** Show a human-readable error. `kind` lets a later clearError(kind) remove only that error. */
export function showError(text, kind = 'general') {
  errorKind = kind;
  el.error.textContent = text;
  el.error.hidden = false;
}

export function clearError(kind) {
  if (kind && kind !== errorKind) return;
  errorKind = null;
  el.error.textContent = '';
  el.error.hidden = true;
}

let noticeKind = null;
let noticeTimer = 0;

let noticeAction = null;

/**
 * A non-error message (e.g. "A host muted you"); `ms` hides it after that long (0: stays).
 * `action` = {label, run}: a button in the notice (clicking it runs `run` and hides the notice).
 */
export function showNotice(text, kind = 'general', ms = 0, action = null) {
  clearTimeout(noticeTimer);
  noticeKind = kind;
  noticeAction = action;
  el.noticeAction.hidden = !action;
  el.noticeAction.textContent = action ? action.label : '';
  el.noticeText.textContent = text;
  el.notice.dataset.kind = kind;
  el.notice.hidden = false;
  if (ms) noticeTimer = setTimeout(() => clearNotice(kind), ms);
}

export function clearNotice(kind) {
  if (kind && kind !== noticeKind) return;
  clearTimeout(noticeTimer);
  noticeKind = null;
  noticeAction = null;
  el.noticeAction.hidden = true;
  el.noticeText.textContent = '';
  delete el.notice.dataset.kind;
  el.notice.hidden = true;
}

el.noticeClose.addEventListener('click', () => clearNotice());
el.noticeAction.addEventListener('click', () => {
  const action = noticeAction;
  clearNotice();
  if (action) action.run();
});

export function setStatus(text) {
  el.status.textContent = text || '';
  el.status.hidden = !text;
}

/** The red "Recording" badge everyone in the room sees while the call is recorded. */
export function setRecordingIndicator(on) {
  el.recordingIndicator.hidden = !on;
  el.recordingIndicator.title = on ? t('call.recordingHint') : '';
}

/** The "LIVE" badge and the link to the viewer page, shown to everyone while the room streams. */
export function setLiveIndicator(on, url) {
  el.liveIndicator.hidden = !on;
  el.liveLink.hidden = !on || !url;
  if (on && url) el.liveLink.href = url;
}

/**
 * The RTMP destination panel: shown while the room is live; `push` is LiveState.push (PROTOCOL.md).
 * The stream key never comes back from the server (its URL is redacted).
 */
export function setRtmpPush(live, push, pending) {
  el.rtmpPanel.hidden = !live;
  const active = !!push && push.state !== 'stopped';
  el.rtmpStart.hidden = active;
  el.rtmpStop.hidden = !active;
  el.rtmpStart.disabled = pending;
  el.rtmpStop.disabled = pending;
  el.rtmpUrl.disabled = active;
  el.rtmpKey.disabled = active;
  let text = '';
  let problem = false;
  if (push) {
    const where = push.url || t('rtmp.theDestination');
    if (push.state === 'connecting') text = t('rtmp.connecting', { where });
    else if (push.state === 'live') text = t('rtmp.streaming', { where });
    else if (push.state === 'retrying') {
      problem = true;
      const reason = push.error || t('rtmp.connectionFailed');
      text = push.attempts ? t('rtmp.retryingAttempt', { where, reason, attempt: push.attempts + 1 })
        : t('rtmp.retrying', { where, reason });
    } else if (push.state === 'stopped') text = push.error ? t('rtmp.stoppedReason', { reason: push.error }) : t('rtmp.stopped');
  }
  el.rtmpStatus.textContent = text;
  el.rtmpStatus.hidden = !text;
  el.rtmpStatus.dataset.state = push ? push.state : '';
  el.rtmpStatus.classList.toggle('problem', problem);
}

// ---- video tiles ---------------------------------------------------------------------------

function tileKey(participantId, source) {
  return `${participantId}:${source}`;
}

export function findTile(participantId, source) {
  return el.tiles.querySelector(
    `.tile[data-key="${CSS.escape(tileKey(participantId, source))}"]`);
}

function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2);
  return letters.toUpperCase();
}

function hue(id) {
  let h = 0;
  for (const ch of String(id)) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

// Last-N video (lastn.js): what happens to tiles, and whose video the server forwards.
let tileHooks = { onPin: () => {}, onAdded: () => {}, onRemoved: () => {} };
let forwarded = null; // Set of participant ids whose video is forwarded (null: all, not told yet)
let congested = false; // our connection is why some of it is not (the server said so)
let pinnedIds = [];

/** @param {{onPin: (id: string) => void, onAdded: (tile: Element) => void, onRemoved: (tile: Element) => void}} hooks */
export function setTileHooks(hooks) {
  tileHooks = { ...tileHooks, ...hooks };
}

/**
 * Whose video the server forwards (null: everyone's): the others' tiles show the placeholder.
 * `weakLink`: the server paused some of them because our connection cannot carry them.
 */
export function setForwarded(ids, weakLink = false) {
  forwarded = ids;
  congested = weakLink;
  el.tiles.dataset.congested = String(weakLink);
  for (const tile of el.tiles.querySelectorAll('.tile.remote')) applyForwarded(tile);
}

function applyForwarded(tile) {
  const on = !forwarded || forwarded.has(tile.dataset.participant);
  tile.dataset.forwarded = String(on);
  updateVideoOff(tile);
}

/** The pinned participants (in pin order): their pin toggles are pressed. */
export function setPinned(ids) {
  pinnedIds = [...ids];
  for (const button of el.tiles.querySelectorAll('.tile.remote .pin')) applyPinned(button);
}

function applyPinned(button) {
  const tile = button.closest('.tile');
  const on = pinnedIds.includes(tile.dataset.participant);
  const name = tile.dataset.name || t('call.guest');
  button.setAttribute('aria-pressed', String(on)); // (a toggle: its name stays the same)
  button.textContent = t('tile.pin');
  button.setAttribute('aria-label', t('tile.pinName', { name }));
  button.title = on ? t('tile.pinnedHint', { name }) : t('tile.pinHint', { name });
  tile.classList.toggle('pinned', on);
}

function removeTileNode(tile) {
  const video = tile.querySelector('video');
  if (video) video.srcObject = null;
  tile.remove();
  tileHooks.onRemoved(tile);
}

/**
 * Create (or return) the tile of a participant's camera or screen.
 * @param {{id: string, name: string, local?: boolean, source: 'camera'|'screen'}} p
 */
export function ensureTile({ id, name, source, local = false }) {
  let tile = findTile(id, source);
  if (tile) return tile;
  tile = document.createElement('div');
  tile.className = `tile no-video ${local ? 'local' : 'remote'} source-${source}`;
  tile.dataset.key = tileKey(id, source);
  tile.dataset.participant = id;
  tile.dataset.source = source;
  tile.setAttribute('data-testid', local ? 'local-tile' : 'remote-tile');

  const avatar = document.createElement('div');
  avatar.className = 'avatar';
  avatar.setAttribute('aria-hidden', 'true');
  const circle = document.createElement('span');
  circle.className = 'avatar-circle';
  // dark enough for the light initials on every hue (WCAG AA large text: 3:1, yellow is the worst)
  circle.style.backgroundColor = `hsl(${hue(id)} 45% 32%)`;
  avatar.append(circle);

  const label = document.createElement('div');
  label.className = 'label';

  tile.append(avatar, label);
  if (!local && source === 'camera') {
    const pin = document.createElement('button');
    pin.type = 'button';
    pin.className = 'pin';
    pin.setAttribute('data-testid', 'pin');
    pin.setAttribute('aria-pressed', 'false');
    pin.textContent = t('tile.pin');
    pin.addEventListener('click', () => tileHooks.onPin(tile.dataset.participant));
    tile.append(pin);
  }
  el.tiles.append(tile);
  setTileName(tile, name, source, local);
  if (!local) {
    applyForwarded(tile);
    tileHooks.onAdded(tile);
  }
  return tile;
}

function setTileName(tile, name, source, local) {
  const who = name || t('call.guest');
  let text = local ? t('call.you', { name: who }) : who;
  if (source === 'screen') text = t('tile.screen', { name: text });
  const label = tile.querySelector('.label');
  label.textContent = text;
  label.dir = 'auto'; // a name in Arabic reads right to left in any page
  tile.querySelector('.avatar-circle').textContent = initials(name);
  tile.dataset.name = who;
  tile.dataset.local = String(local);
  const pin = tile.querySelector('.pin');
  if (pin) applyPinned(pin);
}

/** Show `track` (a video MediaStreamTrack, or null) in the tile. */
export function setTileVideo(tile, track, { local = false } = {}) {
  let video = tile.querySelector('video');
  if (!track) {
    if (video) { video.srcObject = null; video.remove(); }
    updateVideoOff(tile);
    return;
  }
  if (!video) {
    video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    video.muted = true; // audio plays through separate <audio> elements
    if (local) {
      video.setAttribute('data-testid', tile.dataset.source === 'screen' ? 'local-screen' : 'local-video');
    } else {
      video.setAttribute('data-testid', 'remote-video');
    }
    tile.prepend(video);
  }
  if (!video.srcObject || video.srcObject.getVideoTracks()[0] !== track) {
    video.srcObject = new MediaStream([track]);
    video.play().catch(() => { /* autoplay of muted video: retried by the browser on data */ });
  }
  updateVideoOff(tile);
}

/** Camera on/off of a participant: avatar instead of the (frozen/black) video when off. */
export function setTileCameraOn(participantId, on) {
  const tile = findTile(participantId, 'camera');
  if (!tile) return;
  tile.dataset.cameraOn = on ? 'true' : 'false';
  updateVideoOff(tile);
}

function updateVideoOff(tile) {
  const hasVideo = !!tile.querySelector('video');
  const cameraOff = tile.dataset.cameraOn === 'false';
  const notForwarded = tile.dataset.forwarded === 'false'; // last-N: the server sends no video
  tile.classList.toggle('no-video', !hasVideo || cameraOff || notForwarded);
  const paused = notForwarded && !cameraOff; // (a camera that is off is not "paused")
  tile.classList.toggle('not-forwarded', paused);
  if (tile.classList.contains('remote')) {
    const why = congested ? t('tile.pausedWeak') : t('tile.pausedLastN');
    tile.title = paused ? why : '';
  }
}

export function renameTiles(participantId, name, local = false) {
  for (const tile of el.tiles.querySelectorAll(`.tile[data-participant="${CSS.escape(participantId)}"]`)) {
    setTileName(tile, name, tile.dataset.source, local);
  }
}

/** The interface language changed: the tiles' labels and pin buttons follow. */
export function retranslateTiles() {
  for (const tile of el.tiles.querySelectorAll('.tile')) {
    setTileName(tile, tile.dataset.name, tile.dataset.source, tile.dataset.local === 'true');
  }
}

export function removeTile(participantId, source) {
  const tile = findTile(participantId, source);
  if (!tile) return;
  removeTileNode(tile);
}

export function removeParticipantTiles(participantId) {
  for (const tile of el.tiles.querySelectorAll(`.tile[data-participant="${CSS.escape(participantId)}"]`)) {
    removeTileNode(tile);
  }
}

export function clearTiles({ keepLocal = true } = {}) {
  for (const tile of [...el.tiles.querySelectorAll('.tile')]) {
    if (keepLocal && tile.classList.contains('local')) continue;
    removeTileNode(tile);
  }
}

/** The local tiles get the participant id only once the server told us who we are. */
export function setLocalId(oldId, newId) {
  for (const tile of el.tiles.querySelectorAll('.tile.local')) {
    if (tile.dataset.participant !== oldId) continue;
    tile.dataset.participant = newId;
    tile.dataset.key = tileKey(newId, tile.dataset.source);
  }
}

/**
 * The latest caption of a participant, inside their camera tile (null clears it).
 * @param {string} participantId
 * @param {{text: string, lang: string, final: boolean}|null} caption
 */
export function setTileCaption(participantId, caption) {
  const tile = findTile(participantId, 'camera');
  if (!tile) return;
  let box = tile.querySelector('.tile-caption');
  if (!caption || !caption.text) {
    if (box) {
      box.hidden = true;
      box.firstChild.textContent = '';
      delete box.dataset.final;
    }
    return;
  }
  if (!box) {
    box = document.createElement('div');
    box.className = 'tile-caption';
    box.setAttribute('data-testid', 'tile-caption');
    box.dir = 'auto';
    box.append(document.createElement('span'));
    tile.insertBefore(box, tile.querySelector('.label'));
  }
  box.hidden = false;
  box.dir = textDir(caption.lang);
  box.lang = caption.lang || '';
  box.dataset.lang = caption.lang || '';
  box.dataset.final = String(!!caption.final);
  box.firstChild.textContent = caption.text;
}

const RTL_LANGS = new Set(['ar', 'he', 'fa', 'ur', 'ps', 'sd', 'ug', 'yi', 'dv', 'ckb']);

/**
 * The writing direction of a text in language `lang`: Arabic captions read right to left even in
 * an English page (and English ones left to right in an Arabic page); unknown: the text decides.
 */
export function textDir(lang) {
  const base = typeof lang === 'string' ? lang.toLowerCase().split(/[-_]/)[0] : '';
  if (!base) return 'auto';
  return RTL_LANGS.has(base) ? 'rtl' : 'ltr';
}

/** Captions turned off (or unavailable): no captions under the tiles either. */
export function setTileCaptionsShown(on) {
  el.tiles.classList.toggle('captions-off', !on);
}

export function setActiveSpeaker(participantId) {
  for (const node of document.querySelectorAll('.speaking')) node.classList.remove('speaking');
  if (!participantId) return;
  const sel = `[data-participant="${CSS.escape(participantId)}"]`;
  for (const node of document.querySelectorAll(`.tile.source-camera${sel}, .participant${sel}`)) {
    node.classList.add('speaking');
  }
}

// ---- remote audio ----------------------------------------------------------------------------

export function addRemoteAudio(key, participantId, track) {
  removeRemoteAudio(key);
  const audio = document.createElement('audio');
  audio.autoplay = true;
  audio.dataset.key = key;
  audio.dataset.participant = participantId;
  audio.setAttribute('data-testid', 'remote-audio');
  audio.srcObject = new MediaStream([track]);
  el.audioSink.append(audio);
  audio.play().catch((err) => {
    if (err && err.name === 'NotAllowedError') {
      el.enableAudio.hidden = false;
    }
  });
}

export function removeRemoteAudio(key) {
  const audio = el.audioSink.querySelector(`audio[data-key="${CSS.escape(key)}"]`);
  if (!audio) return;
  audio.srcObject = null;
  audio.remove();
}

export function clearRemoteAudio() {
  for (const audio of [...el.audioSink.querySelectorAll('audio')]) {
    audio.srcObject = null;
    audio.remove();
  }
}

/** After a user gesture: retry every blocked <audio>. */
export function unblockAudio() {
  el.enableAudio.hidden = true;
  for (const audio of el.audioSink.querySelectorAll('audio')) audio.play().catch(() => {});
}

// ---- participant list ------------------------------------------------------------------------

/** A role's name in the member's language. */
export function roleLabel(role) {
  if (role === 'host') return t('role.host');
  if (role === 'viewer') return t('role.viewer');
  return t('role.speaker');
}

/**
 * @param {Array<{id, name, lang, audio, video, screen, hand, role?, verified?, self?: boolean}>} people
 * @param {(p: object) => Node|null} [extra]  more content for an entry (the host controls)
 */
export function renderParticipants(people, extra = () => null) {
  const speaking = el.participants.querySelector('.participant.speaking');
  const speakingId = speaking ? speaking.dataset.participant : null;
  const items = people.map((p) => {
    const li = document.createElement('li');
    li.className = 'participant';
    if (p.self) li.classList.add('self');
    if (p.id === speakingId) li.classList.add('speaking');
    li.setAttribute('data-testid', 'participant');
    li.dataset.participant = p.id;
    li.dataset.name = p.name;
    li.dataset.audio = String(!!p.audio);
    li.dataset.video = String(!!p.video);
    li.dataset.screen = String(!!p.screen);
    li.dataset.hand = String(!!p.hand);
    if (p.role) li.dataset.role = p.role;
    if (typeof p.verified === 'boolean') li.dataset.verified = String(p.verified);

    const name = document.createElement('span');
    name.className = 'p-name';
    name.dir = 'auto';
    name.textContent = p.self ? t('call.you', { name: p.name }) : p.name;
    if (p.verified === true) {
      name.title = t('call.verifiedHint');
    } else if (p.verified === false) {
      name.append(unverifiedTag());
    }
    const lang = document.createElement('span');
    lang.className = 'p-lang';
    lang.textContent = p.lang || '';
    lang.title = t('call.preferredLanguage');
    const badges = document.createElement('span');
    badges.className = 'p-badges';
    if (p.role === 'host' || p.role === 'viewer') {
      const role = badge(roleLabel(p.role), `p-role ${p.role}`);
      role.setAttribute('data-testid', 'role-badge');
      badges.append(role);
    }
    if (p.hand) badges.append(badge(t('call.handRaised'), 'p-hand'));
    if (p.screen) badges.append(badge(t('call.sharing'), 'p-screen'));
    badges.append(p.audio ? badge(t('call.micOn'), 'p-audio on') : badge(t('call.muted'), 'p-audio off'));
    li.append(name, lang, badges);
    const more = extra(p);
    if (more) li.append(more);
    return li;
  });
  // Keep keyboard focus on the same control of the same person across re-renders.
  const active = document.activeElement;
  const focused = active && el.participants.contains(active) && active.closest('.participant')
    ? { id: active.closest('.participant').dataset.participant, testid: active.getAttribute('data-testid') }
    : null;
  el.participants.replaceChildren(...items);
  if (focused && focused.testid) {
    const li = el.participants.querySelector(`.participant[data-participant="${CSS.escape(focused.id)}"]`);
    const again = li && li.querySelector(`[data-testid="${CSS.escape(focused.testid)}"]`);
    if (again) again.focus();
  }
}

/** " (unverified)" after a self-declared name (participants and people knocking). */
export function unverifiedTag() {
  const tag = document.createElement('span');
  tag.className = 'p-unverified';
  tag.setAttribute('data-testid', 'unverified');
  tag.textContent = ` ${t('call.unverified')}`;
  tag.title = t('call.unverifiedHint');
  return tag;
}

function badge(text, cls) {
  const span = document.createElement('span');
  span.className = `badge ${cls}`;
  span.textContent = text;
  return span;
}

// ---- chat --------------------------------------------------------------------------------------

let chatOriginals = false;

/** Show (or hide) the original text under translated chat messages. */
export function setChatOriginalsShown(on) {
  chatOriginals = !!on;
  for (const node of el.chatLog.querySelectorAll('.chat-original')) node.hidden = !chatOriginals;
}

export function appendChat({ name, text, lang, original, ts, self }) {
  const li = document.createElement('li');
  li.className = self ? 'chat-message self' : 'chat-message';
  li.setAttribute('data-testid', 'chat-message');
  const who = document.createElement('span');
  who.className = 'chat-name';
  who.dir = 'auto';
  who.textContent = name;
  const time = document.createElement('time');
  time.className = 'chat-time';
  const date = new Date(typeof ts === 'number' ? ts : Date.now());
  time.dateTime = date.toISOString();
  time.textContent = formatDateTime(date, { hour: '2-digit', minute: '2-digit' });
  const body = document.createElement('span');
  body.className = 'chat-text';
  body.dir = 'auto';
  if (lang) body.lang = lang;
  body.textContent = text;
  li.append(who, time, body);
  if (original) {
    // The original is always a hover away; "Show original" shows it under the translation.
    body.title = original.lang ? t('chat.originalIn', { lang: original.lang, text: original.text })
      : t('chat.original', { text: original.text });
    const orig = document.createElement('span');
    orig.className = 'chat-original';
    orig.setAttribute('data-testid', 'chat-original');
    orig.dir = 'auto';
    if (original.lang) {
      orig.lang = original.lang;
      orig.dataset.lang = original.lang;
    }
    orig.textContent = `${original.lang ? `(${original.lang}) ` : ''}${original.text}`;
    orig.title = t('chat.originalMessage');
    orig.hidden = !chatOriginals;
    li.append(orig);
  }
  const atBottom = el.chatLog.scrollTop + el.chatLog.clientHeight >= el.chatLog.scrollHeight - 8;
  el.chatLog.append(li);
  if (atBottom) el.chatLog.scrollTop = el.chatLog.scrollHeight;
}

/**
 * Add chat history (sent again with every `joined`, after a reconnect too) without a screen reader
 * reading it all out at once: the log is busy and not live while `add` fills it, and live again
 * after the next frame, once the accessibility tree has taken the additions in quietly. Messages
 * arriving later are announced as before.
 */
export function appendChatHistory(add) {
  const log = el.chatLog;
  clearTimeout(chatLiveTimer);
  log.setAttribute('aria-busy', 'true');
  log.setAttribute('aria-live', 'off');
  try {
    add();
  } finally {
    requestAnimationFrame(() => {
      chatLiveTimer = setTimeout(() => {
        log.setAttribute('aria-live', 'polite');
        log.removeAttribute('aria-busy');
      }, 0);
    });
  }
}

let chatLiveTimer = 0;

// ---- controls ----------------------------------------------------------------------------------

export function setToggle(button, { pressed, label, disabled = false }) {
  button.setAttribute('aria-pressed', String(!!pressed));
  button.textContent = label;
  button.disabled = disabled;
}
