// Voicemail in real Chromium (AHD-7): the voice channel is closed by a closure over the present
// moment and takes voicemail; a sipp caller picks Sales, waits through the greeting and the
// tone, speaks (a 440 Hz tone) and presses #. agent1's adapter shows the voicemail with the
// caller's number and the queue path, its audio element loads the WAV and plays it for some
// seconds, Call back dials the caller's number through the adapter's dialer, and Done takes it
// away.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { apiSession, freePort, launchBrowser, PASSWORD, run, startCenter } from './support.js';

const ARTIFACTS = new URL('../artifacts/', import.meta.url).pathname;
const SCENARIO = new URL('../../crates/switchboard-server/tests/sipp/caller_voicemail.xml', import.meta.url).pathname;
const DTMF_1 = '/usr/share/sip-tester/dtmf_2833_1.pcap';
const POUND = '/usr/share/sip-tester/dtmf_2833_pound.pcap';
const EVERY_DAY = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => `${d} 00:00-00:00`);
const DESK = "document.querySelector('sb-agent-desk').shadowRoot";
const AUDIO = `${DESK}.querySelector('sb-voicemails').shadowRoot.querySelector('[data-testid=voicemail-audio]')`;

let center;
let browser;
let folder;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  folder = mkdtempSync(join(tmpdir(), 'switchboard-e2e-vm-'));
  center = await startCenter();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await center?.stop();
  rmSync(folder, { recursive: true, force: true });
});

/// G.711 A-law of one sample.
function alaw(sample) {
  let value = sample;
  const sign = value >= 0 ? 0xd5 : 0x55;
  if (value < 0) value = -value - 1;
  value = Math.min(value, 32767) >> 3;
  let code;
  if (value < 32) {
    code = value >> 1;
  } else {
    let exponent = 1;
    while (value >> (exponent + 5) > 0 && exponent < 7) exponent += 1;
    code = (exponent << 4) | ((value >> exponent) & 0x0f);
  }
  return code ^ sign;
}

