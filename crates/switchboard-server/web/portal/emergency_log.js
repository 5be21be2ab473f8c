// Emergency calls in the portal (EMG-6, EMG-7, Kari's Law): the red banner shown on every page
// while an agent in the user's reach is on an emergency call (the calls in progress when the
// page opens, then the event stream's `emergency_started` and `emergency_ended`); the
// restricted emergency log (with `emergency_log_view`); and the editor of the notification
// template mailed to agents' emergency contacts, with its variables and a preview the server
// renders with sample values (admins).

import { api, element, notice, when, words } from '/portal/api.js';

/// The banner: one line per emergency call in progress. The stream is opened first and its
/// events held until the calls in progress have loaded, then applied on top, so a call that
/// starts or ends meanwhile is not missed.
class EmergencyBanner extends HTMLElement {
  connectedCallback() {
    this.calls = new Map();
    this.held = [];
    this.open();
    api('GET', '/api/v1/emergency/in-progress').then((calls) => {
      for (const call of calls) this.calls.set(call.call_id, call);
    }, () => {}).finally(() => {
      const held = this.held;
      this.held = null;
      for (const event of held) this.apply(event);
      this.render();
    });
  }

  disconnectedCallback() {
    this.stopped = true;
    this.socket?.close();
  }

  open() {
    const socket = new WebSocket(location.origin.replace(/^http/, 'ws') + '/api/v1/events');
    this.socket = socket;
    socket.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      if (event.type !== 'emergency_started' && event.type !== 'emergency_ended') return;
      if (this.held) this.held.push(event);
      else {
        this.apply(event);
        this.render();
      }
    };
    // A cut stream is opened again; what changed meanwhile is read again with it.
    socket.onclose = () => {
      if (this.stopped) return;
      setTimeout(() => {
        if (!this.stopped && this.isConnected) this.connectedCallback();
      }, 3000);
    };
  }

  apply(event) {
    if (event.type === 'emergency_started') this.calls.set(event.emergency.call_id, event.emergency);
    else this.calls.delete(event.call_id);
  }

  render() {
    const calls = [...this.calls.values()].sort((a, b) => a.at.localeCompare(b.at));
    this.hidden = calls.length === 0;
    const time = (text) => new Date(text).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    this.replaceChildren(...calls.map((call) => element('div', { class: 'emergency-banner', role: 'alert', 'data-testid': 'emergency-banner' },
      element('strong', {}, call.test ? 'Emergency test call in progress: ' : 'Emergency call in progress: '),
      `${call.agent_name} dialled ${call.number} at ${time(call.at)}`)));
  }
}

customElements.define('sb-emergency-banner', EmergencyBanner);

const MAIL = { no_contacts: 'No contacts', queued: 'Queued', sent: 'Sent', failed: 'Failed' };

/// The restricted emergency log: who dialled, when, what was sent, whether the mail went.
class EmergencyLog extends HTMLElement {
  connectedCallback() {
    this.filters = { agent: '', from: '', to: '', limit: '100' };
    this.users = [];
    api('GET', '/api/v1/users').then((users) => {
      this.users = users;
      this.render();
    }, () => {});
    this.render();
    this.load();
  }

