// Getting in (docs/PROTOCOL.md "Roles, access and host controls"): the passcode prompt, the
// lobby's waiting screen, the pages shown when the meeting is over for us (removed, ended, turned
// away, banned, locked out), and — for hosts — the list of people knocking.

import { t } from './i18n.js';
import { showView, unverifiedTag } from './ui.js';

const $ = (sel) => document.querySelector(sel);

const passcodeForm = $('#passcode-form');
const passcodeInput = $('[data-testid="passcode-input"]');
const passcodeMessage = $('[data-testid="passcode-message"]');
const lobbyRoom = $('[data-testid="lobby-room"]');
const lobbyPreview = $('.lobby-preview');
const lobbyCancel = $('[data-testid="lobby-cancel"]');
const goneView = $('#gone-view');
const goneTitle = $('[data-testid="gone-title"]');
const goneDetail = $('[data-testid="gone-detail"]');
const panel = $('[data-testid="lobby-panel"]');
const count = $('[data-testid="lobby-count"]');
const list = $('[data-testid="lobby-list"]');
const lobbyAlert = $('[data-testid="lobby-alert"]');

/** Why the meeting is over for this page: title, detail and the data-testid of the page. */
const GONE = {
  removed: {
    testid: 'removed',
    title: () => t('gone.removedTitle'),
    detail: () => t('gone.removedDetail'),
  },
  banned: {
    testid: 'banned',
    title: () => t('gone.bannedTitle'),
    detail: () => t('gone.bannedDetail'),
  },
  ended: {
    testid: 'ended',
    title: () => t('gone.endedTitle'),
    detail: () => t('gone.endedDetail'),
  },
  rejected: {
    testid: 'lobby-rejected',
    title: () => t('gone.rejectedTitle'),
    detail: () => t('gone.rejectedDetail'),
  },
  'room-locked': {
    testid: 'room-locked',
    title: () => t('gone.lockedTitle'),
    detail: () => t('gone.lockedDetail'),
  },
  'auth-required': {
    testid: 'auth-required',
    title: () => t('gone.authTitle'),
    detail: () => t('gone.authDetail'),
  },
  'bad-token': {
    testid: 'bad-token',
    title: () => t('gone.badTokenTitle'),
    detail: () => t('gone.badTokenDetail'),
  },
};

let hooks = {
  onPasscode: () => {},
  onCancel: () => {},
  onAdmit: () => {},
  onReject: () => {},
};

const knockers = new Map(); // id -> Knocker {id, name, lang, verified}
let hostView = false;

/**
 * @param {object} opts
 * @param {(passcode: string) => void} opts.onPasscode  the user typed a passcode
 * @param {() => void} opts.onCancel  the user gave up waiting in the lobby
 * @param {(id: string) => void} opts.onAdmit  a host let a knocker in
 * @param {(id: string) => void} opts.onReject  a host turned a knocker away
 */
export function initLobby(opts) {
  hooks = { ...hooks, ...opts };
  passcodeForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = passcodeInput.value;
    if (!value.trim()) {
      setPasscodeMessage(t('passcode.empty'));
      passcodeInput.focus();
      return;
    }
    setPasscodeMessage('');
    hooks.onPasscode(value);
  });
  lobbyCancel.addEventListener('click', () => hooks.onCancel());
  lobbyAlert.addEventListener('click', () => {
    panel.scrollIntoView({ block: 'nearest' });
    const first = list.querySelector('[data-testid="lobby-admit"]');
    if (first) first.focus();
  });
}

function setPasscodeMessage(text) {
  passcodeMessage.textContent = text;
  passcodeMessage.hidden = !text;
}

/** Ask for the passcode; `wrong`: the last one was refused (`bad-passcode`). */
export function showPasscode({ wrong = false } = {}) {
  showView('passcode');
  setPasscodeMessage(wrong ? t('passcode.wrong') : '');
  if (wrong) passcodeInput.select();
  passcodeInput.focus();
}

