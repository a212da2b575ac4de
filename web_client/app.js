// unionhub browser app: the glue between the Socket.IO signalling
// (docs/PROTOCOL.md), the RTCPeerConnection (call.js) and the DOM (ui.js).

import { io } from '/vendor/socket.io.esm.min.js';
import * as access from './access.js';
import { Call } from './call.js';
import * as captions from './captions.js';
import * as failover from './failover.js';
import * as interpretation from './interpretation.js';
import { applyToPageUrl } from './datasaver.js';
import { errorText, t } from './i18n.js';
import * as lastn from './lastn.js';
import { acquireScreen, acquireUserMedia, canShareScreen } from './media.js';
import { LANGUAGES, route } from './routing.js';
import * as ui from './ui.js';

const { el } = ui;

const CHAT_MAX = 2000;

// Server errors are shown as the catalogue's `errors.<code>` (i18n.js errorText), except:

// errors answering a `live` request, where they differ from the general ones;
const LIVE_ERROR_MESSAGES = {
  'not-available': () => t('call.liveOff'),
  'internal': () => t('call.liveFailed'),
};

// errors answering a `live-push` request (an RTMP destination).
const PUSH_ERROR_MESSAGES = {
  'bad-rtmp-url': () => t('rtmp.badUrl'),
  'not-live': () => t('rtmp.notLive'),
  'not-available': () => t('call.liveOff'),
};

const state = {
  room: null,
  name: null,
  lang: null,
  token: null,    // a signed join link's JWT (`?token=`)
  passcode: null, // the passcode typed after `passcode-required`
  want: null,     // {audio, video}: what the user asked to publish
  audioOnly: false, // data saver (PROTOCOL.md "Audio only"): no video in or out, camera stopped
  audioOnlySent: false, // the mode the server was last told (in `join` or `audio-only`)
  audioOnlyBusy: false, // the camera is being started again after audio only was switched off
  cameraWasOn: true, // whether the camera was on (not disabled) when audio only stopped it
  phase: null,    // null | 'lobby' | 'passcode' | 'joined'
  iceServers: [], // from the last `joined`
  captionLang: null, // language captions (and chat translations) are read in
  captionStatus: null, // CaptionStatus of the last `joined` or `captions-status`
  mic: null,      // MediaStreamTrack|null
  camera: null,   // MediaStreamTrack|null
  screen: null,   // MediaStreamTrack|null
  mediaReady: false,
  left: false,
  myId: null,
  localId: 'local',   // data-participant of the local tiles (our id once joined)
  hand: false,
  recording: { on: false, id: null, available: false }, // the room's recording (PROTOCOL.md)
  recordPending: false, // a `record` request is on its way; the button waits for the answer
  live: { on: false, url: null, available: false, push: null }, // the room's live stream (PROTOCOL.md)
  pushPending: false, // a `live-push` request is on its way
  livePending: false, // a `live` request is on its way; the button waits for the answer
  participants: new Map(), // id -> Participant (others only)
  chatSeen: new Set(),      // ids of chat messages shown
  socket: null,
  call: null,
};

window.unionhub = {
  state,
  get socket() { return state.socket; },
  get pc() { return state.call ? state.call.pc : null; },
  get call() { return state.call; },
};

// ---- routing ------------------------------------------------------------------------------------

function main() {
  const call = route(); // null: the join form is shown
  if (!call) return;
  state.token = call.token;
  startCall(call);
}

// ---- the call -----------------------------------------------------------------------------------

async function startCall({ room, name, lang, audio, video, audioOnly = false, viewer = false }) {
  Object.assign(state, { room, name, lang, captionLang: lang, want: { audio, video }, audioOnly });
  captions.initCaptions({
    languageNames: new Map(LANGUAGES),
    onLanguage: (code) => emitJoined('caption-language', { lang: code }),
    onShowOriginal: (on) => ui.setChatOriginalsShown(on),
  });
  ui.showView('call');
  el.roomName.textContent = room;
  document.title = t('call.pageTitle', { room });
  el.rejoinLink.href = location.href;
  updateControls();
  renderPeople();

  lastn.initLastN({ emit: (event, payload) => emitJoined(event, payload) });
  // Connect while the user answers the permission prompt; join once media is settled.
  connectSocket();

  // A viewer's link: viewers do not publish, so no camera or microphone prompt either; audio only
  // leaves the camera off (started only if it is switched off).
  const media = await acquireUserMedia(viewer ? { audio: false, video: false }
    : { audio, video: video && !state.audioOnly });
  state.mic = media.mic;
  state.camera = media.camera;
  if (media.errors.length) {
    let text = media.errors.join(' ');
    if (!state.mic && !state.camera && !viewer) text += ` ${t('media.joinedAsListener')}`;
    ui.showError(text, 'media');
  }
  const tile = ui.ensureTile({ id: state.localId, name, source: 'camera', local: true });
  ui.setTileVideo(tile, state.camera, { local: true });
  state.mediaReady = true;
  updateControls();
  renderPeople();
  if (state.socket.connected) join();
}

