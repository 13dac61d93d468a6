// The account page (/account): the profile (name, email, plan, member since); create API tokens with
// scopes and an expiry (shown once, with a copy button), list and revoke them; the account's recent activity;
// links to the pages plugins add under /account/.

import { browserName, describeEvent } from './activity.js';
import { api } from './api.js';
import { byId, h, notify } from './dom.js';
import { humanDate, humanDateTime, planLabel } from './format.js';
import { startSignedInPage } from './layout.js';
import { confirmAndDelete } from './remove.js';

const SCOPE_WORDS = { 'artifacts:read': 'read', 'artifacts:write': 'upload and delete', admin: 'admin API' };
const ACTIVITY_PAGE = 20;

function scopesText(scopes) {
  return (scopes || []).map((scope) => SCOPE_WORDS[scope] || scope).join(', ') || '—';
}

function expiresText(token) {
  if (!token.expires_at) return 'Never';
  const text = humanDateTime(token.expires_at);
  return new Date(token.expires_at) <= new Date() ? `Expired ${text}` : text;
}

function tokenRow(token, onRevoke) {
  const revoke = h(
    'button',
    { type: 'button', className: 'button button-small button-danger', 'aria-label': `Revoke token ${token.name}`, dataset: { testid: 'token-revoke' } },
    'Revoke',
  );
  revoke.addEventListener('click', () => onRevoke(token, revoke));
  return h(
    'tr',
    { dataset: { testid: 'token-row', tokenId: String(token.id) } },
    h('td', { className: 'cell-name', dataset: { label: 'Name', testid: 'token-name' } }, token.name),
    h('td', { dataset: { label: 'May', testid: 'token-scopes' } }, scopesText(token.scopes)),
    h('td', { dataset: { label: 'Created' } }, humanDateTime(token.created_at)),
    h('td', { dataset: { label: 'Last used', testid: 'token-last-used' } }, token.last_used_at ? humanDateTime(token.last_used_at) : 'Never'),
    h('td', { dataset: { label: 'Expires', testid: 'token-expires' } }, expiresText(token)),
    h('td', { className: 'cell-actions' }, h('div', { className: 'row-actions' }, revoke)),
  );
}

function showTokens(tokens) {
  const body = byId('tokens-body');
  body.replaceChildren(...tokens.map((token) => tokenRow(token, revokeToken)));
  byId('tokens-empty').hidden = tokens.length > 0;
  byId('tokens-table').hidden = tokens.length === 0;
}

async function loadTokens() {
  try {
    const { tokens } = await api('/api/tokens');
    showTokens(tokens);
  } catch (error) {
    notify(`Could not load your tokens: ${error.message}`, { key: 'tokens' });
  }
}

async function revokeToken(token, button) {
  const gone = await confirmAndDelete({
    button,
    path: `/api/tokens/${encodeURIComponent(token.id)}`,
    title: 'Revoke this token?',
    message: `Anything using “${token.name}” will stop working at once.`,
    confirmLabel: 'Revoke token',
    failure: `Could not revoke “${token.name}”`,
    key: 'tokens',
  });
  if (!gone) return;
  notify(`Revoked “${token.name}”.`, { kind: 'success', key: 'tokens' });
  await loadTokens();
  byId('tokens-title').focus();
}

function showNewToken(secret) {
  const section = byId('new-token');
  byId('new-token-value').value = secret;
  byId('new-token-copied').textContent = '';
  section.hidden = false;
  byId('new-token-title').focus();
}

function hideNewToken() {
  // Forget the secret as soon as the person is done with it.
  byId('new-token-value').value = '';
  byId('new-token').hidden = true;
  byId('token-name').focus();
}

async function copyNewToken() {
  const field = byId('new-token-value');
  const status = byId('new-token-copied');
  try {
    await navigator.clipboard.writeText(field.value);
    status.textContent = 'Copied to the clipboard.';
  } catch (_) {
    // No clipboard permission: select it so Ctrl+C / long-press copies it.
    field.select();
    status.textContent = 'Press Ctrl+C (or ⌘C) to copy the selected token.';
  }
}

