// Tiny DOM helpers. Text always goes in through textContent: filenames, names and messages are
// customer data and may contain markup.

/**
 * Create an element: h('a', {href: '/x', className: 'btn', dataset: {testid: 'y'}}, 'text', child…).
 * Attribute values are set as attributes (aria-*, data-*) or properties (className, hidden…);
 * string children become text nodes, never markup.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key in el && !key.includes('-')) el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** The element with this id, or an error naming the id (a page and its script out of step). */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el;
}

/**
 * Show a notice at the top of the page. kind: 'error' (announced at once), 'success' or 'info'.
 * A notice with the same `key` replaces the previous one, so a retried action does not pile them up.
 */
export function notify(text, { kind = 'error', key = '' } = {}) {
  const region = byId('notices');
  if (key) {
    for (const old of region.querySelectorAll('.notice')) {
      if (old.dataset.key === key) old.remove();
    }
  }
  const dismiss = h('button', { type: 'button', className: 'notice-dismiss', 'aria-label': 'Dismiss message' }, '×');
  const notice = h(
    'div',
    { className: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status', dataset: { testid: `notice-${kind}`, key } },
    h('p', {}, text),
    dismiss,
  );
  dismiss.addEventListener('click', () => notice.remove());
  region.append(notice);
  return notice;
}

/** Remove every notice (or those with `key`). */
export function clearNotices(key = '') {
  for (const old of byId('notices').querySelectorAll('.notice')) {
    if (!key || old.dataset.key === key) old.remove();
  }
}

// Settles the question the confirmation dialog is showing now (null when none is).
let answer = null;

function confirmDialog() {
  let dialog = document.getElementById('confirm-dialog');
  if (dialog) return dialog;
  dialog = h(
    'dialog',
    { id: 'confirm-dialog', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-message' },
    h(
      'form',
      { method: 'dialog' },
      h('h2', { id: 'confirm-title' }),
      h('p', { id: 'confirm-message' }),
      h(
        'div',
        { className: 'dialog-actions' },
        h('button', { type: 'submit', value: 'cancel', id: 'confirm-cancel', className: 'button' }, 'Cancel'),
        h('button', { type: 'submit', value: 'confirm', id: 'confirm-ok', className: 'button button-danger' }),
      ),
    ),
  );
  // One listener for the dialog's whole life. A close event is queued, not dispatched at once: after an
  // Escape the browser already gives focus back, so a quick second Delete can reopen the dialog before
  // the first close event arrives. That stale event finds the dialog open again and is ignored.
  dialog.addEventListener('close', () => {
    if (dialog.open || !answer) return;
    const settle = answer;
    answer = null;
    settle(dialog.returnValue === 'confirm');
  });
  document.body.append(dialog);
  return dialog;
}

/**
 * Ask for confirmation in a modal <dialog>. Resolves true when confirmed, false on Cancel or Escape.
 * A real dialog (not window.confirm) so it is styled, labelled and keyboard-operable like the rest.
 */
export function confirmAction({ title, message, confirmLabel }) {
  const dialog = confirmDialog();
  byId('confirm-title').textContent = title;
  byId('confirm-message').textContent = message;
  byId('confirm-ok').textContent = confirmLabel;
  if (answer) answer(false); // a question whose close event has not arrived yet: it was backed out of
  return new Promise((resolve) => {
    answer = resolve;
    dialog.returnValue = '';
    dialog.showModal();
    byId('confirm-cancel').focus();
  });
}
