// /admin: counts and two small charts drawn as inline SVG (no chart service, no inline style: the CSP holds).

import { api } from '../api.js';
import { byId, h, notify } from '../dom.js';
import { humanSize, planLabel } from '../format.js';
import { files, startAdminPage } from './common.js';

const SVG = 'http://www.w3.org/2000/svg';

/** An SVG element; attributes as given (presentation attributes, never style). */
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

function shortDate(iso) {
  return new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', timeZone: 'UTC' }).format(new Date(`${iso}T00:00:00Z`));
}

/** Vertical bars, one per day; each bar says its day and count on hover, the table under it says them all. */
function uploadsChart(days) {
  const width = 640;
  const height = 200;
  const left = 40;
  const bottom = 24;
  const top = 12;
  const plot = height - top - bottom;
  const most = Math.max(1, ...days.map((d) => d.uploads));
  const step = (width - left - 8) / days.length;
  const total = days.reduce((sum, d) => sum + d.uploads, 0);
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-labelledby': 'uploads-svg-title', 'data-testid': 'uploads-svg' },
    svg('title', { id: 'uploads-svg-title' }, `Uploads per day over the last ${days.length} days: ${total} in all, at most ${most} in a day`));
  chart.append(svg('line', { x1: left, y1: top + plot, x2: width, y2: top + plot, class: 'chart-axis' }));
  chart.append(svg('text', { x: left - 6, y: top + 10, 'text-anchor': 'end', class: 'chart-text' }, most));
  chart.append(svg('text', { x: left - 6, y: top + plot, 'text-anchor': 'end', class: 'chart-text' }, 0));
  days.forEach((day, index) => {
    const barHeight = day.uploads ? Math.max(2, (day.uploads / most) * plot) : 2;
    chart.append(svg('rect', {
      x: (left + index * step + 1).toFixed(1), y: (top + plot - barHeight).toFixed(1), width: Math.max(1, step - 2).toFixed(1),
      height: barHeight.toFixed(1), class: day.uploads ? 'chart-bar' : 'chart-bar-empty', 'data-date': day.date, 'data-uploads': day.uploads,
    }, svg('title', {}, `${shortDate(day.date)}: ${day.uploads} upload${day.uploads === 1 ? '' : 's'} (${humanSize(day.bytes)})`)));
  });
  if (days.length) {
    chart.append(svg('text', { x: left, y: height - 6, class: 'chart-text' }, shortDate(days[0].date)));
    chart.append(svg('text', { x: width, y: height - 6, 'text-anchor': 'end', class: 'chart-text' }, shortDate(days[days.length - 1].date)));
  }
  return chart;
}

/** Horizontal bars, one per paid plan, each labelled with its count. */
function plansChart(paying) {
  if (!paying.length) return h('p', { className: 'empty', dataset: { testid: 'plans-empty' } }, 'No paying users yet.');
  const width = 480;
  const row = 34;
  const left = 90;
  const most = Math.max(1, ...paying.map((p) => p.users));
  const height = paying.length * row + 8;
  const summary = paying.map((p) => `${planLabel(p.plan)}: ${p.users}`).join(', ');
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-labelledby': 'plans-svg-title', 'data-testid': 'plans-svg' },
    svg('title', { id: 'plans-svg-title' }, `Paying users by plan: ${summary}`));
  paying.forEach((plan, index) => {
    const y = index * row + 6;
    const barWidth = Math.max(2, ((width - left - 50) * plan.users) / most);
    chart.append(svg('text', { x: left - 8, y: y + 17, 'text-anchor': 'end', class: 'chart-text' }, planLabel(plan.plan)));
    chart.append(svg('rect', { x: left, y, width: barWidth.toFixed(1), height: row - 12, class: 'chart-bar' }));
    chart.append(svg('text', { x: left + barWidth + 6, y: y + 17, class: 'chart-value' }, plan.users));
  });
  return chart;
}

async function main() {
  if (!(await startAdminPage())) return;
  let data;
  try {
    data = await api('/api/admin/overview');
  } catch (error) {
    notify(`Could not load the overview: ${error.message}`, { key: 'overview' });
    return;
  }
  byId('stat-users').textContent = data.users.total.toLocaleString();
  byId('stat-active').textContent = data.users.active_30_days.toLocaleString();
  byId('stat-paying').textContent = data.paying.reduce((sum, p) => sum + p.users, 0).toLocaleString();
  byId('stat-storage').textContent = humanSize(data.storage.bytes);
  byId('stat-files').textContent = `in ${files(data.storage.files)}`;
  byId('stat-frozen').textContent = data.users.frozen.toLocaleString();
  byId('chart-uploads').replaceChildren(uploadsChart(data.uploads_per_day));
  byId('uploads-body').replaceChildren(...data.uploads_per_day.slice().reverse().map((day) => h(
    'tr', {},
    h('td', { dataset: { label: 'Day' } }, day.date),
    h('td', { dataset: { label: 'Uploads' } }, day.uploads.toLocaleString()),
    h('td', { dataset: { label: 'Size' } }, humanSize(day.bytes)),
  )));
  byId('chart-plans').replaceChildren(plansChart(data.paying));
}

main();
