// The browser phone end to end: a SIP caller (sipp, PCMA only, echoing what it hears) dials
// the demo number and picks Sales; agent1's adapter in real Chromium with a fake microphone
// rings with the caller's number and the queue, answers over WebRTC (DTLS-SRTP to the
// server's str0m session), hears the whisper before the caller is connected, holds and
// resumes, and hangs up, then wraps up. Audio is checked both ways: the browser's own packets
// come back to it only through the caller's echo, and the call record counts packets on both
// legs. The record ends as answered, hung up by the agent. Then the agent dials a number from
// the adapter: a sipp carrier checks the dial rule's result and the caller id, answers and
// talks. The answered call's ticket is in the portal's Reports > Tickets with its summary and
// wrap-up, and its recording plays there after a TOTP step-up.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { apiSession, FAKE_MEDIA, freePort, launchBrowser, PASSWORD, run, startCenter } from './support.js';

const ARTIFACTS = new URL('../artifacts/', import.meta.url).pathname;
const SCENARIO = new URL('../../crates/switchboard-server/tests/sipp/caller_echo.xml', import.meta.url).pathname;
const CARRIER = new URL('../../crates/switchboard-server/tests/sipp/carrier_out.xml', import.meta.url).pathname;
const DTMF_1 = '/usr/share/sip-tester/dtmf_2833_1.pcap';
const SERVICE = new URL('../../crates/switchboard-server/tests/sipp/emergency_service.xml', import.meta.url).pathname;
let center;
let browser;
let carrierPort;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  carrierPort = await freePort();
  center = await startCenter({ SWITCHBOARD_DEMO_CARRIER: `127.0.0.1:${carrierPort}` });
  browser = await launchBrowser(FAKE_MEDIA);
});

after(async () => {
  await browser?.close();
  await center?.stop();
});

/// The phone element inside the desk's shadow root.
const PHONE = "document.querySelector('sb-agent-desk').shadowRoot.querySelector('sb-phone')";

async function phoneState(page) {
  return page.evaluate(`${PHONE}.dataset.state`);
}

async function waitForState(page, state) {
  await page.waitForFunction(`${PHONE}.dataset.state === ${JSON.stringify(state)}`);
}

async function signIn(context) {
  const agent = await context.newPage();
  await agent.goto(`${center.base}/agent/`);
  await agent.fill('input[name=username]', 'agent1');
  await agent.fill('input[name=password]', PASSWORD);
  await agent.click('button[type=submit]');
  await agent.selectOption('[data-testid=presence]', 'available');
  await agent.waitForFunction(() => document.querySelector('sb-agent-desk').shadowRoot.querySelector('[data-testid=presence]').value === 'available');
  await waitForState(agent, 'idle');
  return agent;
}

/// The TOTP code (RFC 6238: SHA-1, 6 digits, 30 s) of a base32 secret at `seconds`.
function totp(secret, seconds) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(seconds / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const at = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(at) & 0x7fffffff) % 1000000).padStart(6, '0');
}

/// Saves the wrap-up form the phone shows after a call, and returns the stored wrap-up.
async function wrapUp(agent, contact, disposition, note) {
  const form = agent.locator('sb-phone sb-wrap-up [data-testid=wrapup]');
  await form.waitFor();
  await form.locator('[data-testid=disposition]').selectOption(disposition);
  await form.locator('[data-testid=wrapup-note]').fill(note);
  await agent.screenshot({ path: `${ARTIFACTS}phone-wrap-up-${disposition.replace(/\W+/g, '-').toLowerCase()}.png` });
  await form.locator('[data-testid=wrapup-save]').click();
  await agent.locator('sb-phone sb-wrap-up').waitFor({ state: 'detached' });
  const session = await apiSession(center, 'agent1');
  return session(`/api/v1/contacts/${contact}/wrap-up`);
}

