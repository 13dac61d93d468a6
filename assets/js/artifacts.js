// The files table on the dashboard: pages of GET /api/artifacts (searched and sorted by the server),
// long names cut with an ellipsis (whole on hover, on focus and in the details dialog), the checksum
// copyable, and deleting one file or several selected ones, with confirmation.

import { api } from './api.js';
import { byId, clearNotices, confirmAction, h, notify } from './dom.js';
import { displayText, humanDateTime, humanSize } from './format.js';
import { confirmAndDelete } from './remove.js';

const PAGE_SIZE = 50;
const SEARCH_DELAY_MS = 250;
const DEFAULT_ORDER = { created_at: 'desc', name: 'asc', size: 'desc' };
const SORT_WORDS = { created_at: 'upload date', name: 'name', size: 'size' };

/** Put `text` on the clipboard; where that is refused, select `field` so Ctrl+C copies it. */
export async function copyText(text, status, field = null) {
  try {
    await navigator.clipboard.writeText(text);
    status.textContent = 'Copied to the clipboard.';
  } catch (_) {
    if (field) {
      const range = document.createRange();
      range.selectNodeContents(field);
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
    }
    status.textContent = 'Press Ctrl+C (or ⌘C) to copy the selected text.';
  }
}

/** What the portal knows about the stored bytes (direct uploads are read back and checked after they land). */
function verificationText(artifact) {
  if (artifact.verification === 'quarantined') return `Quarantined: ${artifact.verification_detail || 'its bytes do not match'}`;
  if (artifact.verification === 'unverified') return 'Being checked: the stored bytes are read back and their SHA-256 compared';
  return 'Verified: the SHA-256 is that of the stored bytes';
}

/** The details dialog: every fact about one file, the whole name and the whole SHA-256. */
function showDetails(artifact, opener) {
  const dialog = byId('details-dialog');
  byId('details-name').textContent = artifact.name;
  byId('details-size').textContent = `${humanSize(artifact.size)} (${Number(artifact.size).toLocaleString()} bytes)`;
  byId('details-type').textContent = artifact.content_type || '—';
  byId('details-created').textContent = humanDateTime(artifact.created_at);
  byId('details-sha').textContent = artifact.sha256 || '—';
  byId('details-verification').textContent = verificationText(artifact);
  byId('details-copied').textContent = '';
  byId('details-download').href = `/api/artifacts/${encodeURIComponent(artifact.id)}/download`;
  byId('details-download').setAttribute('aria-label', `Download ${artifact.name}`);
  dialog.returnFocus = opener;
  dialog.showModal();
  byId('details-close').focus();
}

function wireDetailsDialog() {
  const dialog = byId('details-dialog');
  byId('details-close').addEventListener('click', () => dialog.close());
  byId('details-copy').addEventListener('click', () => copyText(byId('details-sha').textContent, byId('details-copied'), byId('details-sha')));
  dialog.addEventListener('close', () => {
    if (dialog.returnFocus && dialog.returnFocus.isConnected) dialog.returnFocus.focus();
  });
}

