// The upload area on the dashboard: a drop zone and a file picker feeding a queue; one list row per file
// with a progress bar, Cancel, and the outcome. Files over the plan's limits are refused here, before a
// byte is sent. Finished rows fade after a few seconds; errors stay until dismissed; "Clear finished"
// empties the list.
//
// Three parts, so another way of sending plugs in without touching the rest: `refusal(file, limits)`
// decides before sending, `UploadRow` draws one file's row, and the `send` function given to setUpUploader
// moves the bytes (upload.js's uploadFile by default; the dashboard sends large files straight to storage
// with multipart.js, whose handle can also pause and resume: the row then offers Pause).

import { byId, h } from './dom.js';
import { displayText, humanSize, planLabel } from './format.js';
import { uploadFile } from './upload.js';

// How long a finished row stays before it fades away (and how long the fade takes, as in app.css).
export const FADE_AFTER_MS = 4000;
const FADE_MS = 600;
const FINISHED = new Set(['done', 'canceled', 'refused', 'error']);

/**
 * Why `file` cannot be uploaded under `limits` ({plan, maxFile, remaining, canUpgrade}), or null.
 * The server enforces the same limits; this only spares sending a file that is bound to be refused.
 */
export function refusal(file, limits) {
  if (!limits) return null;
  const plan = planLabel(limits.plan);
  if (file.size > limits.maxFile) {
    return `${humanSize(file.size)} is over the ${plan} plan's limit of ${humanSize(limits.maxFile)} per file.`;
  }
  if (file.size > limits.remaining) {
    return `${humanSize(file.size)} does not fit in the ${humanSize(Math.max(0, limits.remaining))} of storage left on the ${plan} plan.`;
  }
  return null;
}

/** One file's row in #upload-list: name, size, progress, status and one action button. */
export class UploadRow {
  constructor(file) {
    this.name = displayText(file.name); // a local name can carry bidi controls too
    this.progress = h('progress', { max: 100, value: 0, 'aria-label': `Upload progress for ${this.name}`, dataset: { testid: 'upload-progress' } });
    this.status = h('span', { className: 'upload-status', dataset: { testid: 'upload-status' } }, 'Waiting…');
    this.action = h('button', { type: 'button', className: 'button button-small', 'aria-label': `Cancel upload of ${this.name}`, dataset: { testid: 'upload-cancel' } }, 'Cancel');
    this.actions = h('span', { className: 'upload-actions' }, this.action);
    this.pauseButton = null;
    this.el = h(
      'li',
      { className: 'upload-item', dataset: { testid: 'upload-item', state: 'queued' } },
      h('span', { className: 'upload-name', title: this.name, dataset: { testid: 'upload-name' } }, this.name),
      h('span', { className: 'upload-size' }, humanSize(file.size)),
      this.progress,
      this.status,
      this.actions,
    );
  }

  /** Offer Pause / Resume for a send whose handle can pause (a direct upload). */
  addPause(handle) {
    const button = h('button', { type: 'button', className: 'button button-small', 'aria-label': `Pause upload of ${this.name}`, dataset: { testid: 'upload-pause' } }, 'Pause');
    button.addEventListener('click', () => {
      if (handle.isPaused()) {
        handle.resume();
        button.textContent = 'Pause';
        button.setAttribute('aria-label', `Pause upload of ${this.name}`);
        this.setState('uploading', 'Resuming…');
      } else {
        handle.pause();
        button.textContent = 'Resume';
        button.setAttribute('aria-label', `Resume upload of ${this.name}`);
        this.setState('paused', `Paused at ${this.progress.value}%`);
      }
    });
    this.actions.prepend(button);
    this.pauseButton = button;
  }

  get state() {
    return this.el.dataset.state;
  }

  setState(state, text) {
    this.el.dataset.state = state;
    this.status.textContent = text;
  }

  /** `speed` (bytes a second) is shown when the send measures it. */
  showProgress(sent, total, speed) {
    const percent = total > 0 ? Math.min(100, Math.floor((sent / total) * 100)) : 0;
    this.progress.value = percent;
    if (this.state === 'paused') return;
    const rate = speed > 0 ? ` · ${humanSize(speed)}/s` : '';
    this.status.textContent = `${percent}% · ${humanSize(sent)} of ${humanSize(total)}${rate}`;
  }

  /** An outcome the person must read: announced, and kept until dismissed. `upgrade` adds the link. */
  showProblem(state, text, { upgrade = false } = {}) {
    this.setState(state, text);
    if (upgrade) {
      this.status.append(' ', h('a', { href: '/billing', dataset: { testid: 'upload-upgrade' } }, 'Upgrade your plan'));
    }
    this.status.setAttribute('role', 'alert');
  }

  /** Swap Cancel for Dismiss once the outcome is known. */
  finish(onDismiss) {
    if (this.pauseButton) this.pauseButton.remove();
    const dismiss = h('button', { type: 'button', className: 'button button-small button-quiet', 'aria-label': `Dismiss ${this.name}`, dataset: { testid: 'upload-dismiss' } }, 'Dismiss');
    dismiss.addEventListener('click', onDismiss);
    this.action.replaceWith(dismiss);
    this.action = dismiss;
  }

