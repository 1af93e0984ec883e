/**
 * Element builders that never parse markup: strings become text nodes and attributes are set one
 * by one, so a step name or a log line from the API is always shown as text.
 */

const SVG_NS = 'http://www.w3.org/2000/svg';

function fill(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Number.POSITIVE_INFINITY)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(
      typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child,
    );
  }
  return el;
}

/** An HTML element with attributes (`onclick` etc. become listeners) and children. */
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replaces every child of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return fill(el, {}, children);
}

/** Sets `el`'s text when it changed (cheap to call on every update). */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** `12.3 s`, `4 min 05 s`, `1 h 02 min`. */
export function formatDuration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const sec = ms / 1000;
  if (sec < 60) return `${sec.toFixed(1)} s`;
  const min = Math.floor(sec / 60);
  if (min < 60) return `${min} min ${String(Math.floor(sec % 60)).padStart(2, '0')} s`;
  return `${Math.floor(min / 60)} h ${String(min % 60).padStart(2, '0')} min`;
}

/** The duration between two ISO times; `end` missing = until now. */
export function durationOf(start, end) {
  if (!start) return '';
  return formatDuration((end ? Date.parse(end) : Date.now()) - Date.parse(start));
}

/** A local date and time for an ISO time. */
export function formatTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString();
}
