/**
 * The run viewer's entry: the theme (the system's, or the one chosen with the toggle, kept in
 * local storage), the token's role (`GET /v1/whoami`), and a router over the address's hash:
 * `#/?workflow=&status=` lists runs, `#/runs/<id>?step=&attempt=&host=` shows one.
 */
import { forgetToken, json, token } from './api.js';
import { setText } from './dom.js';
import { RunView } from './run-view.js';
import { RunsList } from './runs-list.js';

const THEME_KEY = 'conveyor.theme';
const root = document.getElementById('view');
let view;
let role;

function effectiveTheme() {
  return (
    document.documentElement.dataset.theme ??
    (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light')
  );
}

function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  const button = document.getElementById('theme');
  const next = effectiveTheme() === 'dark' ? 'light' : 'dark';
  setText(button, next === 'dark' ? '☾ Dark' : '☀ Light');
  button.setAttribute('aria-label', `Switch to the ${next} theme`);
}

document.getElementById('theme').addEventListener('click', () => {
  const next = effectiveTheme() === 'dark' ? 'light' : 'dark';
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
});
applyTheme(localStorage.getItem(THEME_KEY) ?? undefined);
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => applyTheme());

document.getElementById('forget').addEventListener('click', () => {
  forgetToken();
  location.reload();
});

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function parse() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  return { path, params: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)) };
}

function route() {
  const { path, params } = parse();
  const match = /^\/runs\/([^/]+)$/.exec(path);
  const runId = match ? decodeURIComponent(match[1]) : undefined;
  if (runId && view instanceof RunView && view.runId === runId) {
    view.route(params);
    return;
  }
  view?.destroy();
  if (runId) {
    view = new RunView(root, runId, { role, navigate });
    view.start(params);
  } else {
    view = new RunsList(root, params, { navigate });
    view.start();
  }
}

async function whoami() {
  try {
    const me = await json('v1/whoami');
    role = me.role;
    setText(document.getElementById('who'), me.authentication ? `role: ${me.role}` : 'no authentication');
    document.getElementById('forget').hidden = !token();
  } catch {
    role = undefined; // an API without the route: actions stay offered, a 403 says why
  }
}

window.addEventListener('hashchange', route);
await whoami();
route();