function artifactRow(artifact, table) {
  const id = encodeURIComponent(artifact.id);
  const sha = String(artifact.sha256 || '');
  const select = h('input', { type: 'checkbox', className: 'select-row', 'aria-label': `Select ${artifact.name}`, dataset: { testid: 'select-row' } });
  select.addEventListener('change', () => table.selectionChanged());
  const name = h('button', { type: 'button', className: 'name-button', title: artifact.name, 'aria-haspopup': 'dialog', dataset: { testid: 'artifact-name' } }, artifact.name);
  name.addEventListener('click', () => showDetails(artifact, name));
  const copied = h('span', { className: 'visually-hidden', role: 'status' });
  const copy = h('button', { type: 'button', className: 'button button-small button-quiet', 'aria-label': `Copy the SHA-256 of ${artifact.name}`, title: 'Copy the whole SHA-256', dataset: { testid: 'copy-sha' } }, 'Copy');
  const shaText = h('code', { title: sha, dataset: { testid: 'artifact-sha' } }, sha.slice(0, 12));
  const state = artifact.verification;
  const badge = state === 'quarantined'
    ? h('span', { className: 'badge badge-danger', title: artifact.verification_detail || '', dataset: { testid: 'artifact-quarantined' } }, 'Quarantined')
    : state === 'unverified'
      ? h('span', { className: 'hint', title: 'The stored bytes are being read back to check their SHA-256', dataset: { testid: 'artifact-unverified' } }, 'checking…')
      : null;
  copy.addEventListener('click', () => copyText(sha, copied));
  // Files a guest sent through a file request are marked with it (the Sharing page lists what each received).
  const fromRequest = artifact.file_request_id
    ? h('a', { href: '/sharing#requests', className: 'hint from-request', dataset: { testid: 'artifact-from-request' } }, 'sent through a file request')
    : null;
  // A quarantined file cannot be downloaded (the portal refuses it); its badge and details say why.
  const download = state === 'quarantined' ? null : h(
    'a',
    { href: `/api/artifacts/${id}/download`, className: 'button button-small', 'aria-label': `Download ${artifact.name}`, dataset: { testid: 'download' } },
    'Download',
  );
  const remove = h(
    'button',
    { type: 'button', className: 'button button-small button-danger', 'aria-label': `Delete ${artifact.name}`, dataset: { testid: 'delete' } },
    'Delete',
  );
  remove.addEventListener('click', () => table.remove(artifact, remove));
  const share = h(
    'button',
    { type: 'button', className: 'button button-small', 'aria-label': `Share ${artifact.name}`, 'aria-haspopup': 'dialog', dataset: { testid: 'share' } },
    'Share',
  );
  share.addEventListener('click', () => table.onShare(artifact, share));
  if (state === 'quarantined') share.hidden = true; // a link to it would be refused too
  const row = h(
    'tr',
    { dataset: { testid: 'artifact-row', artifactId: String(artifact.id) } },
    h('td', { className: 'cell-select' }, select),
    h('td', { className: 'cell-name', dataset: { label: 'Name' } }, name, fromRequest),
    h('td', { className: 'cell-size', dataset: { label: 'Size', testid: 'artifact-size' } }, humanSize(artifact.size)),
    h('td', { dataset: { label: 'Uploaded' } }, h('time', { dateTime: artifact.created_at }, humanDateTime(artifact.created_at))),
    h('td', { dataset: { label: 'SHA-256' } }, h('span', { className: 'sha' }, shaText, copy, copied, badge)),
    h('td', { className: 'cell-actions' }, h('div', { className: 'row-actions' }, download, share, remove)),
  );
  row.artifact = artifact;
  return row;
}

/**
 * The table bound to #artifacts-body and its controls (#file-search, the sort buttons, #select-all,
 * #delete-selected, #load-more). `onChange` runs after a delete (so the page can refresh the usage meter);
 * `onShare(artifact, button)` runs when a row's Share button is pressed.
 */
