// What every page shares: the development-mode banner, the admins' site banner, the header (nav +
// sign-out), the notice area, and loading the signed-in user (or sending the browser to the sign-in page).

import { api, ApiError, redirectToLogin, setCsrfToken } from './api.js';
import { h, notify } from './dom.js';

// The core's nav; portal_core/web/html.py draws the same for server-rendered pages (a browser test
// compares the two headers).
const NAV = [
  { href: '/', label: 'Artifacts', id: 'nav-artifacts' },
  { href: '/sharing', label: 'Sharing', id: 'nav-sharing' },
  { href: '/account', label: 'Account', id: 'nav-account' },
  { href: '/billing', label: 'Billing', id: 'nav-billing' },
];
// Shown to admins only, after the core's nav (html.py's ADMIN_NAV).
const ADMIN_NAV = { href: '/admin', label: 'Admin', id: 'nav-admin' };

/** True when the portal was started with DEV_MODE (the core writes it on <html data-dev-mode>). */
export function isDevMode() {
  return document.documentElement.dataset.devMode === 'true';
}

function devBanner() {
  return h(
    'div',
    { id: 'dev-banner', className: 'dev-banner', role: 'note', dataset: { testid: 'dev-banner' } },
    h('strong', {}, 'Development mode'),
    ' — no real sign-in, storage or payments.',
  );
}

function signOutForm() {
  const form = h(
    'form',
    { method: 'post', action: '/auth/logout', className: 'sign-out' },
    h('input', { type: 'hidden', name: 'csrf_token', id: 'sign-out-csrf' }),
    h('button', { type: 'submit', id: 'sign-out', className: 'button button-quiet', dataset: { testid: 'sign-out' } }, 'Sign out'),
  );
  return form;
}

function header(signedIn) {
  const here = window.location.pathname;
  const brand = h('a', { href: '/', className: 'brand' }, h('img', { src: new URL('../img/logo.svg', import.meta.url).pathname, alt: '', width: 28, height: 28 }), 'Portal');
  const bar = h('div', { className: 'header-inner' }, brand);
  if (signedIn) {
    const links = NAV.map(({ href, label, id }) =>
      h('li', {}, h('a', { href, id, 'aria-current': href === here ? 'page' : null }, label)));
    bar.append(
      h('button', { type: 'button', id: 'menu-toggle', className: 'button menu-toggle', 'aria-expanded': 'false', 'aria-controls': 'site-menu' }, 'Menu'),
      h(
        'div',
        { id: 'site-menu', className: 'site-menu' },
        h('nav', { 'aria-label': 'Main' }, h('ul', {}, links)),
        h('div', { className: 'header-user' }, h('span', { id: 'user-email', className: 'user-email' }), signOutForm()),
      ),
    );
  }
  return h('header', { className: 'site-header', id: 'site-header' }, bar);
}

/**
 * Show the admins' banner (the "banner" site switch, from /api/me or /api/meta's `site`) above the
 * header, as the server-rendered pages do; an empty text removes it.
 */
export function showSiteBanner(site) {
  const text = site && typeof site.banner === 'string' ? site.banner.trim() : '';
  const old = document.getElementById('site-banner');
  if (!text) {
    if (old) old.remove();
    return;
  }
  const banner = old || h('div', { id: 'site-banner', className: 'site-banner', role: 'status', dataset: { testid: 'site-banner' } });
  banner.textContent = text;
  if (!old) document.getElementById('site-header').before(banner);
}

/** A nav link may only point at a path on this site ("/x"), never elsewhere ("//evil", "https:…"). */
export function sameOriginPath(href) {
  return typeof href === 'string' && href.startsWith('/') && !href.startsWith('//') && !href.includes('\\')
    && !/[\u0000-\u001f]/.test(href);
}

/**
 * Add Admin (for admins) and the plugins' nav items (GET /api/me's "nav") after the core's, as the
 * server-rendered pages do.
 */
function addNavItems(items, isAdmin) {
  const list = document.querySelector('#site-menu nav ul');
  if (!list || !Array.isArray(items)) return;
  const here = window.location.pathname;
  const seen = new Set(NAV.map(({ href }) => href));
  if (isAdmin) {
    seen.add(ADMIN_NAV.href);
    list.append(h('li', {}, h('a', { href: ADMIN_NAV.href, id: ADMIN_NAV.id, 'aria-current': ADMIN_NAV.href === here ? 'page' : null }, ADMIN_NAV.label)));
  }
  for (const item of items) {
    if (!item || !sameOriginPath(item.href) || typeof item.label !== 'string' || !item.label.trim() || seen.has(item.href)) continue;
    seen.add(item.href);
    list.append(h('li', {}, h('a', { href: item.href, 'aria-current': item.href === here ? 'page' : null }, item.label)));
  }
}

/**
 * The phone-width menu: #menu-toggle shows and hides #site-menu (on wider screens the button is hidden
 * and the menu always shows). Escape closes it and gives focus back to the button.
 */
export function wireMenu() {
  const toggle = document.getElementById('menu-toggle');
  const menu = document.getElementById('site-menu');
  if (!toggle || !menu) return;
  const set = (open) => {
    toggle.setAttribute('aria-expanded', String(open));
    menu.classList.toggle('site-menu-open', open);
  };
  toggle.addEventListener('click', () => set(toggle.getAttribute('aria-expanded') !== 'true'));
  menu.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && toggle.getAttribute('aria-expanded') === 'true') {
      set(false);
      toggle.focus();
    }
  });
}

/** Put the banner, header and notice area in place. `signedIn` adds the nav and the sign-out button. */
export function renderChrome({ signedIn }) {
  const main = document.getElementById('main');
  const notices = h('div', { id: 'notices', className: 'notices' });
  main.prepend(notices);
  const top = [];
  if (isDevMode()) top.push(devBanner());
  top.push(header(signedIn));
  document.body.prepend(h('a', { className: 'skip-link', href: '#main' }, 'Skip to content'), ...top);
  wireMenu();
}

/**
 * Start a page that needs a signed-in user: draws the chrome, loads /api/me and returns it, or sends
 * the browser to /login (401) and returns null. Other failures are shown and also return null.
 */
export async function startSignedInPage() {
  renderChrome({ signedIn: true });
  let me;
  try {
    me = await api('/api/me');
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && error.code !== 'suspended') {
      redirectToLogin();
      return null;
    }
    notify(error.message, { key: 'me' });
    return null;
  }
  setCsrfToken(me.csrf_token);
  document.getElementById('sign-out-csrf').setAttribute('value', me.csrf_token);
  document.getElementById('user-email').textContent = me.user.email;
  addNavItems(me.nav, me.user.is_admin);
  showSiteBanner(me.site);
  document.getElementById('main').removeAttribute('aria-busy');
  for (const section of document.querySelectorAll('[data-needs-user]')) section.hidden = false;
  return me;
}
