// The portal end to end in real Chromium: an admin builds a small center in the portal only (a
// queue inside a new menu, moved up the tree; business hours with a holiday; an agent with a
// SIP phone password); a supervisor's Live page, open before anything happens, shows a widget
// chat queued and then connected without a reload; a page opened late is right at once; the
// admin ends the chat from the Connected list after a confirmation; a user of a custom role
// that takes no contacts is sent from the agent desk to the portal. The supervisor opens the
// connected chat's live transcript and sees the consumer's next message arrive; the admin ends a
// stuck queued chat after a confirmation. Then a sipp caller waits
// in a voice queue and is answered on agent1's browser phone: the supervisor's Calls page shows
// the call queued, then connected, with the monitoring buttons their role allows. Last, an admin
// connects Zendesk on Set-up > CRM connector, whose fields show for that connector only.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { apiSession, FAKE_MEDIA, freePort, launchBrowser, PASSWORD, run, startCenter, startCustomerSite } from './support.js';

const ARTIFACTS = new URL('../artifacts/', import.meta.url).pathname;
const SCENARIO = new URL('../../crates/switchboard-server/tests/sipp/caller_echo.xml', import.meta.url).pathname;
const DTMF_1 = '/usr/share/sip-tester/dtmf_2833_1.pcap';
let center;
let site;
let browser;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  center = await startCenter();
  site = await startCustomerSite(center);
  browser = await launchBrowser(FAKE_MEDIA);
});

after(async () => {
  await browser?.close();
  await site?.stop();
  await center?.stop();
});

