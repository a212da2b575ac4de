// Roles and host controls (docs/PROTOCOL.md "Roles, access and host controls"): my role, the
// room's settings, the "Host controls" section of the sidebar, the per-participant host buttons
// and the in-page confirmation dialogs (remove, end the meeting).

import { t } from './i18n.js';
import { roleLabel } from './ui.js';

const $ = (sel) => document.querySelector(sel);

const ROLES = ['host', 'speaker', 'viewer'];
const ACCESS = ['open', 'passcode', 'lobby', 'token'];
const WHO = ['hosts', 'everyone'];

const section = $('[data-testid="host-controls"]');
const muteAll = $('[data-testid="host-mute-all"]');
const lock = $('[data-testid="host-lock"]');
const endButton = $('[data-testid="host-end"]');
const access = $('[data-testid="room-access"]');
const passcodeForm = $('[data-testid="room-passcode-form"]');
const passcodeInput = $('[data-testid="room-passcode"]');
const record = $('[data-testid="room-record"]');
const live = $('[data-testid="room-live"]');
const lastN = $('[data-testid="room-last-n"]');
const lowBandwidth = $('[data-testid="room-low-bandwidth"]');
const myRole = $('[data-testid="my-role"]');
const removeDialog = $('[data-testid="remove-confirm"]');
const removeName = $('[data-testid="remove-name"]');
const removeBan = $('[data-testid="remove-ban"]');
const endDialog = $('[data-testid="end-confirm"]');

/** Defaults of a room (PROTOCOL.md): open, unlocked, only hosts record and go live, 8 videos. */
const DEFAULT_SETTINGS = { access: 'open', locked: false, record: 'hosts', live: 'hosts', lastN: 8, lowBandwidth: false };
const LAST_N_MIN = 1;
const LAST_N_MAX = 25;

function validLastN(value) {
  return Number.isInteger(value) && value >= LAST_N_MIN && value <= LAST_N_MAX;
}

let role = null; // my role; null until the server told us (a server without roles never does)
let settings = { ...DEFAULT_SETTINGS };
let known = false; // the server sent RoomSettings (else everyone may record, as before roles)
let passcodePending = false; // the host picked "passcode" and has not set one yet
let removing = null; // {id, name} while the remove dialog is open
let emit = () => false;
let onChange = () => {};

/**
 * @param {object} opts
 * @param {(event: string, payload: object) => boolean} opts.emit  send a host event (false: not sent)
 * @param {() => void} opts.onChange  my role or the room's settings changed (re-render controls)
 */
export function initModeration(opts) {
  emit = opts.emit;
  onChange = opts.onChange || (() => {});

  muteAll.addEventListener('click', () => emit('mute', { all: true }));
  lock.addEventListener('click', () => emit('settings', { locked: !settings.locked }));
  access.addEventListener('change', () => {
    if (access.value === 'passcode') {
      // A passcode room needs its passcode: ask for it before telling the server.
      passcodePending = true;
      renderSettings();
      passcodeInput.focus();
      return;
    }
    passcodePending = false;
    emit('settings', { access: access.value });
    renderSettings();
  });
  passcodeForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const code = passcodeInput.value.trim();
    if (!code) {
      passcodeInput.focus();
      return;
    }
    if (emit('settings', { access: 'passcode', passcode: code })) {
      passcodePending = false;
      passcodeInput.value = '';
      passcodeInput.placeholder = t('host.newPasscode');
    }
  });
  record.addEventListener('change', () => emit('settings', { record: record.value }));
  live.addEventListener('change', () => emit('settings', { live: live.value }));
  lastN.addEventListener('change', () => {
    const value = Number(lastN.value);
    if (!validLastN(value)) {
      lastN.value = String(settings.lastN); // out of range: show what the room has
      return;
    }
    if (value !== settings.lastN) emit('settings', { lastN: value });
  });
  lowBandwidth.addEventListener('change', () => emit('settings', { lowBandwidth: lowBandwidth.checked }));

  endButton.addEventListener('click', () => {
    if (!endDialog.open) endDialog.showModal();
  });
  endDialog.addEventListener('close', () => {
    if (endDialog.returnValue === 'end') emit('end', {});
    endDialog.returnValue = '';
  });
  removeDialog.addEventListener('close', () => {
    const target = removing;
    removing = null;
    if (target && removeDialog.returnValue === 'remove') {
      emit('remove', { id: target.id, ban: removeBan.checked });
    }
    removeDialog.returnValue = '';
  });
  render();
}

export function getRole() {
  return role;
}

export function isHost() {
  return role === 'host';
}

export function isViewer() {
  return role === 'viewer';
}

/** My role from `joined.role` or a `participant-updated` about me. Returns the previous one. */
export function setRole(next) {
  const prev = role;
  role = ROLES.includes(next) ? next : null;
  if (role !== 'host') closeDialogs();
  render();
  return prev;
}

