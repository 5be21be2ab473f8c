// Dashboards (PLT-10): <sb-dashboards> shows a queue's or a team's figures for today or a
// chosen range, with hourly bars for offered, answered and abandoned contacts, a line per
// presence for agents by status, the numbers beside them and a CSV download. The charts are
// SVG drawn here; data comes from /api/v1/dashboards with the page's session cookie.

import { element } from '/widget/common.js';

const SVG = 'http://www.w3.org/2000/svg';
const BAR_COLORS = { offered: '#4a6fa5', answered: '#3c9d5d', abandoned: '#c0504d' };
const LINE_COLORS = ['#3c9d5d', '#4a6fa5', '#d9a400', '#8e5ea2', '#c0504d', '#777777', '#1f9bb4'];

async function getJson(path) {
  const response = await fetch(path, { credentials: 'same-origin' });
  const text = await response.text();
  const value = text ? JSON.parse(text) : null;
  if (!response.ok) throw Object.assign(new Error(value?.message || response.statusText), { status: response.status, code: value?.code });
  return value;
}

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child);
  return node;
}

const percent = (value) => (value === null || value === undefined ? '–' : `${(value * 100).toFixed(1)} %`);
const seconds = (ms) => (ms === null || ms === undefined ? '–' : `${(ms / 1000).toFixed(1)} s`);
// Hours are shown on a 24-hour clock in the center's time zone (the API says which), so a
// supervisor elsewhere reads the center's day; a range over several days names each day.
const clock = (zone, options) => new Intl.DateTimeFormat([], { timeZone: zone, hourCycle: 'h23', ...options });
const hourLabel = (iso, zone) => clock(zone, { weekday: 'short', hour: '2-digit', minute: '2-digit' }).format(new Date(iso));
const tickLabel = (iso, zone, days) => {
  const date = new Date(iso);
  const hour = clock(zone, { hour: '2-digit' }).format(date);
  return days && hour === '00' ? clock(zone, { weekday: 'short', day: 'numeric' }).format(date) : hour;
};

/// The top of a chart's scale: a round number at or above `value` (0 for an empty chart).
const scaleTop = (value) => {
  if (value <= 0) return 0;
  const step = 10 ** Math.floor(Math.log10(value));
  return Math.ceil(value / step) * step;
};

/// The scale's labels (top, middle, zero) and grid lines; an empty chart says so instead.
function scale(chart, max, width, height, left, bottom) {
  chart.append(svg('line', { x1: left, y1: height - bottom, x2: width, y2: height - bottom, stroke: '#999' }));
  if (max === 0) {
    chart.append(svg('text', { x: (width + left) / 2, y: (height - bottom) / 2, 'font-size': 13, fill: '#777', 'text-anchor': 'middle' }, 'Nothing in this range'));
    return;
  }
  const y = (v) => height - bottom - (v / max) * (height - bottom - 10);
  const marks = max % 2 === 0 ? [max, max / 2, 0] : [max, 0];
  for (const mark of marks) {
    chart.append(svg('text', { x: left - 6, y: y(mark) + 4, 'font-size': 10, 'text-anchor': 'end' }, String(mark)));
    if (mark) chart.append(svg('line', { x1: left, y1: y(mark), x2: width, y2: y(mark), stroke: '#eee' }));
  }
}

/// Bars per hour: offered, answered and abandoned side by side.
function barChart(hours, zone) {
  const width = 720, height = 220, left = 36, bottom = 24;
  const max = scaleTop(Math.max(0, ...hours.map((h) => h.offered)));
  const days = hours.length > 24;
  const slot = (width - left) / Math.max(1, hours.length);
  const bar = Math.max(1, slot / 4);
  const y = (v) => height - bottom - (max ? v / max : 0) * (height - bottom - 10);
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Contacts per hour', class: 'chart' });
  scale(chart, max, width, height, left, bottom);
  const every = Math.ceil(hours.length / 24);
  hours.forEach((h, i) => {
    if (max) {
      ['offered', 'answered', 'abandoned'].forEach((key, k) => {
        const x = left + i * slot + k * bar + bar / 2;
        const rect = svg('rect', { x, y: y(h[key]), width: bar, height: height - bottom - y(h[key]), fill: BAR_COLORS[key] });
        rect.append(svg('title', {}, `${hourLabel(h.start, zone)} ${key}: ${h[key]}`));
        chart.append(rect);
      });
    }
    if (i % every === 0) {
      chart.append(svg('text', { x: left + i * slot + slot / 2, y: height - 6, 'font-size': 10, 'text-anchor': 'middle', class: 'tick' }, tickLabel(h.start, zone, days)));
    }
  });
  return chart;
}

