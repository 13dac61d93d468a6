// The Share dialog on the dashboard: how long the link works, an optional download limit and password
// (within the plan's rules, which /api/me's "sharing" gives), then the link itself with a Copy button.
// The link is shown once: the portal keeps only a hash of it.

import { api } from './api.js';
import { byId, h } from './dom.js';
import { copyField } from './clipboard.js';
import { humanDateTime, planLabel } from './format.js';

const HOUR = 3600;
const DAY = 86400;
const CHOICES = [
  [HOUR, '1 hour'], [DAY, '1 day'], [7 * DAY, '7 days'], [30 * DAY, '30 days'], [90 * DAY, '90 days'],
];

/** "N days" for a number of seconds that is a whole number of days (else hours). */
export function durationWords(seconds) {
  if (seconds % DAY === 0) return seconds === DAY ? '1 day' : `${seconds / DAY} days`;
  return seconds === HOUR ? '1 hour' : `${Math.round(seconds / HOUR)} hours`;
}

/** The expiry choices a plan allows: the usual ones up to its longest, and the longest itself. */
export function expiryChoices(rules) {
  const choices = CHOICES.filter(([seconds]) => seconds <= rules.max_expires_in);
  if (!choices.some(([seconds]) => seconds === rules.max_expires_in)) {
    choices.push([rules.max_expires_in, durationWords(rules.max_expires_in)]);
  }
  return choices;
}

function upgradeLink() {
  return h('a', { href: '/billing', dataset: { testid: 'share-upgrade' } }, 'Upgrade your plan');
}

function showError(error) {
  const box = byId('share-error');
  box.replaceChildren(error.message);
  if (error.code === 'plan_rule' && /upgrade/i.test(error.message)) box.append(' ', upgradeLink());
  box.hidden = false;
}

let state = null; // {artifact, opener, rules, onCreated}

function fillForm(rules) {
  const select = byId('share-expiry');
  select.replaceChildren(...expiryChoices(rules).map(([seconds, words]) =>
    h('option', { value: String(seconds), selected: seconds === rules.default_expires_in }, words)));
  const plan = planLabel(rules.plan);
  const hint = byId('share-expiry-hint');
  hint.replaceChildren(`The ${plan} plan allows links of up to ${durationWords(rules.max_expires_in)}.`);
  const password = byId('share-password');
  const passwordHint = byId('share-password-hint');
  password.value = '';
  password.disabled = !rules.passwords;
  if (rules.passwords) {
    passwordHint.replaceChildren('Whoever opens the link must type it before they see the file.');
  } else {
    passwordHint.replaceChildren(`Passwords on links are not part of the ${plan} plan. `, upgradeLink());
  }
  byId('share-limit').value = '';
}

/** Open the dialog for `artifact`; `rules` is /api/me's "sharing"; focus returns to `opener` after. */
export function openShareDialog(artifact, opener, rules, onCreated = () => {}) {
  state = { artifact, opener, rules, onCreated };
  byId('share-file').textContent = artifact.name;
  fillForm(rules);
  byId('share-error').hidden = true;
  byId('share-form').hidden = false;
  byId('share-result').hidden = true;
  byId('share-url').value = '';
  byId('share-copied').textContent = '';
  byId('share-create').disabled = false;
  byId('share-dialog').showModal();
  byId('share-expiry').focus();
}

async function create(event) {
  event.preventDefault();
  const body = { expires_in: Number(byId('share-expiry').value) };
  const limit = byId('share-limit').value.trim();
  if (limit !== '') {
    const value = Number(limit);
    if (!Number.isInteger(value) || value < 1) {
      showError({ message: 'The download limit must be a whole number, 1 or more (or empty for no limit).' });
      byId('share-limit').focus();
      return;
    }
    body.max_downloads = value;
  }
  const password = byId('share-password').value;
  if (password) body.password = password;
  const button = byId('share-create');
  button.disabled = true;
  try {
    const created = await api(`/api/artifacts/${encodeURIComponent(state.artifact.id)}/shares`, { method: 'POST', body });
    showResult(created);
    state.onCreated(created);
  } catch (error) {
    showError(error);
  } finally {
    button.disabled = false;
  }
}

function showResult(created) {
  byId('share-form').hidden = true;
  byId('share-result').hidden = false;
  const limit = created.max_downloads ? `, for ${created.max_downloads} download${created.max_downloads === 1 ? '' : 's'}` : '';
  const lock = created.has_password ? ' with the password' : '';
  byId('share-result-text').textContent = `Anyone with this link${lock} can download the file until ${humanDateTime(created.expires_at)}${limit}.`;
  byId('share-url').value = created.url;
  byId('share-url').focus();
  byId('share-url').select();
}

function close() {
  byId('share-url').value = ''; // forget the link once the person is done with it
  byId('share-password').value = '';
  byId('share-dialog').close();
}

/** Wire the dialog's controls once. */
export function wireShareDialog() {
  const dialog = byId('share-dialog');
  byId('share-form').addEventListener('submit', create);
  byId('share-cancel').addEventListener('click', close);
  byId('share-done').addEventListener('click', close);
  byId('share-copy').addEventListener('click', () => copyField(byId('share-url'), byId('share-copied')));
  byId('share-url').addEventListener('focus', (event) => event.target.select());
  dialog.addEventListener('close', () => {
    byId('share-url').value = '';
    if (state && state.opener && state.opener.isConnected) state.opener.focus();
  });
}
