// The sign-in page (/login): one button to the identity provider (in DEV_MODE, the development
// sign-in form), keeping ?next= so the person lands where they were going.

import { api } from './api.js';
import { byId, notify } from './dom.js';
import { isDevMode, renderChrome, showSiteBanner } from './layout.js';

/** ?next= if it is a path on this site; anything else (another host, "//evil") becomes "/". */
export function safeNext(raw) {
  if (typeof raw !== 'string' || !raw.startsWith('/') || raw.startsWith('//') || raw.startsWith('/\\')) return '/';
  return raw;
}

// Set by POST /auth/logout (portal_core/web/auth.py), whichever page the provider's logout returns to.
const SIGNED_OUT_COOKIE = 'portal_signed_out';

/** "You have signed out", once: the cookie is deleted as soon as the notice shows. */
function announceSignOut() {
  const cookies = document.cookie.split(';').map((part) => part.trim());
  if (!cookies.includes(`${SIGNED_OUT_COOKIE}=1`)) return;
  document.cookie = `${SIGNED_OUT_COOKIE}=; Max-Age=0; path=/; SameSite=Lax`;
  const notice = notify('You have signed out.', { kind: 'success', key: 'signed-out' });
  notice.dataset.testid = 'signed-out';
}

async function main() {
  renderChrome({ signedIn: false });
  announceSignOut();
  const params = new URLSearchParams(window.location.search);
  const next = safeNext(params.get('next'));
  const button = byId('sign-in');
  button.href = `/auth/login?next=${encodeURIComponent(next)}`;
  byId('continue-link').href = next;

  if (isDevMode()) {
    button.textContent = 'Continue to the development sign-in form';
    byId('sign-in-note').textContent = 'Development mode: you choose any email and name; no password, nothing leaves this machine.';
  } else {
    button.textContent = 'Sign in with your account';
    byId('sign-in-note').textContent = 'You will be sent to our identity provider and brought back here.';
  }

  api('/api/meta').then((meta) => showSiteBanner(meta.site), () => {});
  try {
    const me = await api('/api/me');
    byId('signed-in-email').textContent = me.user.email;
    byId('signed-in-already').hidden = false;
  } catch (_) {
    // Not signed in: the normal case on this page.
  }
}

main();