/** RoomSettings from `joined.settings` or a `settings` broadcast (partial ones are merged). */
export function setSettings(next) {
  if (!next || typeof next !== 'object') return;
  const merged = { ...settings };
  if (ACCESS.includes(next.access)) merged.access = next.access;
  if (typeof next.locked === 'boolean') merged.locked = next.locked;
  if (WHO.includes(next.record)) merged.record = next.record;
  if (WHO.includes(next.live)) merged.live = next.live;
  if (validLastN(next.lastN)) merged.lastN = next.lastN;
  if (typeof next.lowBandwidth === 'boolean') merged.lowBandwidth = next.lowBandwidth;
  settings = merged;
  known = true;
  if (settings.access === 'passcode') passcodePending = false;
  render();
}

/** A host request was refused: show the settings as they really are. */
export function revert() {
  passcodePending = false;
  render();
}

/** Forget everything about the last room (a new join). */
export function reset() {
  role = null;
  settings = { ...DEFAULT_SETTINGS };
  known = false;
  passcodePending = false;
  closeDialogs();
  render();
}

/** May I start or stop a recording? (Servers without roles: everyone may.) */
export function mayRecord() {
  return !known || settings.record === 'everyone' || role === 'host';
}

export function mayGoLive() {
  return !known || settings.live === 'everyone' || role === 'host';
}

function closeDialogs() {
  removing = null;
  if (removeDialog.open) removeDialog.close('cancel');
  if (endDialog.open) endDialog.close('cancel');
}

function render() {
  const host = role === 'host';
  section.hidden = !host;
  myRole.hidden = !role || role === 'speaker';
  myRole.textContent = role ? (role === 'host' ? t('host.youAreHost') : t('host.youAreViewer')) : '';
  myRole.dataset.role = role || '';
  myRole.title = role === 'viewer' ? t('host.viewerHint') : role === 'host' ? t('host.hostHint') : '';
  renderSettings();
  onChange();
}

function renderSettings() {
  access.value = passcodePending ? 'passcode' : settings.access;
  passcodeForm.hidden = !(passcodePending || settings.access === 'passcode');
  passcodeInput.placeholder = settings.access === 'passcode' && !passcodePending
    ? t('host.newPasscode') : t('passcode.label');
  lock.setAttribute('aria-pressed', String(settings.locked));
  lock.textContent = settings.locked ? t('host.unlock') : t('host.lock');
  lock.title = settings.locked ? t('host.unlockHint') : t('host.lockHint');
  record.value = settings.record;
  live.value = settings.live;
  if (document.activeElement !== lastN) lastN.value = String(settings.lastN); // (not while typed in)
  section.dataset.lastN = String(settings.lastN);
  lowBandwidth.checked = settings.lowBandwidth;
  section.dataset.lowBandwidth = String(settings.lowBandwidth);
  section.dataset.access = settings.access;
  section.dataset.locked = String(settings.locked);
}

/**
 * The host buttons of another participant's entry in the list, or null when I am not a host.
 * @param {{id: string, name: string, audio: boolean, video: boolean, role?: string, self?: boolean}} p
 */
export function hostControlsFor(p) {
  if (role !== 'host' || p.self) return null;
  const box = document.createElement('div');
  box.className = 'p-host';
  box.setAttribute('data-testid', 'host-participant-controls');

  const mute = button(t('call.mute'), 'host-mute', t('host.muteName', { name: p.name }));
  mute.disabled = !p.audio;
  if (!p.audio) mute.title = t('host.micIsOff', { name: p.name });
  mute.addEventListener('click', () => emit('mute', { id: p.id }));

  const cam = button(t('call.stopCamera'), 'host-stop-camera', t('host.cameraOffName', { name: p.name }));
  cam.disabled = !p.video;
  if (!p.video) cam.title = t('host.cameraIsOff', { name: p.name });
  cam.addEventListener('click', () => emit('stop-camera', { id: p.id }));

  const select = document.createElement('select');
  select.setAttribute('data-testid', 'host-role');
  select.setAttribute('aria-label', t('host.roleOf', { name: p.name }));
  for (const r of ROLES) {
    const opt = document.createElement('option');
    opt.value = r;
    opt.textContent = roleLabel(r);
    select.append(opt);
  }
  select.value = ROLES.includes(p.role) ? p.role : 'speaker';
  select.addEventListener('change', () => {
    const wanted = select.value;
    select.value = ROLES.includes(p.role) ? p.role : 'speaker'; // until the server confirms
    emit('role', { id: p.id, role: wanted });
  });

  const remove = button(t('host.remove'), 'host-remove', t('host.removeName', { name: p.name }));
  remove.classList.add('danger-text');
  remove.addEventListener('click', () => {
    removing = { id: p.id, name: p.name };
    removeName.textContent = p.name;
    removeBan.checked = false;
    removeDialog.returnValue = '';
    if (!removeDialog.open) removeDialog.showModal();
  });

  box.append(mute, cam, select, remove);
  return box;
}

/** The participant named in the open remove dialog left: nothing to remove any more. */
export function participantGone(id) {
  if (removing && removing.id === id && removeDialog.open) removeDialog.close('cancel');
}

function button(text, testid, title) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'small';
  b.textContent = text;
  b.title = title;
  b.setAttribute('data-testid', testid);
  b.setAttribute('aria-label', title);
  return b;
}

document.addEventListener('unionhub:locale', () => render()); // (the interface language changed)
