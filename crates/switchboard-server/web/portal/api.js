// What every portal page shares: calls to the HTTP API (every refusal becomes an error carrying
// the server's `code` and `message`), small formatting helpers and a notice area.

export { element } from '/widget/common.js';
import { element } from '/widget/common.js';

/// An API error as the server says it: `{code, message}`, with the HTTP status.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/// Calls the API with a JSON body (or raw bytes with their content type); resolves with the
/// decoded answer (null for 204), rejects with an ApiError.
export async function api(method, path, body, contentType) {
  const raw = contentType !== undefined;
  const headers = body === undefined ? {} : { 'content-type': raw ? contentType : 'application/json' };
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : raw ? body : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, 'network', `The server could not be reached (${error.message}).`);
  }
  const text = await response.text();
  let value = null;
  try {
    value = text ? JSON.parse(text) : null;
  } catch {
    value = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, value?.code || 'http_' + response.status, value?.message || response.statusText || 'The request failed.');
  }
  return value;
}

/// A duration in milliseconds as `1:05` or `1:02:05`.
export function duration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/// The channels, as people call them.
export const CHANNELS = [['web', 'Web chat'], ['voice', 'Voice'], ['mobile', 'Mobile'], ['sms', 'SMS']];

export function channelName(key) {
  return CHANNELS.find(([k]) => k === key)?.[1] ?? key;
}

/// A timestamp as the user's local date and time.
export function when(text) {
  if (!text) return '';
  const date = new Date(text);
  return date.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/// A word from the API (`do_not_disturb`) as people read it ("do not disturb").
export function words(text) {
  if (text === null || text === undefined) return '';
  return String(text).startsWith('custom:') ? String(text).slice(7) : String(text).replaceAll('_', ' ');
}

/// A notice line for an error or a success; `notice(area, error)` shows an ApiError with its code.
export function notice(area, what, kind = 'error') {
  if (!area) return;
  if (!what) {
    area.replaceChildren();
    return;
  }
  const text = what instanceof ApiError ? what.message : String(what.message ?? what);
  const code = what instanceof ApiError ? element('code', {}, what.code) : null;
  area.replaceChildren(element('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-testid': `notice-${kind}` }, text, code ? ' ' : null, code));
}

/// Asks before something that cannot be undone; resolves true when the user confirms.
export function confirmAction(title, detail, action = 'Confirm') {
  return new Promise((done) => {
    const dialog = element('dialog', { class: 'confirm', 'data-testid': 'confirm' });
    const finish = (answer) => {
      dialog.close();
      dialog.remove();
      done(answer);
    };
    dialog.append(
      element('h3', {}, title),
      element('p', {}, detail),
      element('div', { class: 'buttons' },
        element('button', { type: 'button', class: 'secondary', onclick: () => finish(false) }, 'Cancel'),
        element('button', { type: 'button', class: 'danger', 'data-testid': 'confirm-yes', onclick: () => finish(true) }, action)),
    );
    dialog.addEventListener('cancel', () => finish(false));
    document.body.append(dialog);
    dialog.showModal();
  });
}
