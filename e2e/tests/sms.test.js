// The SMS channel in real Chromium: a text arrives as Twilio sends it (form-encoded, signed with
// X-Twilio-Signature), the agent's adapter offers the conversation like a chat, the agent
// accepts it, reads the text and replies; the reply leaves through the connector (the demo's
// log-only one), listed as sent.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, test } from 'node:test';
import { apiSession, launchBrowser, PASSWORD, startCenter } from './support.js';

const TOKEN = 'e2e-twilio-auth-token-0123456789';
let center;
let browser;

before(async () => {
  center = await startCenter();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await center?.stop();
});

/// Posts an inbound SMS webhook signed as Twilio documents: HMAC-SHA1 under the auth token over
/// the URL followed by each parameter sorted by name, name then value, in base64.
async function textArrives(from, body, sid) {
  const url = `${center.base}/sms/v1/twilio/inbound`;
  const params = { AccountSid: 'AC0123456789abcdef0123456789abcdef', Body: body, From: from, MessageSid: sid, NumMedia: '0', To: '+15550001111' };
  const signed = Object.keys(params).sort().reduce((text, name) => text + name + params[name], url);
  const signature = createHmac('sha1', TOKEN).update(signed).digest('base64');
  const answer = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature },
    body: new URLSearchParams(params).toString(),
  });
  assert.equal(answer.status, 200);
  assert.match(await answer.text(), /<Response\/>/);
}

test('an agent answers an SMS conversation from the adapter', async () => {
  const admin = await apiSession(center, 'admin');
  const settings = await admin('/api/v1/sms/settings', { method: 'PUT', body: { connector: 'log', auth_token: TOKEN, public_url: center.base } });
  assert.equal(settings.auth_token_set, true);

  // Bea serves the demo's SMS queue, "Text us".
  const context = await browser.newContext();
  const agent = await context.newPage();
  await agent.goto(`${center.base}/agent/`);
  await agent.fill('input[name=username]', 'agent2');
  await agent.fill('input[name=password]', PASSWORD);
  await agent.click('button[type=submit]');
  await agent.selectOption('[data-testid=presence]', 'available');
  await agent.waitForFunction(() => document.querySelector('sb-agent-desk').shadowRoot.querySelector('[data-testid=presence]').value === 'available');

  await textArrives('+15557654321', 'Hi, where is my parcel?', 'SM000000000000000000000000000000e1');
  await agent.locator('[data-testid=chat-list] .item.ringing').waitFor();
  await agent.click('[data-testid=accept]');
  await agent.locator('.msg.consumer', { hasText: 'Hi, where is my parcel?' }).waitFor();
  await agent.fill('[data-testid=reply]', 'It arrives tomorrow.');
  await agent.click('[data-testid=send]');
  await agent.locator('.msg.agent', { hasText: 'It arrives tomorrow.' }).waitFor();

  // The next text joins the same conversation on the desk.
  await textArrives('+15557654321', 'Thank you!', 'SM000000000000000000000000000000e2');
  await agent.locator('.msg.consumer', { hasText: 'Thank you!' }).waitFor();

  let sent;
  for (let attempt = 0; attempt < 100 && !sent; attempt += 1) {
    const list = await admin('/api/v1/sms/messages');
    sent = list.find((m) => m.body === 'It arrives tomorrow.' && m.status === 'sent');
    if (!sent) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(sent, 'the reply went out through the connector');
  assert.equal(sent.to, '+15557654321');
  assert.equal(sent.purpose, 'reply');
  await context.close();
});
