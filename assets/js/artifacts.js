// The artifact table on the dashboard: pages of GET /api/artifacts, download links, delete with
// confirmation.

import { api } from './api.js';
import { byId, clearNotices, h, notify } from './dom.js';
import { humanDateTime, humanSize } from './format.js';
import { confirmAndDelete } from './remove.js';

const PAGE_SIZE = 50;

function artifactRow(artifact, onDelete) {
  const id = encodeURIComponent(artifact.id);
  const sha = String(artifact.sha256 || '');
  const download = h(
    'a',
    { href: `/api/artifacts/${id}/download`, className: 'button button-small', 'aria-label': `Download ${artifact.name}`, dataset: { testid: 'download' } },
    'Download',
  );
  const remove = h(
    'button',
    { type: 'button', className: 'button button-small button-danger', 'aria-label': `Delete ${artifact.name}`, dataset: { testid: 'delete' } },
    'Delete',
  );
  remove.addEventListener('click', () => onDelete(artifact, remove));
  return h(
    'tr',
    { dataset: { testid: 'artifact-row', artifactId: String(artifact.id) } },
    h('td', { className: 'cell-name', dataset: { label: 'Name', testid: 'artifact-name' } }, artifact.name),
    h('td', { className: 'cell-size', dataset: { label: 'Size', testid: 'artifact-size' } }, humanSize(artifact.size)),
    h('td', { dataset: { label: 'Uploaded' } }, h('time', { dateTime: artifact.created_at }, humanDateTime(artifact.created_at))),
    h('td', { dataset: { label: 'SHA-256' } }, h('code', { title: sha, dataset: { testid: 'artifact-sha' } }, sha.slice(0, 12))),
    h('td', { className: 'cell-actions' }, h('div', { className: 'row-actions' }, download, remove)),
  );
}

/**
 * The table bound to #artifacts-body, #artifacts-empty and #load-more. `onChange` runs after a delete
 * (so the page can refresh the usage meter).
 */
export class ArtifactTable {
  constructor({ onChange = () => {} } = {}) {
    this.body = byId('artifacts-body');
    this.empty = byId('artifacts-empty');
    this.table = byId('artifacts-table');
    this.more = byId('load-more');
    this.onChange = onChange;
    this.cursor = null;
    this.more.addEventListener('click', () => this.loadPage());
  }

  /** Reload from the newest artifact. */
  async reload() {
    this.cursor = null;
    this.body.replaceChildren();
    await this.loadPage();
  }

  async loadPage() {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (this.cursor) query.set('cursor', this.cursor);
    this.more.disabled = true;
    try {
      const page = await api(`/api/artifacts?${query}`);
      for (const artifact of page.artifacts) {
        this.body.append(artifactRow(artifact, (a, button) => this.remove(a, button)));
      }
      this.cursor = page.next_cursor;
      clearNotices('artifacts');
    } catch (error) {
      notify(`Could not load your files: ${error.message}`, { key: 'artifacts' });
    } finally {
      this.more.disabled = false;
      this.more.hidden = !this.cursor;
      this.showEmptyState();
    }
  }

  showEmptyState() {
    const none = this.body.children.length === 0;
    this.empty.hidden = !none;
    this.table.hidden = none;
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
    button.closest('tr').remove();
    this.showEmptyState();
    notify(`Deleted “${artifact.name}”.`, { kind: 'success', key: 'delete' });
    byId('files-title').focus();
    this.onChange();
  }
}
