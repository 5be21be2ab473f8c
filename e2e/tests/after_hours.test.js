// After hours in real Chromium, closed by a closure over the present moment (the issue's
// "closed for the whole day"): the widget shows a closed queue's after-hours message instead
// of starting a chat, and the agent adapter's transfer menu lists exactly the queues the
// server allows outside hours (AHD-4, AHD-6).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiSession, launchBrowser, PASSWORD, startCenter, startCustomerSite } from './support.js';

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

test('a closed queue shows its message and transfers follow the hours', async () => {
  const admin = await apiSession(center, 'admin');
  const queues = await admin('/api/v1/queues?channel=web');
  const byPath = (path) => queues.find((q) => q.path === path).id;
  // The web channel is closed now by a closure around this moment; Refunds keeps its own
  // hours, open every day all day.
  const now = Date.now();
  const closure = `${new Date(now - 3600_000).toISOString()}/${new Date(now + 3600_000).toISOString()}`;
  const closed = await admin('/api/v1/business-hours', { method: 'POST', body: { name: 'Web closed', scope: { channel: 'web' }, periods: EVERY_DAY, closures: [closure] } });
  assert.ok(closed.id, JSON.stringify(closed));
  await admin('/api/v1/business-hours', { method: 'POST', body: { name: 'Refunds always', scope: { queue_id: byPath('Billing > Refunds') }, periods: EVERY_DAY } });
  const rule = await admin('/api/v1/after-hours/rules/center/web', { method: 'PUT', body: { enabled: true, action: 'message', messages: [{ text: 'We are closed today. Please write to us tomorrow.' }] } });
  assert.equal(rule.action, 'message', JSON.stringify(rule));
  await admin('/api/v1/after-hours/settings', { method: 'PUT', body: { allow_transfers: true } });

  // The consumer asks for Technical support: closed, so the widget shows the message.
  const consumerContext = await browser.newContext();
  const consumer = await consumerContext.newPage();
  await consumer.goto(site.url);
  await consumer.click('[data-testid=open-chat]');
  await consumer.click('button[data-queue="Technical support"]');
  await consumer.locator('[data-testid=after-hours-message]', { hasText: 'We are closed today. Please write to us tomorrow.' }).waitFor();
  assert.equal(await consumer.locator('[data-testid=menu]').count(), 0);
  assert.deepEqual(await admin('/api/v1/contacts'), []);

  // Back to the menu, then Refunds, which is open: a chat starts and reaches agent1.
  const agentContext = await browser.newContext();
  const agent = await agentContext.newPage();
  await agent.goto(`${center.base}/agent/`);
  await agent.fill('input[name=username]', 'agent1');
  await agent.fill('input[name=password]', PASSWORD);
  await agent.click('button[type=submit]');
  await agent.selectOption('[data-testid=presence]', 'available');
  await agent.waitForFunction(() => document.querySelector('sb-agent-desk').shadowRoot.querySelector('[data-testid=presence]').value === 'available');
  await consumer.click('[data-testid=closed-back]');
  await consumer.click('button[data-queue="Billing > Refunds"]');
  await agent.locator('[data-testid=chat-list] .item.ringing').waitFor();
  await agent.click('[data-testid=accept]');

  // The transfer menu, with the setting on: Refunds (open), Invoices (closed, but agent1 is
  // online for it) and Technical support (closed, but the center's web rule deflects it).
  const options = async () => agent.locator('[data-testid=transfer] option').evaluateAll((nodes) => nodes.map((n) => n.textContent).filter((t) => t !== 'Transfer to…'));
  const targets = (await admin('/api/v1/transfer-targets?channel=web')).map((t) => `${t.name}:${t.open}`).sort();
  assert.deepEqual(targets, ['Invoices:false', 'Refunds:true', 'Technical support:false']);
  assert.deepEqual((await options()).sort(), ['Billing > Invoices (after hours)', 'Billing > Refunds', 'Technical support (after hours)']);

  // Without the setting only the open queue is offered (read again when the next chat comes).
  await admin('/api/v1/after-hours/settings', { method: 'PUT', body: { allow_transfers: false } });
  const second = await (await browser.newContext()).newPage();
  await second.goto(site.url);
  await second.click('[data-testid=open-chat]');
  await second.click('button[data-queue="Billing > Refunds"]');
  await agent.waitForFunction(() => document.querySelector('sb-agent-desk').shadowRoot.querySelectorAll('[data-testid=chat-list] .item').length === 2);
  await agent.waitForFunction(() => [...document.querySelector('sb-agent-desk').shadowRoot.querySelectorAll('[data-testid=transfer] option')].length === 2);
  assert.deepEqual(await options(), ['Billing > Refunds']);
});