function connectSocket() {
  const socket = io({ transports: ['websocket', 'polling'], query: failover.socketQuery() });
  state.socket = socket;

  socket.on('connect', () => {
    failover.found();
    if (state.left) return;
    ui.clearError('connection');
    ui.setStatus(null);
    if (state.mediaReady && !state.left) join();
  });
  socket.on('disconnect', (reason) => {
    if (state.left) return;
    ui.setStatus(t('call.reconnecting'));
    failover.lost(socket);
    if (reason === 'io server disconnect') {
      // The server closed the connection on purpose; socket.io does not retry by itself.
      setTimeout(() => { if (!state.left && !socket.connected) socket.connect(); }, 2000);
    }
  });
  socket.on('connect_error', () => {
    if (state.left) return;
    failover.lost(socket);
    ui.setStatus(t('call.reconnecting'));
    ui.showError(t('call.unreachable'), 'connection');
  });

  socket.on('joined', onJoined);
  access.bindSocket(socket);
  socket.on('participant-joined', (p) => upsertParticipant(p));
  socket.on('participant-updated', (p) => upsertParticipant(p));
  socket.on('participant-left', (msg) => { if (msg) removeParticipant(msg.id); });
  socket.on('sdp', (msg) => {
    if (!msg || msg.type !== 'offer' || !state.call) return;
    state.call.handleOffer(msg);
  });
  socket.on('active-speaker', (msg) => ui.setActiveSpeaker((msg && msg.id) || null));
  socket.on('forwarding', (msg) => lastn.setForwarding(msg));
  socket.on('send-limits', (msg) => { if (msg && state.call) state.call.setCameraLimit(msg.camera); });
  socket.on('camera-wanted', (msg) => { if (msg && state.call) state.call.setCameraWanted(msg.wanted); });
  socket.on('chat', showChat);
  socket.on('caption', captions.showCaption);
  socket.on('captions-status', (msg) => { // the models finished loading (or failed to)
    if (!msg || typeof msg !== 'object') return;
    state.captionStatus = msg;
    captions.setStatus(state.captionStatus, state.captionLang);
  });
  socket.on('caption-language', (msg) => {
    if (!msg || typeof msg.lang !== 'string') return;
    state.captionLang = msg.lang;
    captions.setLanguage(msg.lang);
  });
  socket.on('recording', (msg) => setRecording(msg));
  socket.on('live', (msg) => setLive(msg));
  socket.on('error', onServerError);
  interpretation.attach(socket, { lang: state.lang, micTrack: () => state.mic, replaceMic, onChange: renderPeople });
}

/** (Re)join: every (re)connection is a new participant for the server. */
function join() {
  if (state.call) state.call.close();
  ui.clearTiles({ keepLocal: true });
  ui.clearRemoteAudio();
  ui.setActiveSpeaker(null);
  captions.clearCaptions();
  lastn.reset();
  state.participants.clear();
  state.myId = null;
  state.recordPending = false;
  state.livePending = false;
  state.phase = null;
  state.self = null;
  access.reset();
  updateControls();
  state.call = new Call({
    iceServers: state.iceServers,
    sendAnswer: (answer) => state.socket.emit('sdp', answer),
    localTrack: (source) => localTrack(source),
    missingTrack: (source) => access.missingTrack(source),
    onSubscribe,
    onUnsubscribe,
    onError: (err) => {
      console.error('unionhub: negotiation error', err);
      ui.showError(t('call.mediaProblem', { reason: err.message || err }), 'media-connection');
    },
    onFailed: () => rejoinMedia(),
  });
  renderPeople();
  state.audioOnlySent = state.audioOnly;
  state.socket.emit('join', {
    room: state.room,
    name: state.name,
    lang: state.lang,
    audio: !!state.mic,
    // audio only: whether to open the camera when it is switched off
    video: state.audioOnly ? !!(state.want && state.want.video) : !!state.camera,
    audioOnly: state.audioOnly,
    ...access.joinExtras(),
  });
}

