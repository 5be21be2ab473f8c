// The browser phone end to end: a SIP caller (sipp, PCMA only, echoing what it hears) dials
// the demo number and picks Sales; agent1's adapter in real Chromium with a fake microphone
// rings with the caller's number and the queue, answers over WebRTC (DTLS-SRTP to the
// server's str0m session), holds and resumes, and hangs up. Audio is checked both ways: the
// browser's own packets come back to it only through the caller's echo, and the call record
// counts packets on both legs. The record ends as answered, hung up by the agent.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { apiSession, FAKE_MEDIA, freePort, launchBrowser, PASSWORD, run, startCenter } from './support.js';

const ARTIFACTS = new URL('../artifacts/', import.meta.url).pathname;
const SCENARIO = new URL('../../crates/switchboard-server/tests/sipp/caller_echo.xml', import.meta.url).pathname;
const DTMF_1 = '/usr/share/sip-tester/dtmf_2833_1.pcap';
let center;
let browser;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  center = await startCenter();
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

test('a caller reaches the browser phone, both hear each other, the agent hangs up', async () => {
  const context = await browser.newContext();
  const agent = await context.newPage();
  await agent.goto(`${center.base}/agent/`);
  await agent.fill('input[name=username]', 'agent1');
  await agent.fill('input[name=password]', PASSWORD);
  await agent.click('button[type=submit]');
  await agent.selectOption('[data-testid=presence]', 'available');
  await agent.waitForFunction(() => document.querySelector('sb-agent-desk').shadowRoot.querySelector('[data-testid=presence]').value === 'available');
  await waitForState(agent, 'idle');

  // The caller dials the demo number and presses 1 (Sales, agent1's queue).
  const caller = run('sipp', ['-sf', SCENARIO, '-s', '15550100', '-key', 'dtmf', DTMF_1, '-rtp_echo',
    '-i', '127.0.0.1', '-p', String(await freePort()), '-mp', String(await freePort()),
    '-m', '1', '-nostdin', '-timeout', '120', '-timeout_error', '-trace_err', '-default_behaviors', 'none,abortunexp', center.sip]);

  // It rings in the browser, with the caller's number and the queue.
  await waitForState(agent, 'ringing');
  const call = agent.locator('sb-phone [data-testid=call]');
  assert.equal(await call.locator('[data-testid=caller]').textContent(), '15557654321');
  assert.equal(await call.locator('[data-testid=call-queue]').textContent(), 'Sales');
  await agent.screenshot({ path: `${ARTIFACTS}phone-ringing.png` });

  // Answer: the browser offers, the server answers with the caller's law only.
  await call.locator('[data-testid=answer]').click();
  await waitForState(agent, 'talking');
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
  assert.equal(await phoneState(agent), 'idle');
  await context.close();
});
