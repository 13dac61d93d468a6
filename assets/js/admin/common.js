// What every admin page shares: the signed-in start (layout.js), the console's own nav, and small helpers.
// The server serves these pages to admins only; everyone else gets the 404 page.

import { h } from '../dom.js';
import { humanSize } from '../format.js';
import { startSignedInPage } from '../layout.js';

const SECTIONS = [
  { href: '/admin', label: 'Overview' },
  { href: '/admin/users', label: 'Users' },
  { href: '/admin/events', label: 'Audit trail' },
  { href: '/admin/settings', label: 'Site settings' },
];

function adminNav() {
  const here = window.location.pathname;
  const current = (href) => here === href || (href === '/admin/users' && here.startsWith('/admin/users/'));
  return h(
    'nav',
    { className: 'subnav', 'aria-label': 'Admin', dataset: { testid: 'admin-nav' } },
    h('ul', {}, SECTIONS.map(({ href, label }) => h('li', {}, h('a', { href, 'aria-current': current(href) ? 'page' : null }, label)))),
  );
}

/** Start an admin page: the usual header and /api/me, then the console's nav. Resolves to /api/me (or null). */
export async function startAdminPage() {
  const me = await startSignedInPage();
  if (!me) return null;
  document.getElementById('notices').before(adminNav());
  return me;
}

/** "1 file", "3 files". */
export function files(count) {
  return `${Number(count).toLocaleString()} ${count === 1 ? 'file' : 'files'}`;
}

/** {max_file, quota} as "5 GiB per file, 100 GiB in all". */
export function limitsText(limits) {
  if (!limits) return '';
  return `${humanSize(limits.max_file)} per file, ${humanSize(limits.quota)} in all`;
}

/** The user's status as badges: Frozen, Admin (or "Active"). */
export function statusBadges(user) {
  const badges = [];
  if (user.frozen) badges.push(h('span', { className: 'badge badge-frozen', dataset: { testid: 'badge-frozen' } }, 'Frozen'));
  if (user.is_admin) badges.push(h('span', { className: 'badge badge-admin' }, 'Admin'));
  if (!badges.length) badges.push(h('span', { className: 'badge' }, 'Active'));
  return h('span', { className: 'badges' }, badges);
}
