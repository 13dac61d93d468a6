// The sharing page (/sharing): your share links with their downloads (revoke one), and file requests
// (create one and copy its link, see what arrived, close one), within your plan's rules.

import { api } from './api.js';
import { copyField } from './clipboard.js';
import { byId, h, notify } from './dom.js';
import { humanDateTime, humanSize, planLabel } from './format.js';
import { startSignedInPage } from './layout.js';
import { confirmAndDelete } from './remove.js';
import { durationWords, expiryChoices } from './share-dialog.js';

const SHARE_STATES = {
  active: 'Active', expired: 'Expired', revoked: 'Revoked', exhausted: 'Used up', deleted: 'File deleted',
};
const REQUEST_STATES = { open: 'Open', closed: 'Closed', expired: 'Expired', full: 'Full' };
const MIB = 1024 * 1024;

function status(words, state) {
  return h('span', { className: 'status', dataset: { state } }, words);
}

function shareRow(share) {
  const downloads = share.max_downloads ? `${share.downloads} of ${share.max_downloads}` : String(share.downloads);
  const actions = h('div', { className: 'row-actions' });
  if (share.state === 'active') {
    const revoke = h(
      'button',
      { type: 'button', className: 'button button-small button-danger', 'aria-label': `Revoke the link to ${share.name}`, dataset: { testid: 'share-revoke' } },
      'Revoke',
    );
    revoke.addEventListener('click', () => revokeShare(share, revoke));
    actions.append(revoke);
  }
  return h(
    'tr',
    { dataset: { testid: 'share-row', shareId: share.id, state: share.state } },
    h('td', { className: 'cell-name', dataset: { label: 'File' } }, h('span', { className: 'cut', title: share.name }, share.name)),
    h('td', { dataset: { label: 'Status', testid: 'share-state' } }, status(SHARE_STATES[share.state] || share.state, share.state)),
    h('td', { dataset: { label: 'Downloads', testid: 'share-downloads' } }, downloads),
    h('td', { dataset: { label: 'Expires' } }, h('time', { dateTime: share.expires_at }, humanDateTime(share.expires_at))),
    h('td', { dataset: { label: 'Password' } }, share.has_password ? 'Yes' : 'No'),
    h('td', { className: 'cell-actions' }, actions),
  );
}

async function loadShares() {
  try {
    const { shares } = await api('/api/shares');
    byId('shares-body').replaceChildren(...shares.map(shareRow));
    byId('shares-empty').hidden = shares.length > 0;
    byId('shares-table').hidden = shares.length === 0;
  } catch (error) {
    notify(`Could not load your share links: ${error.message}`, { key: 'shares' });
  }
}

async function revokeShare(share, button) {
  const gone = await confirmAndDelete({
    button,
    path: `/api/shares/${encodeURIComponent(share.id)}`,
    title: 'Revoke this link?',
    message: `The link to “${share.name}” will stop working at once for everyone who has it.`,
    confirmLabel: 'Revoke link',
    failure: `Could not revoke the link to “${share.name}”`,
    key: 'shares',
  });
  if (!gone) return;
  notify(`Revoked the link to “${share.name}”.`, { kind: 'success', key: 'shares' });
  await loadShares();
  byId('shares-title').focus();
}

function received(request) {
  const summary = `${request.received_files} file${request.received_files === 1 ? '' : 's'}, ${humanSize(request.received_bytes)}`;
  if (request.files.length === 0) return summary;
  return h(
    'details',
    { className: 'received' },
    h('summary', {}, summary),
    h('ul', {}, request.files.map((file) => h('li', { dataset: { testid: 'request-file' } }, `${file.name} (${humanSize(file.size)})`))),
  );
}

function requestRow(request) {
  const caps = [];
  if (request.max_files) caps.push(`at most ${request.max_files} file${request.max_files === 1 ? '' : 's'}`);
  if (request.max_bytes) caps.push(`at most ${humanSize(request.max_bytes)}`);
  const actions = h('div', { className: 'row-actions' });
  if (request.state === 'open') {
    const close = h(
      'button',
      { type: 'button', className: 'button button-small button-danger', 'aria-label': `Close the request ${request.title}`, dataset: { testid: 'request-close' } },
      'Close',
    );
    close.addEventListener('click', () => closeRequest(request, close));
    actions.append(close);
  }
  return h(
    'tr',
    { dataset: { testid: 'request-row', requestId: request.id, state: request.state } },
    h('td', { className: 'cell-name', dataset: { label: 'Request' } },
      h('span', { className: 'cut', title: request.title }, request.title),
      caps.length ? h('span', { className: 'hint request-caps' }, caps.join(', ')) : null),
    h('td', { dataset: { label: 'Status', testid: 'request-state' } }, status(REQUEST_STATES[request.state] || request.state, request.state)),
    h('td', { dataset: { label: 'Received', testid: 'request-received' } }, received(request)),
    h('td', { dataset: { label: 'Open until' } }, h('time', { dateTime: request.expires_at }, humanDateTime(request.expires_at))),
    h('td', { className: 'cell-actions' }, actions),
  );
}

