// Live captions (docs/PROTOCOL.md "Captions"): the panel under the videos, the latest caption of
// each speaker under their video tile, the caption-language picker, the captions toggle and the
// "show original" toggle. Partial captions of an utterance are replaced by higher `seq` until its
// final one; the first `stable` characters are settled, the rest is tentative.

import { formatNumber, getLocale, t } from './i18n.js';
import { setTileCaption, setTileCaptionsShown, textDir } from './ui.js';

const MAX_UTTERANCES = 4;
const TILE_CAPTION_MS = 6000; // how long a final caption stays under the speaker's tile
const MAX_SEEN = 64; // utterance ids remembered per speaker (to ignore late updates of old ones)

const panel = document.querySelector('[data-testid="captions"]');
const lines = panel.querySelector('.caption-lines');
const statusLine = panel.querySelector('[data-testid="captions-status"]');
const picker = document.querySelector('[data-testid="caption-language"]');
const toggle = document.querySelector('[data-testid="captions-toggle"]');
const originalToggle = document.querySelector('[data-testid="show-original"]');
const notice = document.createElement('p'); // "No Portuguese translation installed — …"
notice.className = 'captions-notice';
notice.setAttribute('data-testid', 'captions-notice');
notice.setAttribute('role', 'status');
notice.hidden = true;
lines.prepend(notice);
// Screen readers hear final captions only, from this region (partials would flood them).
const announcer = panel.querySelector('[data-testid="caption-announcer"]');
const MAX_ANNOUNCED = 3;
// Caption size: the member's choice on this browser, applied to the panel and the tile captions.
const SIZE_KEY = 'unionhub-caption-size';
const SIZES = [0.8, 0.9, 1, 1.15, 1.3, 1.5, 1.75, 2];
const smaller = panel.querySelector('[data-testid="caption-smaller"]');
const larger = panel.querySelector('[data-testid="caption-larger"]');
const sizeOutput = panel.querySelector('[data-testid="caption-size"]');

const utterances = new Map(); // utterance id -> {seq, node}
const speakers = new Map(); // speaker id -> {utterance, timer, seen: Set} (tile captions)
let languageNames = new Map();
let onPick = () => {};
let onShowOriginal = () => {};
let shown = true;
let showOriginal = false;

/**
 * @param {object} opts
 * @param {Map<string,string>} opts.languageNames  code -> human label
 * @param {(lang: string) => void} opts.onLanguage  the user picked a caption language
 * @param {(on: boolean) => void} [opts.onShowOriginal]  the "show original" toggle changed
 */
export function initCaptions(opts) {
  languageNames = opts.languageNames;
  onPick = opts.onLanguage;
  onShowOriginal = opts.onShowOriginal || (() => {});
  smaller.addEventListener('click', () => setSize(sizeIndex - 1));
  larger.addEventListener('click', () => setSize(sizeIndex + 1));
  setSize(storedSize(), { remember: false });
  picker.addEventListener('change', () => {
    notice.hidden = true; // the next caption says whether the new language is reachable
    onPick(picker.value);
  });
  toggle.addEventListener('click', () => {
    shown = !shown;
    render();
  });
  originalToggle.addEventListener('click', () => {
    showOriginal = !showOriginal;
    renderOriginals();
    onShowOriginal(showOriginal);
  });
  renderOriginals();
  setStatus(null, null);
}

/** Whether translated text (captions and chat) is shown with the original beside it. */
export function showingOriginal() {
  return showOriginal;
}

/**
 * `status` is the CaptionStatus of `joined` or of a later `captions-status` (null before
 * joining; may be missing on an older server).
 */
export function setStatus(status, currentLang) {
  const available = !!(status && status.available);
  panel.dataset.available = String(available);
  statusLine.dataset.server = (status && status.message) || '';
  statusLine.dataset.state = (status && typeof status.state === 'string') ? status.state : '';
  renderStatusLine(available);
  statusLine.hidden = available || !status;

  const langs = new Set(available && Array.isArray(status.languages) ? status.languages : []);
  if (currentLang) langs.add(currentLang);
  picker.replaceChildren(...[...langs].map((code) => {
    const opt = document.createElement('option');
    opt.value = code;
    opt.textContent = languageNames.get(code) || code;
    return opt;
  }));
  if (currentLang) picker.value = currentLang;
  picker.disabled = !available || langs.size < 2;
  toggle.disabled = !available;
  render();
}

export function setLanguage(lang) {
  if (![...picker.options].some((o) => o.value === lang)) {
    const opt = document.createElement('option');
    opt.value = lang;
    opt.textContent = languageNames.get(lang) || lang;
    picker.append(opt);
  }
  picker.value = lang;
}

/**
 * Why captions are not there, in the member's language. CaptionStatus.message is the server's own
 * English (with details such as how to install a model): shown as it is in an English interface;
 * any other gets the translated gist (a `state` code, when the server sends one, says which).
 */
