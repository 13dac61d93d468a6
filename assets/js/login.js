// The sign-in page (/login): one button to the identity provider (in DEV_MODE, the development
// sign-in form). Its links carry ?next= as the server judged it (portal_core/web/next_path.py, filled in
// when the page is served): this script never reads ?next= itself, so no second rule can disagree.

import { api } from './api.js';
import { byId, notify } from './dom.js';
import { isDevMode, renderChrome, showSiteBanner } from './layout.js';

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
  const button = byId('sign-in');

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
