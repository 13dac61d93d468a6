// The JSON API client: one fetch wrapper that sends the CSRF token on state-changing requests and turns
// every failure into an ApiError carrying a sentence a person can read.

import { parseForDisplay } from './format.js';

let csrfToken = '';

/** Remember the CSRF token from /api/me; every POST/DELETE sends it as X-CSRF-Token. */
export function setCsrfToken(token) {
  csrfToken = token || '';
}

export function getCsrfToken() {
  return csrfToken;
}

/** A failed API call: `status` (0 when the server could not be reached), `code` and a readable `message`. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

// Used only when the server's answer carries no message of its own (a proxy's HTML error page, say).
const FALLBACK_MESSAGES = {
  0: 'Could not reach the portal. Check your connection and try again.',
  400: 'The portal could not accept that request.',
  401: 'Your session has ended. Sign in again.',
  403: 'That was refused. Reload the page and try again.',
  404: 'That item no longer exists.',
  413: 'That file is larger than your plan allows.',
  429: 'Too many requests. Wait a moment and try again.',
  503: 'The service is unavailable right now. Try again in a few minutes.',
};

function fallbackMessage(status) {
  if (status in FALLBACK_MESSAGES) return FALLBACK_MESSAGES[status];
  if (status >= 500) return `The portal had a problem (HTTP ${status}). Try again in a few minutes.`;
  return `The request failed (HTTP ${status}).`;
}

/**
 * Build an ApiError from a status and the response body text ({"error": {"code", "message"}} when the
 * portal produced it; anything else falls back to a generic sentence for the status).
 */
export function errorFromBody(status, bodyText) {
  let code = status === 0 ? 'network' : `http_${status}`;
  let message = '';
  try {
    const parsed = parseForDisplay(bodyText);
    if (parsed && typeof parsed.error === 'object' && parsed.error !== null) {
      if (typeof parsed.error.code === 'string') code = parsed.error.code;
      if (typeof parsed.error.message === 'string') message = parsed.error.message;
    }
  } catch (_) {
    // Not JSON: keep the fallback.
  }
  return new ApiError(status, code, message ? asSentence(message) : fallbackMessage(status));
}

// The portal words its messages as clauses ("the file is larger than…"); show them as sentences.
function asSentence(text) {
  const trimmed = text.trim();
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

/**
 * Call the JSON API. `body` (an object) is sent as JSON. Resolves to the parsed JSON (null for 204);
 * rejects with ApiError.
 */
export async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrfToken;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch (_) {
    throw errorFromBody(0, '');
  }
  const text = await response.text();
  if (!response.ok) throw errorFromBody(response.status, text);
  if (response.status === 204 || text === '') return null;
  // Everything the API returns is shown somewhere: names arrive without bidi controls (format.js).
  return parseForDisplay(text);
}

/** Send the browser to the sign-in page, coming back to where it is now. */
export function redirectToLogin() {
  const here = window.location.pathname + window.location.search;
  window.location.assign(`/login?next=${encodeURIComponent(here)}`);
}