function renderStatusLine(available) {
  const { server, state } = statusLine.dataset;
  let text = '';
  if (!available) {
    if (state === 'starting') text = t('captions.starting');
    else if (state === 'off') text = t('captions.off');
    else if (server && getLocale() === 'en') text = server;
    else text = t('captions.unavailable');
  }
  statusLine.textContent = text;
}

function render() {
  const available = panel.dataset.available === 'true';
  const on = available && shown;
  toggle.setAttribute('aria-pressed', String(on));
  toggle.textContent = on ? t('captions.hide') : t('captions.show');
  lines.hidden = !on;
  smaller.parentElement.hidden = !available; // (the size buttons: only with captions to size)
  panel.hidden = available ? false : statusLine.hidden;
  setTileCaptionsShown(on);
}

function renderOriginals() {
  originalToggle.setAttribute('aria-pressed', String(showOriginal));
  for (const node of lines.querySelectorAll('.caption-original')) node.hidden = !showOriginal;
}

/** Show one caption event. */
export function showCaption(c) {
  if (!c || c.utterance == null || typeof c.text !== 'string') return;
  if (panel.dataset.available !== 'true') {
    // Captions flowing prove they are available, even if this client missed the status update
    // (`captions-status`), e.g. with a server that does not send it.
    setStatus({ available: true, languages: [...picker.options].map((o) => o.value) }, picker.value || c.lang);
  }
  const key = String(c.utterance);
  let entry = utterances.get(key);
  if (entry && typeof c.seq === 'number' && c.seq < entry.seq) return; // stale partial
  if (!entry) {
    const node = document.createElement('p');
    node.className = 'caption';
    node.setAttribute('data-testid', 'caption');
    node.dataset.utterance = key;
    const name = document.createElement('span');
    name.className = 'caption-name';
    name.dir = 'auto';
    const text = document.createElement('span');
    text.className = 'caption-text';
    text.setAttribute('data-testid', 'caption-text');
    const settled = document.createElement('span');
    settled.className = 'caption-stable';
    const tentative = document.createElement('span');
    tentative.className = 'caption-tentative';
    text.append(settled, tentative);
    node.append(name, text);
    lines.append(node);
    entry = { seq: -1, node };
    utterances.set(key, entry);
    prune();
  }
  entry.seq = typeof c.seq === 'number' ? c.seq : entry.seq + 1;
  const { node } = entry;
  node.dataset.speaker = c.speaker || '';
  node.dataset.speakerName = c.name || '';
  node.dataset.final = String(!!c.final);
  node.dataset.lang = c.lang || '';
  node.lang = c.lang || '';
  node.dir = textDir(c.lang); // an Arabic caption reads right to left, whatever the page's language
  node.classList.toggle('final', !!c.final);
  const stable = c.final ? c.text.length : Math.max(0, Math.min(c.text.length, c.stable | 0));
  node.querySelector('.caption-name').textContent = c.name || '';
  node.querySelector('.caption-stable').textContent = c.text.slice(0, stable);
  node.querySelector('.caption-tentative').textContent = c.text.slice(stable);
  setOriginal(node, c);
  setEngineNote(node, c);
  updateNotice(c);
  updateTile(c);
  if (c.final && !entry.announced) {
    entry.announced = true;
    announce(c);
  }
}

/** A final caption for screen readers (polite, one line per utterance, never its partials). */
function announce(c) {
  if (lines.hidden) return; // captions switched off
  const line = document.createElement('p');
  line.lang = c.lang || '';
  line.dir = textDir(c.lang);
  line.textContent = c.name ? `${c.name}: ${c.text}` : c.text;
  announcer.append(line);
  while (announcer.childElementCount > MAX_ANNOUNCED) announcer.firstElementChild.remove();
}

function storedSize() {
  try {
    const index = SIZES.indexOf(Number(localStorage.getItem(SIZE_KEY)));
    return index >= 0 ? index : SIZES.indexOf(1);
  } catch {
    return SIZES.indexOf(1); // storage disabled
  }
}

let sizeIndex = SIZES.indexOf(1);

function setSize(index, { remember = true } = {}) {
  sizeIndex = Math.max(0, Math.min(SIZES.length - 1, index));
  const scale = SIZES[sizeIndex];
  document.documentElement.style.setProperty('--caption-scale', String(scale));
  sizeOutput.value = formatNumber(scale, { style: 'percent' });
  sizeOutput.dataset.scale = String(scale);
  smaller.disabled = sizeIndex === 0;
  larger.disabled = sizeIndex === SIZES.length - 1;
  if (remember) {
    try {
      localStorage.setItem(SIZE_KEY, String(scale));
    } catch { /* storage disabled: this page only */ }
  }
}

