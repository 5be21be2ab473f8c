// What each Set-up page shows and edits, as data for the one list-and-form element (setup.js):
// where the entity is listed, created, changed and removed, its columns, its form's fields,
// and the few actions of its own (a SIP phone password, moving a queue up or down, playing a
// tone). Field types: text, password, number, checkbox, select, choices (several), lines (one
// value a line), file, hidden.

import { api, channelName, CHANNELS, element, when, words } from '/portal/api.js';
import { weekPreview } from '/portal/hours.js';
import { missingEmergencyContacts } from '/portal/emergency_log.js';

const PERMISSIONS = ['handle_contacts', 'monitor_calls_listen', 'monitor_calls_coach', 'monitor_calls_barge', 'monitor_chats_view',
  'monitor_chats_edit', 'recordings_access', 'settings_edit', 'users_edit', 'emergency_log_view'];
const at = (id) => encodeURIComponent(id);
const tags = (list) => element('span', {}, ...list.map((text) => element('span', { class: 'tag' }, text)));
const byId = (list, id, field = 'name') => list?.find((item) => item.id === id)?.[field];
const webhook = (values) => values.crm_connector === 'webhook';
const zendesk = (values) => values.crm_connector === 'zendesk';

const teamOptions = (l) => (l.teams ?? []).map((t) => [t.id, t.name]);
const queueOptions = (channel) => (l) => (l.queues ?? []).filter((q) => !channel || q.channel === channel)
  .map((q) => [q.id, channel ? q.path : `${channelName(q.channel)}: ${q.path}`]);
const languageOptions = (l) => (l.settings?.languages ?? []).map((code) => [code, code]);

/// Moves a queue one place among its siblings: the siblings are numbered again in the new
/// order, and only those whose number changes are sent.
async function moveQueue(row, step, context) {
  const siblings = context.rows.filter((q) => q.channel === row.channel && q.parent_id === row.parent_id)
    .sort((a, b) => a.position - b.position || a.name.localeCompare(b.name));
  const index = siblings.findIndex((q) => q.id === row.id);
  const other = index + step;
  if (other < 0 || other >= siblings.length) return false;
  [siblings[index], siblings[other]] = [siblings[other], siblings[index]];
  for (const [i, queue] of siblings.entries()) {
    if (queue.position !== i + 1) await api('PATCH', `/api/v1/queues/${at(queue.id)}`, { position: i + 1 });
  }
  return `Moved “${row.name}” ${step < 0 ? 'up' : 'down'}.`;
}

/// A channel's tree in menu order: each node after its parent, siblings by position.
function treeOrder(rows, channel) {
  const inChannel = rows.filter((q) => q.channel === channel);
  const children = (parent) => inChannel.filter((q) => (q.parent_id ?? null) === parent)
    .sort((a, b) => a.position - b.position || a.name.localeCompare(b.name));
  const ordered = [];
  const walk = (parent, depth) => {
    for (const node of children(parent)) {
      ordered.push({ ...node, depth });
      walk(node.id, depth + 1);
    }
  };
  walk(null, 0);
  return ordered;
}

function siblingEdge(row, rows, last) {
  const siblings = rows.filter((q) => q.parent_id === row.parent_id);
  return (last ? siblings.at(-1) : siblings[0])?.id === row.id;
}

/// The countries whose emergency numbers Switchboard calls, for addresses and the registry.
export const COUNTRIES = [['US', 'United States'], ['CA', 'Canada'], ['PR', 'Puerto Rico'], ['GB', 'United Kingdom'], ['DK', 'Denmark']];

/// A civic address's fields, under `prefix` (`address.country`…). `blank` offers no country,
/// for a form where an empty address means none.
export function addressFields(prefix, blank = false) {
  const name = (field) => `${prefix}${field}`;
  return [
    { name: name('country'), label: 'Country', type: 'select', options: () => COUNTRIES, ...(blank ? { none: 'No address of their own', help: 'With no address of their own, the user is located at their site.' } : { initial: 'US' }) },
    { name: name('street'), label: 'Street', placeholder: 'Main Street' },
    { name: name('number'), label: 'House number', placeholder: '100' },
    { name: name('building'), label: 'Building', omitEmpty: true },
    { name: name('floor'), label: 'Floor', omitEmpty: true },
    { name: name('room'), label: 'Room or suite', omitEmpty: true },
    { name: name('city'), label: 'City', placeholder: 'Springfield' },
    { name: name('state'), label: 'State or province', placeholder: 'IL', help: 'The two-letter code in the United States and Canada.' },
    { name: name('postcode'), label: 'Postcode', omitEmpty: true, placeholder: '62701' },
    { name: name('method'), label: 'Obtained', type: 'select', options: () => [['Manual', 'Typed in'], ['DHCP', 'From the network (DHCP)']] },
  ];
}

