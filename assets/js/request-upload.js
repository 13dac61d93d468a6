// The file request page (/r/<token>) is a plain form and works without script. With script, a send shows
// its progress and can be canceled; the portal's answer is the page the form would have shown, whose
// <main> replaces this one. When the storage offers direct uploads (the form carries data-direct-endpoint),
// files above data-direct-threshold go straight to storage in parallel parts first (multipart.js, through
// /api/r/<token>/s3/multipart: pause, resume, retries), then the smaller ones through the form.

import { h } from './dom.js';
import { humanSize } from './format.js';
import { directUpload } from './multipart.js';

const SELECTOR = 'form[data-enhance="upload-progress"]';
const STOPPING = [403, 410, 503]; // the request takes nothing more: the other files would be refused too

function show(html, notices = []) {
  const doc = new DOMParser().parseFromString(html, 'text/html');
  const main = doc.querySelector('main');
  if (!main) {
    window.location.reload();
    return;
  }
  document.title = doc.title;
  document.querySelector('main').replaceWith(main);
  const heading = main.querySelector('h1');
  if (heading) heading.after(...notices);
  main.focus();
  const form = main.querySelector(SELECTOR);
  if (form) enhance(form);
}

function progressBox(form, input) {
  const button = form.querySelector('button[type="submit"]');
  const progress = h('progress', { max: 100, value: 0, 'aria-label': 'Sending the files', dataset: { testid: 'request-progress' } });
  const status = h('p', { className: 'hint', role: 'status', dataset: { testid: 'request-progress-text' } }, 'Starting…');
  const cancel = h('button', { type: 'button', className: 'button', dataset: { testid: 'request-cancel' } }, 'Cancel');
  const box = h('div', { className: 'request-progress' }, progress, status, cancel);
  form.append(box);
  button.disabled = true;
  input.disabled = true;
  return {
    box,
    progress,
    status,
    cancel,
    done(text) {
      status.textContent = text;
      status.setAttribute('role', 'alert');
      progress.remove();
      cancel.remove();
      box.querySelectorAll('button').forEach((b) => b.remove());
      button.disabled = false;
      input.disabled = false;
    },
  };
}

function send(form, input, files, notices = []) {
  const data = new FormData();
  for (const file of files) data.append('file', file, file.name);
  const ui = progressBox(form, input);
  const xhr = new XMLHttpRequest();
  xhr.open('POST', form.action);
  xhr.upload.addEventListener('progress', (event) => {
    if (!event.lengthComputable || event.total === 0) return;
    const percent = Math.min(100, Math.floor((event.loaded / event.total) * 100));
    ui.progress.value = percent;
    ui.status.textContent = `${percent}% · ${humanSize(event.loaded)} of ${humanSize(event.total)}`;
  });
  xhr.addEventListener('load', () => show(xhr.responseText, notices));
  xhr.addEventListener('error', () => ui.done('The connection failed. Files that had finished sending were received; send the rest again.'));
  xhr.addEventListener('abort', () => ui.done('Canceled. Files that had finished sending were received.'));
  ui.cancel.addEventListener('click', () => xhr.abort());
  xhr.send(data);
}

function sentNotice(sent) {
  const items = sent.map((a) => h('li', { dataset: { testid: 'received-file' } }, `${a.name} `, h('span', { className: 'hint' }, `(${humanSize(a.size)})`)));
  return h(
    'div',
    { className: 'notice notice-success', role: 'status', dataset: { testid: 'request-received-direct' } },
    h('p', {}, `Sent ${sent.length} large file${sent.length === 1 ? '' : 's'} straight to storage:`),
    h('ul', {}, ...items),
  );
}

function refusedNotice(name, message) {
  return h('p', { className: 'notice notice-error', role: 'alert', dataset: { testid: 'request-refused' } }, `“${name}” was not sent: ${message}`);
}

async function sendDirect(form, input, large, small) {
  const ui = progressBox(form, input);
  const pause = h('button', { type: 'button', className: 'button', dataset: { testid: 'request-pause' } }, 'Pause');
  ui.cancel.before(pause);
  const sent = [];
  const notices = [];
  let current = null;
  let canceled = false;
  let stopped = false;
  pause.addEventListener('click', () => {
    if (!current) return;
    if (current.isPaused()) {
      current.resume();
      pause.textContent = 'Pause';
    } else {
      current.pause();
      pause.textContent = 'Resume';
      ui.status.textContent = 'Paused.';
    }
  });
  ui.cancel.addEventListener('click', () => {
    canceled = true;
    if (current) current.abort();
  });
  for (const file of large) {
    if (canceled || stopped) break;
    current = directUpload(file, {
      endpoint: form.dataset.directEndpoint,
      onProgress: (done, total, speed) => {
        const percent = total ? Math.min(100, Math.floor((done / total) * 100)) : 100;
        ui.progress.value = percent;
        ui.status.textContent = `${file.name}: ${percent}% · ${humanSize(done)} of ${humanSize(total)} · ${humanSize(speed)}/s`;
      },
      onStatus: (text) => {
        if (text) ui.status.textContent = `${file.name}: ${text}`;
      },
    });
    try {
      sent.push(await current.promise);
    } catch (error) {
      if (error.code === 'aborted') break;
      notices.push(refusedNotice(file.name, error.message));
      stopped = STOPPING.includes(error.status);
    }
  }
  current = null;
  if (sent.length > 0) notices.unshift(sentNotice(sent));
  if (canceled) notices.push(h('p', { className: 'notice notice-error', role: 'alert', dataset: { testid: 'request-canceled' } }, 'Canceled. Files that had finished sending were received.'));
  ui.box.remove();
  if (small.length > 0 && !canceled && !stopped) {
    send(form, input, small, notices);
    return;
  }
  try {
    const page = await fetch(form.action, { credentials: 'same-origin' });
    show(await page.text(), notices);
  } catch (_) {
    window.location.reload();
  }
}

function enhance(form) {
  form.addEventListener('submit', (event) => {
    const input = form.querySelector('input[type="file"]');
    if (!input || input.files.length === 0) return; // the browser says the field is required
    event.preventDefault();
    const files = [...input.files];
    const threshold = Number(form.dataset.directThreshold);
    const large = form.dataset.directEndpoint && Number.isFinite(threshold) ? files.filter((f) => f.size > threshold) : [];
    if (large.length === 0) send(form, input, files);
    else sendDirect(form, input, large, files.filter((f) => !large.includes(f)));
  });
}

const form = document.querySelector(SELECTOR);
if (form) enhance(form);
