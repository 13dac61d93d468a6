// /admin/users/{id}: one user — facts, freeze/unfreeze, limit overrides, tokens, recent events, erasure.

import { browserName, describeEvent } from '../activity.js';
import { api } from '../api.js';
import { byId, confirmAction, h, notify } from '../dom.js';
import { humanDate, humanDateTime, humanSize, planLabel } from '../format.js';
import { files, limitsText, startAdminPage, statusBadges } from './common.js';

const userId = window.location.pathname.split('/').pop();
let user = null;

function show(data) {
  user = data;
  document.title = `${data.email} — Admin — Portal`;
  byId('page-title').textContent = data.email;
  byId('user-name').textContent = data.name || '—';
  byId('user-email-fact').textContent = data.email;
  byId('user-status').replaceChildren(statusBadges(data));
  byId('user-plan').textContent = `${planLabel(data.plan)} (subscription: ${data.subscription_status})`;
  byId('user-usage').textContent = `${humanSize(data.usage.bytes)} in ${files(data.usage.files)}`;
  if (data.limits) {
    byId('user-limits').textContent = `${limitsText(data.limits)}${data.limits_override ? ' (own limits)' : " (the plan's)"}`;
  }
  byId('user-created').textContent = humanDate(data.created_at);
  byId('user-last-sign-in').textContent = data.last_sign_in_at ? humanDateTime(data.last_sign_in_at) : 'Never';
  byId('freeze').hidden = data.frozen;
  byId('unfreeze').hidden = !data.frozen;
  byId('user-events-link').href = `/admin/events?owner=${encodeURIComponent(data.id)}`;
  const override = data.limits_override || {};
  byId('limit-max-file').value = override.max_file == null ? '' : humanSize(override.max_file).replace(' ', '');
  byId('limit-quota').value = override.quota == null ? '' : humanSize(override.quota).replace(' ', '');
  byId('limit-max-file').placeholder = data.limits && !override.max_file ? `plan's: ${humanSize(data.limits.max_file)}` : '';
  byId('limit-quota').placeholder = data.limits && !override.quota ? `plan's: ${humanSize(data.limits.quota)}` : '';
}

function showTokens(tokens) {
  byId('user-tokens-body').replaceChildren(...tokens.map((token) => h(
    'tr', { dataset: { testid: 'user-token-row' } },
    h('td', { className: 'cell-name', dataset: { label: 'Name' } }, token.name),
    h('td', { dataset: { label: 'Scopes' } }, token.scopes.join(', ')),
    h('td', { dataset: { label: 'Created' } }, humanDateTime(token.created_at)),
    h('td', { dataset: { label: 'Last used' } }, token.last_used_at ? humanDateTime(token.last_used_at) : 'Never'),
    h('td', { dataset: { label: 'Expires' } }, token.expires_at ? humanDateTime(token.expires_at) : 'Never'),
  )));
  byId('user-tokens-table').hidden = tokens.length === 0;
  byId('user-tokens-empty').hidden = tokens.length > 0;
}

function showEvents(events) {
  byId('user-events-body').replaceChildren(...events.map((event) => h(
    'tr', { dataset: { testid: 'user-event-row', type: event.type } },
    h('td', { dataset: { label: 'When' } }, humanDateTime(event.occurred_at)),
    h('td', { className: 'cell-name', dataset: { label: 'What' } }, describeEvent(event)),
    h('td', { dataset: { label: 'Type' } }, h('code', {}, event.type)),
    h('td', { dataset: { label: 'From' } }, h('span', { title: event.user_agent || '' }, [event.ip, browserName(event.user_agent)].filter(Boolean).join(' · ') || '—')),
  )));
  byId('user-events-table').hidden = events.length === 0;
  byId('user-events-empty').hidden = events.length > 0;
}

async function load() {
  try {
    const data = await api(`/api/admin/users/${encodeURIComponent(userId)}`);
    show(data);
    showTokens(data.tokens);
    showEvents(data.events);
    return true;
  } catch (error) {
    notify(error.status === 404 ? 'There is no such user (they may have been erased).' : `Could not load the user: ${error.message}`, { key: 'user' });
    return false;
  }
}

async function patch(body, done) {
  try {
    await api(`/api/admin/users/${encodeURIComponent(userId)}`, { method: 'PATCH', body });
    await load();
    notify(done, { kind: 'success', key: 'user' });
    return true;
  } catch (error) {
    notify(error.message, { key: 'user' });
    return false;
  }
}

async function freeze(frozen) {
  if (frozen && !(await confirmAction({
    title: `Freeze ${user.email}?`,
    message: 'Their sessions and API tokens stop working at once, everywhere, and they cannot sign in until you unfreeze the account. Nothing is deleted.',
    confirmLabel: 'Freeze account',
  }))) {
    byId('freeze').focus();
    return;
  }
  if (await patch({ frozen }, frozen ? `Froze ${user.email}.` : `Unfroze ${user.email}.`)) {
    byId(frozen ? 'unfreeze' : 'freeze').focus();
  }
}

async function saveLimits(event) {
  event.preventDefault();
  const value = (id) => byId(id).value.trim() || null;
  const limits = { max_file: value('limit-max-file'), quota: value('limit-quota') };
  const body = { limits: limits.max_file === null && limits.quota === null ? null : limits };
  await patch(body, body.limits ? `Saved the limits of ${user.email}.` : `${user.email} has the plan's limits again.`);
}

async function erase(event) {
  event.preventDefault();
  const typed = byId('erase-confirm').value.trim();
  if (typed.toLowerCase() !== user.email.toLowerCase()) return;
  if (!(await confirmAction({
    title: `Erase ${user.email}?`,
    message: 'Their files, artifacts, sessions, tokens, shares and webhooks are deleted and the account is gone. This cannot be undone.',
    confirmLabel: 'Erase user',
  }))) {
    byId('erase').focus();
    return;
  }
  byId('erase').disabled = true;
  try {
    const answer = await api(`/api/admin/users/${encodeURIComponent(userId)}`, { method: 'DELETE', body: { email: typed } });
    const { artifacts, bytes } = answer.erased;
    window.location.assign(`/admin/users?erased=${encodeURIComponent(`${user.email}: ${files(artifacts)}, ${humanSize(bytes)}`)}`);
  } catch (error) {
    byId('erase').disabled = false;
    notify(`Could not erase ${user.email}: ${error.message}`, { key: 'user' });
  }
}

async function main() {
  if (!(await startAdminPage())) return;
  byId('freeze').addEventListener('click', () => freeze(true));
  byId('unfreeze').addEventListener('click', () => freeze(false));
  byId('limits-form').addEventListener('submit', saveLimits);
  byId('limits-reset').addEventListener('click', () => patch({ limits: null }, 'The plan\u2019s limits apply again.'));
  byId('erase-confirm').addEventListener('input', () => {
    byId('erase').disabled = !user || byId('erase-confirm').value.trim().toLowerCase() !== user.email.toLowerCase();
  });
  byId('erase-form').addEventListener('submit', erase);
  await load();
}

main();
