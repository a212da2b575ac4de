// Simultaneous interpretation (issue #14): the channel a listener hears, the floor mixed under
// the interpreter in this browser (Web Audio), an interpreter's booth, and the host's control
// that makes someone an interpreter. The hub decides which audio arrives (the floor never gets
// an interpreter's); this page only mixes what it receives.

import { getLocale, t } from './i18n.js';
import { LANGUAGES } from './routing.js';

const FLOOR = 'floor';
const DEFAULT_FLOOR_VOLUME = 20;
let names = null; // Intl.DisplayNames in the interface language

const state = {
  socket: null,
  myId: null,
  lang: 'en',
  micTrack: () => null,
  replaceMic: (track) => track.stop(),
  onChange: () => {},
  channels: [],            // [{lang, interpreters: [{id, name}], live}]
  chosen: null,            // the channel this listener picked (null: their own language's if any)
  floorVolume: DEFAULT_FLOOR_VOLUME,
  tracks: new Map(),       // mid -> {participant, track}
  mix: null,               // {ctx, master, analyser, nodes: Map(mid -> {source, gain})} while on a channel
  booth: null,             // the language we interpret into
};

const listenBox = document.querySelector('[data-testid="interpretation"]');
const boothBox = document.querySelector('[data-testid="booth"]');

export function languageName(code) {
  try {
    if (!names || names.resolvedOptions().locale !== getLocale()) {
      names = new Intl.DisplayNames([getLocale()], { type: 'language' });
    }
    return names.of(code) || code;
  } catch {
    return code;
  }
}

// ---- state from the hub -------------------------------------------------------------------------

/** Called once a socket exists: the hub's `interpretation` and `audio-channel` events. */
export function attach(socket, { lang, micTrack, replaceMic, onChange }) {
  state.socket = socket;
  state.lang = lang;
  state.micTrack = micTrack;
  if (replaceMic) state.replaceMic = replaceMic;
  state.onChange = onChange || (() => {});
  socket.on('interpretation', (msg) => setChannels(msg && msg.channels));
  socket.on('audio-channel', (msg) => {
    if (msg && typeof msg.channel === 'string') {
      state.chosen = msg.channel;
      render();
    }
  });
}

/** `joined`: our id and the room's channels (a rejoin is a new participant: the choice is sent again). */
export function onJoined(msg) {
  state.myId = msg.id;
  setChannels(msg.interpretation && msg.interpretation.channels);
  if (state.chosen !== null) state.socket.emit('audio-channel', { channel: state.chosen });
}

function setChannels(channels) {
  state.channels = Array.isArray(channels) ? channels : [];
  if (state.chosen !== null && state.chosen !== FLOOR && !channel(state.chosen)) state.chosen = null;
  const booth = state.channels.find((c) => c.interpreters.some((i) => i.id === state.myId));
  const was = state.booth;
  state.booth = booth ? booth.lang : null;
  if (!!state.booth !== !!was) interpreterMicrophone(!!state.booth);
  render();
  applyMix();
  state.onChange(); // (the host's "interprets into" controls)
}

function channel(lang) {
  return state.channels.find((c) => c.lang === lang) || null;
}

function liveName(c) {
  const live = c.interpreters.find((i) => i.id === c.live);
  return live ? live.name : null;
}

/** The channel we hear: our pick, else our own language's (not in a booth), else the floor. */
export function currentChannel() {
  if (state.chosen !== null && (state.chosen === FLOOR || channel(state.chosen))) return state.chosen;
  if (!state.booth && channel(state.lang)) return state.lang;
  return FLOOR;
}

function isInterpreter(participant) {
  return state.channels.some((c) => c.interpreters.some((i) => i.id === participant));
}

// ---- the listener's controls --------------------------------------------------------------------

function render() {
  renderListen();
  renderBooth();
}

function renderListen() {
  if (!listenBox) return;
  listenBox.hidden = state.channels.length === 0;
  if (listenBox.hidden) return;
  let select = listenBox.querySelector('[data-testid="audio-channel"]');
  if (!select) buildListen();
  select = listenBox.querySelector('[data-testid="audio-channel"]');
  select.replaceChildren(option(FLOOR, t('interp.floorOption')));
  for (const c of state.channels) {
    const who = liveName(c) || t('interp.nobodyLive');
    select.append(option(c.lang, t('interp.channel', { language: languageName(c.lang), who })));
  }
  const heard = currentChannel();
  select.value = heard;
  const c = heard === FLOOR ? null : channel(heard);
  const now = listenBox.querySelector('[data-testid="channel-live"]');
  now.textContent = c ? t('interp.channel', { language: languageName(c.lang), who: liveName(c) || t('interp.nobodyLive') })
    : t('interp.theFloor');
  const notice = listenBox.querySelector('[data-testid="channel-notice"]');
  notice.hidden = !c || c.live !== null;
  notice.textContent = c ? t('interp.nobodyInterpreting', { language: languageName(c.lang) }) : '';
  listenBox.querySelector('.floor-volume').hidden = heard === FLOOR;
}

