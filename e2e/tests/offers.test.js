// Messages consumers leave (AHD-4) in real Chromium: a closed web queue whose rule offers email
// shows "Leave a message" beside its after-hours message; the form keeps what was typed, says
// what is missing, and once sent the message is a ticket in the CRM (no help-center address is
// set). Then an admin sets the rules up on the portal's After hours page: a voicemail rule for
// calls and the help-center address.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { apiSession, launchBrowser, PASSWORD, startCenter, startCustomerSite } from './support.js';

const ARTIFACTS = new URL('../artifacts/', import.meta.url).pathname;
let center;
let site;
let browser;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
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

test('a closed queue offers to leave a message, which becomes a ticket', async () => {
  const admin = await apiSession(center, 'admin');
  const now = Date.now();
  const closure = `${new Date(now - 3600_000).toISOString()}/${new Date(now + 3600_000).toISOString()}`;
  await admin('/api/v1/business-hours', { method: 'POST', body: { name: 'Web closed', scope: { channel: 'web' }, periods: EVERY_DAY, closures: [closure] } });
  const rule = await admin('/api/v1/after-hours/rules/center/web', {
    method: 'PUT',
    body: { enabled: true, action: 'message', messages: [{ text: 'We are closed today.' }], offers: [{ kind: 'email' }] },
  });
  assert.deepEqual(rule.offers, [{ kind: 'email' }], JSON.stringify(rule));

  const consumer = await (await browser.newContext()).newPage();
  await consumer.goto(site.url);
  await consumer.click('[data-testid=open-chat]');
  await consumer.click('button[data-queue="Technical support"]');
  await consumer.locator('[data-testid=after-hours-message]', { hasText: 'We are closed today.' }).waitFor();
  await consumer.click('[data-testid=closed-leave-message]');
  // Sending without a message is refused in the page, and what was typed stays.
  await consumer.fill('[data-testid=leave-email]', 'ada@example.com');
  await consumer.fill('[data-testid=leave-name]', 'Ada Lovelace');
  await consumer.click('[data-testid=leave-send]');
  await consumer.locator('[data-testid=leave-problem]', { hasText: 'Please give your email address and a message.' }).waitFor();
  assert.equal(await consumer.inputValue('[data-testid=leave-email]'), 'ada@example.com');
  await consumer.fill('[data-testid=leave-text]', 'My router blinks red since this morning.');
  assert.equal(await consumer.textContent('[data-testid=leave-problem]'), '', 'typing clears the problem');
  await consumer.screenshot({ path: `${ARTIFACTS}offers-form.png` });
  await consumer.click('[data-testid=leave-send]');
  await consumer.locator('[data-testid=message-left]', { hasText: 'we will answer you at ada@example.com' }).waitFor();
  await consumer.screenshot({ path: `${ARTIFACTS}offers-sent.png` });

  // The message is a ticket in the CRM, with what the consumer wrote.
  let ticket;
  for (let i = 0; i < 100 && !ticket; i += 1) {
    const tickets = await admin('/api/v1/tickets');
    ticket = tickets.find((t) => t.name === 'Message from Ada Lovelace (Technical support)');
    if (!ticket) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(ticket, 'the ticket is made');
  assert.equal(ticket.status, 'open');
  assert.match(ticket.transcript, /My router blinks red since this morning\./);
  assert.deepEqual(await admin('/api/v1/contacts'), [], 'no chat was started');
  await consumer.click('[data-testid=leave-done]');
  await consumer.locator('[data-testid=menu]').waitFor();
});

test('an admin sets the after-hours rules and the help-center address on the portal', async () => {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  await page.goto(`${center.base}/portal/`);
  await page.fill('input[name=username]', 'admin');
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button[type=submit]');
  await page.click('a[href="#/setup/after-hours"]');
  const rules = page.locator('[data-testid=after-hours-rules]');
  await rules.locator('tr[data-rule="center:web"]', { hasText: 'Shown the message, offering to leave a message' }).waitFor();

  // A voicemail rule for calls, with a greeting.
  await page.click('[data-testid=rule-add]');
  const editor = page.locator('[data-testid=rule-editor]');
  await editor.locator('[data-testid=rule-channel]').selectOption('voice');
  await editor.locator('[data-testid=rule-action]').selectOption('voicemail');
  await editor.locator('[data-testid=rule-max-seconds]').fill('90');
  await editor.locator('[data-testid=message-text]').fill('Please leave your name and number after the tone.');
  await page.click('[data-testid=rule-save]');
  await rules.locator('tr[data-rule="center:voice"]', { hasText: 'Voicemail, up to 90 seconds' }).waitFor();
  const admin = await apiSession(center, 'admin');
  const stored = (await admin('/api/v1/after-hours')).rules.find((r) => r.channel === 'voice' && r.queue_id === null);
  assert.equal(stored.action, 'voicemail');
  assert.equal(stored.max_seconds, 90);
  assert.deepEqual(stored.messages, [{ language: null, text: 'Please leave your name and number after the tone.' }]);

  // A forward without a number is refused with the server's message, in the editor.
  await page.click('[data-testid=rule-add]');
  await editor.locator('[data-testid=rule-channel]').selectOption('voice');
  await editor.locator('[data-testid=rule-scope]').selectOption({ label: 'Support' });
  await editor.locator('[data-testid=rule-action]').selectOption('forward');
  await page.click('[data-testid=rule-save]');
  await editor.locator('.notice', { hasText: 'number' }).waitFor();
  await page.click('[data-testid=rule-cancel]');

  // The help-center address: messages are mailed from now on.
  await page.fill('[data-testid=help-email]', 'help@example.com');
  await page.fill('[data-testid=wait-offer-seconds]', '120');
  await page.click('[data-testid=offers-save]');
  await page.locator('[data-testid=offers-delivery]', { hasText: 'mailed to help@example.com' }).waitFor();
  assert.deepEqual(await admin('/api/v1/contact-offers'), { help_email: 'help@example.com', wait_offer_seconds: 120, delivery: 'mail' });
  await page.screenshot({ path: `${ARTIFACTS}after-hours-page.png`, fullPage: true });
});
