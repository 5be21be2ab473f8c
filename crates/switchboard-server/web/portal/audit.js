// The audit log (admins): monitoring sessions, forced ends, recording downloads, settings
// changes and refused dials, newest first, filtered by action, by who did it and from when.

import { api, element, notice, when, words } from '/portal/api.js';

const ACTIONS = ['settings_changed', 'dispositions_changed', 'dial_refused', 'recording_downloaded', 'throttle_cleared', 'recording_uploaded', 'recording_upload_failed', 'recording_lost'];

class Audit extends HTMLElement {
  connectedCallback() {
    this.filters = { action: '', actor: '', since: '', limit: '100' };
    this.users = new Map();
    api('GET', '/api/v1/users').then((users) => {
      this.users = new Map(users.map((u) => [u.id, u]));
      this.render();
    }, () => {});
    this.render();
    this.load();
  }

  async load() {
    const query = new URLSearchParams();
    if (this.filters.action) query.set('action', this.filters.action);
    if (this.filters.actor) query.set('actor', this.filters.actor);
    if (this.filters.since) query.set('since', new Date(this.filters.since).toISOString());
    query.set('limit', this.filters.limit);
    try {
      this.entries = await api('GET', `/api/v1/audit?${query}`);
      this.error = null;
    } catch (error) {
      this.entries = [];
      this.error = error;
    }
    this.render();
  }

  render() {
    const set = (name) => (event) => {
      this.filters[name] = event.target.value;
      this.load();
    };
    const option = (value, label, current) => element('option', { value, selected: value === current }, label);
    const seen = new Set(ACTIONS);
    for (const entry of this.entries ?? []) seen.add(entry.action);
    const filters = element('div', { class: 'filters' },
      element('select', { 'data-testid': 'audit-action', onchange: set('action') }, option('', 'Every action', this.filters.action),
        ...[...seen].sort().map((a) => option(a, words(a), this.filters.action))),
      element('select', { 'data-testid': 'audit-actor', onchange: set('actor') }, option('', 'Anyone', this.filters.actor),
        ...[...this.users.values()].map((u) => option(u.id, u.display_name || u.username, this.filters.actor))),
      element('label', { class: 'legend' }, 'From ', element('input', { type: 'datetime-local', value: this.filters.since, 'data-testid': 'audit-since', onchange: set('since') })),
      element('select', { 'data-testid': 'audit-limit', onchange: set('limit') }, ...['50', '100', '500', '1000'].map((n) => option(n, `Latest ${n}`, this.filters.limit))),
      element('button', { type: 'button', class: 'secondary', onclick: () => this.load() }, 'Refresh'));
    const area = element('div');
    if (this.error) notice(area, this.error);
    const who = (id) => (id ? this.users.get(id)?.display_name ?? id : 'System');
    const entries = this.entries ?? [];
    const table = element('table', { class: 'grid', 'data-testid': 'audit-list' },
      element('tr', {}, ...['When', 'Who', 'Action', 'Subject', 'Detail'].map((h) => element('th', {}, h))),
      ...(entries.length ? entries.map((e) => element('tr', { 'data-action': e.action },
        element('td', { class: 'timer' }, when(e.at)),
        element('td', {}, who(e.actor_id)),
        element('td', {}, element('span', { class: 'tag' }, words(e.action))),
        element('td', {}, e.subject ?? ''),
        element('td', {}, e.detail))) : [element('tr', {}, element('td', { class: 'empty', colspan: 5 }, this.entries ? 'Nothing recorded matches.' : 'Loading…'))]));
    this.replaceChildren(element('h1', {}, 'Audit log'), element('p', { class: 'lead' }, 'Who did what: monitoring, forced ends, recording downloads and settings changes.'), filters, area, table);
  }
}

customElements.define('sb-audit', Audit);
