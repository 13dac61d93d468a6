// Formatting for display: sizes in binary units, dates in the reader's locale.

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