async function loadRequests() {
  try {
    const { requests } = await api('/api/requests');
    byId('requests-body').replaceChildren(...requests.map(requestRow));
    byId('requests-empty').hidden = requests.length > 0;
    byId('requests-table').hidden = requests.length === 0;
  } catch (error) {
    notify(`Could not load your file requests: ${error.message}`, { key: 'requests' });
  }
}

async function closeRequest(request, button) {
  const gone = await confirmAndDelete({
    button,
    path: `/api/requests/${encodeURIComponent(request.id)}`,
    title: 'Close this request?',
    message: `“${request.title}” will take no more files. The files it received stay in your artifacts.`,
    confirmLabel: 'Close request',
    failure: `Could not close “${request.title}”`,
    key: 'requests',
  });
  if (!gone) return;
  notify(`Closed “${request.title}”.`, { kind: 'success', key: 'requests' });
  await loadRequests();
  byId('requests-list-title').focus();
}

function optionalWhole(id, what) {
  const raw = byId(id).value.trim();
  if (raw === '') return null;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${what} must be a whole number, 1 or more (or empty for no limit).`);
  return value;
}

async function createRequest(event) {
  event.preventDefault();
  const title = byId('request-title').value.trim();
  if (!title) {
    notify('Say what you are asking for: the people you send the link to will see it.', { key: 'requests' });
    byId('request-title').focus();
    return;
  }
  const body = { title, expires_in: Number(byId('request-expiry').value) };
  try {
    const files = optionalWhole('request-max-files', 'Most files');
    const mib = optionalWhole('request-max-mib', 'Most MiB');
    if (files) body.max_files = files;
    if (mib) body.max_bytes = mib * MIB;
  } catch (error) {
    notify(error.message, { key: 'requests' });
    return;
  }
  const button = byId('request-create');
  button.disabled = true;
  try {
    const created = await api('/api/requests', { method: 'POST', body });
    byId('request-form').reset();
    byId('new-request-url').value = created.url;
    byId('new-request-copied').textContent = '';
    byId('new-request').hidden = false;
    byId('new-request-title').focus();
    await loadRequests();
  } catch (error) {
    const notice = notify(`Could not create the request: ${error.message}`, { key: 'requests' });
    if (error.code === 'plan_rule' && /upgrade/i.test(error.message)) {
      notice.querySelector('p').append(' ', h('a', { href: '/billing' }, 'Upgrade your plan'));
    }
  } finally {
    button.disabled = false;
  }
}

function showRules(rules) {
  const plan = planLabel(rules.plan);
  const parts = [`On the ${plan} plan, links work for up to ${durationWords(rules.max_expires_in)}`];
  parts.push(rules.passwords ? 'and may have a password.' : 'without passwords.');
  byId('sharing-rules').textContent = parts.join(' ');
  const form = byId('request-form');
  const upgrade = byId('requests-upgrade');
  if (rules.file_requests) {
    byId('request-expiry').replaceChildren(...expiryChoices(rules).map(([seconds, words]) =>
      h('option', { value: String(seconds), selected: seconds === rules.default_expires_in }, words)));
    form.hidden = false;
    upgrade.hidden = true;
  } else {
    form.hidden = true;
    upgrade.replaceChildren(`File requests are not part of the ${plan} plan. `,
      h('a', { href: '/billing', dataset: { testid: 'requests-upgrade-link' } }, 'Upgrade your plan'), ' to ask people for files.');
    upgrade.hidden = false;
  }
}

async function main() {
  const me = await startSignedInPage();
  if (!me) return;
  showRules(me.sharing);
  byId('request-form').addEventListener('submit', createRequest);
  byId('new-request-copy').addEventListener('click', () => copyField(byId('new-request-url'), byId('new-request-copied')));
  byId('new-request-url').addEventListener('focus', (event) => event.target.select());
  byId('new-request-done').addEventListener('click', () => {
    byId('new-request-url').value = '';
    byId('new-request').hidden = true;
    byId('request-title').focus();
  });
  await Promise.all([loadShares(), loadRequests()]);
}

main();
