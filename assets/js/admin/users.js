// /admin/users: find users by email or name, plan and status; newest first, a page at a time.

import { api } from '../api.js';
import { byId, h, notify } from '../dom.js';
import { humanDateTime, humanSize, planLabel } from '../format.js';
import { files, startAdminPage, statusBadges } from './common.js';

const PAGE = 50;
let cursor = null;

function userRow(user) {
  return h(
    'tr',
    { dataset: { testid: 'user-row', userId: String(user.id) } },
    h('td', { className: 'cell-name', dataset: { label: 'User' } },
      h('a', { href: `/admin/users/${user.id}`, dataset: { testid: 'user-link' } }, user.email),
      user.name ? h('div', { className: 'hint' }, user.name) : null),
    h('td', { dataset: { label: 'Plan' } }, planLabel(user.plan)),
    h('td', { dataset: { label: 'Storage' } }, `${humanSize(user.usage.bytes)} · ${files(user.usage.files)}`,
      user.limits_override ? h('div', { className: 'hint' }, 'Own limits') : null),
    h('td', { dataset: { label: 'Last sign-in' } }, user.last_sign_in_at ? humanDateTime(user.last_sign_in_at) : 'Never'),
    h('td', { dataset: { label: 'Status' } }, statusBadges(user)),
  );
}

function filters() {
  const query = new URLSearchParams();
  for (const name of ['q', 'plan', 'frozen']) {
    const value = byId(name).value.trim();
    if (value) query.set(name, value);
  }
  return query;
}

async function load({ more = false } = {}) {
  const query = filters();
  query.set('limit', String(PAGE));
  if (more && cursor) query.set('cursor', cursor);
  try {
    const page = await api(`/api/admin/users?${query}`);
    const rows = page.users.map(userRow);
    if (more) byId('users-body').append(...rows);
    else byId('users-body').replaceChildren(...rows);
    cursor = page.next_cursor;
    const any = byId('users-body').children.length > 0;
    byId('users-table').hidden = !any;
    byId('users-empty').hidden = any;
    byId('users-more').hidden = !cursor;
  } catch (error) {
    notify(`Could not load users: ${error.message}`, { key: 'users' });
  }
}

async function fillPlans() {
  try {
    const meta = await api('/api/meta');
    for (const plan of ['free', ...meta.billing_plans]) byId('plan').append(h('option', { value: plan }, planLabel(plan)));
  } catch (_) {
    // Without the plan names the filter offers "Any plan" only; the list still works.
  }
}

async function main() {
  if (!(await startAdminPage())) return;
  const params = new URLSearchParams(window.location.search);
  if (params.get('erased')) notify(`Erased ${params.get('erased')}.`, { kind: 'success', key: 'users' });
  byId('q').value = params.get('q') || '';
  await fillPlans();
  for (const name of ['plan', 'frozen']) if (params.get(name)) byId(name).value = params.get(name);
  byId('user-search').addEventListener('submit', (event) => {
    event.preventDefault();
    // The search is in the address, so Back and a shared link show the same list.
    const query = filters();
    window.history.replaceState(null, '', query.toString() ? `?${query}` : window.location.pathname);
    load();
  });
  byId('users-more').addEventListener('click', () => load({ more: true }));
  await load();
}

main();
