// /admin/events: the audit trail, filtered, a page at a time, and the same filters as a CSV download.

import { browserName, describeEvent } from '../activity.js';
import { api } from '../api.js';
import { byId, h, notify } from '../dom.js';
import { humanDateTime } from '../format.js';
import { startAdminPage } from './common.js';

const PAGE = 50;
const TEXT_FILTERS = ['type', 'actor', 'owner', 'subject'];
const TIME_FILTERS = ['since', 'until'];
let cursor = null;

function who(id, email) {
  if (id === null || id === undefined) return '—';
  return h('a', { href: `/admin/users/${id}`, title: `user ${id}` }, email || `user ${id}`);
}

function eventRow(event) {
  return h(
    'tr',
    { dataset: { testid: 'event-row', type: event.type } },
    h('td', { dataset: { label: 'When' } }, humanDateTime(event.occurred_at)),
    h('td', { className: 'cell-name', dataset: { label: 'Event' } }, h('code', {}, event.type), h('div', { className: 'hint' }, describeEvent(event))),
    h('td', { dataset: { label: 'Actor' } }, who(event.actor_id, event.actor_email)),
    h('td', { dataset: { label: 'Owner' } }, who(event.owner_id, event.owner_email)),
    h('td', { className: 'data-cell', dataset: { label: 'Subject' } }, event.subject_id || '—'),
    h('td', { dataset: { label: 'From' } }, h('span', { title: event.user_agent || '' }, [event.ip, browserName(event.user_agent)].filter(Boolean).join(' · ') || '—')),
    h('td', { className: 'data-cell', dataset: { label: 'Data' } }, JSON.stringify(event.data)),
  );
}

/** The filters as query parameters (datetime-local fields are the reader's local time, sent as UTC). */
function filters() {
  const query = new URLSearchParams();
  for (const name of TEXT_FILTERS) {
    const value = byId(`f-${name}`).value.trim();
    if (value) query.set(name, value);
  }
  for (const name of TIME_FILTERS) {
    const value = byId(`f-${name}`).value;
    if (value) query.set(name, new Date(value).toISOString());
  }
  return query;
}

async function load({ more = false } = {}) {
  const query = filters();
  byId('events-csv').href = `/api/admin/events.csv${query.toString() ? `?${query}` : ''}`;
  query.set('limit', String(PAGE));
  if (more && cursor) query.set('cursor', cursor);
  try {
    const page = await api(`/api/admin/events?${query}`);
    const rows = page.events.map(eventRow);
    if (more) byId('events-body').append(...rows);
    else byId('events-body').replaceChildren(...rows);
    cursor = page.next_cursor;
    const any = byId('events-body').children.length > 0;
    byId('events-table').hidden = !any;
    byId('events-empty').hidden = any;
    byId('events-more').hidden = !cursor;
  } catch (error) {
    notify(`Could not load the audit trail: ${error.message}`, { key: 'events' });
  }
}

async function main() {
  if (!(await startAdminPage())) return;
  const params = new URLSearchParams(window.location.search);
  for (const name of TEXT_FILTERS) byId(`f-${name}`).value = params.get(name) || '';
  byId('event-filters').addEventListener('submit', (event) => {
    event.preventDefault();
    const query = filters();
    window.history.replaceState(null, '', query.toString() ? `?${query}` : window.location.pathname);
    load();
  });
  byId('events-more').addEventListener('click', () => load({ more: true }));
  await load();
}

main();
