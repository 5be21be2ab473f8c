// Emergency settings end to end in real Chromium: an admin sees the emergency numbers, the
// callback pool and the demo's emergency trunk on Set-up > Emergency, and a refused number is
// shown in its card with nothing changed; a site with a bad state is refused in its form, then
// saved. An agent sees from the adapter's header that they are at the head office, enters their
// home address (a refusal keeps what they typed), and goes back to the site's.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { launchBrowser, PASSWORD, startCenter } from './support.js';

const ARTIFACTS = new URL('../artifacts/', import.meta.url).pathname;
let center;
let browser;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  center = await startCenter();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await center?.stop();
});

async function signIn(page, path, username) {
  await page.goto(`${center.base}${path}`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button[type=submit]');
}

test('an admin keeps emergency numbers and sites, and an agent sets their own location', async () => {
  const admin = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await signIn(admin, '/portal/', 'admin');
  await admin.locator('nav.side a[data-page="setup/emergency"]').click();
  const numbers = admin.locator('[data-testid=emergency-numbers]');
  await numbers.locator('tr[data-row]').first().waitFor();
  assert.equal(await numbers.locator('tr[data-row]').count(), 9);
  assert.equal(await admin.locator('[data-testid=callback-pool]').inputValue(), '15550190-15550199');
  await admin.locator('[data-testid=emergency-trunks]', { hasText: 'Demo carrier out' }).waitFor();
  await admin.screenshot({ path: `${ARTIFACTS}emergency.png`, fullPage: true });
  await numbers.locator('[data-testid=number-digits]').first().fill('9');
  await admin.click('[data-testid=numbers-save]');
  await numbers.locator('[data-testid=notice-error]', { hasText: 'row 1: number' }).waitFor();
  const stored = await admin.evaluate(() => fetch('/api/v1/emergency/numbers').then((r) => r.json()));
  assert.equal(stored.numbers[0].number, '911', 'a refused list changes nothing');

  await admin.locator('nav.side a', { hasText: 'Sites' }).click();
  await admin.locator('[data-testid=sites-list] tr', { hasText: 'Head office' }).waitFor();
  await admin.click('[data-testid=new]');
  const form = admin.locator('[data-testid=sites-form]');
  await form.locator('[name="name"]').fill('Annex');
  await form.locator('[name="address.street"]').fill('Elm Street');
  await form.locator('[name="address.number"]').fill('7');
  await form.locator('[name="address.city"]').fill('Springfield');
  await form.locator('[name="address.state"]').fill('Illinois');
  await form.locator('[data-testid=save]').click();
  await admin.locator('.card [data-testid=notice-error]', { hasText: 'state: use the two-letter USPS code' }).waitFor();
  await form.locator('[name="address.state"]').fill('IL');
  await form.locator('[data-testid=save]').click();
  await admin.locator('[data-testid=sites-list] tr', { hasText: '7 Elm Street, Springfield IL, US' }).waitFor();

  const agent = await browser.newPage({ viewport: { width: 1280, height: 760 } });
  await signIn(agent, '/agent/', 'agent2');
  const where = agent.locator('[data-testid=location]');
  await where.filter({ hasText: 'Location: Head office' }).waitFor();
  await where.click();
  await agent.locator('[data-testid=location-now]', { hasText: 'At Head office: 100 Main Street' }).waitFor();
  await agent.fill('[data-testid=location-street]', 'Oak Avenue');
  await agent.fill('[data-testid=location-number]', '12');
  await agent.fill('[data-testid=location-city]', 'Chatham');
  await agent.fill('[data-testid=location-state]', 'XX');
  await agent.click('[data-testid=location-save]');
  await agent.locator('[data-testid=location-error]', { hasText: 'state' }).waitFor();
  assert.equal(await agent.locator('[data-testid=location-city]').inputValue(), 'Chatham', 'a refusal keeps what was typed');
  await agent.fill('[data-testid=location-state]', 'IL');
  await agent.click('[data-testid=location-save]');
  await where.filter({ hasText: 'Location: your address' }).waitFor();
  await where.click();
  await agent.locator('[data-testid=location-now]', { hasText: 'Your address: 12 Oak Avenue, Chatham IL, US' }).waitFor();
  await agent.screenshot({ path: `${ARTIFACTS}agent-location.png` });
  await agent.click('[data-testid=location-clear]');
  await agent.locator('[data-testid=location-now]', { hasText: 'At Head office' }).waitFor();
  await where.filter({ hasText: 'Location: Head office' }).waitFor();
});
