// Live captions (docs/PROTOCOL.md "Captions"): the panel under the videos, the latest caption of
// each speaker under their video tile, the caption-language picker, the captions toggle and the
// "show original" toggle. Partial captions of an utterance are replaced by higher `seq` until its
// final one; the first `stable` characters are settled, the rest is tentative.

import { setTileCaption, setTileCaptionsShown } from './ui.js';

const MAX_UTTERANCES = 4;
const TILE_CAPTION_MS = 6000; // how long a final caption stays under the speaker's tile
const MAX_SEEN = 64; // utterance ids remembered per speaker (to ignore late updates of old ones)

const panel = document.querySelector('[data-testid="captions"]');
const lines = panel.querySelector('.caption-lines');
const statusLine = panel.querySelector('[data-testid="captions-status"]');
const picker = document.querySelector('[data-testid="caption-language"]');
const toggle = document.querySelector('[data-testid="captions-toggle"]');
const originalToggle = document.querySelector('[data-testid="show-original"]');

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
  picker.addEventListener('change', () => onPick(picker.value));
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
  statusLine.textContent = available ? '' : (status && status.message) || 'Captions are not available.';
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

function render() {
  const available = panel.dataset.available === 'true';
  const on = available && shown;
  toggle.setAttribute('aria-pressed', String(on));
  toggle.textContent = on ? 'Hide captions' : 'Show captions';
  lines.hidden = !on;
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
  node.classList.toggle('final', !!c.final);
  const stable = c.final ? c.text.length : Math.max(0, Math.min(c.text.length, c.stable | 0));
  node.querySelector('.caption-name').textContent = c.name || '';
  node.querySelector('.caption-stable').textContent = c.text.slice(0, stable);
  node.querySelector('.caption-tentative').textContent = c.text.slice(stable);
  setOriginal(node, c);
  updateTile(c);
}

/** The speaker's own words under a translated caption (shown when "show original" is on). */
function setOriginal(node, c) {
  const translated = typeof c.original === 'string' && c.original !== '' && c.original !== c.text;
  let orig = node.querySelector('.caption-original');
  node.title = translated ? `Original (${c.source_lang}): ${c.original}` : '';
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
  for (const { node } of utterances.values()) node.remove();
  utterances.clear();
  for (const [speaker, s] of speakers) {
    clearTimeout(s.timer);
    setTileCaption(speaker, null);
  }
  speakers.clear();
}
