// The interface in the member's language: message catalogues (locales/<locale>.json), placeholders
// and plurals through the browser's Intl APIs, dates and times in the member's locale and time zone,
// and <html lang dir> (Arabic lays out right to left).
//
// The locale is the member's choice (the language picker, remembered in localStorage), then the
// browser's languages, then English. A catalogue value is a string with `{name}` placeholders, or an
// object of CLDR plural forms ({"one": …, "other": …}) chosen with Intl.PluralRules by `count`.
// A key missing from a catalogue falls back to English; in development (localhost or ?i18n=debug)
// it is shown marked ⟦…⟧ and listed in `window.unionhubI18n.missing`, so it gets noticed.
//
// Static HTML: <el data-i18n="key"> gets its text translated; children marked data-i18n-slot="x"
// are kept and put where the message says {x} (a link inside a sentence). <el data-i18n-attr=
// "placeholder:key title:key2"> translates attributes. This module loads its catalogues with a
// top-level await, so importers can translate at once.

export const LOCALES = ['en', 'es', 'pt-BR', 'fr', 'ar', 'hi'];
export const DEFAULT_LOCALE = 'en';
/** Each locale's own name, for the picker. */
export const LOCALE_NAMES = {
  en: 'English', es: 'Español', 'pt-BR': 'Português (Brasil)', fr: 'Français', ar: 'العربية', hi: 'हिन्दी',
};
const RTL = new Set(['ar']);
const STORAGE_KEY = 'unionhub-locale';

const state = {
  locale: DEFAULT_LOCALE,
  messages: {},
  english: {},
  debug: false,
  missing: new Set(),
  started: false, // the first catalogue is applied
};

window.unionhubI18n = {
  get locale() { return state.locale; },
  get missing() { return [...state.missing].sort(); },
  // The page is translated. Every page's own script imports this module and runs right after it
  // (the same task), so this is also when the page's script has wired its controls: what tests
  // wait for, since <html lang="en"> is true of the static page before anything ran.
  get ready() { return state.started; },
};

// ---- choosing the locale ------------------------------------------------------------------------

/** The supported locale closest to a language tag ("pt" and "pt-PT" → pt-BR, "es-MX" → es), or null. */
export function matchLocale(tag) {
  if (typeof tag !== 'string' || !tag) return null;
  const lower = tag.toLowerCase();
  const exact = LOCALES.find((l) => l.toLowerCase() === lower);
  if (exact) return exact;
  const base = lower.split(/[-_]/)[0];
  return LOCALES.find((l) => l.toLowerCase().split('-')[0] === base) || null;
}

/** The locale the member picked on this browser, or null. */
export function storedLocale() {
  try {
    return matchLocale(localStorage.getItem(STORAGE_KEY));
  } catch {
    return null; // storage disabled
  }
}

/** The member's choice, then the browser's languages, then English. */
export function preferredLocale() {
  const stored = storedLocale();
  if (stored) return stored;
  for (const tag of navigator.languages || [navigator.language]) {
    const hit = matchLocale(tag);
    if (hit) return hit;
  }
  return DEFAULT_LOCALE;
}

function isDebug() {
  const flag = new URLSearchParams(location.search).get('i18n');
  if (flag === 'debug') return true;
  if (flag === 'off') return false;
  return ['localhost', '127.0.0.1', '[::1]'].includes(location.hostname);
}

// ---- catalogues ---------------------------------------------------------------------------------

async function loadCatalogue(locale) {
  try {
    const response = await fetch(`/static/locales/${locale}.json`, { headers: { Accept: 'application/json' } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return await response.json();
  } catch (err) {
    console.error(`unionhub: the ${locale} messages could not be loaded`, err);
    return {};
  }
}

/** Switch to `locale` (remembered when `remember`), translate the page and tell the page's code. */
export async function setLocale(locale, { remember = true } = {}) {
  const chosen = matchLocale(locale) || DEFAULT_LOCALE;
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, chosen);
    } catch { /* storage disabled: this page only */ }
  }
  if (chosen !== state.locale || !Object.keys(state.messages).length) {
    state.messages = chosen === DEFAULT_LOCALE ? state.english : await loadCatalogue(chosen);
    state.locale = chosen;
  }
  document.documentElement.lang = chosen;
  document.documentElement.dir = RTL.has(chosen) ? 'rtl' : 'ltr';
  translatePage();
  document.dispatchEvent(new CustomEvent('unionhub:locale', { detail: { locale: chosen } }));
}

export function getLocale() {
  return state.locale;
}

export function isRtl(locale = state.locale) {
  return RTL.has(locale);
}

// ---- messages -----------------------------------------------------------------------------------

/** Whether the catalogue (or English) has `key`: the server's own message is used otherwise. */
export function has(key) {
  return Object.hasOwn(state.messages, key) || Object.hasOwn(state.english, key);
}

function pick(value, params, locale) {
  if (value === null || typeof value !== 'object') return value;
  const count = Number(params.count);
  const form = Number.isFinite(count) ? new Intl.PluralRules(locale).select(count) : 'other';
  return value[form] ?? value.other;
}

function fill(template, params, locale) {
  return template.replace(/\{([A-Za-z0-9_]+)\}/g, (whole, name) => {
    if (!Object.hasOwn(params, name)) return whole;
    const value = params[name];
    return typeof value === 'number' ? new Intl.NumberFormat(locale).format(value) : String(value);
  });
}