/// What a user's location is, for people.
export function locationText(location) {
  if (location.source === 'own') return `Own address (set by ${location.set_by === 'agent' ? 'the agent' : 'an admin'}): ${location.one_line}`;
  if (location.source === 'site') return `At ${location.site_name}: ${location.one_line}`;
  return 'No location set: they cannot dial emergency numbers until one is set.';
}

export const SETUP_PAGES = [
  {
    key: 'users', title: 'Users', noun: 'user', permission: 'users_edit',
    lead: 'People who sign in: agents, supervisors, managers and admins.',
    list: '/api/v1/users', lookups: ['teams', 'roles', 'queues', 'profiles', 'settings', 'sites'],
    id: (u) => u.id, name: (u) => u.display_name || u.username,
    columns: [
      ['Name', (u, c) => element('span', {}, u.display_name, ' ', element('span', { class: 'path' }, u.username),
        missingEmergencyContacts(u, c.lookups.profiles)
          ? element('span', { class: 'tag warn', 'data-testid': 'no-emergency-contacts', title: 'No emergency contacts: nobody is notified if they dial 911.' }, '⚠ no emergency contacts')
          : null)],
      ['Role', (u, c) => c.lookups.roles?.find((r) => r.key === u.role)?.name ?? u.role],
      ['Teams', (u, c) => tags(u.teams.map((t) => byId(c.lookups.teams, t) ?? t))],
      ['Queues', (u, c) => tags(u.queues.map((q) => byId(c.lookups.queues, q, 'path') ?? q))],
      ['Languages', (u) => u.languages.join(', ')],
      ['Site', (u, c) => (u.site_id ? byId(c.lookups.sites, u.site_id) ?? '' : '')],
      ['Status', (u) => element('span', {}, u.disabled ? element('span', { class: 'tag disabled' }, 'disabled') : element('span', { class: `tag ${u.presence}` }, words(u.presence)),
        u.totp_enabled ? element('span', { class: 'tag' }, 'TOTP') : null)],
    ],
    fields: [
      { name: 'username', label: 'Username', required: true },
      { name: 'display_name', label: 'Display name', omitEmpty: true },
      { name: 'email', label: 'Email', optional: true },
      { name: 'role', label: 'Role', type: 'select', options: (l) => (l.roles ?? []).map((r) => [r.key, r.name]), initial: 'agent' },
      { name: 'password', label: 'Password', type: 'password', createOnly: true, omitEmpty: true, help: 'At least 8 characters. Leave empty to set it later.' },
      { name: 'teams', label: 'Teams', type: 'choices', options: teamOptions },
      { name: 'managed_teams', label: 'Manages teams', type: 'choices', options: teamOptions, help: 'For managers: the teams whose agents they supervise.' },
      { name: 'queues', label: 'Queues', type: 'choices', options: (l) => (l.queues ?? []).filter((q) => q.kind === 'leaf').map((q) => [q.id, `${channelName(q.channel)}: ${q.path}`]) },
      { name: 'languages', label: 'Languages', type: 'choices', options: languageOptions },
      { name: 'capacity_profile_id', label: 'Capacity profile', type: 'select', none: 'None', options: (l) => (l.profiles ?? []).map((p) => [p.id, p.name]) },
      { name: 'emergency_contacts', label: 'Emergency contacts', omitEmpty: true, help: 'Email addresses separated by “;”.' },
      { name: 'site_id', label: 'Site', type: 'select', none: 'No site', options: (l) => (l.sites ?? []).map((site) => [site.id, site.name]), help: 'Where the user works: their location for emergency calls, unless they have an address of their own (Address).' },
    ],
    create: { method: 'POST', path: () => '/api/v1/users' },
    update: { method: 'PATCH', path: (u) => `/api/v1/users/${at(u.id)}` },
    remove: (u) => `/api/v1/users/${at(u.id)}`,
    actions: [
      {
        label: 'SIP phone', testid: 'sip-phone', title: 'Set the password the user’s SIP phone registers with',
        heading: (u) => `SIP phone password for ${u.display_name || u.username}`,
        fields: [{ name: 'password', label: 'Phone password', type: 'password', help: 'The phone registers as the username with this password (8 to 128 characters).' }],
        submit: async (u, body) => {
          await api('PUT', `/api/v1/users/${at(u.id)}/sip-phone`, body);
        },
        done: (u) => `The SIP phone password of ${u.display_name || u.username} is set.`,
      },
      {
        label: 'Address', testid: 'address', title: 'The user’s own address for emergency calls (working from home, say)',
        load: async (u) => ({ ...u, location: await api('GET', `/api/v1/users/${at(u.id)}/address`) }),
        heading: (u) => `Address of ${u.display_name || u.username}`,
        lead: (u) => locationText(u.location),
        read: (u) => ({ address: u.location.source === 'own' ? u.location.address : {} }),
        fields: addressFields('address.', true),
        // No country means no address of their own: their site's applies.
        submit: async (u, body) => {
          if (!body.address?.country) await api('DELETE', `/api/v1/users/${at(u.id)}/address`);
          else await api('PUT', `/api/v1/users/${at(u.id)}/address`, body.address);
        },
        done: (u) => `The address of ${u.display_name || u.username} is saved.`,
      },
      {
        label: (u) => (u.disabled ? 'Enable' : 'Disable'), testid: 'toggle-disabled',
        run: async (u) => {
          await api('PATCH', `/api/v1/users/${at(u.id)}`, { disabled: !u.disabled });
          return `${u.display_name || u.username} is ${u.disabled ? 'enabled' : 'disabled'}.`;
        },
      },
    ],
  },
  {
    key: 'teams', title: 'Teams', noun: 'team', permission: 'users_edit',
    list: '/api/v1/teams', id: (t) => t.id, name: (t) => t.name,
    columns: [['Name', (t) => t.name], ['Created', (t) => when(t.created_at)]],
    fields: [{ name: 'name', label: 'Name' }],
    create: { method: 'POST', path: () => '/api/v1/teams' },
    update: { method: 'PATCH', path: (t) => `/api/v1/teams/${at(t.id)}` },
    remove: (t) => `/api/v1/teams/${at(t.id)}`,
  },
  {
    key: 'roles', title: 'Roles', noun: 'role', permission: 'users_edit',
    lead: 'Built-in roles and the center’s own. A role scoped to assigned teams acts only on the teams a user manages.',
    list: '/api/v1/roles', id: (r) => r.key, name: (r) => r.name, editable: (r) => !r.builtin,
    columns: [
      ['Name', (r) => element('span', {}, r.name, ' ', element('code', {}, r.key))],
      ['Scope', (r) => words(r.scope)],
      ['Permissions', (r) => tags(r.permissions.map(words))],
      ['', (r) => (r.builtin ? element('span', { class: 'tag' }, 'built-in') : '')],
    ],
    fields: [
      { name: 'key', label: 'Key', createOnly: true, help: 'Lower case letters, digits and _; cannot change later.' },
      { name: 'name', label: 'Name' },
      { name: 'scope', label: 'Scope', type: 'select', options: () => [['center', 'Whole center'], ['assigned_teams', 'Assigned teams']] },
      { name: 'permissions', label: 'Permissions', type: 'choices', options: () => PERMISSIONS.map((p) => [p, words(p)]) },
    ],
    create: { method: 'POST', path: () => '/api/v1/roles' },
    update: { method: 'PATCH', path: (r) => `/api/v1/roles/${at(r.key)}` },
    remove: (r) => `/api/v1/roles/${at(r.key)}`,
  },
  {
    key: 'queues', title: 'Queues', noun: 'queue', permission: 'settings_edit',
    lead: 'The menu tree customers choose from, per channel. Menus hold choices; leaf queues hold waiting contacts.',
    list: '/api/v1/queues', lookups: ['queues', 'settings'], tabs: CHANNELS,
    inTab: (rows, tab) => treeOrder(rows, tab),
    id: (q) => q.id, name: (q) => q.name,
    columns: [
      ['Name', (q) => element('span', {}, element('span', { class: 'tree-indent', style: `width:${q.depth * 22}px` }), q.depth ? '└ ' : '', q.name)],
      ['Kind', (q) => element('span', { class: 'tag' }, q.kind)],
      ['Path', (q) => element('span', { class: 'path', 'data-testid': 'queue-path' }, q.path)],
      ['Priority', (q) => String(q.priority)],
      ['Languages', (q) => q.languages.join(', ')],
    ],
    fields: [
      { name: 'channel', type: 'hidden', tabValue: true, createOnly: true },
      { name: 'parent_id', label: 'Inside menu', type: 'select', none: 'Top level', options: (l, tab) => (l.queues ?? []).filter((q) => q.kind === 'menu' && q.channel === tab).map((q) => [q.id, q.path]) },
      { name: 'name', label: 'Name' },
      { name: 'kind', label: 'Kind', type: 'select', options: () => [['leaf', 'Queue (contacts wait here)'], ['menu', 'Menu (holds choices)']], createOnly: true },
      { name: 'priority', label: 'Priority', type: 'number', omitEmpty: true, help: 'Higher is served first when agents are shared.' },
      { name: 'languages', label: 'Languages', type: 'choices', options: languageOptions },
    ],
    toInput: (body, row, context) => {
      if (!row) body.position = context.rows.filter((q) => q.channel === context.tab && q.parent_id === body.parent_id).length + 1;
      return body;
    },
    create: { method: 'POST', path: () => '/api/v1/queues' },
    update: { method: 'PATCH', path: (q) => `/api/v1/queues/${at(q.id)}` },
    remove: (q) => `/api/v1/queues/${at(q.id)}`,
    actions: [
      { label: '↑', testid: 'move-up', title: 'Move up', disabled: (q, i, rows) => siblingEdge(q, rows, false), run: (q, c) => moveQueue(q, -1, c) },
      { label: '↓', testid: 'move-down', title: 'Move down', disabled: (q, i, rows) => siblingEdge(q, rows, true), run: (q, c) => moveQueue(q, 1, c) },
    ],
  },
  {
    key: 'capacity', title: 'Capacity profiles', noun: 'capacity profile', permission: 'settings_edit',
    lead: 'How many chats and calls an agent takes at once.',
    list: '/api/v1/capacity-profiles', id: (p) => p.id, name: (p) => p.name,
    columns: [['Name', (p) => p.name], ['Chats at once', (p) => String(p.max_chats)], ['Calls at once', (p) => String(p.max_calls)],
      ['Outbound calls', (p) => (p.voice_outbound ? 'allowed' : '—')]],
    fields: [
      { name: 'name', label: 'Name' },
      { name: 'max_chats', label: 'Chats at once', type: 'number', min: 0, initial: 3 },
      { name: 'max_calls', label: 'Calls at once', type: 'number', min: 0, initial: 1 },
      { name: 'voice_outbound', label: 'Outbound calls', type: 'checkbox', caption: 'May place outbound calls' },
    ],
    create: { method: 'POST', path: () => '/api/v1/capacity-profiles' },
    update: { method: 'PUT', path: (p) => `/api/v1/capacity-profiles/${at(p.id)}` },
    remove: (p) => `/api/v1/capacity-profiles/${at(p.id)}`,
  },
  {
    key: 'hours', title: 'Business hours', noun: 'schedule', permission: 'settings_edit',
    lead: 'When the center is open. A schedule for a queue, channel or language overrides the center’s own; the most specific applies.',
    list: '/api/v1/business-hours', lookups: ['queues', 'settings'], id: (h) => h.id, name: (h) => h.name,
    columns: [
      ['Name', (h) => h.name],
      ['Applies to', (h, c) => [h.scope.queue_id ? `Queue ${byId(c.lookups.queues, h.scope.queue_id, 'path') ?? ''}` : null,
        h.scope.channel ? channelName(h.scope.channel) : null, h.scope.language ? `Language ${h.scope.language}` : null].filter(Boolean).join(' · ') || 'Whole center'],
      ['Time zone', (h) => h.time_zone],
      ['Weekly', (h) => `${h.periods.length} periods`],
      ['Holidays', (h) => tags(h.holidays)],
      ['Closures', (h) => String(h.closures.length)],
    ],
    fields: [
      { name: 'name', label: 'Name' },
      { name: 'scope.queue_id', label: 'Queue', type: 'select', none: 'Any queue', options: queueOptions(null) },
      { name: 'scope.channel', label: 'Channel', type: 'select', none: 'Any channel', options: () => CHANNELS },
      { name: 'scope.language', label: 'Language', type: 'select', none: 'Any language', options: languageOptions },
      { name: 'time_zone', label: 'Time zone', omitEmpty: true, placeholder: 'The center’s time zone', help: 'An IANA name such as Europe/Paris.' },
      { name: 'periods', label: 'Weekly periods', type: 'lines', placeholder: 'mon 08:00-18:00', help: 'One a line: a day and a span, such as “mon 08:00-18:00”; “fri 22:00-02:00” crosses midnight.' },
      { name: 'holidays', label: 'Holidays', type: 'lines', placeholder: '12-25', help: 'One a line: 2026-12-24 (one date) or 12-25 (every year).' },
      { name: 'closures', label: 'Closures', type: 'lines', placeholder: '2026-03-01T09:00:00Z/2026-03-01T13:00:00Z', help: 'One a line: a start and an end, separated by “/”.' },
    ],
    preview: (body) => weekPreview(body),
    create: { method: 'POST', path: () => '/api/v1/business-hours' },
    update: { method: 'PUT', path: (h) => `/api/v1/business-hours/${at(h.id)}` },
    remove: (h) => `/api/v1/business-hours/${at(h.id)}`,
  },
  {
    key: 'statuses', title: 'Presence statuses', noun: 'status', permission: 'settings_edit',
    lead: 'Statuses of the center’s own that agents choose beside available, busy, break and do not disturb.',
    list: '/api/v1/custom-statuses', id: (s) => s.name, name: (s) => s.name,
    columns: [['Name', (s) => s.name]],
    fields: [{ name: 'name', label: 'Name' }],
    create: { method: 'POST', path: () => '/api/v1/custom-statuses' },
    remove: (s) => `/api/v1/custom-statuses/${at(s.name)}`,
  },
  {
    key: 'tones', title: 'Tones', noun: 'tone', permission: 'settings_edit',
    lead: 'Sounds agents hear for a new chat, message or call. Upload an MP3.',
    list: '/api/v1/tones', id: (t) => t.id, name: (t) => t.name, editable: (t) => !t.builtin,
    columns: [['Name', (t) => t.name], ['', (t) => (t.builtin ? element('span', { class: 'tag' }, 'built-in') : '')]],
    fields: [
      { name: 'name', label: 'Name' },
      { name: 'file', label: 'MP3 file', type: 'file', accept: 'audio/mpeg,.mp3' },
    ],
    createLabel: 'Upload tone',
    create: {
      submit: async (row, body) => {
        if (!body.file) throw new Error('Choose an MP3 file to upload.');
        return api('POST', `/api/v1/tones?name=${encodeURIComponent(body.name)}`, await body.file.arrayBuffer(), 'audio/mpeg');
      },
    },
    remove: (t) => `/api/v1/tones/${at(t.id)}`,
    actions: [{
      label: '▶ Play', testid: 'play',
      run: async (t) => {
        await new Audio(t.url).play();
        return false;
      },
    }],
  },
  {
    key: 'trunks', title: 'Trunks', noun: 'trunk', permission: 'settings_edit',
    lead: 'SIP connections to carriers: inbound (the carrier calls us) and outbound (we call through it).',
    list: '/api/v1/voice/trunks', id: (t) => t.id, name: (t) => t.name,
    columns: [['Name', (t) => t.name], ['Direction', (t) => t.direction],
      ['Addresses or host', (t) => (t.direction === 'inbound' ? t.addresses.join(', ') : `${t.host ?? ''}${t.port ? `:${t.port}` : ''}`)],
      ['Transport', (t) => t.transport], ['Credentials', (t) => (t.username ? `${t.username}${t.has_password ? ' · password set' : ''}` : '—')],
      ['Emergency', (t) => (t.emergency ? element('span', { class: 'tag emergency' }, 'carries emergency calls') : '')]],
    fields: [
      { name: 'name', label: 'Name' },
      { name: 'direction', label: 'Direction', type: 'select', options: () => [['inbound', 'Inbound'], ['outbound', 'Outbound']] },
      { name: 'addresses', label: 'Carrier addresses', type: 'lines', placeholder: '192.0.2.0/24', help: 'Inbound: addresses or networks calls come from, one a line.' },
      { name: 'host', label: 'Host', optional: true, help: 'Outbound: where calls are sent.' },
      { name: 'port', label: 'Port', type: 'number', omitEmpty: true },
      { name: 'transport', label: 'Transport', type: 'select', options: () => [['udp', 'UDP'], ['tcp', 'TCP']] },
      { name: 'username', label: 'Username', optional: true },
      { name: 'password', label: 'Password', type: 'password', omitEmpty: true, help: 'Leave empty to keep the current one.' },
      { name: 'caller_id', label: 'Caller id', optional: true, help: 'Outbound: the number presented.' },
      { name: 'max_calls', label: 'Calls at once', type: 'number', omitEmpty: true },
      { name: 'max_calls_per_second', label: 'New calls a second', type: 'number', omitEmpty: true },
      { name: 'emergency', label: 'Emergency calls', type: 'checkbox', caption: 'May carry emergency calls', help: 'Outbound only: emergency numbers without a direct route of their own leave through such a trunk.' },
    ],
    // Dial rules and header flags are kept as they are.
    toInput: (body, row) => ({ ...body, dial_rules: row?.dial_rules ?? [], header_flags: row?.header_flags ?? [] }),
    create: { method: 'POST', path: () => '/api/v1/voice/trunks' },
    update: { method: 'PUT', path: (t) => `/api/v1/voice/trunks/${at(t.id)}` },
    remove: (t) => `/api/v1/voice/trunks/${at(t.id)}`,
  },
  {
    key: 'numbers', title: 'Numbers', noun: 'number', permission: 'settings_edit',
    lead: 'Dialled numbers and where their calls start.',
    list: '/api/v1/voice/numbers', lookups: ['queues', 'settings'], id: (n) => n.number, name: (n) => n.number,
    columns: [['Number', (n) => n.number], ['Starts at', (n, c) => (n.entry_queue_id ? byId(c.lookups.queues, n.entry_queue_id, 'path') ?? n.entry_queue_id : 'Voice menu')],
      ['Language', (n) => n.language ?? '']],
    fields: [
      { name: 'number', label: 'Number', createOnly: true, placeholder: '+15551230000' },
      { name: 'entry_queue_id', label: 'Starts at', type: 'select', none: 'The voice menu', options: queueOptions('voice') },
      { name: 'language', label: 'Language', type: 'select', none: 'The center’s', options: languageOptions },
    ],
    create: { submit: (row, { number, ...body }) => api('PUT', `/api/v1/voice/numbers/${at(number)}`, body) },
    update: { method: 'PUT', path: (n) => `/api/v1/voice/numbers/${at(n.number)}` },
    remove: (n) => `/api/v1/voice/numbers/${at(n.number)}`,
  },
  {
    key: 'api-keys', title: 'API keys', noun: 'API key', permission: 'settings_edit',
    lead: 'Keys for the Apps API. A key’s secret is shown once, when it is made.',
    list: '/api/v1/api-keys', id: (k) => k.key_id, name: (k) => k.name,
    columns: [['Name', (k) => k.name], ['Key id', (k) => element('code', {}, k.key_id)], ['Scopes', (k) => tags(k.scopes)], ['Created', (k) => when(k.created_at)]],
    fields: [
      { name: 'name', label: 'Name' },
      { name: 'scopes', label: 'Scopes', type: 'choices', options: () => [['recordings', 'recordings (download call recordings)']] },
    ],
    create: { method: 'POST', path: () => '/api/v1/api-keys' },
    afterCreate: (key, context) => {
      context.reload(`Created API key “${key.name}”.`).then(() => context.showSecret(`Secret of ${key.name} (key id ${key.key_id})`, key.secret));
      return true;
    },
    remove: (k) => `/api/v1/api-keys/${at(k.key_id)}`,
  },
  {
    key: 'crm', title: 'CRM connector', noun: 'connector', permission: 'settings_edit', single: true,
    lead: 'Where tickets of chats and calls go, and the secret that signs identity tokens from your site. With a webhook or Zendesk, call recordings go there too and are deleted from Switchboard once received.',
    list: '/api/v1/integrations', name: () => 'CRM connector',
    fields: [
      { name: 'crm_connector', label: 'Connector', type: 'select', options: () => [['builtin', 'Built-in (tickets in Switchboard)'], ['webhook', 'Webhook'], ['zendesk', 'Zendesk']] },
      { name: 'crm_webhook_url', label: 'Webhook address', optional: true, placeholder: 'https://crm.example.com/switchboard', shownWhen: webhook },
      { name: 'crm_webhook_secret', label: 'Webhook secret', optional: true, shownWhen: webhook, help: 'Signs each delivery (X-Switchboard-Signature); at least 16 characters.' },
      { name: 'zendesk_url', label: 'Zendesk address', optional: true, placeholder: 'https://example.zendesk.com', shownWhen: zendesk, help: 'Your Zendesk account’s address.' },
      { name: 'zendesk_email', label: 'Zendesk agent email', optional: true, placeholder: 'integration@example.com', shownWhen: zendesk, help: 'The Zendesk agent (or admin) whose API token Switchboard uses; tickets and notes are written as them.' },
      { name: 'zendesk_token', label: 'Zendesk API token', type: 'password', omitEmpty: true, shownWhen: zendesk,
        help: 'Admin Center > Apps and integrations > Zendesk API, with token access on. Never shown again: leave empty to keep the stored one.' },
      { name: 'crm_record_url', label: 'Record address', optional: true, placeholder: 'https://crm.example.com/tickets/{external_id}', help: 'Where the CRM shows a ticket; supervisors watching a chat get this link to its record.' },
      { name: 'identity_secret', label: 'Identity secret', help: 'Signs identity tokens (JWT HS256) from the site that embeds the widget; at least 32 characters.' },
    ],
    update: { method: 'PUT', path: () => '/api/v1/integrations' },
  },
  {
    key: 'dispositions', title: 'Dispositions', noun: 'dispositions', permission: 'settings_edit', single: true,
    lead: 'What agents choose from when they wrap up a contact, in this order.',
    list: '/api/v1/dispositions', name: () => 'dispositions',
    fields: [{ name: 'dispositions', label: 'Dispositions', type: 'lines', help: 'One a line. Empty means wrap-ups carry a note only.' }],
    update: { method: 'PUT', path: () => '/api/v1/dispositions' },
  },
  {
    key: 'sites', title: 'Sites', noun: 'site', permission: 'settings_edit',
    lead: 'Places agents work at. An agent on a site is located at its address when they dial an emergency number, unless they have an address of their own.',
    list: '/api/v1/sites', lookups: ['users'], id: (site) => site.id, name: (site) => site.name,
    columns: [['Name', (site) => site.name], ['Address', (site) => site.one_line],
      ['People', (site, c) => String((c.lookups.users ?? []).filter((u) => u.site_id === site.id).length)]],
    fields: [{ name: 'name', label: 'Name' }, ...addressFields('address.')],
    create: { method: 'POST', path: () => '/api/v1/sites' },
    update: { method: 'PUT', path: (site) => `/api/v1/sites/${at(site.id)}` },
    remove: (site) => `/api/v1/sites/${at(site.id)}`,
    empty: 'No sites yet.',
  },
  {
    key: 'center', title: 'Center', noun: 'settings', permission: 'settings_edit', single: true,
    lead: 'The center’s name, time zone, languages and country.',
    list: '/api/v1/settings', name: () => 'settings',
    fields: [
      { name: 'name', label: 'Name' },
      { name: 'time_zone', label: 'Time zone', help: 'An IANA name such as America/New_York.' },
      { name: 'languages', label: 'Languages', type: 'lines', help: 'Language codes, one a line (en, es, fr-CA).' },
      { name: 'country', label: 'Country', optional: true, help: 'Two letters; the home numbering plan for dialling.' },
    ],
    update: { method: 'PUT', path: () => '/api/v1/settings' },
  },
];
