// Formatting for display: sizes in binary units, dates in the reader's locale.

// Bidirectional-text controls (keep in step with portal_core/display.py; a test compares the two): the
// embeddings and overrides U+202A–U+202E, the isolates U+2066–U+2069, and the marks U+200E, U+200F and
// U+061C. In a file name they make text display in another order than it is ("txt.exe" shown as
// "exe.txt"), so wherever the front end shows text from the server each becomes U+FFFD, visible and inert.
const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;

/** `text` as it may be displayed: every bidirectional control replaced by U+FFFD (the data keeps them). */
export function displayText(text) {
  return String(text).replace(BIDI_CONTROLS, '\uFFFD');
}

/** JSON.parse for answers that will be displayed: every string comes out through displayText. */
export function parseForDisplay(text) {
  return JSON.parse(text, (_key, value) => (typeof value === 'string' ? displayText(value) : value));
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 -> "1.5 KiB"; whole bytes below 1 KiB. */
export function humanSize(bytes) {
  const value = Number(bytes);
  if (!Number.isFinite(value) || value < 0) return '—';
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < UNITS.length - 1) {
    size /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${size} ${size === 1 ? 'byte' : 'bytes'}`;
  const digits = size < 10 ? 1 : 0;
  return `${size.toFixed(digits).replace(/\.0$/, '')} ${UNITS[unit]}`;
}

const DATE_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const DATE_ONLY = new Intl.DateTimeFormat(undefined, { dateStyle: 'long' });

function parse(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** An ISO timestamp as "12 Mar 2025, 14:03" (or "—" when missing). */
export function humanDateTime(iso) {
  const date = parse(iso);
  return date ? DATE_TIME.format(date) : '—';
}

/** An ISO timestamp as "12 March 2025" (or "—" when missing). */
export function humanDate(iso) {
  const date = parse(iso);
  return date ? DATE_ONLY.format(date) : '—';
}

/** "free" -> "Free". */
export function planLabel(name) {
  const text = String(name || 'free');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A price in the currency's smallest unit as the reader's locale writes it: (900, "usd") -> "$9.00". */
export function money(amount, currency) {
  try {
    const format = new Intl.NumberFormat(undefined, { style: 'currency', currency: currency.toUpperCase() });
    const digits = format.resolvedOptions().maximumFractionDigits;
    return format.format(amount / 10 ** digits);
  } catch (_) {
    return `${amount} ${String(currency).toUpperCase()}`; // a currency code the browser does not know
  }
}

/** {interval: "month", interval_count: 1} -> "a month"; 3 months -> "every 3 months". */
export function per({ interval, interval_count: count = 1 }) {
  return count === 1 ? `a ${interval}` : `every ${count} ${interval}s`;
}