export class ArtifactTable {
  constructor({ onChange = () => {}, onShare = () => {} } = {}) {
    this.body = byId('artifacts-body');
    this.empty = byId('artifacts-empty');
    this.noMatch = byId('artifacts-no-match');
    this.table = byId('artifacts-table');
    this.more = byId('load-more');
    this.search = byId('file-search');
    this.selectAll = byId('select-all');
    this.deleteSelected = byId('delete-selected');
    this.onChange = onChange;
    this.onShare = onShare;
    this.cursor = null;
    this.sort = 'created_at';
    this.order = 'desc';
    this.query = '';
    this.generation = 0; // answers to an older search or sort are dropped
    this.more.addEventListener('click', () => this.loadPage());
    let timer = null;
    this.search.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.setQuery(this.search.value), SEARCH_DELAY_MS);
    });
    this.search.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        clearTimeout(timer);
        this.setQuery(this.search.value);
      }
    });
    for (const th of this.table.querySelectorAll('th[data-sort]')) {
      th.querySelector('button').addEventListener('click', () => this.sortBy(th.dataset.sort));
    }
    this.selectAll.addEventListener('change', () => {
      for (const box of this.boxes()) box.checked = this.selectAll.checked;
      this.selectionChanged();
    });
    this.deleteSelected.addEventListener('click', () => this.removeSelected());
    wireDetailsDialog();
    this.showSort();
  }

  boxes() {
    return Array.from(this.body.querySelectorAll('input.select-row'));
  }

  selected() {
    return this.boxes().filter((box) => box.checked).map((box) => box.closest('tr'));
  }

  selectionChanged() {
    const boxes = this.boxes();
    const count = boxes.filter((box) => box.checked).length;
    this.selectAll.checked = count > 0 && count === boxes.length;
    this.selectAll.indeterminate = count > 0 && count < boxes.length;
    this.deleteSelected.disabled = count === 0;
    this.deleteSelected.textContent = count > 0 ? `Delete selected (${count})` : 'Delete selected';
    byId('selection-count').textContent = count === 0 ? '' : `${count} selected`;
  }

  async setQuery(text) {
    const query = text.trim();
    if (query === this.query) return;
    this.query = query;
    await this.reload();
  }

  async sortBy(key) {
    this.order = this.sort === key ? (this.order === 'asc' ? 'desc' : 'asc') : DEFAULT_ORDER[key];
    this.sort = key;
    this.showSort();
    await this.reload();
  }

  showSort() {
    for (const th of this.table.querySelectorAll('th[data-sort]')) {
      if (th.dataset.sort === this.sort) th.setAttribute('aria-sort', this.order === 'asc' ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    }
    const direction = this.order === 'asc' ? 'ascending' : 'descending';
    byId('artifacts-caption').textContent = `Your files, by ${SORT_WORDS[this.sort]}, ${direction}`;
  }

  /** Reload from the first page (after an upload, a new search or sort). */
  async reload() {
    this.generation += 1;
    this.cursor = null;
    await this.loadPage({ replace: true });
  }

  async loadPage({ replace = false } = {}) {
    const generation = this.generation;
    const query = new URLSearchParams({ limit: String(PAGE_SIZE), sort: this.sort, order: this.order });
    if (this.query) query.set('q', this.query);
    if (this.cursor) query.set('cursor', this.cursor);
    this.more.disabled = true;
    try {
      const page = await api(`/api/artifacts?${query}`);
      if (generation !== this.generation) return;
      const rows = page.artifacts.map((artifact) => artifactRow(artifact, this));
      if (replace) this.body.replaceChildren(...rows);
      else this.body.append(...rows);
      this.cursor = page.next_cursor;
      clearNotices('artifacts');
    } catch (error) {
      notify(`Could not load your files: ${error.message}`, { key: 'artifacts' });
    } finally {
      if (generation === this.generation) {
        this.more.disabled = false;
        this.more.hidden = !this.cursor;
        this.showEmptyState();
        this.selectionChanged();
      }
    }
  }

  showEmptyState() {
    const none = this.body.children.length === 0;
    this.empty.hidden = !(none && !this.query);
    this.noMatch.hidden = !(none && this.query);
    this.noMatch.textContent = none && this.query ? `No file names contain “${displayText(this.query)}”.` : '';
    this.table.hidden = none;
  }

  gone(rows) {
    for (const row of rows) row.remove();
    this.showEmptyState();
    this.selectionChanged();
    byId('files-title').focus();
    this.onChange();
  }

  async remove(artifact, button) {
    const gone = await confirmAndDelete({
      button,
      path: `/api/artifacts/${encodeURIComponent(artifact.id)}`,
      title: 'Delete this file?',
      message: `“${artifact.name}” will be deleted for good. This cannot be undone.`,
      confirmLabel: 'Delete file',
      failure: `Could not delete “${artifact.name}”`,
      key: 'delete',
    });
    if (!gone) return;
    this.gone([button.closest('tr')]);
    notify(`Deleted “${artifact.name}”.`, { kind: 'success', key: 'delete' });
  }

  /** Delete every selected file after one confirmation; says how many went and which could not. */
  async removeSelected() {
    const rows = this.selected();
    if (rows.length === 0) return;
    const one = rows.length === 1;
    const confirmed = await confirmAction({
      title: one ? 'Delete this file?' : `Delete ${rows.length} files?`,
      message: one
        ? `“${rows[0].artifact.name}” will be deleted for good. This cannot be undone.`
        : `${rows.length} files, from “${rows[0].artifact.name}” on, will be deleted for good. This cannot be undone.`,
      confirmLabel: one ? 'Delete file' : `Delete ${rows.length} files`,
    });
    if (!confirmed) {
      this.deleteSelected.focus();
      return;
    }
    this.deleteSelected.disabled = true;
    const deleted = [];
    const failed = [];
    for (const row of rows) {
      try {
        await api(`/api/artifacts/${encodeURIComponent(row.artifact.id)}`, { method: 'DELETE' });
        deleted.push(row);
      } catch (error) {
        if (error.status === 404) deleted.push(row); // already gone (another tab): what was asked for
        else failed.push(`“${row.artifact.name}”: ${error.message}`);
      }
    }
    this.gone(deleted);
    if (deleted.length > 0) {
      notify(deleted.length === 1 ? `Deleted “${deleted[0].artifact.name}”.` : `Deleted ${deleted.length} files.`, { kind: 'success', key: 'delete' });
    }
    if (failed.length > 0) notify(`Could not delete ${failed.join('; ')}`, { key: 'delete-failed' });
  }
}