/** A language's name in the member's language ("Portuguese", "portugués", "البرتغالية"). */
function languageName(code) {
  try {
    return new Intl.DisplayNames([getLocale()], { type: 'language' }).of(code) || code;
  } catch {
    return code;
  }
}

function renderNotice() {
  const { wanted, source } = notice.dataset;
  if (wanted) notice.textContent = t('captions.noModel', { wanted: languageName(wanted), source: languageName(source) });
}

/**
 * The server sends the original with `untranslated: {reason, wanted}` when it cannot translate into
 * the reader's language; `no-model` (nothing installed reaches it) deserves a word of why.
 */
function updateNotice(c) {
  const u = c.untranslated;
  if (u && u.reason === 'no-model' && typeof u.wanted === 'string') {
    notice.dataset.wanted = u.wanted;
    notice.dataset.source = c.source_lang || c.lang || '';
    renderNotice();
    notice.hidden = false;
  } else if (!u && c.final && c.lang === picker.value && c.source_lang === notice.dataset.source) {
    notice.hidden = true; // that speaker's captions are translated now (a model was installed)
  }
}

/**
 * A caption the server marks `translated_by: "whisper"` is Whisper's translation of the speech into
 * English (no text translation from the speaker's language is installed): it says so, briefly.
 */
function setEngineNote(node, c) {
  let note = node.querySelector('.caption-engine');
  if (c.translated_by !== 'whisper') {
    if (note) note.remove();
    return;
  }
  if (!note) {
    note = document.createElement('span');
    note.className = 'caption-engine';
    note.setAttribute('data-testid', 'caption-engine');
    node.append(note);
  }
  note.dataset.source = typeof c.source_lang === 'string' ? c.source_lang : '';
  renderEngineNote(note);
}

function renderEngineNote(note) {
  note.textContent = t('captions.byWhisper', { source: languageName(note.dataset.source || 'und') });
}

/** The speaker's own words under a translated caption (shown when "show original" is on). */
function setOriginal(node, c) {
  const translated = typeof c.original === 'string' && c.original !== '' && c.original !== c.text;
  let orig = node.querySelector('.caption-original');
  node.title = translated ? t('chat.originalIn', { lang: c.source_lang, text: c.original }) : '';
  if (!translated) {
    if (orig) orig.remove();
    return;
  }
  if (!orig) {
    orig = document.createElement('span');
    orig.className = 'caption-original';
    orig.setAttribute('data-testid', 'caption-original');
    orig.dir = 'auto';
    const tag = document.createElement('span');
    tag.className = 'caption-original-lang';
    const text = document.createElement('span');
    text.className = 'caption-original-text';
    orig.append(tag, text);
    node.append(orig);
  }
  const lang = typeof c.source_lang === 'string' ? c.source_lang : '';
  orig.dataset.lang = lang;
  orig.lang = lang;
  orig.querySelector('.caption-original-lang').textContent = lang;
  orig.querySelector('.caption-original-text').textContent = c.original;
  orig.hidden = !showOriginal;
}

/** The latest caption of a speaker under their tile: updated by partials, cleared after the final. */
function updateTile(c) {
  if (!c.speaker) return;
  let s = speakers.get(c.speaker);
  if (!s) {
    s = { utterance: null, timer: null, seen: new Set() };
    speakers.set(c.speaker, s);
  }
  const key = String(c.utterance);
  if (key !== s.utterance) {
    // Finals are computed after the next utterance's partials may have started: a late update
    // of an earlier utterance stays in the panel only.
    if (s.seen.has(key)) return;
    s.seen.add(key);
    if (s.seen.size > MAX_SEEN) s.seen.delete(s.seen.values().next().value);
    s.utterance = key;
  }
  clearTimeout(s.timer);
  s.timer = null;
  setTileCaption(c.speaker, { text: c.text, lang: c.lang || '', final: !!c.final });
  if (c.final) {
    s.timer = setTimeout(() => {
      s.timer = null;
      if (s.utterance === key) setTileCaption(c.speaker, null);
    }, TILE_CAPTION_MS);
  }
}

function prune() {
  while (utterances.size > MAX_UTTERANCES) {
    const [oldest, entry] = utterances.entries().next().value;
    entry.node.remove();
    utterances.delete(oldest);
  }
}

export function clearCaptions() {
  announcer.replaceChildren();
  for (const { node } of utterances.values()) node.remove();
  utterances.clear();
  notice.hidden = true;
  for (const [speaker, s] of speakers) {
    clearTimeout(s.timer);
    setTileCaption(speaker, null);
  }
  speakers.clear();
}

document.addEventListener('unionhub:locale', () => { // (the interface language changed)
  render();
  renderNotice();
  for (const note of lines.querySelectorAll('.caption-engine')) renderEngineNote(note);
  setSize(sizeIndex, { remember: false });
  renderStatusLine(panel.dataset.available === 'true');
});