/** The media path died but the socket is up: leave and join again with a new connection. */
let lastMediaRejoin = 0;
function rejoinMedia() {
  const now = Date.now();
  if (!state.socket || !state.socket.connected || now - lastMediaRejoin < 5000) return;
  lastMediaRejoin = now;
  ui.showError(t('call.mediaDropped'), 'media-connection');
  state.socket.emit('leave', {});
  join();
}

/**
 * Emit an event that needs a joined room. While disconnected it is dropped rather than buffered
 * (socket.io would flush it before the new `join`); onJoined() re-sends the state that matters.
 */
function emitJoined(event, payload) {
  if (state.socket && state.socket.connected && state.myId) state.socket.emit(event, payload);
}

function localTrack(source) {
  if (source === 'mic') return state.mic;
  if (source === 'camera') return state.camera;
  if (source === 'screen') return state.screen;
  return null;
}

/** Interpretation: the microphone captured again with other processing (same mute state). */
function replaceMic(track) {
  const old = state.mic;
  if (!old || state.left) {
    track.stop();
    return;
  }
  track.enabled = old.enabled;
  state.mic = track;
  if (state.call) state.call.refreshPublish('mic');
  old.stop();
}

function isListener() {
  return !state.mic && !state.camera;
}

function onJoined(msg) {
  ui.clearError('media-connection');
  state.iceServers = Array.isArray(msg.iceServers) ? msg.iceServers : [];
  if (state.call) state.call.configure(state.iceServers);
  const oldLocal = state.localId;
  state.myId = msg.id;
  state.localId = msg.id;
  ui.setLocalId(oldLocal, msg.id);
  for (const p of msg.participants || []) upsertParticipant(p, { render: false });
  if (typeof msg.name === 'string' && msg.name && msg.name !== state.name) {
    state.name = msg.name; // a signed link's name
    ui.renameTiles(state.localId, msg.name, true);
  }
  state.self = { verified: msg.verified === true };
  lastn.onJoined(msg, state.participants);
  if (state.call && msg.sendLimits) state.call.setCameraLimit(msg.sendLimits.camera);
  access.onJoined(msg);
  interpretation.onJoined(msg);
  renderPeople();
  state.captionStatus = msg.captions || null;
  captions.setStatus(state.captionStatus, state.captionLang);
  setRecording(msg.recording, { available: !!(msg.recording && msg.recording.available) });
  setLive(msg.live, { available: !!(msg.live && msg.live.available) });
  if (state.captionLang !== state.lang) emitJoined('caption-language', { lang: state.captionLang });
  if (state.audioOnly !== state.audioOnlySent) sendAudioOnly(); // switched while the join was on its way
  ui.appendChatHistory(() => { for (const m of msg.chat || []) showChat(m); }); // recent history, not announced
  // Carry our state over a reconnect: muted tracks, a running screen share, a raised hand.
  if ((state.mic && !state.mic.enabled) || (state.camera && !state.camera.enabled)) {
    sendMediaState();
  }
  if (state.screen && state.screen.readyState === 'live') {
    state.socket.emit('publish', { source: 'screen' });
  }
  if (state.hand) state.socket.emit('hand', { raised: true });
}

function upsertParticipant(p, { render = true } = {}) {
  if (!p || !p.id) return;
  access.onParticipant(p, p.id === state.myId);
  if (p.id === state.myId) {
    state.self = p;
    state.hand = !!p.hand;
    updateControls();
    if (render) renderPeople();
    return;
  }
  state.participants.set(p.id, p);
  ui.ensureTile({ id: p.id, name: p.name, source: 'camera' });
  ui.renameTiles(p.id, p.name);
  ui.setTileCameraOn(p.id, !!p.video);
  if (render) renderPeople();
}