/// One line per presence: how many agents were in it at the start of each hour.
function lineChart(hours, zone) {
  const width = 720, height = 200, left = 36, bottom = 40;
  const presences = [...new Set(hours.flatMap((h) => Object.keys(h.agents)))].sort();
  const max = scaleTop(Math.max(0, ...hours.flatMap((h) => Object.values(h.agents))));
  const step = (width - left - 14) / Math.max(1, hours.length - 1);
  const y = (v) => height - bottom - (max ? v / max : 0) * (height - bottom - 10);
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Agents by status', class: 'chart' });
  scale(chart, max, width, height, left, bottom);
  const days = hours.length > 24, every = Math.ceil(hours.length / 24);
  hours.forEach((h, i) => {
    if (i % every === 0) {
      chart.append(svg('text', { x: left + i * step, y: height - bottom + 14, 'font-size': 10, 'text-anchor': 'middle', class: 'tick' }, tickLabel(h.start, zone, days)));
    }
  });
  presences.forEach((presence, p) => {
    const points = hours.map((h, i) => `${left + i * step},${y(h.agents[presence] || 0)}`).join(' ');
    const color = LINE_COLORS[p % LINE_COLORS.length];
    const line = svg('polyline', { points, fill: 'none', stroke: color, 'stroke-width': 2 });
    line.append(svg('title', {}, presence));
    chart.append(line);
    chart.append(svg('text', { x: left + 4 + p * 100, y: height - 4, 'font-size': 11, fill: color }, presence));
  });
  return chart;
}

const STYLE = `
  :host { display: block; font-family: system-ui, sans-serif; }
  form { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; margin-bottom: 1rem; }
  label { display: flex; flex-direction: column; font-size: .85rem; }
  .body { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
  select, input, button { font: inherit; padding: .35rem .5rem; border: 1px solid #c7cfdb; border-radius: 6px; background: #fff; }
  button { cursor: pointer; }
  h3 { margin: 0 0 .5rem; font-size: 1rem; }
  .charts { flex: 1 1 480px; }
  .chart { width: 100%; height: auto; border: 1px solid #ddd; margin-bottom: .75rem; }
  dl { display: grid; grid-template-columns: auto auto; align-content: start; gap: .5rem 1.5rem; margin: 0;
       padding: 1rem; background: #fff; border: 1px solid #dde3ec; border-radius: 8px; min-width: 16rem; }
  dt { color: #555; } dd { margin: 0; font-weight: 600; text-align: right; }
  .error { color: #b00020; }
  .legend span { margin-right: 1rem; }
  .legend .zone { color: #555; float: right; margin: 0; }
`;

