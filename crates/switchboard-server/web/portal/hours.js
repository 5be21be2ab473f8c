// The week view of a business-hours schedule, drawn as SVG from the form's values as they are
// typed: the weekly periods of this week, days that are holidays, and closures that fall in it.
// Lines that do not parse are listed under the drawing (the server says why on save).

import { element } from '/portal/api.js';

const SVG = 'http://www.w3.org/2000/svg';
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const LEFT = 44;
const TOP = 34;
const COLUMN = 100;
const HOUR = 11;

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function minutes(text) {
  const match = /^(\d\d):(\d\d)$/.exec(text.trim());
  if (!match) return null;
  const value = Number(match[1]) * 60 + Number(match[2]);
  return value <= 1440 ? value : null;
}

/// `mon 08:00-18:00` as spans of [day, start, end] minutes; one crossing midnight is two spans.
export function parsePeriod(line) {
  const [dayText, span] = line.trim().toLowerCase().split(/\s+/);
  const day = DAYS.findIndex((d) => dayText?.startsWith(d));
  const [startText, endText] = (span ?? '').split('-');
  const start = startText ? minutes(startText) : null;
  let end = endText ? minutes(endText) : null;
  if (day < 0 || start === null || end === null || start === end) return null;
  if (end === 0) end = 1440;
  if (end > start) return [[day, start, end]];
  return [[day, start, 1440], [(day + 1) % 7, 0, end]];
}

/// This week's Monday, at local midnight.
function monday(now = new Date()) {
  const date = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  date.setDate(date.getDate() - ((date.getDay() + 6) % 7));
  return date;
}

function isHoliday(date, holidays) {
  const mm = String(date.getMonth() + 1).padStart(2, '0');
  const dd = String(date.getDate()).padStart(2, '0');
  return holidays.some((h) => h === `${mm}-${dd}` || h === `${date.getFullYear()}-${mm}-${dd}`);
}

export function weekPreview(body) {
  const periods = body.periods ?? [];
  const holidays = body.holidays ?? [];
  const closures = body.closures ?? [];
  const bad = [];
  const width = LEFT + COLUMN * 7 + 8;
  const height = TOP + HOUR * 24 + 8;
  const drawing = svg('svg', { class: 'week', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Week view of the opening hours', 'data-testid': 'week-view' });
  const start = monday();
  for (let hour = 0; hour <= 24; hour += 3) {
    const y = TOP + hour * HOUR;
    drawing.append(svg('line', { x1: LEFT, x2: width - 8, y1: y, y2: y, stroke: '#e6e9f0' }), svg('text', { x: 6, y: y + 4 }, `${String(hour).padStart(2, '0')}:00`));
  }
  for (let day = 0; day < 7; day += 1) {
    const date = new Date(start);
    date.setDate(start.getDate() + day);
    const x = LEFT + day * COLUMN;
    const holiday = isHoliday(date, holidays);
    drawing.append(
      svg('text', { x: x + 6, y: 14 }, date.toLocaleDateString(undefined, { weekday: 'short' })),
      svg('text', { x: x + 6, y: 27 }, date.toLocaleDateString(undefined, { month: 'short', day: 'numeric' }) + (holiday ? ' · holiday' : '')),
      svg('rect', { x: x + 2, y: TOP, width: COLUMN - 4, height: HOUR * 24, fill: '#f7f9fc', rx: 4 }));
    if (holiday) drawing.append(svg('rect', { class: 'closed', x: x + 2, y: TOP, width: COLUMN - 4, height: HOUR * 24, rx: 4, 'data-holiday': DAYS[day] }));
  }
  for (const line of periods) {
    const spans = parsePeriod(line);
    if (!spans) {
      bad.push(line);
      continue;
    }
    for (const [day, from, to] of spans) {
      const date = new Date(start);
      date.setDate(start.getDate() + day);
      if (isHoliday(date, holidays)) continue;
      drawing.append(svg('rect', { class: 'open', x: LEFT + day * COLUMN + 6, y: TOP + (from / 60) * HOUR, width: COLUMN - 12, height: ((to - from) / 60) * HOUR, rx: 3, 'data-open': DAYS[day] }));
    }
  }
  const weekEnd = new Date(start);
  weekEnd.setDate(start.getDate() + 7);
  for (const line of closures) {
    const [fromText, untilText] = line.split('/');
    const from = new Date(fromText);
    const until = new Date(untilText);
    if (Number.isNaN(from.getTime()) || Number.isNaN(until.getTime()) || until <= from) {
      bad.push(line);
      continue;
    }
    for (let day = 0; day < 7; day += 1) {
      const dayStart = new Date(start);
      dayStart.setDate(start.getDate() + day);
      const dayEnd = new Date(dayStart);
      dayEnd.setDate(dayStart.getDate() + 1);
      const a = Math.max(from, dayStart);
      const b = Math.min(until, dayEnd);
      if (b <= a) continue;
      drawing.append(svg('rect', { class: 'closed', x: LEFT + day * COLUMN + 6, y: TOP + ((a - dayStart) / 3600000) * HOUR, width: COLUMN - 12, height: Math.max(2, ((b - a) / 3600000) * HOUR), rx: 3, opacity: 0.85 }));
    }
  }
  return element('div', {},
    element('h3', {}, 'This week'),
    drawing,
    element('div', { class: 'legend' }, 'Blue: open (in the schedule’s time zone). Red: holidays and closures (closures in your time zone).'),
    bad.length ? element('div', { class: 'notice error', 'data-testid': 'preview-bad' }, `Not understood: ${bad.join(', ')}`) : null);
}