async function signIn(page, path, username) {
  await page.goto(`${center.base}${path}`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button[type=submit]');
}

/// Opens a Set-up page from the navigation.
async function openPage(page, title) {
  await page.locator('nav.side a', { hasText: title }).first().click();
  await page.locator('main h1', { hasText: title }).waitFor();
}

async function saveAndExpect(page, text) {
  await page.click('[data-testid=save]');
  await page.locator('[data-testid=notice-ok]', { hasText: text }).waitFor();
}

test('an admin builds a center in the portal and a supervisor watches a chat live', async () => {
  const adminContext = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const admin = await adminContext.newPage();
  // The old address leads to the portal.
  await signIn(admin, '/admin/', 'admin');
  assert.equal(new URL(admin.url()).pathname, '/portal/');
  await admin.locator('[data-testid=who]', { hasText: 'Ada Admin' }).waitFor();
  for (const title of ['Calls', 'Users', 'Queues', 'Business hours', 'Audit log', 'Dashboards']) {
    assert.equal(await admin.locator('nav.side a', { hasText: title }).count() >= 1, true, `${title} is in the admin's navigation`);
  }

  // A menu and a queue inside it, in the web chat tree, with the path shown.
  await openPage(admin, 'Queues');
  await admin.click('[data-testid=new]');
  await admin.fill('[data-testid=field-name]', 'Orders');
  await admin.selectOption('[data-testid=field-kind]', 'menu');
  await saveAndExpect(admin, 'Saved queue “Orders”');
  await admin.click('[data-testid=new]');
  await admin.selectOption('[data-testid=field-parent_id]', { label: 'Orders' });
  await admin.fill('[data-testid=field-name]', 'Returns');
  await saveAndExpect(admin, 'Saved queue “Returns”');
  await admin.locator('[data-testid=queue-path]', { hasText: 'Orders > Returns' }).waitFor();
  // Orders moves up the top level, above Technical support.
  const topLevel = () => admin.locator('[data-testid=queues-list] tr[data-row]').evaluateAll((rows) => rows.map((r) => r.cells[0].textContent));
  assert.deepEqual((await topLevel()).filter((n) => !n.startsWith('└')), ['Billing', 'Technical support', 'Orders']);
  await admin.locator('tr[data-row]', { hasText: 'Orders > Returns' }).waitFor();
  await admin.locator('tr[data-row]').filter({ has: admin.locator('td:first-child', { hasText: /^Orders$/ }) }).locator('[data-testid=move-up]').click();
  await admin.locator('[data-testid=notice-ok]', { hasText: 'Moved “Orders” up' }).waitFor();
  assert.deepEqual((await topLevel()).filter((n) => !n.startsWith('└')), ['Billing', 'Orders', 'Technical support']);
  await admin.screenshot({ path: `${ARTIFACTS}portal-queues.png`, fullPage: true });

  // Business hours for the new queue: open all week, closed on a holiday.
  await openPage(admin, 'Business hours');
  await admin.click('[data-testid=new]');
  await admin.fill('[data-testid=field-name]', 'Returns hours');
  await admin.selectOption('[data-testid="field-scope.queue_id"]', { label: 'Web chat: Orders > Returns' });
  await admin.fill('[data-testid=field-periods]', ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => `${d} 00:00-24:00`).join('\n'));
  await admin.fill('[data-testid=field-holidays]', '12-25');
  assert.equal(await admin.locator('[data-testid=week-view] rect.open').count(), 7, 'the week view shows each day open');
  await admin.screenshot({ path: `${ARTIFACTS}portal-hours-form.png`, fullPage: true });
  await saveAndExpect(admin, 'Saved schedule “Returns hours”');
  await admin.locator('[data-testid=hours-list] tr', { hasText: 'Returns hours' }).locator('.tag', { hasText: '12-25' }).waitFor();
  // A line the server refuses is shown with its message, and nothing is saved.
  await admin.click('[data-testid=new]');
  await admin.fill('[data-testid=field-name]', 'Broken hours');
  await admin.fill('[data-testid=field-periods]', 'someday 09:00-17:00');
  await admin.click('[data-testid=save]');
  await admin.locator('[data-testid=notice-error]').waitFor();
  assert.match(await admin.locator('[data-testid=notice-error] code').first().textContent(), /\w+/);

  // An agent for the new queue, with a SIP phone password.
  await openPage(admin, 'Users');
  await admin.click('[data-testid=new]');
  await admin.fill('[data-testid=field-username]', 'nina');
  await admin.fill('[data-testid=field-display_name]', 'Nina Night');
  await admin.selectOption('[data-testid=field-role]', 'agent');
  await admin.fill('[data-testid=field-password]', PASSWORD);
  await admin.locator('[data-testid=field-queues] label', { hasText: 'Web chat: Orders > Returns' }).locator('input').check();
  await admin.locator('[data-testid=field-languages] label', { hasText: 'en' }).locator('input').check();
  await admin.selectOption('[data-testid=field-capacity_profile_id]', { label: 'Blended' });
  await saveAndExpect(admin, 'Saved user “Nina Night”');
  const nina = admin.locator('[data-testid=users-list] tr', { hasText: 'Nina Night' });
  await nina.locator('[data-testid=sip-phone]').click();
  await admin.fill('[data-testid=users-form] [data-testid=field-password]', 'phone-secret-1');
  await saveAndExpect(admin, 'The SIP phone password of Nina Night is set');
  await admin.screenshot({ path: `${ARTIFACTS}portal-users.png`, fullPage: true });

  // What the portal made is what the API holds.
  const api = await apiSession(center, 'admin');
  const users = await api('/api/v1/users');
  const created = users.find((u) => u.username === 'nina');
  const queues = await api('/api/v1/queues?channel=web');
  const returns = queues.find((q) => q.path === 'Orders > Returns');
  assert.deepEqual(created.queues, [returns.id]);
  const hours = (await api('/api/v1/business-hours')).find((h) => h.name === 'Returns hours');
  assert.deepEqual(hours.holidays, ['12-25']);
  assert.equal(hours.scope.queue_id, returns.id);
  const orders = queues.find((q) => q.path === 'Orders');
  const tech = queues.find((q) => q.path === 'Technical support');
  assert.ok(orders.position < tech.position);

  // The supervisor opens Live > Chats before the chat exists; no Set-up for them.
  const supervisorContext = await browser.newContext({ viewport: { width: 1360, height: 800 } });
  const supervisor = await supervisorContext.newPage();
  await signIn(supervisor, '/supervisor/', 'supervisor');
  await supervisor.locator('[data-testid=who]', { hasText: 'Sam Supervisor' }).waitFor();
  assert.equal(await supervisor.locator('nav.side a', { hasText: 'Users' }).count(), 0);
  assert.equal(await supervisor.locator('nav.side a', { hasText: 'Audit log' }).count(), 0);
  await openPage(supervisor, 'Chats');
  await supervisor.locator('[data-testid=live-status]', { hasText: 'Live' }).waitFor();

  // Nina signs in to the agent desk but is not available yet, so the chat waits.
  const agentContext = await browser.newContext();
  const agent = await agentContext.newPage();
  await signIn(agent, '/agent/', 'nina');
  await agent.locator('[data-testid=presence]').waitFor();

  const consumerContext = await browser.newContext();
  const consumer = await consumerContext.newPage();
  await consumer.goto(site.url);
  await consumer.click('[data-testid=open-chat]');
  await consumer.click('button[data-queue="Orders > Returns"]');

  const queuedRow = supervisor.locator('[data-testid=chats-queued] tr[data-contact]', { hasText: 'Orders > Returns' });
  await queuedRow.waitFor();
  // The wait timer ticks.
  const first = await queuedRow.locator('td.timer').textContent();
  await supervisor.waitForFunction((text) => {
    const cell = document.querySelector('[data-testid=chats-queued] tr[data-contact] td.timer');
    return cell && cell.textContent !== text;
  }, first);
  await supervisor.screenshot({ path: `${ARTIFACTS}portal-live-chats-queued.png`, fullPage: true });

  // Nina becomes available and accepts: the row moves to Connected, with her name.
  await agent.selectOption('[data-testid=presence]', 'available');
  await agent.locator('[data-testid=accept]').click();
  await consumer.locator('[data-testid=status]', { hasText: 'Chatting with Nina Night' }).waitFor();
  await queuedRow.waitFor({ state: 'detached' });
  await supervisor.click('[data-testid=chats-connected-tab]');
  const connectedRow = supervisor.locator('[data-testid=chats-connected] tr[data-contact]', { hasText: 'Nina Night' });
  await connectedRow.waitFor();
  assert.equal(await connectedRow.locator('[data-testid=end]').count(), 0, 'the supervisor may not end chats');
  await supervisor.screenshot({ path: `${ARTIFACTS}portal-live-chats-connected.png`, fullPage: true });

  // The supervisor opens the chat's transcript: its details and what was said so far, then a new
  // message as the consumer sends it, without a reload.
  await connectedRow.locator('[data-testid=watch]').click();
  const panel = supervisor.locator('[data-testid=chat-watch]');
  await panel.locator('[data-testid=watch-agent]', { hasText: 'Nina Night' }).waitFor();
  await panel.locator('[data-testid=watch-issue]', { hasText: 'Orders > Returns' }).waitFor();
  assert.match(await panel.locator('[data-testid=watch-customer]').textContent(), /Web User - /);
  await panel.locator('[data-testid=watch-message]', { hasText: 'Nina Night joined the chat' }).waitFor();
  await consumer.fill('[data-testid=input]', 'My parcel came back damaged');
  await consumer.click('[data-testid=send]');
  await panel.locator('[data-testid=watch-message][data-from=consumer]', { hasText: 'My parcel came back damaged' }).waitFor();
  await supervisor.screenshot({ path: `${ARTIFACTS}portal-live-chat-transcript.png`, fullPage: true });

  // The Agents list shows Nina available with one chat; the search finds her.
  await openPage(supervisor, 'Agents');
  await supervisor.fill('[data-testid=agent-search]', 'nina');
  const ninaRow = supervisor.locator('[data-testid=agents] tr[data-agent]');
  await supervisor.waitForFunction(() => document.querySelectorAll('[data-testid=agents] tr[data-agent]').length === 1);
  assert.match(await ninaRow.textContent(), /Nina Night/);
  await ninaRow.locator('[data-testid=presence]', { hasText: 'available' }).waitFor();
  assert.equal(await ninaRow.locator('td').nth(5).textContent(), '1');
  await supervisor.fill('[data-testid=agent-search]', '');
  await supervisor.selectOption('[data-testid=filter-status]', 'available');
  await supervisor.screenshot({ path: `${ARTIFACTS}portal-live-agents.png`, fullPage: true });

  // A page opened now is right at once (the snapshot), and the admin may end the chat.
  const late = await adminContext.newPage();
  await late.goto(`${center.base}/portal/#/live/chats`);
  await late.click('[data-testid=chats-connected-tab]');
  const adminRow = late.locator('[data-testid=chats-connected] tr[data-contact]', { hasText: 'Nina Night' });
  await adminRow.waitFor();
  await adminRow.locator('[data-testid=end]').click();
  await late.locator('[data-testid=confirm]').waitFor();
  await late.screenshot({ path: `${ARTIFACTS}portal-end-confirm.png` });
  await late.click('[data-testid=confirm-yes]');
  await late.locator('[data-testid=notice-ok]', { hasText: 'The chat was ended' }).waitFor();
  await adminRow.waitFor({ state: 'detached' });
  await consumer.locator('[data-testid=status]', { hasText: 'Chat ended' }).waitFor();
  // The supervisor's page follows, with no reload; the open transcript says the chat ended.
  await openPage(supervisor, 'Chats');
  await supervisor.click('[data-testid=chats-connected-tab]');
  await supervisor.locator('[data-testid=chats-connected] td.empty').waitFor();
  await panel.locator('[data-testid=watch-ended]', { hasText: 'ended by supervisor' }).waitFor();
  await panel.locator('[data-testid=watch-close]').click();
  await panel.waitFor({ state: 'detached' });

  // A chat stuck in a queue nobody serves now (Nina is its only agent and went offline): the
  // admin ends it from the Queued list after confirming, and its consumer is told.
  await agent.selectOption('[data-testid=presence]', 'offline');
  const stuckContext = await browser.newContext();
  const stuck = await stuckContext.newPage();
  await stuck.goto(site.url);
  await stuck.click('[data-testid=open-chat]');
  await stuck.click('button[data-queue="Orders > Returns"]');
  await late.click('[data-testid=chats-queued-tab]');
  const stuckRow = late.locator('[data-testid=chats-queued] tr[data-contact]', { hasText: 'Orders > Returns' });
  await stuckRow.waitFor();
  await stuckRow.locator('[data-testid=end]').click();
  await late.locator('[data-testid=confirm]', { hasText: 'End this chat?' }).waitFor();
  await late.click('[data-testid=confirm-yes]');
  await late.locator('[data-testid=notice-ok]', { hasText: 'The chat was ended' }).waitFor();
  await stuckRow.waitFor({ state: 'detached' });
  await stuck.locator('[data-testid=status]', { hasText: 'Chat ended' }).waitFor();
  await stuckContext.close();

  // The admin sets the dispositions; the audit log shows the change.
  await openPage(admin, 'Dispositions');
  await admin.fill('[data-testid=field-dispositions]', 'Resolved\nCall back');
  await saveAndExpect(admin, 'Saved.');
  await openPage(admin, 'Audit log');
  await admin.locator('[data-testid=audit-list] tr[data-action]').first().waitFor();
  await admin.screenshot({ path: `${ARTIFACTS}portal-audit.png`, fullPage: true });

  // The dashboard of the queue those chats came to: today's hours on a 24-hour clock in the
  // center's time zone, from midnight, with both chats offered.
  await openPage(admin, 'Dashboards');
  const dashboards = admin.locator('sb-dashboards');
  await dashboards.locator('select[name=id] option', { hasText: 'Orders > Returns' }).waitFor({ state: 'attached' });
  await dashboards.locator('select[name=id]').selectOption({ label: 'Orders > Returns' });
  await dashboards.locator('button[type=submit]').click();
  await dashboards.locator('[data-testid=dashboard-zone]', { hasText: 'Hours in America/New_York' }).waitFor();
  // The figures list starts with Offered.
  await dashboards.locator('dl dt').first().filter({ hasText: 'Offered' }).waitFor();
  const offered = dashboards.locator('dl dd').first();
  for (let tries = 0; tries < 100 && !(Number(await offered.textContent()) >= 2); tries += 1) await admin.waitForTimeout(100);
  assert.ok(Number(await offered.textContent()) >= 2, `offered: ${await offered.textContent()}`);
  const ticks = await dashboards.locator('svg[aria-label="Contacts per hour"] text.tick').allTextContents();
  assert.equal(ticks[0], '00', ticks.join(' '));
  assert.ok(ticks.length >= 23 && ticks.every((t) => /^([01]\d|2[0-3])$/.test(t)), ticks.join(' '));
  await admin.screenshot({ path: `${ARTIFACTS}portal-dashboards.png`, fullPage: true });

  // A role of the center's own that takes no contacts: its users who open the agent desk are
  // sent to the portal, which shows them only what the role allows.
  await openPage(admin, 'Roles');
  await admin.click('[data-testid=new]');
  await admin.fill('[data-testid=field-key]', 'watcher');
  await admin.fill('[data-testid=field-name]', 'Watcher');
  await admin.locator('[data-testid=field-permissions] label', { hasText: 'monitor chats view' }).locator('input').check();
  await saveAndExpect(admin, 'Saved role “Watcher”');
  await openPage(admin, 'Users');
  await admin.click('[data-testid=new]');
  await admin.fill('[data-testid=field-username]', 'wendy');
  await admin.fill('[data-testid=field-display_name]', 'Wendy Watcher');
  await admin.selectOption('[data-testid=field-role]', 'watcher');
  await admin.fill('[data-testid=field-password]', PASSWORD);
  await saveAndExpect(admin, 'Saved user “Wendy Watcher”');
  const watcherContext = await browser.newContext();
  const watcher = await watcherContext.newPage();
  await signIn(watcher, '/agent/', 'wendy');
  await watcher.locator('[data-testid=who]', { hasText: 'Wendy Watcher' }).waitFor();
  assert.equal(new URL(watcher.url()).pathname, '/portal/');
  assert.equal(await watcher.locator('[data-testid=agent-desk-link]').count(), 0);
  assert.equal(await watcher.locator('nav.side a', { hasText: 'Users' }).count(), 0);
  await watcher.locator('main h1', { hasText: 'Calls' }).waitFor();

  for (const context of [watcherContext, consumerContext, agentContext, supervisorContext, adminContext]) await context.close();
});