function removeParticipant(id) {
  state.participants.delete(id);
  lastn.participantGone(id);
  access.participantGone(id);
  ui.removeParticipantTiles(id);
  for (const audio of el.audioSink.querySelectorAll(`audio[data-participant="${CSS.escape(id)}"]`)) {
    ui.removeRemoteAudio(audio.dataset.key);
  }
  renderPeople();
}

function onSubscribe(sub) {
  if (sub.kind === 'audio') {
    ui.addRemoteAudio(sub.mid, sub.participant, sub.track);
    interpretation.addTrack(sub.mid, sub.participant, sub.track);
    return;
  }
  const p = state.participants.get(sub.participant);
  const tile = ui.ensureTile({ id: sub.participant, name: p ? p.name : t('call.guest'), source: sub.source });
  ui.setTileVideo(tile, sub.track);
  if (sub.source === 'camera') ui.setTileCameraOn(sub.participant, p ? !!p.video : true);
}

function onUnsubscribe(sub) {
  if (sub.kind === 'audio') {
    ui.removeRemoteAudio(sub.mid);
    interpretation.removeTrack(sub.mid);
    return;
  }
  const tile = ui.findTile(sub.participant, sub.source);
  if (!tile) return;
  const video = tile.querySelector('video');
  const shown = video && video.srcObject ? video.srcObject.getVideoTracks()[0] : null;
  if (shown && shown !== sub.track) return; // already replaced by a newer slot
  if (sub.source === 'screen') ui.removeTile(sub.participant, 'screen');
  else ui.setTileVideo(tile, null);
}

function showChat(msg) {
  if (!msg || typeof msg.text !== 'string') return;
  if (msg.id) {
    if (state.chatSeen.has(msg.id)) return; // history is re-sent after a reconnect
    state.chatSeen.add(msg.id);
  }
  // Read it in our language when the server translated it (PROTOCOL.md: Chat.translations).
  const want = state.captionLang || state.lang;
  const translated = msg.translations && typeof msg.translations[want] === 'string'
    ? msg.translations[want] : null;
  const isTranslation = translated !== null && translated !== msg.text;
  ui.appendChat({
    name: msg.name,
    text: isTranslation ? translated : msg.text,
    lang: isTranslation ? want : msg.lang,
    original: isTranslation ? { text: msg.text, lang: msg.lang } : null,
    ts: msg.ts,
    self: msg.from === state.myId,
  });
}

function onServerError(err) {
  const code = err && err.code;
  const live = !!err && err.event === 'live';
  const push = !!err && err.event === 'live-push';
  const handled = access.onError(err);
  if (handled === false) return; // a page or prompt of its own (passcode, lobby, removed…)
  const special = (live && LIVE_ERROR_MESSAGES[code]) || (push && PUSH_ERROR_MESSAGES[code]);
  const text = handled || (special && special()) || errorText(err, 'errors.unknown');
  ui.showError(text, `server:${code}`);
  if (err && err.event === 'publish' && state.screen) stopScreen({ notify: false });
  if (err && err.event === 'record') {
    setRecordPending(false);
    if (code === 'not-available') state.recording.available = false;
    updateControls();
  }
  if (push) {
    state.pushPending = false;
    updateControls();
  }
  if (live) {
    setLivePending(false);
    if (code === 'not-available') state.live.available = false;
    updateControls();
  }
}

// ---- recording ----------------------------------------------------------------------------------

let recordPendingTimer = 0;
const RECORD_ANSWER_MS = 15000; // give up waiting for the server's answer to `record`

function setRecordPending(on) {
  clearTimeout(recordPendingTimer);
  state.recordPending = on;
  if (on) {
    recordPendingTimer = setTimeout(() => {
      state.recordPending = false;
      updateControls();
    }, RECORD_ANSWER_MS);
  }
}

/**
 * The room's recording state, from `joined.recording` or a `recording` event ({on, id}); the
 * `available` flag only comes with `joined` (a `recording` event keeps the known one).
 */
function setRecording(msg, { available = state.recording.available } = {}) {
  const on = !!(msg && typeof msg === 'object' && msg.on);
  const id = msg && typeof msg.id === 'string' ? msg.id : null;
  state.recording = { on, id: on ? id : null, available };
  setRecordPending(false);
  ui.setRecordingIndicator(on);
  updateControls();
}

// ---- live streaming -----------------------------------------------------------------------------

