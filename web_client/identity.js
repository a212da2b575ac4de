// Who this browser is: a stable random client id (the server uses it for bans) and the claims of a
// signed join link (`/?room=R&token=JWT`, docs/PROTOCOL.md "Roles, access and host controls").

const CLIENT_KEY = 'unionhub.client';
const CLIENT_RE = /^[A-Za-z0-9_-]{8,64}$/;
const ROLES = new Set(['host', 'speaker', 'viewer']);

let memoryClient = null; // when localStorage is unavailable (private mode, blocked storage)

function randomId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The random id this browser keeps in localStorage (one per browser profile, not per tab). */
export function clientId() {
  try {
    const stored = localStorage.getItem(CLIENT_KEY);
    if (stored && CLIENT_RE.test(stored)) return stored;
    const id = randomId();
    localStorage.setItem(CLIENT_KEY, id);
    return id;
  } catch {
    if (!memoryClient) memoryClient = randomId();
    return memoryClient;
  }
}

function base64UrlDecode(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/**
 * The claims of a join link's JWT, read without verifying it (only the server can): used to show
 * the name and to know a viewer will not publish. Returns null for something that is not a JWT.
 * @returns {{room?: string, role?: string, name?: string, lang?: string, exp?: number}|null}
 */
export function tokenClaims(token) {
  if (typeof token !== 'string' || token.length > 8192) return null;
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const claims = JSON.parse(base64UrlDecode(parts[1]));
    if (!claims || typeof claims !== 'object' || Array.isArray(claims)) return null;
    const out = {};
    if (typeof claims.room === 'string') out.room = claims.room;
    if (typeof claims.role === 'string' && ROLES.has(claims.role)) out.role = claims.role;
    if (typeof claims.name === 'string') out.name = claims.name;
    if (typeof claims.lang === 'string') out.lang = claims.lang.toLowerCase();
    if (typeof claims.exp === 'number') out.exp = claims.exp;
    return out;
  } catch {
    return null;
  }
}

/** The token of the page URL (`?token=`), or null. */
export function tokenFromUrl(params) {
  const token = (params.get('token') || '').trim();
  return token || null;
}
