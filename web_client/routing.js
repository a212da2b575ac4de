// Routing and the join form: which call the page URL asks for (`/r/<room>?name=…`, or a signed
// link `/?room=R&token=JWT`), and the form shown when something is missing.

import { initialAudioOnly, rememberAudioOnly } from './datasaver.js';
import { getLocale, matchLocale, setLocale, storedLocale, t } from './i18n.js';
import { tokenClaims, tokenFromUrl } from './identity.js';
import * as ui from './ui.js';

const { el } = ui;

const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;
const LANG_RE = /^[a-z]{2,3}$/;

export const LANGUAGES = [
  ['en', 'English'], ['es', 'Español'], ['pt', 'Português'], ['fr', 'Français'],
  ['de', 'Deutsch'], ['it', 'Italiano'], ['ar', 'العربية'], ['nl', 'Nederlands'],
  ['pl', 'Polski'], ['sv', 'Svenska'], ['tr', 'Türkçe'], ['ru', 'Русский'],
  ['uk', 'Українська'], ['el', 'Ελληνικά'], ['hi', 'हिन्दी'], ['zh', '中文'],
  ['ja', '日本語'], ['ko', '한국어'], ['sw', 'Kiswahili'],
];

// ---- routing ------------------------------------------------------------------------------------

/** The interface language the member picked (i18n.js), else the browser's language. */
function defaultLang() {
  const base = (storedLocale() || navigator.language || 'en').split('-')[0].toLowerCase();
  return LANGUAGES.some(([code]) => code === base) ? base : 'en';
}

function roomFromPath() {
  const m = location.pathname.match(/^\/r\/(.*?)\/?$/);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return m[1];
  }
}

function validName(name) {
  const chars = [...name];
  return chars.length >= 1 && chars.length <= 64 && !/\p{C}/u.test(name) && name.trim() !== '';
}

/**
 * Where the page URL leads: the call to start ({room, name, lang, audio, video, audioOnly, token,
 * viewer}),
 * or null when the join form is shown instead (no room, a bad room name, no name).
 */
export function route() {
  fillLanguages();
  const params = new URLSearchParams(location.search);
  const token = tokenFromUrl(params);
  const claims = token ? tokenClaims(token) || {} : null;
  // A signed link: `/?room=R&token=JWT` (or `/r/R?token=JWT`); the name comes from the token.
  const room = roomFromPath() ?? (token ? params.get('room') || claims.room || null : null);
  let name = (params.get('name') || '').trim();
  if (claims && claims.name) name = claims.name.trim();
  let lang = (params.get('lang') || (claims && claims.lang) || '').toLowerCase();
  if (!LANG_RE.test(lang)) lang = defaultLang();
  const audio = params.get('audio') !== '0';
  const video = params.get('video') !== '0';
  const audioOnly = initialAudioOnly(params); // `?audioOnly=1`, else this browser's choice
  if (token && room !== null && ROOM_RE.test(room)) {
    return { room, name: name && validName(name) ? name : 'Guest', lang, audio, video, audioOnly, token,
      viewer: claims.role === 'viewer' };
  }

  if (room === null) {
    showJoinForm({ room: (params.get('room') || '').trim(), name, lang, audio, video, audioOnly });
    return null;
  }
  if (!ROOM_RE.test(room)) {
    showJoinForm({ room, name, lang, audio, video, audioOnly });
    ui.showError(t('join.badRoomNamed', { room }));
    return null;
  }
  if (!name || !validName(name)) {
    showJoinForm({ room, name, lang, audio, video, audioOnly });
    if (name) ui.showError(t('errors.bad-name'));
    return null;
  }
  return { room, name, lang, audio, video, audioOnly, token: null, viewer: false };
}

// ---- join form ----------------------------------------------------------------------------------

function fillLanguages() {
  el.joinLang.replaceChildren(...LANGUAGES.map(([code, label]) => {
    const opt = document.createElement('option');
    opt.value = code;
    opt.textContent = `${label} (${code})`;
    return opt;
  }));
}

function showJoinForm({ room, name, lang, audio, video, audioOnly }) {
  ui.showView('join');
  // What someone typed before this script ran (a slow network) is kept, not wiped.
  el.joinRoom.value = room || el.joinRoom.value;
  el.joinName.value = name || el.joinName.value;
  if (!LANGUAGES.some(([code]) => code === lang)) {
    const opt = document.createElement('option');
    opt.value = lang;
    opt.textContent = lang;
    el.joinLang.append(opt);
  }
  el.joinLang.value = lang;
  el.joinAudio.checked = audio;
  el.joinVideo.checked = video;
  el.joinAudioOnly.checked = audioOnly;
  if (!el.joinForm.contains(document.activeElement)) { // not taken from a field already in use
    (room && ROOM_RE.test(room) ? el.joinName : el.joinRoom).focus();
  }
}

function formMessage(text) {
  el.joinMessage.textContent = text || '';
  el.joinMessage.hidden = !text;
}

el.joinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const room = el.joinRoom.value.trim();
  const name = el.joinName.value.trim();
  if (!ROOM_RE.test(room)) {
    formMessage(t('join.badRoom'));
    el.joinRoom.focus();
    return;
  }
  if (!validName(name)) {
    formMessage(t('join.badName'));
    el.joinName.focus();
    return;
  }
  formMessage('');
  const params = new URLSearchParams({ name, lang: el.joinLang.value });
  if (!el.joinAudio.checked) params.set('audio', '0');
  if (!el.joinVideo.checked) params.set('video', '0');
  rememberAudioOnly(el.joinAudioOnly.checked);
  if (el.joinAudioOnly.checked) params.set('audioOnly', '1');
  location.assign(`/r/${encodeURIComponent(room)}?${params}`);
});

// Choosing a language the interface speaks in the join form switches the interface to it too.
el.joinLang.addEventListener('change', () => {
  const locale = matchLocale(el.joinLang.value);
  if (locale && locale !== getLocale()) setLocale(locale);
});

// …and the header's interface language picker proposes the same language for the call.
document.addEventListener('unionhub:locale', ({ detail }) => {
  const base = detail.locale.split('-')[0];
  if (LANGUAGES.some(([code]) => code === base)) el.joinLang.value = base;
});