let livePendingTimer = 0;
const LIVE_ANSWER_MS = 20000; // give up waiting for the server's answer to `live`

function setLivePending(on) {
  clearTimeout(livePendingTimer);
  state.livePending = on;
  if (on) {
    livePendingTimer = setTimeout(() => {
      state.livePending = false;
      updateControls();
    }, LIVE_ANSWER_MS);
  }
}

/**
 * The room's live stream, from `joined.live` or a `live` event ({on, url, available}); a message
 * without `available` keeps the known one.
 */
function setLive(msg, { available } = {}) {
  const on = !!(msg && typeof msg === 'object' && msg.on);
  let avail = available;
  if (avail === undefined) {
    avail = msg && typeof msg.available === 'boolean' ? msg.available : state.live.available;
  }
  const url = msg && typeof msg.url === 'string' && msg.url.startsWith('/')
    ? msg.url : `/live/${encodeURIComponent(state.room)}`;
  const push = on && msg.push && typeof msg.push === 'object' ? msg.push : null;
  state.live = { on, url, available: avail, push };
  state.pushPending = false;
  setLivePending(false);
  ui.setLiveIndicator(on, url);
  updateControls();
}

function renderPeople() {
  const self = {
    id: state.localId,
    name: state.name || '',
    lang: state.lang,
    audio: !!(state.mic && state.mic.enabled),
    video: !!(state.camera && state.camera.enabled),
    screen: !!state.screen,
    hand: state.hand,
    role: access.getRole() || undefined,
    verified: (state.self && state.self.verified === true) || undefined,
    self: true,
  };
  const others = [...state.participants.values()]
    .sort((a, b) => String(a.name).localeCompare(String(b.name)));
  ui.renderParticipants([self, ...others], (p) => interpretation.withInterpreterControl(access.hostControlsFor(p), p));
}

// ---- controls -----------------------------------------------------------------------------------

function updateControls() {
  const viewer = access.isViewer();
  ui.setToggle(el.micToggle, state.mic
    ? { pressed: !state.mic.enabled, label: state.mic.enabled ? t('call.mute') : t('call.unmute') }
    : { pressed: true, label: viewer ? t('call.micOffViewer') : t('call.noMic'), disabled: true });
  let camera;
  if (state.camera) {
    camera = { pressed: !state.camera.enabled,
      label: state.camera.enabled ? t('call.stopCamera') : t('call.startCamera') };
  } else if (viewer) {
    camera = { pressed: true, label: t('call.cameraOffViewer'), disabled: true };
  } else if (state.audioOnly || state.audioOnlyBusy) {
    camera = { pressed: true, label: t('call.cameraOffAudioOnly'), disabled: true };
  } else {
    camera = { pressed: true, label: t('call.noCamera'), disabled: true };
  }
  ui.setToggle(el.cameraToggle, camera);
  // A toggle: the label stays, aria-pressed (and its look) says whether it is on.
  ui.setToggle(el.audioOnlyToggle, {
    pressed: state.audioOnly,
    label: t('call.audioOnly'),
    disabled: state.audioOnlyBusy || !state.mediaReady, // (not while the devices are being asked for)
  });
  el.audioOnlyToggle.title = state.audioOnly
    ? t('call.audioOnlyOnHint')
    : t('call.audioOnlyHint');
  ui.setToggle(el.screenShare, {
    pressed: !!state.screen,
    label: state.screen ? t('call.stopSharing') : t('call.shareScreen'),
    disabled: !state.mediaReady || isListener() || !canShareScreen() || state.audioOnly,
  });
  el.screenShare.title = viewer ? t('call.viewersCannotShare')
    : state.audioOnly ? t('errors.audio-only')
      : isListener() && state.mediaReady ? t('call.listenersCannotShare') : '';
  ui.setToggle(el.raiseHand, { pressed: state.hand, label: state.hand ? t('call.lowerHand') : t('call.raiseHand') });
  const rec = state.recording;
  el.recordToggle.hidden = !rec.available || !access.mayRecord();
  ui.setToggle(el.recordToggle, {
    pressed: rec.on,
    label: rec.on ? t('call.stopRecording') : t('call.record'),
    disabled: state.recordPending || !state.myId,
  });
  el.recordToggle.title = rec.on
    ? t('call.stopRecordingHint')
    : t('call.recordHint');
  const live = state.live;
  el.liveToggle.hidden = !live.available || !access.mayGoLive();
  ui.setToggle(el.liveToggle, {
    pressed: live.on,
    label: live.on ? t('call.endLive') : t('call.goLive'),
    disabled: state.livePending || !state.myId,
  });
  el.liveToggle.title = live.on
    ? t('call.endLiveHint')
    : t('call.goLiveHint');
  ui.setRtmpPush(live.on && live.available && access.mayGoLive(), live.push,
    state.pushPending || !state.myId);
}

