// Scheduled callbacks in real Chromium: a closed web queue offers a scheduled call, and the
// widget shows the next open slots of the voice queue the callback enters, in the center's
// time (New York), matching that queue's hours across the change to summer time on Sunday
// 14 March 2027 (09:00 local stays 09:00 while UTC moves from 14:00 to 13:00); the visitor
// books one with their number and sees the confirmation, and the callback is stored.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiSession, launchBrowser, startCenter, startCustomerSite } from './support.js';

let center;
let site;
let browser;

before(async () => {
  center = await startCenter();
  site = await startCustomerSite(center);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await site?.stop();
  await center?.stop();
});

const EVERY_DAY = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => `${d} 00:00-00:00`);

test('the widget offers slots that follow the queue hours across a DST change and books one', async () => {
  const admin = await apiSession(center, 'admin');
  const sales = (await admin('/api/v1/queues?channel=voice')).find((q) => q.name === 'Sales').id;
  // The web channel is closed now.
  const now = Date.now();
  const closure = `${new Date(now - 3600_000).toISOString()}/${new Date(now + 3600_000).toISOString()}`;
  await admin('/api/v1/business-hours', { method: 'POST', body: { name: 'Web closed', scope: { channel: 'web' }, periods: EVERY_DAY, closures: [closure] } });
  // Sales takes calls on weekend mornings only, and not before Saturday 13 March 2027.
  const hours = await admin('/api/v1/business-hours', {
    method: 'POST',
    body: {
      name: 'Sales callbacks', scope: { queue_id: sales }, time_zone: 'America/New_York',
      periods: ['sat 09:00-10:00', 'sun 09:00-10:00'],
      closures: [`${new Date(now - 3600_000).toISOString()}/2027-03-13T05:00:00Z`],
    },
  });
  assert.ok(hours.id, JSON.stringify(hours));
  const rule = await admin('/api/v1/after-hours/rules/center/web', {
    method: 'PUT',
    body: { enabled: true, action: 'message', messages: [{ text: 'We are closed. We can call you back.' }], offers: [{ kind: 'scheduled_call', queue_id: sales }] },
  });
  assert.deepEqual(rule.offers, [{ kind: 'scheduled_call', queue_id: sales }], JSON.stringify(rule));

  const expected = ['2027-03-13T14:00:00Z', '2027-03-13T14:30:00Z', '2027-03-14T13:00:00Z', '2027-03-14T13:30:00Z'];
  const offered = await (await fetch(`${center.base}/api/v1/widget/queues/${sales}/slots`)).json();
  assert.deepEqual(offered.slots.slice(0, 4).map((s) => new Date(s).toISOString().replace('.000', '')), expected, JSON.stringify(offered));

  const page = await (await browser.newContext({ locale: 'en-GB', timezoneId: 'Europe/Paris' })).newPage();
  await page.goto(site.url);
  await page.click('[data-testid=open-chat]');
  await page.click('button[data-queue="Technical support"]');
  await page.locator('[data-testid=after-hours-message]', { hasText: 'We are closed. We can call you back.' }).waitFor();
  await page.locator('[data-testid=callback-offer]').waitFor();
  const options = await page.locator('[data-testid=callback-slot] option').evaluateAll((nodes) => nodes.map((n) => ({ value: n.value, text: n.textContent })));
  assert.deepEqual(options.slice(0, 4).map((o) => new Date(o.value).toISOString().replace('.000', '')), expected);
  // Shown in New York time, whatever the visitor's own zone: 09:00 and 09:30 on both days.
  assert.deepEqual(options.slice(0, 4).map((o) => o.text), ['Sat 13 Mar, 09:00', 'Sat 13 Mar, 09:30', 'Sun 14 Mar, 09:00', 'Sun 14 Mar, 09:30']);
  assert.match(await page.locator('[data-testid=callback-offer]').textContent(), /America\/New York|New York/);

  // A number without its country code is refused with the reason; then it is booked.
  await page.selectOption('[data-testid=callback-slot]', options[2].value);
  await page.fill('[data-testid=callback-number]', '06 12 34 56 78');
  await page.click('[data-testid=callback-book]');
  await page.locator('[data-testid=callback-error]').waitFor();
  await page.fill('[data-testid=callback-number]', '+33 6 12 34 56 78');
  await page.click('[data-testid=callback-book]');
  const confirmed = page.locator('[data-testid=callback-confirmed]');
  await confirmed.waitFor();
  assert.match(await confirmed.textContent(), /\+33612345678 on Sun 14 Mar, 09:00/);
  const stored = await admin('/api/v1/callbacks?status=scheduled');
  assert.equal(stored.length, 1, JSON.stringify(stored));
  assert.equal(stored[0].number, '+33612345678');
  assert.equal(new Date(stored[0].slot).toISOString(), '2027-03-14T13:00:00.000Z');
  assert.equal(stored[0].queue_id, sales);
});