async function createToken(event) {
  event.preventDefault();
  const input = byId('token-name');
  const name = input.value.trim();
  if (!name) {
    notify('Give the token a name, so you can tell it apart later.', { key: 'tokens' });
    input.focus();
    return;
  }
  const scopes = [...document.querySelectorAll('#token-form input[name=scope]:checked')].map((box) => box.value);
  if (scopes.length === 0) {
    notify('Choose at least one thing the token may do.', { key: 'tokens' });
    document.querySelector('#token-form input[name=scope]').focus();
    return;
  }
  const body = { name, scopes };
  const expiry = byId('token-expiry').value;
  if (expiry) body.expires_in = Number(expiry);
  const submit = byId('token-create');
  submit.disabled = true;
  try {
    const created = await api('/api/tokens', { method: 'POST', body });
    input.value = '';
    showNewToken(created.token);
    await loadTokens();
  } catch (error) {
    notify(`Could not create the token: ${error.message}`, { key: 'tokens' });
  } finally {
    submit.disabled = false;
  }
}

function showProfile(me) {
  byId('profile-name').textContent = me.user.name || '—';
  byId('profile-email').textContent = me.user.email;
  const plan = byId('profile-plan');
  plan.textContent = planLabel(me.plan.name);
  plan.dataset.plan = me.plan.name;
  byId('profile-since').textContent = humanDate(me.user.created_at);
}

// Pages plugins add under /account/ (the webhooks plugin's endpoints and delivery log, say), from the nav.
function showAccountPages(nav) {
  const pages = (nav || []).filter((item) => item.href.startsWith('/account/'));
  byId('account-pages-list').replaceChildren(...pages.map((item) => h(
    'li',
    {},
    h('a', { href: item.href, dataset: { testid: 'account-page-link' } }, item.label),
  )));
  byId('account-pages').hidden = pages.length === 0;
}

function activityRow(event) {
  const from = event.by === 'you'
    ? h('span', { title: event.user_agent || '' }, [event.ip, browserName(event.user_agent)].filter(Boolean).join(' · ') || '—')
    : (event.by === 'admin' ? 'An administrator' : '—');
  return h(
    'tr',
    { dataset: { testid: 'activity-row', type: event.type } },
    h('td', { dataset: { label: 'When' } }, humanDateTime(event.occurred_at)),
    h('td', { className: 'cell-name', dataset: { label: 'What', testid: 'activity-what' } }, describeEvent(event)),
    h('td', { dataset: { label: 'From', testid: 'activity-from' } }, from),
  );
}

let activityCursor = null;

async function loadActivity({ more = false } = {}) {
  const query = new URLSearchParams({ limit: String(ACTIVITY_PAGE) });
  if (more && activityCursor) query.set('cursor', activityCursor);
  try {
    const page = await api(`/api/me/events?${query}`);
    const rows = page.events.map(activityRow);
    if (more) byId('activity-body').append(...rows);
    else byId('activity-body').replaceChildren(...rows);
    activityCursor = page.next_cursor;
    const any = byId('activity-body').children.length > 0;
    byId('activity-table').hidden = !any;
    byId('activity-empty').hidden = any;
    byId('activity-more').hidden = !activityCursor;
  } catch (error) {
    notify(`Could not load your recent activity: ${error.message}`, { key: 'activity' });
  }
}

async function main() {
  const me = await startSignedInPage();
  if (!me) return;
  showProfile(me);
  showAccountPages(me.nav);
  byId('scope-admin-choice').hidden = !me.user.is_admin;
  byId('activity-more').addEventListener('click', () => loadActivity({ more: true }));
  byId('token-form').addEventListener('submit', createToken);
  byId('new-token-copy').addEventListener('click', copyNewToken);
  byId('new-token-done').addEventListener('click', hideNewToken);
  byId('new-token-value').addEventListener('focus', (event) => event.target.select());
  await Promise.all([loadTokens(), loadActivity()]);
}

main();
