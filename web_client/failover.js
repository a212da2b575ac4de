// A cluster behind one front proxy (docs/DEPLOYMENT.md): the page's `node` parameter names the
// server that owns the meeting, and the proxy routes the page and its Socket.IO connection on it.
// When that server stops answering (it was killed), any other server can say where the meeting
// lives now: ask until the answer names a server that answers, then go there.

const WATCH_MS = 1000;

let timer = null;

/** The server this page belongs to (null: a hub of one server, or one origin per server). */
export function nodeParam() {
  return new URLSearchParams(window.location.search).get('node');
}

/** The query Socket.IO's handshake carries, so the proxy sends it to the page's server. */
export function socketQuery() {
  const node = nodeParam();
  return node ? { node } : {};
}

/** This page's URL without `node`: any server answers it and sends the page to the owner. */
export function withoutNode() {
  const url = new URL(window.location.href);
  url.searchParams.delete('node');
  return url.toString();
}

/** `target` (a URL the server gave) with this page's own query kept under its parameters. */
export function follow(target) {
  const params = new URLSearchParams(window.location.search);
  for (const [key, value] of target.searchParams) params.set(key, value);
  target.search = params.toString();
  return target.toString();
}

function check(socket) {
  if (socket.connected) {
    found();
    return;
  }
  fetch(withoutNode(), { cache: 'no-store', credentials: 'same-origin' }).then((res) => {
    if (!res.ok || socket.connected || timer === null) return;
    const owner = new URL(res.url).searchParams.get('node');
    if (owner && owner !== nodeParam()) window.location.assign(res.url);
  }).catch(() => { /* no server answers yet: ask again */ });
}

/** The connection dropped: behind a front proxy, start asking where the meeting is. */
export function lost(socket) {
  if (!nodeParam() || timer !== null) return;
  timer = setInterval(() => check(socket), WATCH_MS);
  check(socket);
}

/** Connected again (the server came back, or this is the new one): stop asking. */
export function found() {
  if (timer !== null) clearInterval(timer);
  timer = null;
}
