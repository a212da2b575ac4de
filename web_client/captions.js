// Live captions (docs/PROTOCOL.md "Captions"): the panel under the videos, the caption-language
// picker and the captions toggle. Partial captions of an utterance are replaced by higher `seq`
// until its final one; the first `stable` characters are settled, the rest is tentative.

const MAX_UTTERANCES = 4;

const panel = document.querySelector('[data-testid="captions"]');
const lines = panel.querySelector('.caption-lines');
const statusLine = panel.querySelector('[data-testid="captions-status"]');
const picker = document.querySelector('[data-testid="caption-language"]');
const toggle = document.querySelector('[data-testid="captions-toggle"]');

const utterances = new Map(); // utterance id -> {seq, node}
let languageNames = new Map();
let onPick = () => {};
let shown = true;

/**
 * @param {object} opts
 * @param {Map<string,string>} opts.languageNames  code -> human label
 * @param {(lang: string) => void} opts.onLanguage  the user picked a caption language
 */
export function initCaptions(opts) {
  languageNames = opts.languageNames;
  onPick = opts.onLanguage;
  picker.addEventListener('change', () => onPick(picker.value));
  toggle.addEventListener('click', () => {
    shown = !shown;
    render();
  });
  setStatus(null, null);
}

/** `status` is the CaptionStatus of `joined` (may be missing on an older server). */
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
  toggle.setAttribute('aria-pressed', String(available && shown));
  toggle.textContent = available && shown ? 'Hide captions' : 'Show captions';
  lines.hidden = !(available && shown);
  panel.hidden = available ? false : statusLine.hidden;
}

/** Show one caption event. */
export function showCaption(c) {
  if (!c || c.utterance == null || typeof c.text !== 'string') return;
  if (panel.dataset.available !== 'true') {
    // `joined` said "not (yet) available" (e.g. the model was still loading); captions flowing
    // prove otherwise, and the protocol has no status update event.
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
    const settled = document.createElement('span');
    settled.className = 'caption-stable';
    const tentative = document.createElement('span');
    tentative.className = 'caption-tentative';
    node.append(name, settled, tentative);
    lines.append(node);
    entry = { seq: -1, node };
    utterances.set(key, entry);
    prune();
  }
  entry.seq = typeof c.seq === 'number' ? c.seq : entry.seq + 1;
  const { node } = entry;
  node.dataset.speaker = c.speaker || '';
  node.dataset.final = String(!!c.final);
  node.dataset.lang = c.lang || '';
  node.lang = c.lang || '';
  node.classList.toggle('final', !!c.final);
  const stable = c.final ? c.text.length : Math.max(0, Math.min(c.text.length, c.stable | 0));
  node.querySelector('.caption-name').textContent = c.name || '';
  node.querySelector('.caption-stable').textContent = c.text.slice(0, stable);
  node.querySelector('.caption-tentative').textContent = c.text.slice(stable);
  node.title = c.original && c.original !== c.text ? `Original (${c.source_lang}): ${c.original}` : '';
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
}