function sendMediaState() {
  emitJoined('media-state', {
    audio: !!(state.mic && state.mic.enabled),
    video: !!(state.camera && state.camera.enabled),
  });
}

el.micToggle.addEventListener('click', () => {
  if (!state.mic) return;
  state.mic.enabled = !state.mic.enabled;
  if (state.mic.enabled) ui.clearNotice('muted-audio');
  sendMediaState();
  updateControls();
  renderPeople();
});

el.cameraToggle.addEventListener('click', () => {
  if (!state.camera) return;
  state.camera.enabled = !state.camera.enabled;
  if (state.camera.enabled) ui.clearNotice('muted-video');
  ui.setTileCameraOn(state.localId, state.camera.enabled);
  sendMediaState();
  updateControls();
  renderPeople();
});

// ---- audio only (data saver) ---------------------------------------------------------------------

function sendAudioOnly() {
  if (!state.socket || !state.socket.connected || !state.myId) return; // the next `join` carries it
  state.audioOnlySent = state.audioOnly;
  state.socket.emit('audio-only', { on: state.audioOnly });
}

/**
 * Switch audio only. On: the camera is stopped (its light goes off), a screen share ends, and the
 * server stops all video to and from us. Off: the camera is started again (if we joined with one)
 * before the server is told, so its track is ready for the camera slot the server then opens.
 */
async function setAudioOnly(on) {
  if (state.audioOnlyBusy || !state.mediaReady || on === state.audioOnly) return;
  state.audioOnly = on;
  el.rejoinLink.href = applyToPageUrl(on);
  if (on) {
    if (state.screen) stopScreen({ notify: false }); // the server ends the share itself
    if (state.camera) {
      state.cameraWasOn = state.camera.enabled;
      state.camera.stop();
      state.camera = null;
      showLocalCamera(null);
      if (state.call) state.call.refreshPublish('camera');
    }
    ui.clearNotice('muted-video');
  } else if (!state.camera && state.want && state.want.video && !access.isViewer()) {
    state.audioOnlyBusy = true;
    updateControls();
    const media = await acquireUserMedia({ audio: false, video: true });
    state.audioOnlyBusy = false;
    if (state.left || state.audioOnly) { // gone, or switched on again meanwhile
      if (media.camera) media.camera.stop();
      updateControls();
      return;
    }
    if (media.errors.length) ui.showError(media.errors.join(' '), 'media');
    state.camera = media.camera;
    if (state.camera) {
      state.camera.enabled = state.cameraWasOn;
      showLocalCamera(state.camera);
    }
  }
  sendAudioOnly();
  if (!on) sendMediaState();
  updateControls();
  renderPeople();
}

el.audioOnlyToggle.addEventListener('click', () => setAudioOnly(!state.audioOnly));

el.screenShare.addEventListener('click', async () => {
  if (state.screen) {
    stopScreen();
    return;
  }
  el.screenShare.disabled = true;
  try {
    const track = await acquireScreen();
    if (state.left) { track.stop(); return; }
    state.screen = track;
    track.addEventListener('ended', () => { if (state.screen === track) stopScreen(); });
    const tile = ui.ensureTile({ id: state.localId, name: state.name, source: 'screen', local: true });
    ui.setTileVideo(tile, track, { local: true });
    emitJoined('publish', { source: 'screen' });
  } catch (err) {
    ui.showError(err.message || String(err), 'screen');
  } finally {
    updateControls();
    renderPeople();
  }
});

function stopScreen({ notify = true } = {}) {
  const track = state.screen;
  if (!track) return;
  state.screen = null;
  track.stop();
  ui.removeTile(state.localId, 'screen');
  if (state.call) state.call.refreshPublish('screen');
  if (notify) emitJoined('unpublish', { source: 'screen' });
  updateControls();
  renderPeople();
}