function buildListen() {
  const label = document.createElement('label');
  label.textContent = `${t('interp.listenTo')} `;
  const select = document.createElement('select');
  select.setAttribute('data-testid', 'audio-channel');
  select.addEventListener('change', () => {
    state.chosen = select.value;
    if (state.socket) state.socket.emit('audio-channel', { channel: select.value });
    resumeMix();
    render();
    applyMix();
  });
  label.append(select);
  const now = document.createElement('p');
  now.className = 'channel-live';
  now.setAttribute('data-testid', 'channel-live');
  const notice = document.createElement('p');
  notice.className = 'channel-notice';
  notice.setAttribute('data-testid', 'channel-notice');
  notice.setAttribute('role', 'status');
  const volume = document.createElement('label');
  volume.className = 'floor-volume';
  volume.textContent = `${t('interp.floorUnderneath')} `;
  const range = document.createElement('input');
  range.type = 'range';
  range.min = '0';
  range.max = '100';
  range.value = String(state.floorVolume);
  range.setAttribute('data-testid', 'floor-volume');
  range.addEventListener('input', () => {
    state.floorVolume = Number(range.value);
    resumeMix();
    applyGains();
  });
  volume.append(range);
  listenBox.replaceChildren(label, now, notice, volume);
}

function option(value, text) {
  const opt = document.createElement('option');
  opt.value = value;
  opt.textContent = text;
  return opt;
}

// ---- the mix (Web Audio) ------------------------------------------------------------------------

/** A remote audio track arrived (its <audio> element plays it unless we mix). */
export function addTrack(mid, participant, track) {
  state.tracks.set(mid, { participant, track });
  applyMix();
}

export function removeTrack(mid) {
  state.tracks.delete(mid);
  if (state.mix) disconnect(mid);
}

function audioElement(mid) {
  return document.querySelector(`#audio-sink audio[data-key="${CSS.escape(mid)}"]`);
}

/** On a channel: every track through Web Audio, the floor at its volume; on the floor: the <audio> elements. */
function applyMix() {
  const mixing = currentChannel() !== FLOOR;
  if (!mixing) {
    if (state.mix) {
      for (const mid of [...state.mix.nodes.keys()]) disconnect(mid);
    }
    for (const mid of state.tracks.keys()) {
      const audio = audioElement(mid);
      if (audio) audio.muted = false;
    }
    return;
  }
  if (!state.mix) {
    const ctx = new AudioContext();
    const master = ctx.createGain();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    analyser.smoothingTimeConstant = 0.5;
    master.connect(ctx.destination);
    master.connect(analyser);
    state.mix = { ctx, master, analyser, nodes: new Map() };
  }
  for (const [mid, { track }] of state.tracks) {
    const audio = audioElement(mid);
    if (audio) audio.muted = true; // (kept playing: Chromium feeds Web Audio from a playing element's stream)
    if (!state.mix.nodes.has(mid)) {
      const source = state.mix.ctx.createMediaStreamSource(new MediaStream([track]));
      const gain = state.mix.ctx.createGain();
      source.connect(gain).connect(state.mix.master);
      state.mix.nodes.set(mid, { source, gain });
    }
  }
  applyGains();
  resumeMix();
}

function applyGains() {
  if (!state.mix) return;
  for (const [mid, { gain }] of state.mix.nodes) {
    const entry = state.tracks.get(mid);
    gain.gain.value = entry && isInterpreter(entry.participant) ? 1 : state.floorVolume / 100;
  }
}

function disconnect(mid) {
  const nodes = state.mix.nodes.get(mid);
  if (!nodes) return;
  nodes.source.disconnect();
  nodes.gain.disconnect();
  state.mix.nodes.delete(mid);
}

function resumeMix() {
  if (state.mix && state.mix.ctx.state === 'suspended') state.mix.ctx.resume().catch(() => {});
}

/** What this page plays while on a channel (the level meter's and the tests' view of the mix). */
export function mixAnalyser() {
  return state.mix ? state.mix.analyser : null;
}

// ---- the booth ----------------------------------------------------------------------------------

