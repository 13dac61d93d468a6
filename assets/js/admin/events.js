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

function userLink(id, email) {
  return h('a', { href: `/admin/users/${id}`, title: `user ${id}` }, email || `user ${id}`);
}

/** Who did it, and whose account it was about when that is someone else. */
function who(event) {
  const actor = event.actor_id == null ? h('span', { className: 'hint' }, 'nobody signed in') : userLink(event.actor_id, event.actor_email);
  if (event.owner_id == null || event.owner_id === event.actor_id) return actor;
  return h('span', {}, actor, h('div', { className: 'hint' }, 'about ', userLink(event.owner_id, event.owner_email)));
}

/** The subject and every data field as "key: value" lines (nested values as compact JSON). */
function details(event) {
  const fields = [];
  if (event.subject_id) fields.push(['subject', event.subject_id]);
  for (const [key, value] of Object.entries(event.data || {})) {
    fields.push([key, typeof value === 'string' ? value : JSON.stringify(value)]);
  }
  return h('ul', { className: 'details' }, fields.map(([key, value]) => h('li', {}, h('span', { className: 'detail-key' }, `${key}: `), value)));
}

function eventRow(event) {
  return h(
    'tr',
    { dataset: { testid: 'event-row', type: event.type } },
    h('td', { className: 'cell-when', dataset: { label: 'When' } }, humanDateTime(event.occurred_at)),
    h('td', { dataset: { label: 'Event' } }, h('code', {}, event.type), h('div', { className: 'hint' }, describeEvent(event))),
    h('td', { dataset: { label: 'Who' } }, who(event)),
    h('td', { dataset: { label: 'From' } }, h('span', { title: event.user_agent || '' }, [event.ip, browserName(event.user_agent)].filter(Boolean).join(' · ') || '—')),
    h('td', { dataset: { label: 'Details' } }, details(event)),
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
