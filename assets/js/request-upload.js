// The file request page (/r/<token>) is a plain form and works without script. With script, a send shows
// its progress and can be canceled; the portal's answer is the page the form would have shown, whose
// <main> replaces this one.

import { h } from './dom.js';
import { humanSize } from './format.js';

const SELECTOR = 'form[data-enhance="upload-progress"]';

function show(html) {
  const doc = new DOMParser().parseFromString(html, 'text/html');
  const main = doc.querySelector('main');
  if (!main) {
    window.location.reload();
    return;
  }
  document.title = doc.title;
  document.querySelector('main').replaceWith(main);
  main.focus();
  const form = main.querySelector(SELECTOR);
  if (form) enhance(form);
}

function send(form, input) {
  const data = new FormData(form);
  const button = form.querySelector('button[type="submit"]');
  const progress = h('progress', { max: 100, value: 0, 'aria-label': 'Sending the files', dataset: { testid: 'request-progress' } });
  const status = h('p', { className: 'hint', role: 'status', dataset: { testid: 'request-progress-text' } }, 'Starting…');
  const cancel = h('button', { type: 'button', className: 'button', dataset: { testid: 'request-cancel' } }, 'Cancel');
  const box = h('div', { className: 'request-progress' }, progress, status, cancel);
  form.append(box);
  button.disabled = true;
  input.disabled = true;
  const done = (text) => {
    status.textContent = text;
    status.setAttribute('role', 'alert');
    progress.remove();
    cancel.remove();
    button.disabled = false;
    input.disabled = false;
  };
  const xhr = new XMLHttpRequest();
  xhr.open('POST', form.action);
  xhr.upload.addEventListener('progress', (event) => {
    if (!event.lengthComputable || event.total === 0) return;
    const percent = Math.min(100, Math.floor((event.loaded / event.total) * 100));
    progress.value = percent;
    status.textContent = `${percent}% · ${humanSize(event.loaded)} of ${humanSize(event.total)}`;
  });
  xhr.addEventListener('load', () => show(xhr.responseText));
  xhr.addEventListener('error', () => done('The connection failed. Files that had finished sending were received; send the rest again.'));
  xhr.addEventListener('abort', () => done('Canceled. Files that had finished sending were received.'));
  cancel.addEventListener('click', () => xhr.abort());
  xhr.send(data);
}

function enhance(form) {
  form.addEventListener('submit', (event) => {
    const input = form.querySelector('input[type="file"]');
    if (!input || input.files.length === 0) return; // the browser says the field is required
    event.preventDefault();
    send(form, input);
  });
}

const form = document.querySelector(SELECTOR);
if (form) enhance(form);