class SbDashboards extends HTMLElement {
  connectedCallback() {
    if (this.shadowRoot) return;
    const root = this.attachShadow({ mode: 'open' });
    this.scope = element('select', { name: 'scope' }, element('option', { value: 'queue' }, 'Queue'), element('option', { value: 'team' }, 'Team'));
    this.target = element('select', { name: 'id' });
    this.range = element('select', { name: 'range' }, element('option', { value: 'today' }, 'Today'), element('option', { value: 'custom' }, 'From – to'));
    this.from = element('input', { type: 'datetime-local', name: 'from' });
    this.to = element('input', { type: 'datetime-local', name: 'to' });
    this.threshold = element('input', { type: 'number', name: 'threshold_seconds', min: 1, max: 3600, value: 20 });
    this.download = element('button', { type: 'button', onclick: () => this.downloadCsv() }, 'Download CSV');
    this.error = element('p', { class: 'error', role: 'alert' });
    this.output = element('div', { class: 'body' });
    const form = element('form', { onsubmit: (e) => { e.preventDefault(); this.load(); } },
      element('label', {}, 'Scope', this.scope),
      element('label', {}, 'Queue or team', this.target),
      element('label', {}, 'Range', this.range),
      element('label', {}, 'From', this.from),
      element('label', {}, 'To', this.to),
      element('label', {}, 'Threshold (s)', this.threshold),
      element('button', { type: 'submit' }, 'Show'),
      this.download);
    this.scope.onchange = () => this.fillTargets();
    root.append(element('style', {}, STYLE), form, this.error, this.output);
    this.fillTargets();
  }

  async fillTargets() {
    const scope = this.scope.value;
    try {
      const list = scope === 'queue' ? await getJson('/api/v1/queues') : await getJson('/api/v1/teams');
      const items = scope === 'queue' ? list.filter((q) => q.kind === 'leaf').map((q) => [q.id, q.path || q.name]) : list.map((t) => [t.id, t.name]);
      this.target.replaceChildren(...items.map(([id, name]) => element('option', { value: id }, name)));
      this.error.textContent = '';
      if (items.length) this.load();
    } catch (error) {
      this.error.textContent = error.message;
    }
  }

  query(format) {
    const params = new URLSearchParams({ scope: this.scope.value, id: this.target.value });
    if (this.range.value === 'custom' && this.from.value && this.to.value) {
      params.set('from', new Date(this.from.value).toISOString());
      params.set('to', new Date(this.to.value).toISOString());
    }
    if (this.threshold.value) params.set('threshold_seconds', this.threshold.value);
    if (format) params.set('format', format);
    return `/api/v1/dashboards?${params}`;
  }

  async load() {
    if (!this.target.value) return;
    try {
      const data = await getJson(this.query());
      this.error.textContent = '';
      this.render(data);
    } catch (error) {
      this.error.textContent = error.message;
    }
  }

  render(data) {
    const t = data.totals;
    const figures = [
      ['Offered', t.offered], ['Answered', t.answered], ['Abandoned', t.abandoned],
      [`Service level (${data.threshold_seconds} s)`, percent(t.service_level)], ['Abandon rate', percent(t.abandon_rate)],
      ['Average wait', seconds(t.average_wait_ms)], ['90th percentile wait', seconds(t.p90_wait_ms)],
      ['Average handle time', seconds(t.average_handle_ms)],
    ];
    const legend = element('p', { class: 'legend' }, ...Object.entries(BAR_COLORS).map(([k, c]) => element('span', { style: `color:${c}` }, `■ ${k}`)),
      element('span', { class: 'zone', 'data-testid': 'dashboard-zone' }, `Hours in ${data.time_zone}`));
    this.output.replaceChildren(
      element('div', { class: 'charts' }, element('h3', {}, 'Contacts per hour'), legend, barChart(data.hours, data.time_zone), element('h3', {}, 'Agents by status'), lineChart(data.hours, data.time_zone)),
      element('dl', {}, ...figures.flatMap(([name, value]) => [element('dt', {}, name), element('dd', {}, String(value))])),
    );
  }

  async downloadCsv() {
    try {
      const response = await fetch(this.query('csv'), { credentials: 'same-origin' });
      if (!response.ok) throw new Error((await response.json()).message);
      const url = URL.createObjectURL(await response.blob());
      const link = element('a', { href: url, download: `dashboard-${this.scope.value}.csv` });
      this.shadowRoot.append(link);
      link.click();
      link.remove();
      URL.revokeObjectURL(url);
    } catch (error) {
      this.error.textContent = error.message;
    }
  }
}

if (!customElements.get('sb-dashboards')) customElements.define('sb-dashboards', SbDashboards);
