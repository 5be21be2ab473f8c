// Test support: start a real Switchboard demo center, a separate "customer site" that embeds
// the widget from it, and Debian's Chromium through playwright-core.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

export const PASSWORD = 'e2e-password-1';
const BINARY = process.env.SWITCHBOARD_BIN || resolve(import.meta.dirname, '../../target/debug/switchboard');

async function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
    server.on('error', fail);
  });
}

/// Starts `switchboard demo` on a free port with its own data folder; SIP on another free
/// port of 127.0.0.1 (`center.sip`), media on that address too. `env` adds settings (the
/// demo's carrier address, say).
export async function startCenter(env = {}) {
  const port = await freePort();
  const sip = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'switchboard-e2e-'));
  const child = spawn(BINARY, ['demo'], {
    env: {
      ...process.env,
      SWITCHBOARD_HTTP: `127.0.0.1:${port}`,
      SWITCHBOARD_SIP: `127.0.0.1:${sip}`,
      SWITCHBOARD_DATA_DIR: dataDir,
      SWITCHBOARD_DEMO_PASSWORD: PASSWORD,
      RUST_LOG: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  const base = `http://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 300; attempt += 1) {
    try {
      const response = await fetch(`${base}/healthz`);
      if (response.ok) break;
    } catch {
      // Not listening yet.
    }
    if (child.exitCode !== null) throw new Error(`switchboard exited: ${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    sip: `127.0.0.1:${sip}`,
    output: () => output,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/// A page on another origin that embeds the widget with one script tag, as a customer's site would.
export async function startCustomerSite(center) {
  const port = await freePort();
  const page = `<!doctype html><html><head><meta charset="utf-8"><title>Customer site</title></head>
<body><h1>Shop</h1><script type="module" src="${center.base}/widget/switchboard.js"></script></body></html>`;
  const server = createServer((request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(page);
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}/`, stop: () => new Promise((r) => server.close(r)) };
}

/// Debian's Chromium; `extra` flags add to the usual ones (a fake microphone, say).
export async function launchBrowser(extra = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required', ...extra],
  });
}

/// Flags for WebRTC with a fake microphone (a beeping tone) and no permission prompt, over
/// loopback (the center's media address in these tests).
export const FAKE_MEDIA = ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', '--allow-loopback-in-peer-connection'];

/// Runs a command to its end; resolves with its exit code and what it printed.
export function run(command, args, options = {}) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  child.stderr.on('data', (chunk) => { output += chunk; });
  const done = new Promise((resolveDone) => child.once('exit', (code) => resolveDone({ code, output })));
  return { child, done };
}

export { freePort };

/// Signs in through the API (for checks the browser does not show). The session reads with
/// `session(path)`, or sends with `session(path, { method, body })`.
export async function apiSession(center, username) {
  const response = await fetch(`${center.base}/api/v1/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: PASSWORD }),
  });
  const cookie = response.headers.get('set-cookie').split(';')[0];
  return async (path, { method = 'GET', body } = {}) => {
    const headers = body === undefined ? { cookie } : { cookie, 'content-type': 'application/json' };
    const answer = await fetch(`${center.base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return answer.status === 204 ? null : answer.json();
  };
}

/// A 2x2 red PNG made here (a real image the browser decodes).
export const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP4z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==', 'base64');