/// The agent desk's browser phone.
const PHONE = "document.querySelector('sb-agent-desk').shadowRoot.querySelector('sb-phone')";

test('a supervisor sees a call queued, then connected, with the monitoring buttons of their role', async () => {
  const supervisorContext = await browser.newContext({ viewport: { width: 1360, height: 800 } });
  const supervisor = await supervisorContext.newPage();
  await signIn(supervisor, '/portal/', 'supervisor');
  await openPage(supervisor, 'Calls');
  await supervisor.locator('[data-testid=live-status]', { hasText: 'Live' }).waitFor();
  await supervisor.evaluate(() => {
    window.monitorRequests = [];
    document.addEventListener('sb-monitor', (event) => window.monitorRequests.push(event.detail));
  });

  // agent1 signs in but is not available yet: the caller waits in Sales.
  const agentContext = await browser.newContext();
  const agent = await agentContext.newPage();
  await signIn(agent, '/agent/', 'agent1');
  await agent.locator('[data-testid=presence]').waitFor();
  const caller = run('sipp', ['-sf', SCENARIO, '-s', '15550100', '-key', 'dtmf', DTMF_1, '-rtp_echo',
    '-i', '127.0.0.1', '-p', String(await freePort()), '-mp', String(await freePort()),
    '-m', '1', '-nostdin', '-timeout', '120', '-timeout_error', '-trace_err', '-default_behaviors', 'none,abortunexp', center.sip]);

  const queued = supervisor.locator('[data-testid=calls-queued] tr[data-call]', { hasText: '15557654321' });
  await queued.locator('td', { hasText: /^Sales$/ }).waitFor();
  await queued.locator('.tag', { hasText: 'Waiting' }).waitFor();
  await supervisor.screenshot({ path: `${ARTIFACTS}portal-live-calls-queued.png`, fullPage: true });
  const callId = await queued.getAttribute('data-call');

  // agent1 becomes available and answers on the browser phone.
  await agent.selectOption('[data-testid=presence]', 'available');
  await agent.waitForFunction(`${PHONE}.dataset.state === 'ringing'`);
  await agent.locator('sb-phone [data-testid=answer]').click();
  await agent.waitForFunction(`${PHONE}.dataset.state === 'talking'`);

  await queued.waitFor({ state: 'detached' });
  await supervisor.click('[data-testid=calls-connected-tab]');
  const connected = supervisor.locator(`[data-testid=calls-connected] tr[data-call="${callId}"]`);
  await connected.locator('td', { hasText: 'Alex Agent' }).waitFor();
  for (const mode of ['listen', 'coach', 'barge']) assert.equal(await connected.locator(`[data-testid=monitor-${mode}]`).count(), 1, mode);
  assert.equal(await connected.locator('[data-testid=end]').count(), 0, 'the supervisor may not end calls');
  await connected.locator('[data-testid=monitor-listen]').click();
  assert.deepEqual(await supervisor.evaluate(() => window.monitorRequests), [{ call_id: callId, mode: 'listen' }]);
  // With no SIP phone registered the supervisor listens in this browser (monitor.test.js checks
  // what is heard there), and the page says so.
  await supervisor.locator('[data-testid^=notice-]', { hasText: 'in this browser' }).waitFor();
  await supervisor.screenshot({ path: `${ARTIFACTS}portal-live-calls-connected.png`, fullPage: true });

  // The agent hangs up: the call leaves the page.
  await agent.locator('sb-phone [data-testid=hangup]').click();
  const { code, output } = await caller.done;
  assert.equal(code, 0, output);
  await connected.waitFor({ state: 'detached' });
  await supervisorContext.close();
  await agentContext.close();
});