  remove() {
    this.el.remove();
  }

  /** Fade out, then leave the list; kept while focus is inside it (the person may be about to press Dismiss). */
  fadeAway() {
    if (!this.el.isConnected) return;
    if (this.el.contains(document.activeElement)) {
      this.el.addEventListener('focusout', () => setTimeout(() => this.fadeAway(), FADE_AFTER_MS), { once: true });
      return;
    }
    this.el.dataset.leaving = '';
    setTimeout(() => this.remove(), FADE_MS);
  }
}

/** One file in the queue: its row, its upload and its outcome. */
class Upload {
  constructor(file, { send, limits, onUploaded }) {
    this.file = file;
    this.send = send;
    this.limits = limits;
    this.onUploaded = onUploaded;
    this.row = new UploadRow(file);
    this.handle = null;
    this.canceled = false;
    this.row.action.addEventListener('click', () => this.abort());
  }

  async run() {
    if (this.canceled) return;
    const limits = this.limits();
    const refused = refusal(this.file, limits);
    if (refused) {
      this.row.showProblem('refused', `Not uploaded: ${refused}`, { upgrade: limits.canUpgrade });
      this.finish();
      return;
    }
    this.row.setState('uploading', 'Starting…');
    this.handle = this.send(this.file, {
      onProgress: (sent, total, speed) => this.row.showProgress(sent, total, speed),
      onStatus: (text) => { if (text && this.row.state === 'uploading') this.row.status.textContent = text; },
    });
    if (this.handle.pause) this.row.addPause(this.handle);
    try {
      const artifact = await this.handle.promise;
      this.row.progress.value = 100;
      this.row.setState('done', 'Uploaded');
      this.finish();
      await this.onUploaded(artifact);
    } catch (error) {
      if (error.code === 'aborted') {
        this.row.setState('canceled', 'Canceled');
      } else {
        this.row.showProblem('error', error.message, { upgrade: error.status === 413 && this.limits().canUpgrade });
      }
      this.finish();
    }
  }

  abort() {
    this.canceled = true;
    if (this.handle) {
      this.handle.abort();
    } else {
      this.row.setState('canceled', 'Canceled');
      this.finish();
    }
  }

  finish() {
    this.row.finish(() => this.row.remove());
    // Successes and cancels fade away on their own; a problem stays until the person dismisses it.
    if (this.row.state === 'done' || this.row.state === 'canceled') {
      setTimeout(() => this.row.fadeAway(), FADE_AFTER_MS);
    }
  }
}

/**
 * Wire #drop-zone, #file-input, #upload-list and #clear-finished. Files upload one at a time, in the
 * order chosen. `limits()` gives the limits that apply right now ({plan, maxFile, remaining,
 * canUpgrade}); `onUploaded(artifact)` runs after each success; `send(file, {onProgress, onStatus})` returns
 * {promise, abort} and, when it can pause, {pause, resume, isPaused} (default: POST /api/artifacts).
 */
export function setUpUploader({ onUploaded, limits = () => null, send = uploadFile }) {
  const zone = byId('drop-zone');
  const input = byId('file-input');
  const list = byId('upload-list');
  const clear = byId('clear-finished');
  const queue = [];
  let running = false;
  const uploads = new Set();

  function showClear() {
    clear.hidden = ![...uploads].some((upload) => upload.row.el.isConnected && FINISHED.has(upload.row.state));
  }

  async function drain() {
    if (running) return;
    running = true;
    while (queue.length > 0) {
      await queue.shift().run();
      showClear();
    }
    running = false;
  }

  function add(files) {
    for (const file of files) {
      const upload = new Upload(file, { send, limits, onUploaded });
      uploads.add(upload);
      list.append(upload.row.el);
      queue.push(upload);
    }
    drain();
  }

  clear.addEventListener('click', () => {
    for (const upload of uploads) {
      if (FINISHED.has(upload.row.state)) {
        upload.row.remove();
        uploads.delete(upload);
      }
    }
    showClear();
    input.focus();
  });
  // Rows leave on their own (fade, Dismiss): keep the button's visibility in step.
  new MutationObserver(() => {
    for (const upload of uploads) if (!upload.row.el.isConnected && FINISHED.has(upload.row.state)) uploads.delete(upload);
    showClear();
  }).observe(list, { childList: true, subtree: true, attributes: true, attributeFilter: ['data-state'] });

  input.addEventListener('change', () => {
    add(Array.from(input.files));
    input.value = '';  // choosing the same file again fires change again
  });
  zone.addEventListener('dragover', (event) => {
    if (!event.dataTransfer || !Array.from(event.dataTransfer.types).includes('Files')) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    zone.classList.add('drop-zone-active');
  });
  zone.addEventListener('dragleave', (event) => {
    if (!zone.contains(event.relatedTarget)) zone.classList.remove('drop-zone-active');
  });
  // A file dropped beside the zone would otherwise replace the page with the file.
  window.addEventListener('dragover', (event) => event.preventDefault());
  window.addEventListener('drop', (event) => event.preventDefault());
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('drop-zone-active');
    const files = Array.from(event.dataTransfer ? event.dataTransfer.files : []);
    if (files.length > 0) add(files);
  });
}
