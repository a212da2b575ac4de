// Getting in and being moderated (docs/PROTOCOL.md "Roles, access and host controls"): what `join`
// carries besides the basics (client id, signed link, passcode), the answers to it (passcode,
// lobby, refusals), the host events that reach a participant (muted, removed, ended, role changes)
// and the knocks hosts see. app.js owns the call; this module is handed its state and hooks.

import { clientId } from './identity.js';
import * as lobby from './lobby.js';
import { acquireUserMedia } from './media.js';
import * as moderation from './moderation.js';
import * as ui from './ui.js';

/** Human messages for the access and host-control error codes. */
const ERRORS = {
  'forbidden': 'Only a host can do that.',
  'bad-token': 'This invitation link has expired, is not valid yet, or is for another meeting.',
  'auth-required': 'This meeting only admits people with a signed invitation link.',
  'passcode-required': 'This meeting needs a passcode.',
  'bad-passcode': 'That passcode is not right.',
  'room-locked': 'A host locked this meeting: nobody new can join right now.',
  'rejected': 'A host turned down your request to join.',
  'banned': 'You were removed from this meeting and cannot rejoin it.',
  'rate-limited': 'Too many actions at once — slow down a little and try again.',
  'no-such-participant': 'That person is no longer in the meeting (or the lobby).',
};

/** `forbidden`, by the event it answers. */
const FORBIDDEN = {
  join: 'Viewers cannot publish: you joined without camera and microphone.',
  publish: 'Viewers cannot share their screen.',
  record: 'Only hosts can record this meeting.',
  live: 'Only hosts can stream this meeting live.',
  'live-push': 'Only hosts can stream this meeting to other platforms.',
};

/** Refusals after which this page stops trying to get in. */
const FINAL = new Set(['rejected', 'banned', 'room-locked', 'auth-required', 'bad-token']);

let ctx = null;

/**
 * @param {object} context
 * @param {object} context.state  app.js's state
 * @param {() => void} context.join  (re)send `join` with a fresh media connection
 * @param {() => void} context.teardown  stop media, disconnect for good (no reconnect)
 * @param {() => void} context.updateControls
 * @param {() => void} context.renderPeople
 * @param {() => void} context.sendMediaState
 * @param {(opts?: object) => void} context.stopScreen
 * @param {(track: MediaStreamTrack|null) => void} context.showLocalCamera
 */
export function initAccess(context) {
  ctx = context;
  lobby.initLobby({
    onPasscode: (code) => {
      ctx.state.passcode = code;
      ui.showView('call');
      if (ctx.state.socket && ctx.state.socket.connected) ctx.join();
    },
    onCancel: () => {
      const { socket } = ctx.state;
      if (socket && socket.connected) socket.emit('leave', {});
      ctx.teardown();
      ui.showView('left');
    },
    onAdmit: (id) => { if (hostEmit('admit', { id })) lobby.removeKnocker(id); },
    onReject: (id) => { if (hostEmit('reject', { id })) lobby.removeKnocker(id); },
  });
  moderation.initModeration({
    emit: hostEmit,
    onChange: () => {
      lobby.setHostView(moderation.isHost());
      ctx.updateControls();
      ctx.renderPeople();
    },
  });
}

/** Send a host event; false (and an error shown) when we are not connected and joined. */
function hostEmit(event, payload) {
  const { socket, myId } = ctx.state;
  if (!socket || !socket.connected || !myId) {
    ui.showError('Not connected — try again in a moment.', 'host');
    return false;
  }
  ui.clearError('host');
  socket.emit(event, payload);
  return true;
}

/** The optional fields of `join`: client id, signed link, passcode. */
export function joinExtras() {
  const { state } = ctx;
  const extra = { client: clientId() };
  if (state.token) extra.token = state.token;
  if (state.passcode) extra.passcode = state.passcode;
  return extra;
}

/** A new join is on its way, or the call is over: forget the role, settings, knockers, dialogs. */
export function reset() {
  moderation.reset();
  lobby.setKnockers([]);
}

export function bindSocket(socket) {
  socket.on('lobby', onLobby);
  socket.on('knock', (k) => lobby.addKnocker(k)); // shown to hosts only (lobby.setHostView)
  socket.on('knock-left', (msg) => { if (msg && typeof msg.id === 'string') lobby.removeKnocker(msg.id); });
  socket.on('settings', (msg) => moderation.setSettings(msg));
  socket.on('muted', onMuted);
  socket.on('removed', (msg) => {
    const ban = !!(msg && msg.ban);
    const who = msg && typeof msg.name === 'string' && msg.name ? `${msg.name} (host)` : 'A host';
    ctx.teardown();
    lobby.showGone('removed', ban
      ? `${who} removed you from this meeting and banned you from rejoining it.`
      : `${who} removed you from this meeting.`);
  });
  socket.on('ended', () => {
    ctx.teardown();
    lobby.showGone('ended');
  });
}

