// Live monitoring (MON-5..7): calls and chats, queued and connected, and agents, kept current by
// the event stream. The stream is opened first and its events held until the snapshot (live
// calls, open contacts, agents) has loaded; then the held events are applied on top, so a page
// opened late is right at once and nothing that happened while it loaded is lost. A `lagged`
// event, or a reconnect, loads the snapshot again the same way.
//
// Each connected call has a slot for monitoring (Listen, Coach, Barge, as the user's
// permissions allow, and Stop): a click sends an `sb-monitor` event ({call_id, mode, device})
// that this page hands to the monitoring module (monitor.js: in this browser, or on the user's
// SIP phone). Every call, and every agent on one, opens the call details (details.js) beside
// the list. Each queued or connected chat has View (monitor_chats_view), which opens its live
// transcript beside the list (`watch.js`). Ending a stuck call or chat needs
// monitor_chats_edit and a confirmation; the record names who ended it.

import { api, channelName, confirmAction, duration, element, notice, words } from '/portal/api.js';
import { MODES, monitoring } from '/portal/monitor.js';
import '/portal/details.js';
import '/portal/watch.js';
const PRESENCES = ['available', 'busy', 'break', 'do_not_disturb', 'offline'];

/// How far a call has got, so an older copy of it never replaces a newer one.
function callProgress(call) {
  if (call.ended_at) return 4;
  if (call.answered_at) return 3;
  if (call.ringing_at) return 2;
  if (call.queued_at) return 1;
  return 0;
}

/// How far a contact has got; `at` orders two copies at the same stage.
function contactProgress(contact) {
  const rank = { queued: 1, assigned: 2, ended: 3, abandoned: 3 }[contact.status] ?? 0;
  return [rank, Date.parse(contact.assigned_at ?? contact.created_at)];
}

/// The live state of the center as this user may see it, and the one event stream feeding it.
class LiveState extends EventTarget {
  constructor() {
    super();
    this.calls = new Map();
    this.contacts = new Map();
    this.agents = new Map();
    this.ended = new Set();          // contacts and calls seen ending: never brought back
    this.held = null;                // events that arrived while a snapshot loads, else null
    this.connected = false;
    this.error = null;
    this.backoff = 500;
    this.stopped = false;
  }

  start() {
    if (this.socket || this.stopped) return;
    const socket = new WebSocket(location.origin.replace(/^http/, 'ws') + '/api/v1/events');
    this.socket = socket;
    this.held = [];
    socket.onopen = () => {
      this.backoff = 500;
      this.connected = true;
      this.load();
    };
    socket.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      if (event.type === 'lagged') {
        this.load();
      } else if (this.held) {
        this.held.push(event);
      } else {
        this.apply(event, false);
        this.changed();
      }
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.connected = false;
      this.changed();
      if (!this.stopped) setTimeout(() => this.start(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    };
  }

  stop() {
    this.stopped = true;
    this.socket?.close();
    this.socket = null;
  }

  /// Loads the snapshot, holding the stream's events meanwhile, then applies them.
  async load() {
    this.held ??= [];
    const generation = (this.generation = (this.generation ?? 0) + 1);
    try {
      const [calls, contacts, agents] = await Promise.all([
        api('GET', '/api/v1/calls/live').catch((error) => (error.status === 403 ? [] : Promise.reject(error))),
        api('GET', '/api/v1/contacts'),
        api('GET', '/api/v1/agents'),
      ]);
      if (generation !== this.generation) return;
      this.calls = new Map(calls.filter((c) => !c.ended_at).map((c) => [c.id, c]));
      this.contacts = new Map(contacts.filter((c) => c.status === 'queued' || c.status === 'assigned').map((c) => [c.id, c]));
      this.agents = new Map(agents.map((a) => [a.user_id, a]));
      const held = this.held ?? [];
      this.held = null;
      for (const event of held) this.apply(event, true);
      this.error = null;
    } catch (error) {
      this.error = error;
      this.held = null;
    }
    this.changed();
  }

  /// Applies one event; `late` marks one held while the snapshot loaded, which may be older
  /// than what the snapshot says and then is dropped.
  apply(event, late) {
    switch (event.type) {
      case 'presence_changed': {
        const agent = this.agents.get(event.user_id);
        if (agent && (!late || Date.parse(event.since) >= Date.parse(agent.presence_since))) {
          agent.presence = event.presence;
          agent.presence_since = event.since;
        }
        break;
      }
      case 'contact_queued':
      case 'contact_assigned':
      case 'contact_ended': {
        const contact = event.contact;
        if (event.type === 'contact_ended' || contact.status === 'ended' || contact.status === 'abandoned') {
          this.ended.add(contact.id);
          this.contacts.delete(contact.id);
          break;
        }
        if (this.ended.has(contact.id)) break;
        const known = this.contacts.get(contact.id);
        if (late && known) {
          const [rankKnown, atKnown] = contactProgress(known);
          const [rank, at] = contactProgress(contact);
          if (rank < rankKnown || (rank === rankKnown && at < atKnown)) break;
        }
        this.contacts.set(contact.id, contact);
        break;
      }
      case 'call_updated': {
        const call = event.call;
        if (call.ended_at) {
          this.ended.add(call.id);
          this.calls.delete(call.id);
          monitoring.callEnded(call.id);
          break;
        }
        if (this.ended.has(call.id)) break;
        const known = this.calls.get(call.id);
        if (late && known && callProgress(call) < callProgress(known)) break;
        this.calls.set(call.id, call);
        break;
      }
      default:
        break;
    }
  }

  changed() {
    this.dispatchEvent(new Event('change'));
  }

  /// An agent's current load, counted from what is live (so it follows every event).
  load_of(userId) {
    let calls = 0;
    let chats = 0;
    for (const call of this.calls.values()) if (call.agent_id === userId && call.answered_at) calls += 1;
    for (const contact of this.contacts.values()) if (contact.agent_id === userId && contact.status === 'assigned' && contact.channel !== 'voice') chats += 1;
    return { calls, chats };
  }
}

/// A cell whose text is the time since `since`, kept ticking by the page.
function timer(since) {
  if (!since) return element('td', { class: 'timer' }, '');
  return element('td', { class: 'timer', 'data-since': since }, duration(Date.now() - Date.parse(since)));
}

function emptyRow(columns, text) {
  return element('tr', {}, element('td', { class: 'empty', colspan: columns }, text));
}

class Live extends HTMLElement {
  static observedAttributes = ['view'];