/** An interpreter's microphone: no echo cancellation (it would eat the floor they speak over),
 * noise suppression on; back to the defaults when they leave the booth. Chromium does not
 * change audio processing on a live track, so the microphone is captured again. */
async function interpreterMicrophone(interpreting) {
  if (!state.micTrack() || !navigator.mediaDevices) return;
  const audio = interpreting ? { echoCancellation: false, noiseSuppression: true } : true;
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio });
    state.replaceMic(stream.getAudioTracks()[0]);
  } catch {
    // (the microphone keeps its processing: the call goes on)
  }
  renderBooth();
}

function renderBooth() {
  if (!boothBox) return;
  const c = state.booth ? channel(state.booth) : null;
  boothBox.hidden = !c;
  if (!c) return;
  const title = document.createElement('h2');
  title.textContent = t('interp.boothTitle', { language: languageName(c.lang) });
  const list = document.createElement('ul');
  for (const i of c.interpreters) {
    const li = document.createElement('li');
    li.setAttribute('data-testid', 'booth-member');
    li.dataset.participant = i.id;
    const who = i.id === state.myId ? t('call.you', { name: i.name }) : i.name;
    li.textContent = i.id === c.live ? t('interp.memberLive', { name: who }) : who;
    if (i.id === c.live) li.classList.add('live');
    list.append(li);
  }
  const status = document.createElement('p');
  status.setAttribute('data-testid', 'booth-status');
  status.setAttribute('role', 'status');
  const live = c.live === state.myId;
  status.textContent = live ? t('interp.youAreLive')
    : c.live ? t('interp.isLive', { name: liveName(c) }) : t('interp.nobodyLiveBooth');
  const controls = document.createElement('div');
  controls.className = 'booth-controls';
  const partners = c.interpreters.filter((i) => i.id !== state.myId);
  if (live) {
    for (const p of partners) {
      controls.append(boothButton(t('interp.handOver', { name: p.name }), 'booth-handover', { action: 'handover', to: p.id }));
    }
    controls.append(boothButton(t('interp.goOff'), 'booth-off', { action: 'off' }));
  } else {
    const take = boothButton(t('interp.goLive'), 'booth-live', { action: 'live' });
    take.disabled = c.live !== null;
    controls.append(take);
  }
  const mic = state.micTrack();
  const mute = document.createElement('button');
  mute.type = 'button';
  mute.setAttribute('data-testid', 'booth-mute');
  mute.setAttribute('aria-pressed', String(!!mic && !mic.enabled));
  mute.textContent = mic && !mic.enabled ? t('call.unmute') : t('interp.cough');
  mute.disabled = !mic;
  mute.addEventListener('click', () => {
    const toggle = document.querySelector('[data-testid="mic-toggle"]'); // the call's own mute: one state
    if (toggle) toggle.click();
    renderBooth();
  });
  controls.append(mute);
  const relay = document.createElement('p');
  relay.className = 'booth-relay';
  relay.textContent = t('interp.relay');
  boothBox.replaceChildren(title, list, status, controls, relay);
}

function boothButton(text, testid, payload) {
  const button = document.createElement('button');
  button.type = 'button';
  button.textContent = text;
  button.setAttribute('data-testid', testid);
  button.addEventListener('click', () => state.socket && state.socket.emit('booth', payload));
  return button;
}

// ---- the host's control -------------------------------------------------------------------------

/** Append "Interprets into" to a participant's host controls (`box`: null when we do not host). */
export function withInterpreterControl(box, p) {
  if (!box) return box;
  const label = document.createElement('label');
  label.className = 'p-interpreter';
  label.textContent = `${t('interp.interpretsInto')} `;
  const select = document.createElement('select');
  select.setAttribute('data-testid', 'host-interpreter');
  select.setAttribute('aria-label', t('interp.interpretsIntoName', { name: p.name }));
  select.append(option('', '—'));
  for (const [code] of LANGUAGES) select.append(option(code, languageName(code)));
  const booth = state.channels.find((c) => c.interpreters.some((i) => i.id === p.id));
  select.value = booth ? booth.lang : '';
  select.addEventListener('change', () => {
    const lang = select.value || null;
    select.value = booth ? booth.lang : ''; // until the server confirms
    if (state.socket) state.socket.emit('interpreter', { id: p.id, lang });
  });
  label.append(select);
  box.append(label);
  return box;
}

document.addEventListener('unionhub:locale', () => { // (the interface language changed: rebuild)
  if (listenBox) listenBox.replaceChildren();
  render();
});
