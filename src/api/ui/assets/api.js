/**
 * Calls to the Conveyor API from the page: each sends the token kept in session storage as
 * `Authorization: Bearer`, and a 401 asks for a token once (one dialog however many calls wait
 * for it) and tries again. Errors carry the API's `{error: {code, message}}`.
 */

const TOKEN_KEY = 'conveyor.token';

/** An answer other than 2xx. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** The kept token, or null. */
export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Forgets the kept token. */
export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

let asking;
function askToken(reason) {
  asking ??= new Promise((resolve) => {
    const dialog = document.getElementById('token-dialog');
    const form = document.getElementById('token-form');
    const input = document.getElementById('token-input');
    document.getElementById('token-reason').textContent = reason;
    input.value = '';
    const submitted = (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (!value) return;
      sessionStorage.setItem(TOKEN_KEY, value);
      form.removeEventListener('submit', submitted);
      dialog.close();
      asking = undefined;
      resolve();
    };
    form.addEventListener('submit', submitted);
    // Escape would leave every waiting call hanging: the dialog stays until a token is given.
    dialog.addEventListener('cancel', (event) => event.preventDefault(), { once: true });
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
  return asking;
}

async function toError(res) {
  let code = 'http_error';
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body?.error?.message) {
      code = String(body.error.code);
      message = String(body.error.message);
    }
  } catch {
    // Not the API's JSON (a proxy's page): the status line is all there is.
  }
  return new ApiError(res.status, code, message);
}

/** Fetches `path` (relative to the API) and returns the 2xx response; throws `ApiError`. */
export async function request(path, init = {}) {
  for (;;) {
    const headers = new Headers(init.headers);
    const kept = token();
    if (kept) headers.set('authorization', `Bearer ${kept}`);
    // The API is the origin the page came from, under the same path prefix (a proxy may add one).
    const res = await fetch(new URL(path, new URL('.', location.href)), { ...init, headers });
    if (res.status === 401) {
      const err = await toError(res);
      await askToken(kept ? `The API refused the token: ${err.message}` : err.message);
      continue;
    }
    if (!res.ok) throw await toError(res);
    return res;
  }
}

/** GET (or `init.method`) `path` and parse its JSON. */
export async function json(path, init) {
  return (await request(path, init)).json();
}

/** `encodeURIComponent` for one path segment. */
export const seg = encodeURIComponent;