  constructor() {
    super();
    this.state = new LiveState();
    this.tabs = { calls: 'queued', chats: 'queued' };
    this.filters = { team: '', queue: '', status: '', search: '' };
    this.lookups = { queues: new Map(), teams: [], users: new Map() };
    this.state.addEventListener('change', () => this.schedule());
    // The call whose details are open beside the list, if any, and their panel.
    this.detailsCall = null;
    this.detailsPanel = null;
    this.addEventListener('sb-monitor', (event) => this.monitor(event.detail.call_id, event.detail.mode, event.detail.device));
    this.addEventListener('sb-details-close', () => this.openDetails(null));
    monitoring.addEventListener('change', () => this.schedule());
    monitoring.addEventListener('message', (event) => notice(this.notices, event.detail.text, event.detail.kind));
    // The chat whose transcript is open: one panel, kept across redraws so its socket stays.
    this.watchPanel = null;
    this.addEventListener('sb-watch-close', () => {
      this.watchPanel?.stop();
      this.watchPanel = null;
      this.render();
    });
  }

  /// Opens a chat's live transcript beside the list (another one open is closed).
  watchChat(chatId) {
    if (this.watchPanel?.chatId !== chatId) {
      this.watchPanel?.stop();
      this.watchPanel = element('sb-chat-watch');
      this.watchPanel.watch(chatId);
    }
    this.render();
  }

  /// Starts monitoring a call (in this browser unless `device` is `sip`), switches mode on the
  /// same leg, or (mode null) stops. Refusals (no permission, no SIP phone) are shown as they
  /// come.
  async monitor(callId, mode, device = 'browser') {
    try {
      if (mode) await monitoring.start(callId, mode, device);
      else await monitoring.stop();
    } catch (error) {
      notice(this.notices, error);
    }
    this.schedule();
  }

  openDetails(callId) {
    this.detailsCall = callId;
    this.render();
  }

  detailsButton(callId) {
    return element('button', {
      type: 'button', class: 'secondary small', 'data-testid': 'details',
      'aria-pressed': String(this.detailsCall === callId),
      onclick: () => this.openDetails(this.detailsCall === callId ? null : callId),
    }, 'Details');
  }

  connectedCallback() {
    this.state.start();
    this.loadLookups();
    this.ticker ??= setInterval(() => this.tick(), 1000);
    this.schedule();
  }

