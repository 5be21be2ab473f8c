// Monitoring from the portal in real Chromium (MON-1, MON-2, MON-5): a sipp caller who
// speaks, then falls silent, is answered on agent1's browser phone; the supervisor opens the
// call's details from Live > Calls and listens in the browser (the portal's own phone, the
// adapter's WebRTC leg), and so does the admin at the same time. What reached each page is
// measured with getStats: with the agent muted, sound while the caller speaks (the caller is
// heard); once the caller is silent, sound again when the agent unmutes (the agent is heard).
// Then, both parties quiet, the supervisor coaches: the agent hears them and the admin does
// not; they barge: the agent still hears them. Meanwhile the agent's adapter receives no
// frame at all, and the caller, a strict sipp scenario that fails on any message it does not
// expect, ends cleanly: neither party can tell.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { FAKE_MEDIA, freePort, launchBrowser, PASSWORD, run, startCenter } from './support.js';

const ARTIFACTS = new URL('../artifacts/', import.meta.url).pathname;
const SCENARIO = new URL('../../crates/switchboard-server/tests/sipp/caller_speaks.xml', import.meta.url).pathname;
const DTMF_1 = '/usr/share/sip-tester/dtmf_2833_1.pcap';
const SPEECH = '/usr/share/sip-tester/g711a.pcap';
const PHONE = "document.querySelector('sb-agent-desk').shadowRoot.querySelector('sb-phone')";
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

