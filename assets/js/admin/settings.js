// /admin/settings: the site switches (uploads paused, sign-ups paused, read-only, banner).

import { api } from '../api.js';
import { byId, notify } from '../dom.js';
import { showSiteBanner } from '../layout.js';
import { startAdminPage } from './common.js';

const SWITCHES = { uploads_paused: 's-uploads-paused', signups_paused: 's-signups-paused', read_only: 's-read-only' };

function show(settings) {
  for (const [name, id] of Object.entries(SWITCHES)) byId(id).checked = settings[name];
  byId('s-banner').value = settings.banner;
  showSiteBanner(settings);
}

async function save(event) {
  event.preventDefault();
  const body = { banner: byId('s-banner').value.trim() };
  for (const [name, id] of Object.entries(SWITCHES)) body[name] = byId(id).checked;
  const button = event.submitter;
  if (button) button.disabled = true;
  try {
    show(await api('/api/admin/settings', { method: 'PUT', body }));
    notify('Saved. Every portal process applies the settings within 5 seconds.', { kind: 'success', key: 'settings' });
  } catch (error) {
    notify(`Could not save the settings: ${error.message}`, { key: 'settings' });
  } finally {
    if (button) button.disabled = false;
  }
}

async function main() {
  if (!(await startAdminPage())) return;
  try {
    show(await api('/api/admin/settings'));
  } catch (error) {
    notify(`Could not load the settings: ${error.message}`, { key: 'settings' });
    return;
  }
  byId('settings-form').addEventListener('submit', save);
}

main();
