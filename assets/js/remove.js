// Deleting something the person owns (a file, a token): ask first, then DELETE, then say what happened.

import { api } from './api.js';
import { confirmAction, notify } from './dom.js';

/**
 * Ask in the confirmation dialog, then DELETE `path`. `button` is the control that asked (disabled while
 * the request runs, refocused if the person backs out). Resolves true when the thing is gone — deleted
 * now, or already gone (404, e.g. deleted in another tab) — and false otherwise; a failure is shown as
 * "`failure`: <the portal's message>".
 */
export async function confirmAndDelete({ button, path, title, message, confirmLabel, failure, key }) {
  if (!(await confirmAction({ title, message, confirmLabel }))) {
    button.focus();
    return false;
  }
  button.disabled = true;
  try {
    await api(path, { method: 'DELETE' });
  } catch (error) {
    if (error.status !== 404) {
      button.disabled = false;
      notify(`${failure}: ${error.message}`, { key });
      return false;
    }
  }
  return true;
}
