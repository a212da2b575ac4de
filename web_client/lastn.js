// Last-N video (docs/PROTOCOL.md "Last-N video"): the server forwards the video of at most N
// others. Tiles it does not forward show the name/avatar placeholder; each remote tile has a pin
// toggle; the tiles this browser shows are reported (debounced) so their video comes first.

import { t } from './i18n.js';
import * as ui from './ui.js';

const MAX_PINNED = 25; // PROTOCOL.md: `pinned` lists at most 25 participants
const MAX_VISIBLE = 100;
const VISIBLE_DEBOUNCE_MS = 400;

let emit = () => false;
let pinned = []; // participant ids, in the order they were pinned
const shown = new Map(); // tile -> whether it is (at least partly) on screen
let sentVisible = null; // the last `visible` sent, as a sorted string
let timer = null;
let observer = null;

/**
 * @param {object} opts
 * @param {(event: string, payload: object) => void} opts.emit  send an event of a joined room
 */
export function initLastN(opts) {
  emit = opts.emit;
  if ('IntersectionObserver' in window) {
    observer = new IntersectionObserver(onIntersect, { threshold: 0 });
  }
  ui.setTileHooks({
    onPin: togglePin,
    onAdded: (tile) => { if (observer) observer.observe(tile); },
    onRemoved: (tile) => {
      if (observer) observer.unobserve(tile);
      if (shown.delete(tile)) scheduleVisible();
    },
  });
}

/**
 * `forwarding {video, congested}` (or `joined.forwarding`): whose video the server sends us now,
 * and whether our connection is why we get less (it keeps our audio clear by pausing video).
 */
export function setForwarding(msg) {
  const video = msg && Array.isArray(msg.video) ? msg.video.filter((id) => typeof id === 'string') : null;
  const congested = !!(msg && msg.congested === true);
  ui.setForwarded(video ? new Set(video) : null, congested);
  if (congested) {
    ui.showNotice(t('call.congested'), 'congestion');
  } else {
    ui.clearNotice('congestion');
  }
}

/** A new `joined`: our preferences are the server's again (it forgot them with the old connection). */
export function onJoined(msg, participants) {
  setForwarding(msg.forwarding);
  pinned = pinned.filter((id) => participants.has(id));
  ui.setPinned(pinned);
  sentVisible = null;
  if (pinned.length) emit('video-prefs', { pinned });
  scheduleVisible();
}

/** A new join is on its way: until it is answered, every tile counts as forwarded. */
export function reset() {
  ui.setForwarded(null);
  ui.clearNotice('congestion');
  sentVisible = null;
  if (timer) { clearTimeout(timer); timer = null; }
}

export function participantGone(id) {
  if (!pinned.includes(id)) return;
  pinned = pinned.filter((p) => p !== id);
  ui.setPinned(pinned);
}

export function isPinned(id) {
  return pinned.includes(id);
}

function togglePin(id) {
  if (pinned.includes(id)) {
    pinned = pinned.filter((p) => p !== id);
  } else {
    if (pinned.length >= MAX_PINNED) pinned = pinned.slice(1); // the oldest pin makes room
    pinned = [...pinned, id];
  }
  ui.setPinned(pinned);
  emit('video-prefs', { pinned });
}

function onIntersect(entries) {
  for (const entry of entries) shown.set(entry.target, entry.isIntersecting);
  scheduleVisible();
}

function scheduleVisible() {
  if (timer) clearTimeout(timer);
  timer = setTimeout(sendVisible, VISIBLE_DEBOUNCE_MS);
}

function sendVisible() {
  timer = null;
  if (!observer) return; // no report: every tile counts as visible
  const ids = new Set();
  for (const [tile, on] of shown) {
    if (on && tile.isConnected && tile.classList.contains('remote')) ids.add(tile.dataset.participant);
  }
  const visible = [...ids].sort().slice(0, MAX_VISIBLE);
  const key = visible.join(',');
  if (key === sentVisible) return;
  sentVisible = key;
  emit('video-prefs', { visible });
}