/// A pcap of `seconds` of RTP carrying a steady A-law tone, 20 ms a packet, for sipp's
/// play_pcap_audio (Ethernet, IPv4, UDP; sipp rewrites addresses and ports).
function tonePcap(path, frequency, seconds) {
  const chunks = [];
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20);
  chunks.push(header);
  let sample = 0;
  for (let packet = 0; packet < seconds * 50; packet += 1) {
    const rtp = Buffer.alloc(12 + 160);
    rtp[0] = 0x80;
    rtp[1] = 8;
    rtp.writeUInt16BE(packet & 0xffff, 2);
    rtp.writeUInt32BE(packet * 160, 4);
    rtp.writeUInt32BE(0x12345678, 8);
    for (let n = 0; n < 160; n += 1) {
      rtp[12 + n] = alaw(Math.trunc(Math.sin((sample / 8000) * frequency * 2 * Math.PI) * 8000));
      sample += 1;
    }
    const udp = Buffer.alloc(8);
    udp.writeUInt16BE(40000, 0);
    udp.writeUInt16BE(40002, 2);
    udp.writeUInt16BE(8 + rtp.length, 4);
    const ip = Buffer.from([0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
    ip.writeUInt16BE(20 + 8 + rtp.length, 2);
    let sum = 0;
    for (let i = 0; i < 20; i += 2) {
      sum += ip.readUInt16BE(i);
      sum = (sum & 0xffff) + (sum >> 16);
    }
    ip.writeUInt16BE(~sum & 0xffff, 10);
    const frame = Buffer.concat([Buffer.alloc(12), Buffer.from([0x08, 0x00]), ip, udp, rtp]);
    const record = Buffer.alloc(16);
    const atUs = packet * 20000;
    record.writeUInt32LE(Math.floor(atUs / 1e6), 0);
    record.writeUInt32LE(atUs % 1e6, 4);
    record.writeUInt32LE(frame.length, 8);
    record.writeUInt32LE(frame.length, 12);
    chunks.push(record, frame);
  }
  writeFileSync(path, Buffer.concat(chunks));
}

test('a voicemail reaches the adapter, plays there, and is done', async () => {
  const admin = await apiSession(center, 'admin');
  const now = Date.now();
  const closure = `${new Date(now - 3600_000).toISOString()}/${new Date(now + 3600_000).toISOString()}`;
  const closed = await admin('/api/v1/business-hours', { method: 'POST', body: { name: 'Voice closed', scope: { channel: 'voice' }, periods: EVERY_DAY, closures: [closure] } });
  assert.ok(closed.id, JSON.stringify(closed));
  const rule = await admin('/api/v1/after-hours/rules/center/voice', { method: 'PUT', body: { enabled: true, action: 'voicemail', max_seconds: 30, messages: [{ text: 'Leave a message.' }] } });
  assert.equal(rule.max_seconds, 30, JSON.stringify(rule));

  const agent = await (await browser.newContext()).newPage();
  await agent.goto(`${center.base}/agent/`);
  await agent.fill('input[name=username]', 'agent1');
  await agent.fill('input[name=password]', PASSWORD);
  await agent.click('button[type=submit]');
  await agent.selectOption('[data-testid=presence]', 'available');
  await agent.waitForFunction(() => document.querySelector('sb-agent-desk').shadowRoot.querySelector('[data-testid=presence]').value === 'available');

  const tone = join(folder, 'caller.pcap');
  tonePcap(tone, 440, 3);
  const caller = run('sipp', ['-sf', SCENARIO, '-s', '15550100', '-key', 'dtmf', DTMF_1, '-key', 'tone', tone, '-key', 'pound', POUND,
    '-i', '127.0.0.1', '-p', String(await freePort()), '-mp', String(await freePort()),
    '-m', '1', '-nostdin', '-timeout', '60', '-timeout_error', '-trace_err', center.sip]);
  const { code, output } = await caller.done;
  assert.equal(code, 0, `sipp failed:\n${output}`);

  // The voicemail item: the caller's number, the queue's path, a player.
  const item = agent.locator('sb-voicemails [data-testid=voicemail]');
  await item.waitFor();
  assert.equal(await item.locator('.title').textContent(), 'Voicemail from 15551234567');
  assert.match(await item.locator('[data-testid=voicemail-queue]').textContent(), /^Sales · 0:0\d/);
  await item.locator('[data-testid=voicemail-call-back]').waitFor();

  // The audio element loads the WAV (the file may still be finishing for a moment) and plays.
  let loaded = false;
  for (let attempt = 0; attempt < 50 && !loaded; attempt += 1) {
    loaded = await agent.evaluate(`new Promise((done) => {
      const audio = ${AUDIO};
      if (audio.readyState >= 1 && audio.duration > 0) return done(true);
      audio.addEventListener('loadedmetadata', () => done(true), { once: true });
      audio.addEventListener('error', () => done(false), { once: true });
      audio.load();
    })`);
    if (!loaded) await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(loaded, 'the audio element loaded the voicemail');
  const duration = await agent.evaluate(`${AUDIO}.duration`);
  assert.ok(duration > 2 && duration < 10, `its length: ${duration} s`);
  await agent.evaluate(`${AUDIO}.play()`);
  await agent.waitForFunction(`${AUDIO}.currentTime >= 2`, null, { timeout: 15000 });
  assert.equal(await agent.evaluate(`${AUDIO}.error`), null);
  await agent.screenshot({ path: `${ARTIFACTS}voicemail-playing.png` });

  // Call back uses the adapter's dialer: it places a call to the caller's number.
  const dialled = agent.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === '/api/v1/calls');
  await item.locator('[data-testid=voicemail-call-back]').click();
  assert.equal((await dialled).postDataJSON().number, '15551234567');

  // Done: the item goes, and the server has nothing left for agent1.
  await item.locator('[data-testid=voicemail-done]').click();
  await item.waitFor({ state: 'detached' });
  const agentApi = await apiSession(center, 'agent1');
  assert.deepEqual(await agentApi('/api/v1/me/voicemails'), []);
});