/** The message `key` in the member's language, with `{name}` placeholders filled from `params`. */
export function t(key, params = {}) {
  let value = pick(state.messages[key], params, state.locale);
  if (typeof value === 'string' && value) return fill(value, params, state.locale);
  state.missing.add(key);
  value = pick(state.english[key], params, DEFAULT_LOCALE);
  if (typeof value !== 'string') {
    console.warn(`unionhub: no message ${key}`);
    return state.debug ? `⟦${key}⟧` : '';
  }
  const text = fill(value, params, DEFAULT_LOCALE);
  return state.debug ? `⟦${text}⟧` : text;
}

/**
 * The catalogue key of a server error (`error {code, reason?, params?}`, docs/PROTOCOL.md): its
 * reason's `errors.<code>.<reason>` when the catalogue has it, else `errors.<code>`, else null.
 * With `reasonOnly`, only the reason's.
 */
export function errorKey(err, { reasonOnly = false } = {}) {
  const code = err && typeof err.code === 'string' ? err.code : '';
  const reason = err && typeof err.reason === 'string' ? err.reason : '';
  if (code && reason && has(`errors.${code}.${reason}`)) return `errors.${code}.${reason}`;
  if (code && !reasonOnly && has(`errors.${code}`)) return `errors.${code}`;
  return null;
}

/** A server error's values (`params`: numbers, names) for its message's placeholders. */
function errorParams(err) {
  const given = err && err.params && typeof err.params === 'object' ? err.params : {};
  return Object.fromEntries(Object.entries(given).filter(([, v]) => typeof v === 'string' || typeof v === 'number'));
}

/**
 * A server error for people: the catalogue's message for its reason or code (errorKey), with the
 * error's params, else the server's own (English) message, else `fallbackKey`.
 */
export function errorText(err, fallbackKey = 'errors.unknown', params = {}) {
  const key = errorKey(err);
  if (key) return t(key, { ...errorParams(err), ...params });
  if (err && typeof err.message === 'string' && err.message) return err.message;
  return t(fallbackKey, params);
}

/** The message for a server error's reason, in the member's language; null when it has none we know. */
export function reasonText(err) {
  const key = errorKey(err, { reasonOnly: true });
  return key ? t(key, errorParams(err)) : null;
}

// ---- dates, times and numbers -------------------------------------------------------------------

/** A date and time in the member's locale and time zone. */
export function formatDateTime(date, options = { dateStyle: 'medium', timeStyle: 'short' }) {
  return new Intl.DateTimeFormat(state.locale, options).format(date);
}

export function formatNumber(value, options = {}) {
  return new Intl.NumberFormat(state.locale, options).format(value);
}

const UNITS = [['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400],
  ['hour', 3600], ['minute', 60], ['second', 1]];

/** "3 days ago", "in 2 hours" in the member's language. */
export function formatRelative(date, now = Date.now()) {
  const seconds = (date.getTime() - now) / 1000;
  const [unit, size] = UNITS.find(([, s]) => Math.abs(seconds) >= s) || UNITS[UNITS.length - 1];
  return new Intl.RelativeTimeFormat(state.locale, { numeric: 'auto' }).format(Math.round(seconds / size), unit);
}

// ---- the page -----------------------------------------------------------------------------------

function translateElement(node) {
  const key = node.getAttribute('data-i18n');
  if (!key || !has(key)) return; // (no catalogue could be loaded: the page's own English stays)
  const text = t(key);
  const slots = new Map();
  for (const child of node.querySelectorAll(':scope > [data-i18n-slot]')) {
    slots.set(child.getAttribute('data-i18n-slot'), child);
  }
  if (!slots.size) {
    node.textContent = text;
    return;
  }
  const parts = [];
  let pos = 0;
  for (const match of text.matchAll(/\{([A-Za-z0-9_]+)\}/g)) {
    const slot = slots.get(match[1]);
    if (!slot) continue;
    parts.push(text.slice(pos, match.index), slot);
    pos = match.index + match[0].length;
  }
  parts.push(text.slice(pos));
  node.replaceChildren(...parts);
}

/** Translate the [data-i18n] texts and [data-i18n-attr] attributes under `root`. */
export function translatePage(root = document) {
  for (const node of root.querySelectorAll('[data-i18n]')) translateElement(node);
  for (const node of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of node.getAttribute('data-i18n-attr').trim().split(/\s+/)) {
      const [attr, key] = pair.split(':');
      if (attr && key && has(key)) node.setAttribute(attr, t(key));
    }
  }
  for (const select of root.querySelectorAll('select[data-i18n-picker]')) fillPicker(select);
}

function fillPicker(select) {
  if (!select.options.length) {
    select.replaceChildren(...LOCALES.map((code) => {
      const option = document.createElement('option');
      option.value = code;
      option.lang = code;
      option.textContent = LOCALE_NAMES[code];
      return option;
    }));
    select.addEventListener('change', () => setLocale(select.value));
  }
  select.value = state.locale;
}

// ---- start --------------------------------------------------------------------------------------

state.debug = isDebug();
state.english = await loadCatalogue(DEFAULT_LOCALE);
await setLocale(preferredLocale(), { remember: false });
state.started = true;