function onLobby(msg) {
  const state = msg && msg.state;
  if (state === 'waiting') {
    ctx.state.phase = 'lobby';
    ui.setStatus(null);
    ui.clearError();
    lobby.showWaiting(ctx.state.room, ctx.state.camera);
  } else if (state === 'rejected') {
    ctx.teardown();
    lobby.showGone('rejected');
  }
}

/** `joined`: my role, the room's settings and (hosts) who is knocking. */
export function onJoined(msg) {
  ctx.state.phase = 'joined';
  ctx.state.promoted = false;
  lobby.hideWaiting();
  ui.showView('call');
  if (msg.settings) moderation.setSettings(msg.settings);
  const prev = moderation.getRole();
  moderation.setRole(typeof msg.role === 'string' ? msg.role : null);
  lobby.setKnockers(moderation.isHost() ? msg.lobby : []);
  if (msg.role === 'viewer' && (ctx.state.mic || ctx.state.camera)) becameViewer({ quiet: true });
  else if (prev === 'viewer' && msg.role && msg.role !== 'viewer') becameSpeaker();
}

/** A `participant-updated`/`participant-joined`: my role may have changed; knockers get in. */
export function onParticipant(p, self) {
  if (!self) {
    lobby.removeKnocker(p.id);
    return;
  }
  if (typeof p.role !== 'string' || p.role === moderation.getRole()) return;
  const prev = moderation.setRole(p.role);
  if (p.role === 'viewer') becameViewer();
  else if (prev === 'viewer') becameSpeaker();
  if (p.role === 'host' && prev && prev !== 'host') {
    ui.showNotice('You are now a host: you can let people in, mute, remove and set who can join.',
      'role', 10000);
  }
}

function onMuted(msg) {
  const { state } = ctx;
  const kind = msg && msg.kind === 'video' ? 'video' : 'audio';
  const track = kind === 'video' ? state.camera : state.mic;
  const by = msg && typeof msg.name === 'string' && msg.name
    ? msg.name : msg && typeof msg.by === 'string' ? nameOf(msg.by) : null;
  const who = by ? `${by} (host)` : 'A host';
  if (!track) return; // nothing of ours to mute (a listener, a viewer)
  track.enabled = false;
  if (kind === 'video') ctx.showLocalCamera(track);
  ctx.sendMediaState();
  ctx.updateControls();
  ctx.renderPeople();
  ui.showNotice(kind === 'video'
    ? `${who} turned off your camera. You can turn it back on yourself.`
    : `${who} muted you. You can unmute yourself when you want to speak.`, `muted-${kind}`);
}

function nameOf(id) {
  const p = ctx.state.participants.get(id);
  return p && p.name ? p.name : null;
}

/** Demoted to viewer: stop publishing (the server already stopped forwarding us). */
function becameViewer({ quiet = false } = {}) {
  const { state } = ctx;
  if (state.screen) ctx.stopScreen({ notify: false });
  for (const track of [state.mic, state.camera]) if (track) track.stop();
  state.mic = null;
  state.camera = null;
  ctx.showLocalCamera(null);
  if (state.call) {
    state.call.refreshPublish('mic');
    state.call.refreshPublish('camera');
  }
  ctx.updateControls();
  ctx.renderPeople();
  if (!quiet) {
    ui.showNotice('A host made you a viewer: you can watch, listen, chat and raise your hand.', 'role');
  }
}

/**
 * Promoted from viewer. The server does not give a viewer's publish slots back: publishing means
 * joining again (PROTOCOL.md), which the user chooses — in a lobby, passcode or locked room that
 * join is checked like anyone's, so it is not done behind their back.
 */
function becameSpeaker() {
  const { state } = ctx;
  state.promoted = true;
  ui.clearNotice('role');
  const want = state.want || { audio: true, video: true };
  if (!want.audio && !want.video) {
    ui.showNotice('A host made you a speaker.', 'role', 10000);
  } else {
    ui.showNotice('A host made you a speaker: rejoin to turn on your camera and microphone.', 'role', 0,
      { label: 'Rejoin and speak', run: () => rejoinToSpeak() });
  }
  ctx.updateControls();
  ctx.renderPeople();
}

