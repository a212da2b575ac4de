// Getting in (docs/PROTOCOL.md "Roles, access and host controls"): the passcode prompt, the
// lobby's waiting screen, the pages shown when the meeting is over for us (removed, ended, turned
// away, banned, locked out), and — for hosts — the list of people knocking.

import { showView } from './ui.js';

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
    title: 'You were removed from the meeting',
    detail: 'A host removed you from this meeting.',
  },
  banned: {
    testid: 'banned',
    title: 'You cannot rejoin this meeting',
    detail: 'A host removed you from this meeting and banned you from rejoining it.',
  },
  ended: {
    testid: 'ended',
    title: 'The host ended the meeting for everyone',
    detail: 'The meeting is over. Thanks for taking part.',
  },
  rejected: {
    testid: 'lobby-rejected',
    title: 'You were not let in',
    detail: 'A host of this meeting turned down your request to join.',
  },
  'room-locked': {
    testid: 'room-locked',
    title: 'This meeting is locked',
    detail: 'A host locked the meeting: nobody new can join right now. Ask a host to unlock it, '
      + 'then reload this page.',
  },
  'auth-required': {
    testid: 'auth-required',
    title: 'This meeting needs an invitation link',
    detail: 'Only people with a signed invitation link can join. Ask the organiser for yours.',
  },
  'bad-token': {
    testid: 'bad-token',
    title: 'This invitation link does not work',
    detail: 'The link has expired, is not valid yet, or is for another meeting. '
      + 'Ask the organiser for a new one.',
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
      setPasscodeMessage('Enter the passcode you were given.');
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
  setPasscodeMessage(wrong ? 'That passcode is not right — try again.' : '');
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
  goneTitle.textContent = info.title;
  goneDetail.textContent = detail || info.detail;
  document.title = `${info.title} — unionhub`;
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
    name: typeof k.name === 'string' && k.name ? k.name : 'Guest',
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
  count.textContent = n === 1 ? '1 person waiting to join' : `${n} people waiting to join`;
  lobbyAlert.textContent = n === 1 ? '1 waiting' : `${n} waiting`;
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
    name.textContent = k.name;
    if (!k.verified) {
      const tag = document.createElement('span');
      tag.className = 'p-unverified';
      tag.textContent = ' (unverified)';
      tag.title = 'Self-declared name: not from a signed invitation link';
      name.append(tag);
    } else {
      name.title = 'Name from a signed invitation link';
    }
    const lang = document.createElement('span');
    lang.className = 'p-lang';
    lang.textContent = k.lang;
    const admit = document.createElement('button');
    admit.type = 'button';
    admit.className = 'small ok';
    admit.textContent = 'Admit';
    admit.setAttribute('data-testid', 'lobby-admit');
    admit.setAttribute('aria-label', `Admit ${k.name}`);
    admit.addEventListener('click', () => hooks.onAdmit(k.id));
    const reject = document.createElement('button');
    reject.type = 'button';
    reject.className = 'small';
    reject.textContent = 'Reject';
    reject.setAttribute('data-testid', 'lobby-reject');
    reject.setAttribute('aria-label', `Turn ${k.name} away`);
    reject.addEventListener('click', () => hooks.onReject(k.id));
    li.append(name, lang, admit, reject);
    return li;
  }));
}
