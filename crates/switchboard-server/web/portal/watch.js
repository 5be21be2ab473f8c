// Watching a chat (MON-3, MON-5): the panel Live > Chats opens beside its list. It asks the
// server first (GET /api/v1/chats/{id}/watch), so a refusal is shown with its message and
// code, then opens the watch socket (docs/chat-protocol.md, "The watch protocol"): the chat's
// details, its history, then each message as it is sent, until the chat ends. Read-only: the
// consumer and the agent cannot tell anyone is watching. A socket that drops is opened again;
// messages are kept by sequence number, so none shows twice.

import { api, channelName, element, notice, when, words } from '/portal/api.js';

class ChatWatch extends HTMLElement {
  /// Starts watching `chatId` (once per element).
  watch(chatId) {
    this.chatId = chatId;
    this.messages = new Map();   // seq → message
    this.chat = null;
    this.ended = null;           // the end reason, once the chat has ended
    this.backoff = 500;
    this.closed = false;
    this.setAttribute('data-testid', 'chat-watch');
    this.setAttribute('data-chat', chatId);
    this.render();
    this.open();
  }

  // A redraw of the page moves the panel (out of the document and back in the same task), so
  // only a panel still out of the document a moment later lets its socket go: the page was
  // left. Coming back opens it again.
  disconnectedCallback() {
    setTimeout(() => {
      if (this.isConnected || this.closed) return;
      this.paused = true;
      this.socket?.close();
      this.socket = null;
    }, 0);
  }

  connectedCallback() {
    if (!this.paused) return;
    this.paused = false;
    this.open();
  }

  /// Stops watching for good (the panel was closed).
  stop() {
    this.closed = true;
    this.socket?.close();
    this.socket = null;
  }

  async open() {
    this.error = null;
    try {
      this.chat = await api('GET', `/api/v1/chats/${encodeURIComponent(this.chatId)}/watch`);
    } catch (error) {
      // It ended while the panel was away (another page was open): say so, as the socket would.
      if (error.code === 'chat_ended') {
        const contact = await api('GET', `/api/v1/contacts/${encodeURIComponent(this.chatId)}`).catch(() => null);
        this.ended = contact?.end_reason ?? 'ended';
      } else {
        this.error = error;
      }
      this.render();
      return;
    }
    if (this.closed || this.paused) return;
    const socket = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/api/v1/chats/${encodeURIComponent(this.chatId)}/watch/ws`);
    this.socket = socket;
    socket.onmessage = (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      this.backoff = 500;
      this.apply(frame);
      this.render();
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.closed || this.paused || this.ended) return;
      setTimeout(() => this.open(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    };
  }

  apply(frame) {
    switch (frame.type) {
      case 'watching':
      case 'chat_updated':
        this.chat = frame.chat;
        break;
      case 'history':
        for (const message of frame.messages) this.messages.set(message.seq, message);
        break;
      case 'message':
        this.messages.set(frame.message.seq, frame.message);
        break;
      case 'chat_ended':
        this.ended = frame.reason;
        break;
      default:
        break;
    }
  }

  close() {
    this.dispatchEvent(new CustomEvent('sb-watch-close', { bubbles: true }));
  }

  details() {
    const chat = this.chat;
    if (!chat) return element('p', { class: 'lead' }, 'Opening the chat…');
    const customer = chat.customer;
    const who = [customer.email, customer.external_id].filter(Boolean).join(' · ');
    const crm = chat.crm;
    const record = crm.url
      ? element('a', { href: crm.url, target: '_blank', rel: 'noopener', 'data-testid': 'watch-crm' }, crm.ticket_name)
      : element('span', { 'data-testid': 'watch-crm' }, crm.ticket_name, crm.external_id ? ` (${crm.external_id})` : '');
    const agent = chat.agent
      ? [chat.agent.name, chat.accepted ? null : element('span', { class: 'tag ringing' }, 'offered')]
      : [element('span', { class: 'tag' }, 'waiting in queue')];
    const row = (label, testid, ...value) => [element('dt', {}, label), element('dd', { 'data-testid': testid }, ...value)];
    return element('dl', { class: 'facts' },
      ...row('Customer', 'watch-customer', customer.name, who ? element('span', { class: 'path' }, ` ${who}`) : null),
      ...row('Issue', 'watch-issue', chat.issue),
      ...row('Agent', 'watch-agent', ...agent),
      ...row('Channel', 'watch-channel', channelName(chat.channel)),
      ...row('CRM record', 'watch-crm-row', record));
  }

  transcript() {
    const messages = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
    const list = element('ol', { class: 'transcript', 'data-testid': 'transcript' },
      ...messages.map((m) => element('li', { class: `said ${m.from}`, 'data-testid': 'watch-message', 'data-from': m.from },
        m.from === 'system' ? null : element('div', { class: 'who' },
          m.from === 'agent' ? m.agent_name ?? 'Agent' : this.chat?.customer.name ?? 'Customer',
          element('time', { datetime: m.sent_at, title: when(m.sent_at) }, new Date(m.sent_at).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' }))),
        element('div', { class: 'text' }, m.text, m.attachment ? element('span', { class: 'tag' }, `📎 ${m.attachment.name}`) : null))));
    if (!messages.length) list.append(element('li', { class: 'said system' }, element('div', { class: 'text' }, 'No messages yet.')));
    return list;
  }

  render() {
    const area = element('div');
    if (this.error) notice(area, this.error);
    const ended = this.ended
      ? element('div', { class: 'notice ok', 'data-testid': 'watch-ended' }, `The chat has ended (${words(this.ended)}).`)
      : null;
    const live = !this.ended && this.socket?.readyState === WebSocket.OPEN;
    const head = element('div', { class: 'toolbar' },
      element('h2', {}, 'Transcript'),
      element('span', { class: 'legend' }, element('span', { class: `state-dot ${live ? 'live' : ''}` }), live ? 'Live, unseen by the chat' : this.ended ? 'Ended' : 'Connecting…'),
      element('div', { class: 'grow' }),
      element('button', { type: 'button', class: 'secondary small', 'data-testid': 'watch-close', onclick: () => this.close() }, 'Close'));
    const list = this.error ? null : this.transcript();
    // Follows the conversation unless the reader has scrolled up to read back.
    const old = this.querySelector('ol.transcript');
    const pinned = !old || old.scrollTop + old.clientHeight >= old.scrollHeight - 8;
    const offset = old?.scrollTop ?? 0;
    this.replaceChildren(element('div', { class: 'card watch' }, head, area, this.error ? null : this.details(), ended, list));
    if (list) list.scrollTop = pinned ? list.scrollHeight : offset;
  }
}

customElements.define('sb-chat-watch', ChatWatch);