/** The waiting screen of a knocker, with a preview of the camera when there is one. */
export function showWaiting(room, camera) {
  lobbyRoom.textContent = room;
  let video = lobbyPreview.querySelector('video');
  if (camera) {
    if (!video) {
      video = document.createElement('video');
      video.autoplay = true;
      video.playsInline = true;
      video.muted = true;
      video.setAttribute('data-testid', 'lobby-preview');
      lobbyPreview.append(video);
    }
    if (!video.srcObject || video.srcObject.getVideoTracks()[0] !== camera) {
      video.srcObject = new MediaStream([camera]);
      video.play().catch(() => {});
    }
  } else if (video) {
    video.srcObject = null;
    video.remove();
  }
  showView('lobby');
}

/** Leave the waiting screen (admitted, cancelled): release the preview. */
export function hideWaiting() {
  const video = lobbyPreview.querySelector('video');
  if (video) {
    video.srcObject = null;
    video.remove();
  }
}

/** The page shown when this meeting is over for us; `reason` is a key of GONE. */
export function showGone(reason, detail) {
  const info = GONE[reason] || GONE.removed;
  hideWaiting();
  goneView.setAttribute('data-testid', info.testid);
  goneView.dataset.reason = reason;
  const title = info.title();
  goneTitle.textContent = title;
  goneDetail.textContent = detail || info.detail();
  document.title = t('gone.pageTitle', { title });
  showView('gone');
}

// ---- hosts: people knocking ----------------------------------------------------------------------

/**
 * Only hosts see knockers. Knocks that arrive just before the promotion that brought them (the
 * server sends them first) are kept and shown once we are host; a demoted host's list is emptied.
 */
export function setHostView(on) {
  if (hostView && !on) knockers.clear();
  hostView = !!on;
  renderKnockers();
}

/** The lobby as `joined.lobby` lists it (replaces what we had). */
export function setKnockers(items) {
  knockers.clear();
  for (const k of Array.isArray(items) ? items : []) addKnocker(k, { render: false });
  renderKnockers();
}

export function addKnocker(k, { render = true } = {}) {
  if (!k || typeof k.id !== 'string' || !k.id) return;
  knockers.set(k.id, {
    id: k.id,
    name: typeof k.name === 'string' && k.name ? k.name : t('call.guest'),
    lang: typeof k.lang === 'string' ? k.lang : '',
    verified: k.verified === true,
  });
  if (render) renderKnockers();
}

export function removeKnocker(id) {
  if (knockers.delete(id)) renderKnockers();
}

function renderKnockers() {
  const n = hostView ? knockers.size : 0;
  panel.hidden = n === 0;
  lobbyAlert.hidden = n === 0;
  count.textContent = t('lobby.peopleWaiting', { count: n });
  lobbyAlert.textContent = t('lobby.waitingCount', { count: n });
  // "(2) room — unionhub": hosts notice knocks from another tab too
  const title = document.title.replace(/^\(\d+\) /, '');
  document.title = n ? `(${n}) ${title}` : title;
  panel.dataset.count = String(n);
  lobbyAlert.dataset.count = String(n);
  if (!n) {
    list.replaceChildren();
    return;
  }
  list.replaceChildren(...[...knockers.values()].map((k) => {
    const li = document.createElement('li');
    li.className = 'lobby-entry';
    li.setAttribute('data-testid', 'lobby-entry');
    li.dataset.id = k.id;
    li.dataset.name = k.name;
    const name = document.createElement('span');
    name.className = 'p-name';
    name.dir = 'auto';
    name.textContent = k.name;
    if (!k.verified) {
      name.append(unverifiedTag());
    } else {
      name.title = t('call.verifiedHint');
    }
    const lang = document.createElement('span');
    lang.className = 'p-lang';
    lang.textContent = k.lang;
    const admit = document.createElement('button');
    admit.type = 'button';
    admit.className = 'small ok';
    admit.textContent = t('lobby.admit');
    admit.setAttribute('data-testid', 'lobby-admit');
    admit.setAttribute('aria-label', t('lobby.admitName', { name: k.name }));
    admit.addEventListener('click', () => hooks.onAdmit(k.id));
    const reject = document.createElement('button');
    reject.type = 'button';
    reject.className = 'small';
    reject.textContent = t('lobby.reject');
    reject.setAttribute('data-testid', 'lobby-reject');
    reject.setAttribute('aria-label', t('lobby.rejectName', { name: k.name }));
    reject.addEventListener('click', () => hooks.onReject(k.id));
    li.append(name, lang, admit, reject);
    return li;
  }));
}

document.addEventListener('unionhub:locale', () => renderKnockers()); // (the interface language changed)
