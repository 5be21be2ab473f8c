// Web chat end to end in real Chromium: a consumer on a customer's site and an agent in the
// adapter chat, exchange an attachment, the consumer reloads mid-chat and loses nothing, the
// chat ends and the ticket holds the transcript. Then presence: the adapter's menu shows the
// status the server holds (a custom one too) and choosing available clears it; signing out
// sends the chat back to the queue, where the widget shows its place; the agent who accepts
// it joins.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { apiSession, launchBrowser, PASSWORD, PNG, startCenter, startCustomerSite } from './support.js';

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

async function messageTexts(page) {
  return page.locator('[data-testid=messages] .msg').evaluateAll((nodes) => nodes.map((n) => (n.querySelector('.text') ?? n).textContent));
}

test('a consumer and an agent chat in the browser and nothing is lost', async () => {
  // The agent signs in to the adapter and becomes available.
  const agentContext = await browser.newContext();
  const agent = await agentContext.newPage();
  await agent.goto(`${center.base}/agent/`);
  await agent.fill('input[name=username]', 'agent1');
  await agent.fill('input[name=password]', PASSWORD);
  await agent.click('button[type=submit]');
  await agent.selectOption('[data-testid=presence]', 'available');
  await agent.waitForFunction(() => document.querySelector('sb-agent-desk').shadowRoot.querySelector('[data-testid=presence]').value === 'available');

  // The consumer opens the widget on the customer's site (another origin) and picks a queue.
  const consumerContext = await browser.newContext();
  const consumer = await consumerContext.newPage();
  await consumer.goto(site.url);
  await consumer.click('[data-testid=open-chat]');
  await consumer.click('button[data-queue="Billing > Refunds"]');

  // The chat rings on the agent's desk until accepted; the consumer waits until then.
  await agent.locator('[data-testid=chat-list] .item.ringing').waitFor();
  await agent.waitForFunction(() => Number(document.querySelector('sb-agent-desk').dataset.tonePlays || 0) >= 1);
  assert.equal(await consumer.getByTestId('status').textContent(), 'Waiting for an agent…');
  await agent.click('[data-testid=accept]');
  await agent.locator('[data-testid=chat-list] .item.ringing').waitFor({ state: 'detached' });
  await consumer.locator('[data-testid=status]', { hasText: 'Chatting with Alex Agent' }).waitFor();

  // Messages both ways.
  await consumer.fill('[data-testid=input]', 'Hello, my refund is late');
  await consumer.click('[data-testid=send]');
  await agent.locator('.msg.consumer', { hasText: 'Hello, my refund is late' }).waitFor();
  await agent.fill('[data-testid=reply]', 'Sorry! Let me check that.');
  await agent.click('[data-testid=send]');
  await consumer.locator('.msg.agent', { hasText: 'Sorry! Let me check that.' }).waitFor();

  // The consumer attaches a PNG; the agent sees the decoded image.
  await consumer.setInputFiles('[data-testid=file]', { name: 'receipt.png', mimeType: 'image/png', buffer: PNG });
  const image = agent.locator('.msg.consumer img[data-attachment]');
  await image.waitFor();
  await agent.waitForFunction(() => {
    const img = document.querySelector('sb-agent-desk').shadowRoot.querySelector('.msg.consumer img[data-attachment]');
    return img && img.complete && img.naturalWidth === 2;
  });
  // A file the widget refuses to pretend about: a .png that is not one.
  await consumer.setInputFiles('[data-testid=file]', { name: 'fake.png', mimeType: 'image/png', buffer: Buffer.from('MZ not an image') });
  await consumer.locator('[data-testid=notice]', { hasText: 'not a png' }).waitFor();

  // The consumer reloads mid-chat and comes back to every message, in order.
  await consumer.fill('[data-testid=input]', 'Are you still there?');
  await consumer.click('[data-testid=send]');
  await agent.locator('.msg.consumer', { hasText: 'Are you still there?' }).waitFor();
  const before = await messageTexts(consumer);
  await consumer.reload();
  await consumer.click('[data-testid=open-chat]');
  await consumer.locator('.msg.consumer', { hasText: 'Are you still there?' }).waitFor();
  await consumer.locator('.msg.consumer img').waitFor();
  const afterReload = await messageTexts(consumer);
  assert.deepEqual(afterReload, before);
  assert.deepEqual(afterReload.filter((t) => t.startsWith('Hello')), ['Hello, my refund is late'], 'shown once');
  assert.equal(await consumer.getByTestId('center-name').textContent(), 'Switchboard Demo');
  assert.ok(await consumer.locator('[data-testid=messages] .msg.consumer time').count() >= 1, 'messages show their time');
  await consumer.screenshot({ path: `${ARTIFACTS}consumer.png` });
  await agent.screenshot({ path: `${ARTIFACTS}agent.png` });

  // The agent ends the chat; the consumer is told; the ticket holds the transcript.
  await agent.click('[data-testid=end]');
  await consumer.locator('[data-testid=status]', { hasText: 'Chat ended' }).waitFor();
  // The agent wraps the chat up: a disposition and a note, stored on the contact.
  const wrap = agent.locator('sb-wrap-up [data-testid=wrapup]');
  await wrap.locator('[data-testid=disposition]').selectOption('Resolved');
  await wrap.locator('[data-testid=wrapup-note]').fill('Refund resent');
  await agent.screenshot({ path: `${ARTIFACTS}agent-chat-wrap-up.png` });
  await wrap.locator('[data-testid=wrapup-save]').click();
  // The form goes only once the wrap-up is stored (a refusal stays in it).
  await agent.locator('sb-wrap-up').waitFor({ state: 'detached' });
  const admin = await apiSession(center, 'admin');
  let ticket;
  for (let attempt = 0; attempt < 100; attempt += 1) {
    [ticket] = await admin('/api/v1/tickets');
    if (ticket?.status === 'solved') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(ticket.status, 'solved');
  assert.match(ticket.name, /^Web User - \d\d\/\d\d \d\d:\d\d$/);
  assert.match(ticket.transcript, /Hello, my refund is late/);
  assert.match(ticket.transcript, /Alex Agent: Sorry! Let me check that\./);
  assert.match(ticket.transcript, /\[file: receipt\.png \(image\/png/);
  assert.equal(ticket.attachments.length, 1);
  await consumerContext.close();
  await agentContext.close();
});

/// Calls the API as `username` (a session of its own).
async function apiAs(username) {
  const login = await fetch(`${center.base}/api/v1/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: PASSWORD }),
  });
  const cookie = login.headers.get('set-cookie').split(';')[0];
  const me = (await login.json()).user;
  const call = async (method, path, body) => {
    const response = await fetch(`${center.base}${path}`, {
      method, headers: { cookie, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  };
  return { me, call };
}

test('the presence menu tells the truth, signing out hands the chat back, the widget shows its place', async () => {
  const admin = await apiAs('admin');
  const bea = await apiAs('agent2');
  const presenceOf = async () => (await admin.call('GET', '/api/v1/agents')).body.find((a) => a.user_id === bea.me.id).presence;
  const desk = (page) => page.evaluate(() => document.querySelector('sb-agent-desk').shadowRoot.querySelector('[data-testid=presence]').value);

  const agentContext = await browser.newContext();
  const agent = await agentContext.newPage();
  const signIn = async () => {
    await agent.fill('input[name=username]', 'agent2');
    await agent.fill('input[name=password]', PASSWORD);
    await agent.click('button[type=submit]');
    await agent.getByTestId('presence').waitFor();
  };
  await agent.goto(`${center.base}/agent/`);
  await signIn();

  // A supervisor sets a custom status (as a missed call does): the menu shows it, by name.
  assert.equal((await admin.call('POST', '/api/v1/custom-statuses', { name: 'Missed call' })).status, 201);
  assert.equal((await admin.call('PUT', `/api/v1/agents/${bea.me.id}/presence`, { presence: 'custom:Missed call' })).status, 200);
  await agent.waitForFunction(() => document.querySelector('sb-agent-desk').shadowRoot.querySelector('[data-testid=presence]').value === 'custom:Missed call');
  assert.equal(await agent.locator('[data-testid=presence] option:checked').textContent(), 'Missed call');
  await agent.screenshot({ path: `${ARTIFACTS}presence-custom.png` });

  // Choosing available clears it, on the server too.
  await agent.selectOption('[data-testid=presence]', 'available');
  for (let attempt = 0; attempt < 50 && (await presenceOf()) !== 'available'; attempt += 1) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await presenceOf(), 'available');
  assert.equal(await desk(agent), 'available');

  // A consumer's chat is offered to Bea; she signs out before accepting it.
  const consumerContext = await browser.newContext();
  const consumer = await consumerContext.newPage();
  await consumer.goto(site.url);
  await consumer.click('[data-testid=open-chat]');
  await consumer.click('button[data-queue="Technical support"]');
  await agent.locator('[data-testid=chat-list] .item.ringing').waitFor();
  await consumer.fill('[data-testid=input]', 'My router blinks red');
  await consumer.click('[data-testid=send]');
  await agent.locator('.msg.consumer', { hasText: 'My router blinks red' }).waitFor();
  const sessionCookie = (await agentContext.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  await agent.click('[data-testid=sign-out]');
  await agent.locator('.login .notice', { hasText: 'You have signed out.' }).waitFor();
  await agent.screenshot({ path: `${ARTIFACTS}signed-out.png` });
  assert.equal(await presenceOf(), 'offline');
  // The session is deleted on the server: its cookie no longer signs anyone in.
  assert.equal((await fetch(`${center.base}/api/v1/auth/me`, { headers: { cookie: sessionCookie } })).status, 401);

  // The chat waits again, first in line; the widget says so.
  await consumer.locator('[data-testid=queue-position]', { hasText: 'You are next in the queue' }).waitFor();
  await consumer.screenshot({ path: `${ARTIFACTS}widget-queue.png` });

  // Bea signs in again and takes it: the consumer sees her join and type; nothing they wrote is lost.
  await signIn();
  await agent.selectOption('[data-testid=presence]', 'available');
  await agent.locator('[data-testid=chat-list] .item.ringing').waitFor();
  await agent.click('[data-testid=accept]');
  await consumer.locator('[data-testid=status]', { hasText: 'Chatting with Bea Agent' }).waitFor();
  await consumer.locator('.msg.system', { hasText: 'Bea Agent joined the chat' }).waitFor();
  assert.equal(await consumer.getByTestId('queue-position').count(), 0);
  await agent.locator('.msg.consumer', { hasText: 'My router blinks red' }).waitFor();
  await agent.locator('[data-testid=reply]').pressSequentially('Let me look');
  await consumer.locator('[data-testid=typing]', { hasText: 'Agent is typing' }).waitFor();
  await consumer.screenshot({ path: `${ARTIFACTS}widget-joined.png` });
  await consumerContext.close();
  await agentContext.close();
});
