// Getting in and being moderated (docs/PROTOCOL.md "Roles, access and host controls"): what `join`
// carries besides the basics (client id, signed link, passcode), the answers to it (passcode,
// lobby, refusals), the host events that reach a participant (muted, removed, ended, role changes)
// and the knocks hosts see. app.js owns the call; this module is handed its state and hooks.

import * as failover from './failover.js';
import { errorText, reasonText, t } from './i18n.js';
import { clientId } from './identity.js';
import * as lobby from './lobby.js';
import { acquireUserMedia } from './media.js';
import * as moderation from './moderation.js';
import * as ui from './ui.js';

/** Human messages for the access and host-control error codes (the rest: errors.<code>). */
const ERRORS = {
  'forbidden': () => t('access.onlyHost'),
  'bad-token': () => t('errors.bad-token'),
  'auth-required': () => t('errors.auth-required'),
  'passcode-required': () => t('errors.passcode-required'),
  'bad-passcode': () => t('errors.bad-passcode'),
  'room-locked': () => t('errors.room-locked'),
  'rejected': () => t('errors.rejected'),
  'banned': () => t('errors.banned'),
  'rate-limited': () => t('access.rateLimited'),
  'no-such-participant': () => t('errors.no-such-participant'),
};

/** `forbidden`, by the event it answers. */
const FORBIDDEN = {
  join: () => t('access.viewerCannotPublish'),
  publish: () => t('call.viewersCannotShare'),
  record: () => t('access.onlyHostsRecord'),
  live: () => t('access.onlyHostsLive'),
  'live-push': () => t('access.onlyHostsPush'),
};

function message(table, key) {
  const text = table[key];
  return text ? text() : null;
}

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
    ui.showError(t('call.notConnected'), 'host');
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
    const name = msg && typeof msg.name === 'string' && msg.name ? msg.name : null;
    ctx.teardown();
    let text;
    if (ban) text = name ? t('access.removedBannedBy', { name }) : t('gone.bannedDetail');
    else text = name ? t('access.removedBy', { name }) : t('gone.removedDetail');
    lobby.showGone('removed', text);
  });
  socket.on('ended', () => {
    ctx.teardown();
    lobby.showGone('ended');
  });
  socket.on('moved', onMoved);
}

/**
 * The server hands the meeting to another server of the hub (it is shutting down, or lost the
 * room to another): follow it, keeping this page's query (name, join link). Without a URL the
 * server is restarting: reload after a few seconds.
 */
const RELOAD_AFTER_MS = 4000;

function onMoved(msg) {
  // (the server's `message` is English: the page says it in the member's language)
  const text = msg && typeof msg.url === 'string' ? t('access.moving') : t('access.restarting');
  ctx.teardown();
  ui.setStatus(text);
  let target = null;
  if (msg && typeof msg.url === 'string') {
    try {
      target = new URL(msg.url, window.location.href);
      if (target.protocol !== 'https:' && target.protocol !== 'http:') target = null;
    } catch (_) {
      target = null;
    }
  }
  if (target) {
    sessionStorage.setItem(MOVED_KEY, String(Date.now()));
    window.location.assign(failover.follow(target));
  } else {
    setTimeout(() => window.location.reload(), RELOAD_AFTER_MS);
  }
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
    ui.showNotice(t('access.nowHost'), 'role', 10000);
  }
}

function onMuted(msg) {
  const { state } = ctx;
  const kind = msg && msg.kind === 'video' ? 'video' : 'audio';
  const track = kind === 'video' ? state.camera : state.mic;
  const by = msg && typeof msg.name === 'string' && msg.name
    ? msg.name : msg && typeof msg.by === 'string' ? nameOf(msg.by) : null;
  if (!track) return; // nothing of ours to mute (a listener, a viewer)
  track.enabled = false;
  if (kind === 'video') ctx.showLocalCamera(track);
  ctx.sendMediaState();
  ctx.updateControls();
  ctx.renderPeople();
  let text;
  if (kind === 'video') text = by ? t('access.cameraOffBy', { name: by }) : t('access.cameraOff');
  else text = by ? t('access.mutedBy', { name: by }) : t('access.muted');
  ui.showNotice(text, `muted-${kind}`);
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
    ui.showNotice(t('access.madeViewer'), 'role');
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
    ui.showNotice(t('access.madeSpeaker'), 'role', 10000);
  } else {
    ui.showNotice(t('access.madeSpeakerRejoin'), 'role', 0,
      { label: t('access.rejoinAndSpeak'), run: () => rejoinToSpeak() });
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
    // e.g. a passcode that is too short: the server says what is wrong (its reason and params)
    moderation.revert();
    return reasonText(err) || message(ERRORS, code) || errorText(err);
  }
  if (code === 'moved' && event === 'join') {
    // In a cluster the meeting lives on another node: the page, reloaded, is sent there (once:
    // a second `moved` within seconds means the nodes disagree, so say so instead of looping).
    const last = Number(sessionStorage.getItem(MOVED_KEY) || 0);
    if (Date.now() - last < MOVED_AGAIN_MS) return t('access.movingAgain');
    sessionStorage.setItem(MOVED_KEY, String(Date.now()));
    ctx.teardown();
    ui.setStatus(t('access.movingToOwner'));
    // behind a front proxy, without `node`: any server answers and names the owner
    if (failover.nodeParam()) window.location.assign(failover.withoutNode());
    else window.location.reload();
    return false;
  }
  if ((code === 'passcode-required' || code === 'bad-passcode') && event === 'join') {
    state.phase = 'passcode';
    lobby.showPasscode({ wrong: code === 'bad-passcode' || !!state.passcode });
    return false;
  }
  if (FINAL.has(code) && (event === 'join' || event == null)) {
    ctx.teardown();
    // A turned-away knocker learns why (the host ended the meeting, the link expired…): the
    // reason in the member's language; a reason this page does not know, in the server's words.
    lobby.showGone(code, reasonText(err) || (err.reason && err.message) || undefined);
    return false;
  }
  if (code === 'forbidden' && event === 'join' && (state.mic || state.camera)) {
    // Our link (or role) makes us a viewer: join without publishing.
    for (const track of [state.mic, state.camera]) if (track) track.stop();
    state.mic = null;
    state.camera = null;
    ctx.showLocalCamera(null);
    ui.showNotice(t('access.joinedAsViewer'), 'role');
    ctx.join();
    return false;
  }
  if (event === 'role') ctx.renderPeople();
  const why = reasonText(err);
  if (why) return why;
  if (code === 'forbidden') return message(FORBIDDEN, event) || message(ERRORS, 'forbidden');
  return message(ERRORS, code);
}

export const hostControlsFor = moderation.hostControlsFor;
export const { getRole, mayRecord, mayGoLive, isViewer, participantGone } = moderation;