test('an admin connects Zendesk: its fields show for that connector only, and the token is kept but never shown', async () => {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const admin = await context.newPage();
  await signIn(admin, '/portal/', 'admin');
  await admin.locator('[data-testid=who]').waitFor();
  await openPage(admin, 'CRM connector');
  const shown = (name) => admin.locator(`[data-testid=field-${name}]`).isVisible();
  const fields = async () => Promise.all(['zendesk_url', 'zendesk_email', 'zendesk_token', 'crm_webhook_url'].map(shown));
  assert.deepEqual(await fields(), [false, false, false, false], 'the built-in connector has no fields of its own');
  await admin.selectOption('[data-testid=field-crm_connector]', 'webhook');
  assert.deepEqual(await fields(), [false, false, false, true]);
  await admin.selectOption('[data-testid=field-crm_connector]', 'zendesk');
  assert.deepEqual(await fields(), [true, true, true, false]);
  // Nothing listens at this address: the center sends nothing anywhere.
  await admin.fill('[data-testid=field-zendesk_url]', 'http://127.0.0.1:9/');
  await admin.fill('[data-testid=field-zendesk_email]', 'integration@center.example');
  await admin.click('[data-testid=save]');
  await admin.locator('[data-testid=notice-error]', { hasText: 'zendesk_token' }).waitFor();
  await admin.fill('[data-testid=field-zendesk_token]', 'zendesk-api-token-0123');
  await saveAndExpect(admin, 'Saved.');

  // Opened again: the address as stored, the token field empty; saving keeps the token.
  await admin.reload();
  await openPage(admin, 'CRM connector');
  assert.equal(await admin.inputValue('[data-testid=field-zendesk_url]'), 'http://127.0.0.1:9');
  assert.equal(await admin.inputValue('[data-testid=field-zendesk_token]'), '');
  await saveAndExpect(admin, 'Saved.');
  const settings = await admin.evaluate(async () => (await fetch('/api/v1/integrations')).json());
  assert.equal(settings.zendesk_token_set, true);
  assert.equal('zendesk_token' in settings, false);
  // Back to the built-in connector, as the center was.
  await admin.selectOption('[data-testid=field-crm_connector]', 'builtin');
  await saveAndExpect(admin, 'Saved.');
  await context.close();
});
