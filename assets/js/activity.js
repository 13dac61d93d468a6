// Events (docs/events.md) in words, for the account page's "Recent activity" and the admin console.

import { humanSize, planLabel } from './format.js';

const quoted = (value) => (typeof value === 'string' && value ? `“${value}”` : '');
const sized = (data) => (Number.isFinite(data.size) ? ` (${humanSize(data.size)})` : '');
const ANOTHER_ADMIN = 'by an administrator';

/** One event as a short sentence ("Uploaded “report.pdf” (1.2 MiB)"); unknown types show their name. */
export function describeEvent(event) {
  const data = event.data || {};
  switch (event.type) {
    case 'user.created': return 'Account created';
    case 'user.signed_in': return 'Signed in';
    case 'user.signed_out': return 'Signed out';
    case 'artifact.created': return `Uploaded ${quoted(data.name) || 'a file'}${sized(data)}`;
    case 'artifact.deleted': return `Deleted ${quoted(data.name) || 'a file'}${sized(data)}`;
    case 'artifact.downloaded': return `Downloaded ${quoted(data.name) || 'a file'}`;
    case 'token.created': return `Created the API token ${quoted(data.name)}`.trim();
    case 'token.revoked': return `Revoked the API token ${quoted(data.name)}`.trim();
    case 'token.used': return `Used the API token ${quoted(data.name)}`.trim();
    case 'plan.changed': return `Plan changed from ${planLabel(data.old)} to ${planLabel(data.new)}`;
    case 'admin.user_frozen': return `Account suspended ${ANOTHER_ADMIN}`;
    case 'admin.user_unfrozen': return `Account restored ${ANOTHER_ADMIN}`;
    case 'admin.limits_changed': return `Storage limits changed ${ANOTHER_ADMIN}`;
    case 'admin.admin_granted': return 'Made an administrator';
    case 'admin.admin_revoked': return 'No longer an administrator (granted admin taken back)';
    case 'admin.user_deleted': return 'Account erased';
    case 'admin.settings_changed': return `Site settings changed: ${Object.keys(data).join(', ')}`;
    default: return event.type;
  }
}

/** A user agent as "Firefox on Linux" (the whole string stays available as a tooltip). */
export function browserName(userAgent) {
  if (!userAgent) return '';
  const ua = String(userAgent);
  const tool = /^(curl|python-requests|aiohttp|Python|Wget|Go-http-client|node-fetch)/i.exec(ua);
  if (tool) return tool[1];
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrom(e|ium)\//.test(ua) ? 'Chrome'
    : /Safari\//.test(ua) ? 'Safari' : '';
  const system = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Windows/.test(ua) ? 'Windows'
    : /Mac OS X/.test(ua) ? 'macOS' : /Linux/.test(ua) ? 'Linux' : '';
  if (browser && system) return `${browser} on ${system}`;
  return browser || system || ua.slice(0, 40);
}