el.raiseHand.addEventListener('click', () => {
  state.hand = !state.hand;
  emitJoined('hand', { raised: state.hand });
  updateControls();
  renderPeople();
});

el.recordToggle.addEventListener('click', () => {
  if (!state.recording.available || state.recordPending) return;
  if (!state.socket || !state.socket.connected || !state.myId) {
    ui.showError(t('call.notConnected'), 'record');
    return;
  }
  ui.clearError('record');
  setRecordPending(true);
  updateControls();
  state.socket.emit('record', { on: !state.recording.on });
});

el.liveToggle.addEventListener('click', () => {
  if (!state.live.available || state.livePending) return;
  if (!state.socket || !state.socket.connected || !state.myId) {
    ui.showError(t('call.notConnected'), 'live');
    return;
  }
  ui.clearError('live');
  setLivePending(true);
  updateControls();
  state.socket.emit('live', { on: !state.live.on });
});

/** The destination the host pasted: server URL + stream key, as the platforms hand them out. */
function rtmpDestination() {
  const base = el.rtmpUrl.value.trim();
  const key = el.rtmpKey.value.trim();
  if (!key) return base; // a full URL with its key pasted into the first field
  return `${base.replace(/\/+$/, '')}/${key}`;
}

function emitPush(url) {
  if (!state.socket || !state.socket.connected || !state.myId) {
    ui.showError(t('call.notConnected'), 'live-push');
    return;
  }
  ui.clearError('live-push');
  for (const code of Object.keys(PUSH_ERROR_MESSAGES)) ui.clearError(`server:${code}`);
  state.pushPending = true;
  updateControls();
  state.socket.emit('live-push', { url });
}

el.rtmpForm.addEventListener('submit', (event) => {
  event.preventDefault();
  if (state.pushPending) return;
  if (!el.rtmpUrl.value.trim()) {
    ui.showError(t('rtmp.urlFirst'), 'live-push');
    el.rtmpUrl.focus();
    return;
  }
  emitPush(rtmpDestination());
});

el.rtmpStop.addEventListener('click', () => {
  if (!state.pushPending) emitPush(null);
});

el.chatForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = el.chatInput.value.trim();
  if (!text) return;
  if (text.length > CHAT_MAX) {
    ui.showError(t('chat.tooLong', { count: CHAT_MAX }), 'chat');
    return;
  }
  if (!state.socket || !state.socket.connected) {
    ui.showError(t('chat.notSent'), 'chat');
    return;
  }
  state.socket.emit('chat', { text });
  el.chatInput.value = '';
  ui.clearError('chat');
});

/** Stop everything for good: no media, no socket, no reconnect (left, removed, ended, refused). */
function teardown() {
  state.left = true;
  if (state.socket) state.socket.disconnect();
  if (state.call) state.call.close();
  state.call = null;
  for (const track of [state.mic, state.camera, state.screen]) if (track) track.stop();
  state.screen = null;
  ui.clearTiles({ keepLocal: false });
  ui.clearRemoteAudio();
  ui.setRecordingIndicator(false);
  ui.setLiveIndicator(false);
  ui.setStatus(null);
  ui.clearError();
  ui.clearNotice();
  access.reset();
}

el.leave.addEventListener('click', () => {
  if (state.socket && state.socket.connected) state.socket.emit('leave', {});
  teardown();
  ui.showView('left');
});

/** The local camera tile shows `track` (null: the avatar), e.g. after a host turned it off. */
function showLocalCamera(track) {
  const tile = ui.findTile(state.localId, 'camera');
  if (!tile) return;
  ui.setTileVideo(tile, track, { local: true });
  ui.setTileCameraOn(state.localId, !!(track && track.enabled));
}

access.initAccess({
  state,
  join: () => join(),
  teardown,
  updateControls,
  renderPeople,
  sendMediaState,
  stopScreen,
  showLocalCamera,
});

el.enableAudio.addEventListener('click', () => ui.unblockAudio());

// The member picked another interface language during the call: the texts set here follow it.
document.addEventListener('unionhub:locale', () => {
  if (!state.room) return;
  ui.retranslateTiles();
  updateControls();
  renderPeople();
});

main();