  async load() {
    const query = new URLSearchParams();
    if (this.filters.agent) query.set('agent', this.filters.agent);
    if (this.filters.from) query.set('from', new Date(this.filters.from).toISOString());
    if (this.filters.to) query.set('to', new Date(this.filters.to).toISOString());
    query.set('limit', this.filters.limit);
    try {
      this.entries = await api('GET', `/api/v1/emergency/log?${query}`);
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
    const filters = element('div', { class: 'filters' },
      element('select', { 'data-testid': 'emergency-agent', onchange: set('agent') }, option('', 'Every agent', this.filters.agent),
        ...this.users.map((u) => option(u.id, u.display_name || u.username, this.filters.agent))),
      element('label', { class: 'legend' }, 'From ', element('input', { type: 'datetime-local', value: this.filters.from, onchange: set('from') })),
      element('label', { class: 'legend' }, 'To ', element('input', { type: 'datetime-local', value: this.filters.to, onchange: set('to') })),
      element('select', { onchange: set('limit') }, ...['50', '100', '500', '1000'].map((n) => option(n, `Latest ${n}`, this.filters.limit))),
      element('button', { type: 'button', class: 'secondary', onclick: () => this.load() }, 'Refresh'));
    const area = element('div');
    if (this.error) notice(area, this.error);
    const entries = this.entries ?? [];
    const mail = (e) => element('span', {},
      element('span', { class: `tag mail-${e.mail_status}`, title: e.mail_error ?? '' }, MAIL[e.mail_status] ?? words(e.mail_status)),
      e.mail_status === 'sent' && e.mail_sent_at ? element('span', { class: 'path' }, ` ${when(e.mail_sent_at)}`) : null,
      e.mail_status === 'failed' && e.mail_error ? element('div', { class: 'path' }, `${e.mail_error} (tried again)`) : null);
    const table = element('table', { class: 'grid', 'data-testid': 'emergency-log' },
      element('tr', {}, ...['Placed', 'Ended', 'Agent', 'Number', 'Callback number', 'Location sent', 'Notification'].map((h) => element('th', {}, h))),
      ...(entries.length ? entries.map((e) => element('tr', { 'data-call': e.call_id },
        element('td', { class: 'timer' }, when(e.started_at)),
        element('td', { class: 'timer' }, e.ended_at ? when(e.ended_at) : element('span', { class: 'tag emergency' }, 'in progress')),
        element('td', {}, e.agent_name),
        element('td', {}, e.number, e.test ? element('span', { class: 'tag' }, 'test') : null,
          e.dialled !== e.number ? element('span', { class: 'path' }, ` dialled ${e.dialled}`) : null),
        element('td', {}, e.callback_number ?? element('span', { class: 'path' }, 'none free')),
        element('td', {}, e.location ?? element('span', { class: 'path' }, 'none sent')),
        element('td', {}, mail(e)))) : [element('tr', {}, element('td', { class: 'empty', colspan: 7 }, this.entries ? 'No emergency call matches.' : 'Loading…'))]));
    this.replaceChildren(element('h1', {}, 'Emergency log'),
      element('p', { class: 'lead' }, 'Every emergency call agents placed, for compliance. Emergency calls are never recorded or kept in call history; this log is all that is kept.'),
      filters, area, table);
  }
}

customElements.define('sb-emergency-log', EmergencyLog);

/// The notification template's editor: subject, body, the variables, and a preview.
class EmergencyTemplate extends HTMLElement {
  async connectedCallback() {
    this.replaceChildren(element('h1', {}, 'Emergency notification'), element('p', { class: 'lead' }, 'Loading…'));
    try {
      this.render(await api('GET', '/api/v1/emergency/template'));
    } catch (error) {
      const area = element('div');
      notice(area, error);
      this.replaceChildren(element('h1', {}, 'Emergency notification'), area);
    }
  }

  render(template) {
    const subject = element('input', { name: 'subject', value: template.subject, maxlength: 200, 'data-testid': 'template-subject' });
    const body = element('textarea', { name: 'body', rows: 10, 'data-testid': 'template-body' });
    body.value = template.body;
    const area = element('div');
    const previewSubject = element('div', { class: 'preview-subject', 'data-testid': 'preview-subject' });
    const previewBody = element('pre', { class: 'preview-body', 'data-testid': 'preview-body' });
    const show = (preview) => {
      previewSubject.textContent = preview.subject;
      previewBody.textContent = preview.body;
    };
    show(template.preview);
    let pending = null;
    const refresh = () => {
      clearTimeout(pending);
      pending = setTimeout(async () => {
        try {
          show(await api('POST', '/api/v1/emergency/template/preview', { subject: subject.value, body: body.value }));
          notice(area, null);
        } catch (error) {
          notice(area, error);
        }
      }, 300);
    };
    subject.addEventListener('input', refresh);
    body.addEventListener('input', refresh);
    const insert = (name) => {
      const target = document.activeElement === subject ? subject : body;
      const at = target.selectionStart ?? target.value.length;
      target.value = `${target.value.slice(0, at)}{${name}}${target.value.slice(target.selectionEnd ?? at)}`;
      target.focus();
      refresh();
    };
    const variables = element('ul', { class: 'variables', 'data-testid': 'template-variables' },
      ...template.variables.map((v) => element('li', {},
        element('button', { type: 'button', class: 'link', title: 'Insert at the cursor', onmousedown: (e) => e.preventDefault(), onclick: () => insert(v.name) }, `{${v.name}}`),
        ` ${v.description}`)));
    const form = element('form', {
      class: 'template-form',
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const saved = await api('PUT', '/api/v1/emergency/template', { subject: subject.value, body: body.value });
          show(saved.preview);
          notice(area, 'The template is saved.', 'ok');
        } catch (error) {
          notice(area, error);
        }
      },
    },
    element('label', {}, 'Subject', subject),
    element('label', {}, 'Body', body),
    element('div', { class: 'actions' }, element('button', { type: 'submit', 'data-testid': 'template-save' }, 'Save')),
    area);
    this.replaceChildren(element('h1', {}, 'Emergency notification'),
      element('p', { class: 'lead' }, 'The mail sent to an agent’s emergency contacts the moment they dial an emergency number. Put a variable in braces where its value goes.'),
      element('div', { class: 'template-editor' },
        element('div', {}, form, element('h2', {}, 'Variables'), variables),
        element('div', { class: 'preview' }, element('h2', {}, 'Preview with sample values'), previewSubject, previewBody)));
  }
}

customElements.define('sb-emergency-template', EmergencyTemplate);

/// Whether a user is an agent who may dial out (their capacity profile includes voice
/// outbound) but has nobody to notify if they dial an emergency number.
export function missingEmergencyContacts(user, profiles) {
  const profile = (profiles ?? []).find((p) => p.id === user.capacity_profile_id);
  return Boolean(profile?.voice_outbound) && !(user.emergency_contacts ?? '').trim();
}