test('a caller reaches the browser phone, both hear each other, the agent hangs up', async () => {
  const context = await browser.newContext();
  const agent = await signIn(context);

  // The caller dials the demo number and presses 1 (Sales, agent1's queue).
  const caller = run('sipp', ['-sf', SCENARIO, '-s', '15550100', '-key', 'dtmf', DTMF_1, '-rtp_echo',
    '-i', '127.0.0.1', '-p', String(await freePort()), '-mp', String(await freePort()),
    '-m', '1', '-nostdin', '-timeout', '120', '-timeout_error', '-trace_err', '-default_behaviors', 'none,abortunexp', center.sip]);

  // It rings in the browser, with the caller's number and the queue.
  await waitForState(agent, 'ringing');
  const call = agent.locator('sb-phone [data-testid=call]');
  assert.equal(await call.locator('[data-testid=caller]').textContent(), '15557654321');
  assert.equal(await call.locator('[data-testid=call-queue]').textContent(), 'Sales');
  // The incoming-call tone plays while it rings (the agent's default: "ring", every 4 s).
  await agent.waitForFunction(`Number(${PHONE}.dataset.tonePlays) >= 1`);
  assert.equal(await call.locator('[data-testid=call-kind]').textContent(), 'Inbound call');
  await agent.screenshot({ path: `${ARTIFACTS}phone-ringing.png` });

  // Answer: the browser offers, the server answers with the caller's law only.
  await call.locator('[data-testid=answer]').click();
  await waitForState(agent, 'talking');
  // The whisper (the demo's "Inbound call from Sales") reaches the browser before the caller
  // is connected: sound arrives while the call is not yet answered. The caller only echoes
  // what it hears, and hears nothing of the agent until connected.
  const agentApi = await apiSession(center, 'agent1');
  let whispered = false;
  for (let attempt = 0; attempt < 200 && !whispered; attempt += 1) {
    const [live] = await agentApi('/api/v1/calls/live');
    const heard = await agent.evaluate(`${PHONE}.stats()`);
    if (live?.answered_at) break;
    whispered = heard.totalAudioEnergy > 0;
    if (!whispered) await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(whispered, 'the browser heard the whisper while the caller still waited');
  // Media both ways: the browser sends its microphone, the caller echoes what it receives,
  // and the browser receives it back.
  let stats;
  for (let attempt = 0; attempt < 600; attempt += 1) {
    stats = await agent.evaluate(`${PHONE}.stats()`);
    if (stats.packetsSent > 150 && stats.packetsReceived > 150) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(stats.packetsSent > 150 && stats.packetsReceived > 150, JSON.stringify(stats));
  assert.ok(stats.totalAudioEnergy > 0, `the browser heard sound: ${JSON.stringify(stats)}`);
  assert.equal(stats.codec, 'audio/PCMA', 'the caller offered only PCMA, so the browser talks PCMA: no transcoding');
  // The card shows the recording once it runs (it starts after the whisper).
  await call.locator('[data-testid=recording][data-recording=recording]').waitFor();
  await agent.locator('sb-phone [data-testid=timer]').waitFor();
  await agent.screenshot({ path: `${ARTIFACTS}phone-connected.png` });

  // Hold and resume through the calls API.
  await call.locator('[data-testid=hold]').click();
  await waitForState(agent, 'held');
  await call.locator('[data-testid=hold]').click();
  await agent.waitForFunction(`${PHONE}.dataset.state === 'talking' && !${PHONE}.notice`);

  // The keypad sends DTMF in the media (RFC 4733); the call goes on (sipp cannot tell us it
  // heard the digit, so that is not checked here).
  await call.locator('[data-testid=keypad-toggle]').click();
  await call.locator('[data-testid=keypad] button[data-key="5"]').click();

  // The agent hangs up: the caller gets a BYE and its scenario ends cleanly.
  await call.locator('[data-testid=hangup]').click();
  await waitForState(agent, 'idle');
  const { code, output } = await caller.done;
  assert.equal(code, 0, `sipp failed:\n${output}`);

  // The record: answered by agent1, ended by the agent, packets counted on both legs.
  const admin = await apiSession(center, 'admin');
  let record;
  // Records are written just after the call ends, in batches.
  for (let attempt = 0; attempt < 200 && !record?.ended_at; attempt += 1) {
    if (attempt) await new Promise((r) => setTimeout(r, 50));
    [record] = await admin('/api/v1/calls?limit=1');
  }
  assert.ok(record?.ended_at, 'the call record shows the end');
  const me = (await (await apiSession(center, 'agent1'))('/api/v1/auth/me')).user;
  assert.equal(record.disposition, 'answered');
  assert.equal(record.ended_by, 'agent');
  assert.equal(record.agent_id, me.id);
  assert.equal(record.caller, '15557654321');
  assert.ok(record.rtp.from_agent > 100 && record.rtp.to_agent > 100, JSON.stringify(record.rtp));
  assert.ok(record.rtp.from_caller > 100 && record.rtp.to_caller > 100, JSON.stringify(record.rtp));
  assert.ok(record.whisper_ms > 300, `the whisper's time is on the record: ${record.whisper_ms}`);
  assert.equal(await phoneState(agent), 'idle');

  // The wrap-up form follows the call.
  const saved = await wrapUp(agent, record.contact_id, 'Resolved', 'Asked about delivery times');
  assert.equal(saved.disposition, 'Resolved');
  assert.equal(saved.note, 'Asked about delivery times');
  await context.close();

  // An admin (one of their own, as they turn on two-factor sign-in) finds the call's ticket in
  // the portal, solved with the summary and wrap-up, and plays its recording after giving an
  // authenticator code.
  const made = await (await apiSession(center, 'admin'))('/api/v1/users', {
    method: 'POST', body: { username: 'reviewer', display_name: 'Rita Reviewer', role: 'admin', password: PASSWORD },
  });
  assert.equal(made.username, 'reviewer', JSON.stringify(made));
  const adminContext = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const portal = await adminContext.newPage();
  await portal.goto(`${center.base}/portal/`);
  await portal.fill('input[name=username]', 'reviewer');
  await portal.fill('input[name=password]', PASSWORD);
  await portal.click('button[type=submit]');
  await portal.locator('nav.side a', { hasText: 'Tickets' }).first().click();
  const secret = await portal.evaluate(async () => (await (await fetch('/api/v1/auth/totp/enroll', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json()).secret);
  const confirmed = await portal.evaluate(async (code) => (await fetch('/api/v1/auth/totp/confirm', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) })).status, totp(secret, Date.now() / 1000));
  assert.equal(confirmed, 204, 'two-factor sign-in turned on');
  const row = portal.locator(`[data-testid=ticket-list] tr[data-ticket]`, { hasText: '15557654321' }).first();
  // Solved by the wrap-up, its recording on the built-in CRM's ticket (both are jobs).
  const ready = row.locator('.tag[data-state=attached]');
  for (let attempt = 0; attempt < 100; attempt += 1) {
    await portal.locator('button', { hasText: 'Refresh' }).click();
    if (await row.locator('.tag', { hasText: 'Solved' }).count() && await ready.count()) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await row.locator('.tag', { hasText: 'Solved' }).waitFor();
  await ready.waitFor();
  assert.equal(await row.locator('td').nth(1).textContent(), 'Call');
  await row.click();
  const text = await portal.locator('[data-testid=ticket-text]').textContent();
  assert.match(text, /^Phone call from 15557654321 to 15550100\nQueue: Sales\n/);
  assert.match(text, /Disposition: Resolved\nNote: Asked about delivery times\nRecordings: 1$/);
  await portal.locator('ul.uploads [data-state=attached]').waitFor();
  // Without a fresh second factor the server asks for one; the code plays it.
  await portal.locator('[data-testid=play]').click();
  await portal.locator('[data-testid=step-up-code]').fill(totp(secret, Date.now() / 1000 + 30));
  await portal.locator('ul.uploads form.step-up button[type=submit]').click();
  const audio = portal.locator('[data-testid=recording-audio]');
  await audio.waitFor();
  await portal.waitForFunction(() => document.querySelector('[data-testid=recording-audio]').readyState >= 1);
  const seconds = await audio.evaluate((node) => node.duration);
  assert.ok(seconds > 1 && seconds < 120, `the recording plays: ${seconds} s`);
  await portal.screenshot({ path: `${ARTIFACTS}portal-ticket-recording.png` });
  await adminContext.close();
});

test('the agent dials a number from the adapter, talks, hangs up and wraps up', async () => {
  const context = await browser.newContext();
  const agent = await signIn(context);
  // The carrier's side: insists on 5551234 (the outside-line 9 dropped by the dial rule) and
  // the demo's caller id, answers and plays speech.
  const carrier = run('sipp', ['-sf', CARRIER, '-i', '127.0.0.1', '-p', String(carrierPort), '-mp', String(await freePort()),
    '-m', '1', '-nostdin', '-timeout', '120', '-timeout_error', '-trace_err']);
  const dialer = agent.locator('sb-phone [data-testid=dialer]');
  // A number the policy refuses says why before anything is dialled.
  await dialer.locator('[data-testid=dial-number]').fill('9011 44 20 7946 0000');
  await agent.waitForFunction(`${PHONE}.shadowRoot.querySelector('[data-testid=dial-check]').classList.contains('refused')`);
  await dialer.locator('[data-testid=dial-number]').fill('9 555 1234');
  await agent.waitForFunction(`${PHONE}.shadowRoot.querySelector('[data-testid=dial-check]').textContent.includes('national')`);
  await agent.screenshot({ path: `${ARTIFACTS}phone-dialer.png` });
  await dialer.locator('[data-testid=dial]').click();
  // The adapter answers its own call at once, the number rings, then answers.
  await waitForState(agent, 'talking');
  const call = agent.locator('sb-phone [data-testid=call]');
  assert.equal(await call.locator('[data-testid=call-kind]').textContent(), 'Outbound call');
  assert.equal(await call.locator('[data-testid=caller]').textContent(), '95551234');
  let stats;
  for (let attempt = 0; attempt < 400; attempt += 1) {
    stats = await agent.evaluate(`${PHONE}.stats()`);
    if (stats.packetsReceived > 100 && stats.totalAudioEnergy > 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(stats.packetsReceived > 100 && stats.totalAudioEnergy > 0, `the agent hears the number: ${JSON.stringify(stats)}`);
  await agent.screenshot({ path: `${ARTIFACTS}phone-outbound.png` });
  await call.locator('[data-testid=hangup]').click();
  const { code, output } = await carrier.done;
  assert.equal(code, 0, `the carrier saw the wrong number or caller id, or no BYE:\n${output}`);

  const admin = await apiSession(center, 'admin');
  let record;
  for (let attempt = 0; attempt < 200 && !record?.ended_at; attempt += 1) {
    if (attempt) await new Promise((r) => setTimeout(r, 50));
    [record] = await admin('/api/v1/calls?limit=1');
  }
  assert.equal(record.direction, 'outbound');
  assert.equal(record.did, '95551234');
  assert.equal(record.disposition, 'answered');
  assert.equal(record.ended_by, 'agent');
  const saved = await wrapUp(agent, record.contact_id, 'Sale made', 'Ordered the blue one');
  assert.equal(saved.disposition, 'Sale made');
  await context.close();
});

// EMG-5: during an emergency call the adapter is the call alone. The agent dials 911 from the
// dialer; the emergency service (sipp behind the demo carrier, insisting on the callback
// number, the location and the multipart body) answers and speaks; the page shows the alert,
// the microphone and End call, and nothing else: no chats, no presence menu, no transfer or
// hold. After End call the desk is back and presence returns to what it was.
test('an emergency call takes over the adapter until it ends', async () => {
  const context = await browser.newContext();
  const agent = await signIn(context);
  const service = run('sipp', ['-sf', SERVICE, '-i', '127.0.0.1', '-p', String(carrierPort), '-mp', String(await freePort()),
    '-m', '1', '-nostdin', '-timeout', '120', '-timeout_error', '-trace_err']);
  const dialer = agent.locator('sb-phone [data-testid=dialer]');
  await dialer.locator('[data-testid=dial-number]').fill('911');
  await agent.waitForFunction(`${PHONE}.shadowRoot.querySelector('[data-testid=dial-check]').textContent.includes('emergency')`);
  await dialer.locator('[data-testid=dial]').click();
  await waitForState(agent, 'talking');
  const call = agent.locator('sb-phone [data-testid=call]');
  assert.equal(await call.getAttribute('data-emergency'), 'outgoing');
  assert.match(await call.locator('[data-testid=emergency-alert]').textContent(), /Emergency call in progress/);
  assert.equal(await call.locator('[data-testid=caller]').textContent(), '911');
  assert.match(await call.locator('[data-testid=callback-number]').textContent(), /^Your callback number: 1555019\d$/);
  const buttons = await call.locator('button').evaluateAll((all) => all.map((b) => b.dataset.testid));
  assert.deepEqual(buttons.sort(), ['hangup', 'mute']);
  const desk = agent.locator('sb-agent-desk');
  await desk.locator('[data-testid=emergency-view]').waitFor();
  assert.equal(await desk.locator('[data-testid=presence]').count(), 0, 'no presence menu to change');
  assert.equal(await desk.locator('[data-testid=chat-list]').count(), 0, 'no chats to click');
  assert.equal(await desk.locator('[data-testid=presence-locked]').textContent(), 'Do not disturb');
  let stats;
  for (let attempt = 0; attempt < 400; attempt += 1) {
    stats = await agent.evaluate(`${PHONE}.stats()`);
    if (stats.packetsReceived > 100 && stats.totalAudioEnergy > 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(stats.packetsReceived > 100 && stats.totalAudioEnergy > 0, `the agent hears the service: ${JSON.stringify(stats)}`);
  await agent.screenshot({ path: `${ARTIFACTS}phone-emergency.png` });
  await call.locator('[data-testid=hangup]').click();
  const { code, output } = await service.done;
  assert.equal(code, 0, `the emergency service saw the wrong number, callback or location, or no BYE:\n${output}`);
  await waitForState(agent, 'idle');
  await agent.waitForFunction(() => document.querySelector('sb-agent-desk').shadowRoot.querySelector('[data-testid=presence]')?.value === 'available');
  assert.equal(await agent.locator('sb-phone sb-wrap-up').count(), 0, 'an emergency call has no wrap-up');
  await context.close();
});

