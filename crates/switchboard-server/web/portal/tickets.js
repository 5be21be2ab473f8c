// Tickets and recordings on their way to the CRM (admins). The built-in CRM's tickets, chats'
// and calls', newest first, each opening to its transcript or call summary; above them, the
// recordings that need a look: still sending (with the last error), failed, or lost to the
// seven-day cap before they reached the CRM. A recording still on the platform plays here after
// a second factor (REC-5): the server asks for a fresh TOTP code, given in the row.

import { ApiError, api, element, notice, when, words } from '/portal/api.js';

const STATE_TEXT = {
  sending: 'Sending',
  uploaded: 'In the CRM',
  attached: 'On the ticket (kept 7 days)',
  failed: 'Failed',
  lost: 'Lost',
};

const CONNECTORS = { builtin: 'Built-in', webhook: 'Webhook', zendesk: 'Zendesk' };

function capital(text) {
  const said = words(text);
  return said.charAt(0).toUpperCase() + said.slice(1);
}

function size(bytes) {
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${Math.round(bytes / 1e3)} kB`;
  return `${bytes} B`;
}

/// A recording's upload as a short line: its state, its parts, and why it is stuck.
function uploadState(upload) {
  const parts = upload.parts_total > 1 ? ` · part ${Math.min(upload.parts_done + (upload.state === 'sending' ? 1 : 0), upload.parts_total)} of ${upload.parts_total}` : '';
  return element('span', { class: `tag upload-${upload.state}`, 'data-state': upload.state, title: upload.last_error ?? '' },
    `${STATE_TEXT[upload.state] ?? words(upload.state)}${parts}`);
}

class Tickets extends HTMLElement {
  connectedCallback() {
    this.open = null;
    this.render();
    this.load();
  }

  async load() {
    try {
      [this.attention, this.tickets] = await Promise.all([
        api('GET', '/api/v1/recording-uploads?attention=true&limit=100'),
        api('GET', '/api/v1/tickets'),
      ]);
      this.error = null;
    } catch (error) {
      this.error = error;
    }
    this.render();
  }

  /// A recording's player: Play fetches the audio; a server asking for a second factor gets a
  /// code field, and the code renews the step-up before the audio is fetched again.
  player(recording) {
    this.players ??= new Map();
    const state = this.players.get(recording) ?? {};
    this.players.set(recording, state);
    const box = element('div', { class: 'player', 'data-testid': 'player' });
    const play = async () => {
      state.error = null;
      try {
        const response = await fetch(`/api/v1/recordings/${recording}/audio`);
        if (!response.ok) {
          const body = await response.json().catch(() => ({}));
          throw new ApiError(response.status, body.code ?? `http_${response.status}`, body.message ?? response.statusText);
        }
        if (state.url) URL.revokeObjectURL(state.url);
        state.url = URL.createObjectURL(await response.blob());
        state.asking = false;
      } catch (error) {
        state.asking = error.code === 'step_up_required';
        if (!state.asking) state.error = error;
      }
      this.render();
    };
    const stepUp = async (event) => {
      event.preventDefault();
      const code = new FormData(event.target).get('code');
      try {
        await api('POST', '/api/v1/auth/step-up', { code });
        await play();
      } catch (error) {
        state.error = error;
        this.render();
      }
    };
    if (state.url) {
      box.append(element('audio', { controls: true, src: state.url, 'data-testid': 'recording-audio' }));
    } else if (state.asking) {
      box.append(element('form', { class: 'step-up', onsubmit: stepUp },
        element('label', {}, 'Playing a recording needs your authenticator code ',
          element('input', { name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', required: true, size: 8, 'data-testid': 'step-up-code' })),
        element('button', { type: 'submit' }, 'Play')));
    } else {
      box.append(element('button', { type: 'button', class: 'secondary', 'data-testid': 'play', onclick: play }, 'Play'));
    }
    if (state.error) notice(box, state.error);
    return box;
  }

  /// Opens a ticket's row and brings it into view.
  show(ticket) {
    this.open = ticket;
    this.render();
    this.querySelector(`tr[data-ticket="${ticket}"]`)?.scrollIntoView({ block: 'center' });
  }

  render() {
    const area = element('div');
    if (this.error) notice(area, this.error);
    const attention = this.attention ?? [];
    const uploads = element('table', { class: 'grid', 'data-testid': 'upload-attention' },
      element('tr', {}, ...['Queued', 'Ticket', 'Size', 'To', 'State', 'Why'].map((h) => element('th', {}, h))),
      ...(attention.length ? attention.map((u) => {
        const ticket = (this.tickets ?? []).find((t) => t.id === u.ticket_id);
        return element('tr', { class: 'clickable', 'data-recording': u.recording_id, title: `Recording ${u.recording_id}`, onclick: () => this.show(u.ticket_id) },
          element('td', { class: 'timer' }, when(u.queued_at)),
          element('td', {}, ticket ? ticket.name : element('code', {}, u.ticket_id)),
          element('td', {}, size(u.size_bytes)),
          element('td', {}, CONNECTORS[u.connector] ?? u.connector),
          element('td', {}, uploadState(u)),
          element('td', { class: 'detail' }, u.last_error ?? ''));
      }) : [element('tr', {}, element('td', { class: 'empty', colspan: 6 }, this.attention ? 'Nothing needs a look: no recording is late, failed or lost.' : 'Loading…'))]));
    const tickets = this.tickets ?? [];
    const rows = [];
    for (const t of tickets) {
      const recordings = t.recordings ?? [];
      rows.push(element('tr', { class: `clickable${this.open === t.id ? ' selected' : ''}`, 'data-ticket': t.id, onclick: () => { this.open = this.open === t.id ? null : t.id; this.render(); } },
        element('td', { class: 'timer' }, when(t.created_at)),
        element('td', {}, t.call_id ? 'Call' : 'Chat'),
        element('td', {}, t.name),
        element('td', {}, element('span', { class: `tag ticket-${t.status}` }, capital(t.status))),
        element('td', {}, recordings.length ? element('span', {}, ...recordings.map(uploadState)) : ''),
        element('td', {}, t.external_id ?? '')));
      if (this.open === t.id) {
        const sent = recordings.map((u) => element('li', { 'data-recording': u.recording_id }, uploadState(u), ` ${size(u.size_bytes)} · ${CONNECTORS[u.connector] ?? u.connector} CRM`,
          u.last_error ? element('span', { class: 'detail' }, ` · ${u.last_error}`) : '',
          ['attached', 'sending', 'failed'].includes(u.state) ? this.player(u.recording_id) : ''));
        rows.push(element('tr', { class: 'opened' }, element('td', { colspan: 6 },
          element('pre', { class: 'transcript', 'data-testid': 'ticket-text' }, t.transcript ?? 'No transcript yet: the conversation is still going.'),
          sent.length ? element('ul', { class: 'uploads' }, ...sent) : '')));
      }
    }
    const list = element('table', { class: 'grid', 'data-testid': 'ticket-list' },
      element('tr', {}, ...['Created', 'Kind', 'Name', 'Status', 'Recordings', 'CRM id'].map((h) => element('th', {}, h))),
      ...(rows.length ? rows : [element('tr', {}, element('td', { class: 'empty', colspan: 6 }, this.tickets ? 'No tickets yet.' : 'Loading…'))]));
    this.replaceChildren(
      element('h1', {}, 'Tickets'),
      element('p', { class: 'lead' }, 'Every chat and answered call opens a ticket. After a call its recording goes to the CRM: a CRM outside Switchboard receives it and it is deleted here; the built-in CRM keeps it on the ticket for 7 days.'),
      element('div', { class: 'filters' }, element('button', { type: 'button', class: 'secondary', onclick: () => this.load() }, 'Refresh')),
      area,
      element('h2', {}, 'Recordings that need a look'),
      uploads,
      element('h2', {}, 'Latest tickets'),
      list);
  }
}

customElements.define('sb-tickets', Tickets);
