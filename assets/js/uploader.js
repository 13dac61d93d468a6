// The upload area on the dashboard: a drop zone and a file picker feeding a queue; one list item per
// file with a progress bar, a cancel button and, on failure, the server's message.

import { byId, h } from './dom.js';
import { humanSize } from './format.js';
import { uploadFile } from './upload.js';

/** One file's row in #upload-list, and the upload it tracks. */
class UploadItem {
  constructor(file, onFinished) {
    this.file = file;
    this.onFinished = onFinished;
    this.handle = null;
    this.canceled = false;
    this.progress = h('progress', { max: 100, value: 0, 'aria-label': `Upload progress for ${file.name}`, dataset: { testid: 'upload-progress' } });
    this.status = h('span', { className: 'upload-status', dataset: { testid: 'upload-status' } }, 'Waiting…');
    this.cancel = h('button', { type: 'button', className: 'button button-small', 'aria-label': `Cancel upload of ${file.name}`, dataset: { testid: 'upload-cancel' } }, 'Cancel');
    this.cancel.addEventListener('click', () => this.abort());
    this.el = h(
      'li',
      { className: 'upload-item', dataset: { testid: 'upload-item', state: 'queued' } },
      h('span', { className: 'upload-name' }, file.name),
      h('span', { className: 'upload-size' }, humanSize(file.size)),
      this.progress,
      this.status,
      this.cancel,
    );
  }

  setState(state, text) {
    this.el.dataset.state = state;
    this.status.textContent = text;
  }

  async run() {
    if (this.canceled) return;
    this.setState('uploading', 'Starting…');
    this.handle = uploadFile(this.file, {
      onProgress: (sent, total) => {
        const percent = total > 0 ? Math.min(100, Math.floor((sent / total) * 100)) : 0;
        this.progress.value = percent;
        this.status.textContent = `${percent}% · ${humanSize(sent)} of ${humanSize(total)}`;
      },
    });
    try {
      const artifact = await this.handle.promise;
      this.progress.value = 100;
      this.setState('done', 'Uploaded');
      this.finish();
      this.onFinished(artifact);
    } catch (error) {
      if (error.code === 'aborted') {
        this.setState('canceled', 'Canceled');
      } else {
        this.setState('error', error.message);
        this.status.setAttribute('role', 'alert');
      }
      this.finish();
    }
  }

  abort() {
    this.canceled = true;
    if (this.handle) {
      this.handle.abort();
    } else {
      this.setState('canceled', 'Canceled');
      this.finish();
    }
  }

  /** Swap Cancel for Dismiss once the outcome is known. */
  finish() {
    const dismiss = h('button', { type: 'button', className: 'button button-small button-quiet', 'aria-label': `Dismiss ${this.file.name}`, dataset: { testid: 'upload-dismiss' } }, 'Dismiss');
    dismiss.addEventListener('click', () => this.el.remove());
    this.cancel.replaceWith(dismiss);
  }
}

/**
 * Wire #drop-zone, #file-input and #upload-list. Files upload one at a time, in the order chosen;
 * `onUploaded(artifact)` runs after each success.
 */
export function setUpUploader({ onUploaded }) {
  const zone = byId('drop-zone');
  const input = byId('file-input');
  const list = byId('upload-list');
  const queue = [];
  let running = false;

  async function drain() {
    if (running) return;
    running = true;
    while (queue.length > 0) await queue.shift().run();
    running = false;
  }

  function add(files) {
    for (const file of files) {
      const item = new UploadItem(file, onUploaded);
      list.append(item.el);
      queue.push(item);
    }
    drain();
  }

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
