// Audio-only ("data saver") mode, docs/PROTOCOL.md "Audio only": whether this browser wants it.
// The choice is remembered per browser (localStorage); a link's `?audioOnly=1` (or `=0`) wins.

const KEY = 'unionhub.audioOnly';

let memory = false; // when localStorage is unavailable (private mode, blocked storage)

/** The remembered choice (false when never chosen). */
export function rememberedAudioOnly() {
  try {
    return localStorage.getItem(KEY) === '1';
  } catch {
    return memory;
  }
}

/** Remember the choice for the next calls in this browser. */
export function rememberAudioOnly(on) {
  memory = !!on;
  try {
    if (on) localStorage.setItem(KEY, '1');
    else localStorage.removeItem(KEY);
  } catch { /* kept in memory only */ }
}

/** `?audioOnly=1|true|on` → true, `=0|false|off` → false, absent or anything else → null. */
export function audioOnlyFromUrl(params) {
  const value = (params.get('audioOnly') || '').toLowerCase();
  if (['1', 'true', 'on', 'yes'].includes(value)) return true;
  if (['0', 'false', 'off', 'no'].includes(value)) return false;
  return null;
}

/** What this page starts with: the link's parameter, else the remembered choice. */
export function initialAudioOnly(params) {
  const fromUrl = audioOnlyFromUrl(params);
  return fromUrl === null ? rememberedAudioOnly() : fromUrl;
}

/**
 * The user switched it during the call: remember it, and make the page's own URL say it, so that a
 * reload (or the "Rejoin" link) comes back the same way. Returns the new URL.
 */
export function applyToPageUrl(on) {
  rememberAudioOnly(on);
  const url = new URL(location.href);
  if (on) url.searchParams.set('audioOnly', '1');
  else url.searchParams.delete('audioOnly');
  try {
    history.replaceState(history.state, '', url);
  } catch { /* e.g. a sandboxed frame: the remembered choice still applies */ }
  return url.href;
}