/// Polls `read` every 100 ms until `done(value)`, for at most `seconds`; returns the last value.
async function until(read, done, seconds, what) {
  let value;
  for (let attempt = 0; attempt < seconds * 10; attempt += 1) {
    value = await read();
    if (done(value)) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${what}: ${JSON.stringify(value)}`);
}

/// What the portal page's monitor leg has received (getStats).
function heard(page) {
  return page.evaluate(() => import('/portal/monitor.js').then((m) => m.monitoring.stats()));
}

async function portal(username) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${center.base}/portal/#/live/calls`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button[type=submit]');
  await page.locator('[data-testid=live-status]', { hasText: 'Live' }).waitFor();
  return page;
}

/// Opens the connected call's details and listens in this browser until the leg is up.
async function listen(page) {
  await page.click('[data-testid=calls-connected-tab]');
  await page.locator('[data-testid=calls-connected] tr[data-call] [data-testid=details]').click();
  const details = page.locator('[data-testid=call-details]');
  await details.locator('[data-testid=details-state]', { hasText: 'talking' }).waitFor();
  await details.locator('[data-testid=details-listen]').click();
  await details.locator('[data-testid=details-monitoring][data-state=connected]').waitFor();
  return details;
}

test('supervisors listen from the portal and hear both parties; neither party can tell', async () => {
  // agent1's adapter, every frame it receives noted.
  const agentContext = await browser.newContext();
  const agent = await agentContext.newPage();
  const frames = [];
  agent.on('websocket', (socket) => socket.on('framereceived', (frame) => frames.push(String(frame.payload))));
  await agent.goto(`${center.base}/agent/`);
  await agent.fill('input[name=username]', 'agent1');
  await agent.fill('input[name=password]', PASSWORD);
  await agent.click('button[type=submit]');
  await agent.selectOption('[data-testid=presence]', 'available');
  await agent.waitForFunction(`${PHONE}.dataset.state === 'idle'`);

  const caller = run('sipp', ['-sf', SCENARIO, '-s', '15550100', '-key', 'dtmf', DTMF_1, '-key', 'speech', SPEECH,
    '-i', '127.0.0.1', '-p', String(await freePort()), '-mp', String(await freePort()),
    '-m', '1', '-nostdin', '-timeout', '120', '-timeout_error', '-trace_err', '-default_behaviors', 'none,abortunexp', center.sip]);
  await agent.waitForFunction(`${PHONE}.dataset.state === 'ringing'`);
  const call = agent.locator('sb-phone [data-testid=call]');
  await call.locator('[data-testid=answer]').click();
  await agent.waitForFunction(`${PHONE}.dataset.state === 'talking'`);
  // The agent mutes: what the supervisors hear now comes from the caller.
  await call.locator('[data-testid=mute]').click();
  const framesBefore = frames.length;

  const supervisor = await portal('supervisor');
  const details = await listen(supervisor);
  const admin = await portal('admin');
  await listen(admin);
  // The supervisor's details list both monitors, each listening in a browser.
  await supervisor.waitForFunction(() => document.querySelectorAll('[data-testid=details-participant][data-role=monitor]').length === 2, null, { timeout: 10000 });
  assert.deepEqual(await details.locator('[data-testid=details-participant]').evaluateAll((items) => items.map((i) => i.dataset.role)),
    ['caller', 'agent', 'monitor', 'monitor']);
  assert.equal(await details.locator('[data-testid=details-queue]').textContent(), 'Sales');
  await supervisor.screenshot({ path: `${ARTIFACTS}portal-call-details-listening.png` });

  // The caller speaks: both supervisors hear it (the agent sends silence).
  const start = { supervisor: await heard(supervisor), admin: await heard(admin) };
  for (const [name, page] of [['supervisor', supervisor], ['admin', admin]]) {
    const stats = await until(() => heard(page), (s) => s.totalAudioEnergy > start[name].totalAudioEnergy + 1e-3, 15, `${name} heard the caller`);
    assert.equal(stats.codec, 'audio/PCMA');
  }
  // The caller falls silent (their speech ends): the energy stops growing...
  let previous = await heard(supervisor);
  await until(async () => {
    await new Promise((r) => setTimeout(r, 700));
    const now = await heard(supervisor);
    const grew = now.totalAudioEnergy - previous.totalAudioEnergy;
    previous = now;
    return grew;
  }, (grew) => grew < 1e-5, 40, 'the caller went quiet');
  // ...until the agent unmutes: now both supervisors hear the agent.
  const quiet = { supervisor: await heard(supervisor), admin: await heard(admin) };
  await call.locator('[data-testid=mute]').click();
  for (const [name, page] of [['supervisor', supervisor], ['admin', admin]]) {
    await until(() => heard(page), (s) => s.totalAudioEnergy > quiet[name].totalAudioEnergy + 1e-4, 15, `${name} heard the agent`);
  }
  await supervisor.screenshot({ path: `${ARTIFACTS}portal-call-details-agent-heard.png` });

  // The agent mutes again: with the caller silent too, the monitors hear nothing, and the
  // agent hears nothing of the supervisor who listens...
  await call.locator('[data-testid=mute]').click();
  const agentHeard = () => agent.evaluate(`${PHONE}.stats()`);
  let last = { admin: await heard(admin), agent: await agentHeard() };
  await until(async () => {
    await new Promise((r) => setTimeout(r, 700));
    const now = { admin: await heard(admin), agent: await agentHeard() };
    const grew = Math.max(now.admin.totalAudioEnergy - last.admin.totalAudioEnergy,
      now.agent.totalAudioEnergy - last.agent.totalAudioEnergy);
    last = now;
    return grew;
  }, (grew) => grew < 1e-5, 20, 'both parties went quiet');
  // ...until the supervisor coaches: the agent hears them (their page's microphone), the
  // admin, who listens, does not.
  const beforeCoach = { agent: await agentHeard(), admin: await heard(admin) };
  await details.locator('[data-testid=details-coach]').click();
  await details.locator('[data-testid=details-coach][aria-pressed=true]').waitFor();
  await until(agentHeard, (s) => s.totalAudioEnergy > beforeCoach.agent.totalAudioEnergy + 1e-4, 15, 'the agent heard the coach');
  const adminCoached = await heard(admin);
  assert.ok(adminCoached.totalAudioEnergy - beforeCoach.admin.totalAudioEnergy < 1e-5,
    `the admin heard the coach: ${JSON.stringify([beforeCoach.admin, adminCoached])}`);
  // Barge, on the same leg: the agent still hears the supervisor (the caller's side is
  // checked by the server's tests, where the caller echoes what it hears).
  await details.locator('[data-testid=details-barge]').click();
  await details.locator('[data-testid=details-barge][aria-pressed=true]').waitFor();
  const beforeBarge = await agentHeard();
  await until(agentHeard, (s) => s.totalAudioEnergy > beforeBarge.totalAudioEnergy + 1e-4, 15, 'the agent heard the barge');
  await supervisor.screenshot({ path: `${ARTIFACTS}portal-call-details-barging.png` });

  // Stop: the panel's controls go back to Listen; the agent's adapter got nothing meanwhile.
  await details.locator('[data-testid=details-stop]').click();
  await details.locator('[data-testid=details-monitoring]').waitFor({ state: 'detached' });
  await admin.locator('[data-testid=call-details] [data-testid=details-stop]').click();
  await supervisor.waitForFunction(() => !document.querySelector('[data-testid=details-participant][data-role=monitor]'), null, { timeout: 10000 });
  assert.deepEqual(frames.slice(framesBefore), [], 'the agent\'s adapter received nothing while monitored');

  // The agent hangs up; the caller's strict scenario saw nothing unexpected.
  await call.locator('[data-testid=hangup]').click();
  const { code, output } = await caller.done;
  assert.equal(code, 0, `sipp failed:\n${output}`);
  await details.locator('[data-testid=details-state]', { hasText: 'ended' }).waitFor();
  await supervisor.screenshot({ path: `${ARTIFACTS}portal-call-details-ended.png` });
  await agentContext.close();
  await supervisor.context().close();
  await admin.context().close();
});