  disconnectedCallback() {
    // Kept alive while another page shows: coming back to Live is instant and still right.
  }

  attributeChangedCallback() {
    this.schedule();
  }

  stop() {
    this.state.stop();
    clearInterval(this.ticker);
    this.ticker = null;
  }

  async loadLookups() {
    const [queues, teams, users] = await Promise.all([
      api('GET', '/api/v1/queues').catch(() => []),
      api('GET', '/api/v1/teams').catch(() => []),
      api('GET', '/api/v1/users').catch(() => []),
    ]);
    this.lookups = {
      queues: new Map(queues.map((q) => [q.id, q])),
      teams,
      users: new Map(users.map((u) => [u.id, u])),
    };
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      if (this.isConnected) this.render();
    });
  }

  tick() {
    const now = Date.now();
    for (const cell of this.querySelectorAll('[data-since]')) cell.textContent = duration(now - Date.parse(cell.dataset.since));
  }

  can(permission) {
    return this.session?.can(permission) ?? false;
  }

  agentName(id) {
    if (!id) return '';
    return this.state.agents.get(id)?.display_name ?? this.lookups.users.get(id)?.display_name ?? 'another agent';
  }

  queuePath(id, fallback) {
    return this.lookups.queues.get(id)?.path ?? fallback ?? '';
  }

  render() {
    const view = this.getAttribute('view') || 'calls';
    const status = element('span', { class: 'legend', 'data-testid': 'live-status' },
      element('span', { class: `state-dot ${this.state.connected && !this.state.held ? 'live' : ''}` }),
      this.state.connected ? (this.state.held ? 'Loading…' : 'Live') : 'Reconnecting…');
    const title = { calls: 'Calls', chats: 'Chats', agents: 'Agents' }[view];
    const area = element('div');
    if (this.state.error) notice(area, this.state.error);
    const head = element('div', { class: 'toolbar' }, element('h1', {}, title), element('div', { class: 'grow' }), status);
    const body = view === 'agents' ? this.renderAgents() : view === 'chats' ? this.renderChats() : this.renderCalls();
    const kept = this.notices ? [...this.notices.childNodes] : [];
    this.notices = element('div', {}, ...kept);
    // A redraw keeps the focus where the user was typing (the search box, say).
    const focused = this.contains(document.activeElement) ? document.activeElement.dataset.testid : null;
    const withDetails = this.detailsCall && view !== 'chats';
    if (withDetails) {
      this.detailsPanel ??= element('sb-call-details', { class: 'details-panel', 'data-testid': 'call-details' });
      this.detailsPanel.show(this.detailsCall, this.state.calls.get(this.detailsCall));
    }
    const content = withDetails ? element('div', { class: 'with-details' }, body, this.detailsPanel) : body;
    this.replaceChildren(head, area, this.notices, content);
    const again = focused && this.querySelector(`[data-testid="${focused}"]`);
    if (again) {
      again.focus();
      if (again.setSelectionRange && again.value !== undefined) again.setSelectionRange(again.value.length, again.value.length);
    }
  }

  renderTabs(kind, counts) {
    return element('div', { class: 'tabs' }, ...['queued', 'connected'].map((tab) => element('button', {
      type: 'button', class: this.tabs[kind] === tab ? 'active' : '', 'data-testid': `${kind}-${tab}-tab`,
      onclick: () => { this.tabs[kind] = tab; this.render(); },
    }, tab === 'queued' ? 'Queued' : 'Connected', element('span', { class: 'count' }, String(counts[tab])))));
  }

  endButton(label, detail, run) {
    if (!this.can('monitor_chats_edit')) return null;
    return element('button', {
      type: 'button', class: 'danger small', 'data-testid': 'end',
      onclick: async () => {
        if (!(await confirmAction(`End this ${label}?`, detail, `End ${label}`))) return;
        try {
          await run();
          notice(this.notices, `The ${label} was ended.`, 'ok');
        } catch (error) {
          notice(this.notices, error);
        }
      },
    }, 'End');
  }

  monitorSlot(callId) {
    const buttons = MODES.filter(([, , permission]) => this.can(permission)).map(([mode, label]) => element('button', {
      type: 'button', class: 'secondary small', 'data-mode': mode, 'data-testid': `monitor-${mode}`,
      onclick: () => this.dispatchEvent(new CustomEvent('sb-monitor', { bubbles: true, composed: true, detail: { call_id: callId, mode } })),
    }, label));
    const current = monitoring.current?.callId === callId ? monitoring.current : null;
    if (current) {
      for (const button of buttons) {
        if (button.dataset.mode === current.mode) button.setAttribute('aria-pressed', 'true');
      }
      buttons.push(element('button', {
        type: 'button', class: 'secondary small', 'data-testid': 'monitor-stop',
        onclick: () => this.monitor(callId, null),
      }, 'Stop'));
    }
    return buttons.length ? element('span', { class: 'monitor-slot', 'data-testid': 'monitor-slot' }, ...buttons) : null;
  }

  renderCalls() {
    const calls = [...this.state.calls.values()].sort((a, b) => Date.parse(a.started_at) - Date.parse(b.started_at));
    const queued = calls.filter((c) => !c.answered_at);
    const connected = calls.filter((c) => c.answered_at);
    const tab = this.tabs.calls;
    const endCall = (call) => this.endButton('call', `The caller ${call.caller || ''} and any agent on the call are hung up.`,
      () => api('POST', `/api/v1/calls/${encodeURIComponent(call.id)}/end`));
    let table;
    if (tab === 'queued') {
      table = element('table', { class: 'grid', 'data-testid': 'calls-queued' },
        element('tr', {}, ...['Caller', 'Number called', 'Queue', 'State', 'Waiting', ''].map((h) => element('th', {}, h))),
        ...(queued.length ? queued.map((call) => element('tr', { 'data-call': call.id, class: this.detailsCall === call.id ? 'selected' : '' },
          element('td', {}, call.caller || 'Unknown'),
          element('td', {}, call.did),
          element('td', {}, this.queuePath(call.queue_id, call.ivr_path)),
          element('td', {}, call.ringing_at
            ? element('span', { class: 'tag ringing' }, `Ringing ${this.agentName(call.agent_id)}`)
            : element('span', { class: 'tag' }, call.queued_at ? 'Waiting' : 'In menu')),
          timer(call.queued_at ?? call.started_at),
          element('td', { class: 'actions' }, this.detailsButton(call.id), endCall(call)))) : [emptyRow(6, 'No calls are waiting.')]));
    } else {
      table = element('table', { class: 'grid', 'data-testid': 'calls-connected' },
        element('tr', {}, ...['Caller', 'Queue', 'Agent', 'Talking', 'Recording', ''].map((h) => element('th', {}, h))),
        ...(connected.length ? connected.map((call) => element('tr', { 'data-call': call.id, class: this.detailsCall === call.id ? 'selected' : '' },
          element('td', {}, call.caller || 'Unknown'),
          element('td', {}, this.queuePath(call.queue_id, call.ivr_path)),
          element('td', {}, this.agentName(call.agent_id)),
          timer(call.answered_at),
          element('td', {}, call.recording ? element('span', { class: 'tag' }, call.recording.state) : ''),
          element('td', { class: 'actions' }, this.monitorSlot(call.id), this.detailsButton(call.id), endCall(call)))) : [emptyRow(6, 'No calls are connected.')]));
    }
    return element('div', {}, this.renderTabs('calls', { queued: queued.length, connected: connected.length }), table);
  }

  renderChats() {
    const chats = [...this.state.contacts.values()].filter((c) => c.channel !== 'voice')
      .sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at));
    const queued = chats.filter((c) => c.status === 'queued');
    const connected = chats.filter((c) => c.status === 'assigned');
    const tab = this.tabs.chats;
    const endChat = (chat) => this.endButton('chat', `The chat with ${chat.customer || 'this customer'} is ended for both sides.`,
      () => api('POST', `/api/v1/contacts/${encodeURIComponent(chat.id)}/end`));
    const rows = tab === 'queued' ? queued : connected;
    const heads = tab === 'queued'
      ? ['Customer', 'Channel', 'Issue', 'Language', 'Waiting', '']
      : ['Customer', 'Channel', 'Issue', 'Agent', 'Connected', ''];
    const watched = this.watchPanel?.chatId;
    const view = (chat) => (this.can('monitor_chats_view') ? element('button', {
      type: 'button', class: 'secondary small', 'data-testid': 'watch', 'aria-pressed': watched === chat.id ? 'true' : null,
      onclick: () => this.watchChat(chat.id),
    }, 'View') : null);
    const table = element('table', { class: 'grid', 'data-testid': `chats-${tab}` },
      element('tr', {}, ...heads.map((h) => element('th', {}, h))),
      ...(rows.length ? rows.map((chat) => element('tr', { 'data-contact': chat.id, class: watched === chat.id ? 'selected' : null },
        element('td', {}, chat.customer || 'Web user'),
        element('td', {}, channelName(chat.channel)),
        element('td', { class: 'path' }, chat.issue || this.queuePath(chat.queue_id)),
        tab === 'queued' ? element('td', {}, chat.language ?? '') : element('td', {}, this.agentName(chat.agent_id)),
        timer(tab === 'queued' ? chat.created_at : chat.assigned_at),
        element('td', { class: 'actions' }, view(chat), endChat(chat)))) : [emptyRow(6, tab === 'queued' ? 'No chats are waiting.' : 'No chats are connected.')]));
    const tabs = this.renderTabs('chats', { queued: queued.length, connected: connected.length });
    if (!this.watchPanel) return element('div', {}, tabs, table);
    return element('div', {}, tabs, element('div', { class: 'split' }, element('div', {}, table), this.watchPanel));
  }

  renderAgents() {
    const { team, queue, status, search } = this.filters;
    const refilter = (name) => (event) => {
      this.filters[name] = event.target.value;
      this.render();
    };
    const option = (value, label, current) => element('option', { value, selected: value === current }, label);
    const statuses = new Set(PRESENCES);
    for (const agent of this.state.agents.values()) statuses.add(agent.presence);
    const leafQueues = [...this.lookups.queues.values()].filter((q) => q.kind === 'leaf');
    const filters = element('div', { class: 'filters' },
      element('input', { type: 'search', placeholder: 'Search by name', value: search, 'data-testid': 'agent-search', oninput: refilter('search') }),
      element('select', { 'data-testid': 'filter-team', onchange: refilter('team') }, option('', 'All teams', team),
        ...this.lookups.teams.map((t) => option(t.id, t.name, team))),
      leafQueues.length && this.lookups.users.size ? element('select', { 'data-testid': 'filter-queue', onchange: refilter('queue') }, option('', 'All queues', queue),
        ...leafQueues.map((q) => option(q.id, `${channelName(q.channel)}: ${q.path}`, queue))) : null,
      element('select', { 'data-testid': 'filter-status', onchange: refilter('status') }, option('', 'Any status', status),
        ...[...statuses].map((s) => option(s, words(s), status))));
    const needle = search.trim().toLowerCase();
    const agents = [...this.state.agents.values()]
      .filter((a) => !team || a.teams.includes(team))
      .filter((a) => !queue || (this.lookups.users.get(a.user_id)?.queues ?? []).includes(queue))
      .filter((a) => !status || a.presence === status)
      .filter((a) => !needle || a.display_name.toLowerCase().includes(needle) || a.username.toLowerCase().includes(needle))
      .sort((a, b) => a.display_name.localeCompare(b.display_name));
    const teamName = new Map(this.lookups.teams.map((t) => [t.id, t.name]));
    const callOf = (id) => [...this.state.calls.values()].find((c) => c.agent_id === id && c.answered_at);
    const table = element('table', { class: 'grid', 'data-testid': 'agents' },
      element('tr', {}, ...['Agent', 'Teams', 'Status', 'In status', 'Calls', 'Chats', ''].map((h) => element('th', {}, h))),
      ...(agents.length ? agents.map((agent) => {
        const load = this.state.load_of(agent.user_id);
        const call = callOf(agent.user_id);
        return element('tr', { 'data-agent': agent.user_id, class: call && this.detailsCall === call.id ? 'selected' : '' },
          element('td', {}, agent.display_name, ' ', element('span', { class: 'path' }, agent.username)),
          element('td', {}, ...agent.teams.map((t) => element('span', { class: 'tag' }, teamName.get(t) ?? t))),
          element('td', {}, element('span', { class: `tag ${agent.presence.startsWith('custom:') ? '' : agent.presence}`, 'data-testid': 'presence' }, words(agent.presence))),
          timer(agent.presence_since),
          element('td', {}, String(load.calls)),
          element('td', {}, String(load.chats)),
          element('td', { class: 'actions' }, call ? this.monitorSlot(call.id) : null, call ? this.detailsButton(call.id) : null));
      }) : [emptyRow(7, 'No agents match.')]));
    return element('div', {}, filters, table);
  }
}

customElements.define('sb-live', Live);