/** Capture what the user first asked to publish, and join again with it. */
async function rejoinToSpeak() {
  const { state } = ctx;
  if (state.left || moderation.isViewer()) return;
  const want = state.want || { audio: true, video: true };
  // audio only: no camera now (it starts when audio only is switched off)
  const media = await acquireUserMedia({ audio: want.audio, video: want.video && !state.audioOnly });
  if (state.left || moderation.isViewer() || !state.socket || !state.socket.connected) {
    for (const track of [media.mic, media.camera]) if (track) track.stop();
    return;
  }
  if (media.errors.length) ui.showError(media.errors.join(' '), 'media');
  state.mic = media.mic;
  state.camera = media.camera;
  ctx.showLocalCamera(state.camera);
  state.socket.emit('leave', {});
  ctx.join();
}

/**
 * An offer has a publish slot for `source` ('mic' | 'camera') and we have no track for it: after
 * a promotion from viewer, capture it now (what the user first asked to publish). Resolves to the
 * track, or null.
 */
export async function missingTrack(source) {
  const { state } = ctx;
  const kind = source === 'mic' ? 'audio' : source === 'camera' ? 'video' : null;
  const want = state.want || { audio: true, video: true };
  if (!kind || !state.promoted || !want[kind] || moderation.isViewer() || state.left) return null;
  if ((kind === 'audio' && state.mic) || (kind === 'video' && state.camera)) {
    return kind === 'audio' ? state.mic : state.camera;
  }
  const media = await acquireUserMedia({ audio: kind === 'audio', video: kind === 'video' });
  const track = kind === 'audio' ? media.mic : media.camera;
  if (state.left || moderation.isViewer()) {
    if (track) track.stop();
    return null;
  }
  if (media.errors.length) ui.showError(media.errors.join(' '), 'media');
  if (kind === 'audio') state.mic = track;
  else {
    state.camera = track;
    ctx.showLocalCamera(track);
  }
  ctx.sendMediaState();
  ctx.updateControls();
  ctx.renderPeople();
  return track;
}

/**
 * An `error` answering us. Returns false when it was dealt with here (a page of its own, a
 * passcode prompt, a retry), else the message to show (null: not an access error).
 */
const MOVED_KEY = 'unionhub.moved-at';
const MOVED_AGAIN_MS = 10_000;

export function onError(err) {
  const code = err && err.code;
  const event = err && err.event;
  const { state } = ctx;
  if (event === 'settings') {
    // e.g. a passcode that is too short: the server says what is wrong
    moderation.revert();
    return code === 'forbidden' ? ERRORS.forbidden : (err.message || ERRORS[code] || null);
  }
  if (code === 'moved' && event === 'join') {
    // In a cluster the meeting lives on another node: the page, reloaded, is sent there (once:
    // a second `moved` within seconds means the nodes disagree, so say so instead of looping).
    const last = Number(sessionStorage.getItem(MOVED_KEY) || 0);
    if (Date.now() - last < MOVED_AGAIN_MS) return err.message || 'This meeting is moving between servers: reload in a moment.';
    sessionStorage.setItem(MOVED_KEY, String(Date.now()));
    ctx.teardown();
    ui.setStatus('Moving to the server that hosts this meeting…');
    window.location.reload();
    return false;
  }
  if ((code === 'passcode-required' || code === 'bad-passcode') && event === 'join') {
    state.phase = 'passcode';
    lobby.showPasscode({ wrong: code === 'bad-passcode' || !!state.passcode });
    return false;
  }
  if (FINAL.has(code) && (event === 'join' || event == null)) {
    ctx.teardown();
    // A turned-away knocker learns why ("The host ended the meeting." …) from the server.
    lobby.showGone(code, code === 'rejected' && err.message ? err.message : undefined);
    return false;
  }
  if (code === 'forbidden' && event === 'join' && (state.mic || state.camera)) {
    // Our link (or role) makes us a viewer: join without publishing.
    for (const track of [state.mic, state.camera]) if (track) track.stop();
    state.mic = null;
    state.camera = null;
    ctx.showLocalCamera(null);
    ui.showNotice('You joined as a viewer: you can watch, listen, chat and raise your hand.', 'role');
    ctx.join();
    return false;
  }
  if (event === 'role') ctx.renderPeople();
  if (code === 'forbidden') return FORBIDDEN[event] || ERRORS.forbidden;
  return ERRORS[code] || null;
}

export const hostControlsFor = moderation.hostControlsFor;
export const { getRole, mayRecord, mayGoLive, isViewer, participantGone } = moderation;
