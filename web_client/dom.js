// Small DOM helpers shared by the archive, recording and live viewer pages.

/** An element with a class, a data-testid, text and attributes (never innerHTML). */
export function make(tag, { cls, testid, text, attrs } = {}) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (testid) node.setAttribute('data-testid', testid);
  if (text !== undefined) node.textContent = text;
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}

/** A language's own name for itself ("Español", "English"), as in the join form. */
export function languageName(code) {
  try {
    const name = new Intl.DisplayNames([code], { type: 'language' }).of(code) || code;
    return name.charAt(0).toLocaleUpperCase(code) + name.slice(1);
  } catch {
    return code;
  }
}
