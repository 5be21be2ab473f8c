// Switchboard agent adapter (PLT-6): sign in, set presence, take chats routed to you, reply,
// attach files, transfer, end, sign out. The presence menu shows the status the server holds
// (the server sends every change, custom statuses such as "Missed call" included). Profile flags (RDP-3) show on each chat and update live.
// Notification tones (NTF-3): a new chat plays its tone once or every N seconds until it is
// accepted or gone; a new consumer message plays the message tone. Calls ring on the browser
// phone (phone.js), whose signalling shares this page's WebSocket. The header's Location
// (location.js) shows and sets where the agent is for emergency calls. Voicemails routed to the
// agent (voicemail.js) sit above the chats, each with its player, Call back and Done.

import { element, newClientId } from '/widget/common.js';
import '/agent/phone.js';
import '/agent/wrapup.js';
import '/agent/location.js';
import '/agent/voicemail.js';

const PHONE_FRAMES = new Set(['phone_ready', 'call_ring', 'call_sdp', 'call_stop']);

const PRESENCES = ['available', 'busy', 'break', 'do_not_disturb', 'offline'];

/// A presence as the menu says it: "do not disturb", or a custom status's own name.
function presenceLabel(presence) {
  return presence.startsWith('custom:') ? presence.slice('custom:'.length) : presence.replaceAll('_', ' ');
}
const FLAG_LABELS = {
  reserved_verified_customer: 'Verified customer',
  reserved_bad_actor: 'Bad actor',
  reserved_repeat_customer: 'Repeat customer',
};

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const value = text ? JSON.parse(text) : null;
  if (!response.ok) throw Object.assign(new Error(value?.message || response.statusText), { status: response.status, code: value?.code });
  return value;
}

const STYLE = `
  :host { display: block; height: 100vh; }
  button, select, input, textarea { font: inherit; }
  button { cursor: pointer; border: 0; border-radius: 6px; padding: 6px 10px; background: #2456d6; color: #fff; }
  button.secondary { background: #e7ebf3; color: #1d2330; }
  .login { max-width: 320px; margin: 80px auto; background: #fff; padding: 24px; border-radius: 10px; display: grid; gap: 10px; }
  .login input { padding: 8px; border: 1px solid #d5dbe6; border-radius: 6px; }
  .top { display: flex; gap: 12px; align-items: center; padding: 10px 16px; background: #1d2330; color: #fff; }
  .top.emergency { background: #a32020; }
  .top .grow { flex: 1; }
  .main { display: flex; height: calc(100vh - 52px); }
  .side { width: 300px; display: flex; flex-direction: column; border-right: 1px solid #d5dbe6; background: #fff; }
  .list { flex: 1; overflow-y: auto; }
  .item { padding: 10px 12px; border-bottom: 1px solid #eef1f6; cursor: pointer; }
  .item.selected { background: #e8efff; }
  .item.ringing { border-left: 4px solid #d68a24; }
  .item .issue { font-size: 12px; color: #5b6475; }
  .flags span { display: inline-block; font-size: 11px; padding: 1px 6px; border-radius: 8px; margin: 2px 4px 0 0; background: #e7ebf3; }
  .flags span.bad { background: #fbe0e0; color: #8b1d1d; }
  .flags span.good { background: #dff3e4; color: #1d6b33; }
  .chat { flex: 1; display: flex; flex-direction: column; }
  .chat header { padding: 10px 16px; background: #fff; border-bottom: 1px solid #d5dbe6; display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
  .chat header .grow { flex: 1; }
  .messages { flex: 1; overflow-y: auto; padding: 12px 16px; display: flex; flex-direction: column; gap: 6px; }
  .msg { max-width: 70%; padding: 6px 10px; border-radius: 10px; white-space: pre-wrap; word-wrap: break-word; }
  .msg.agent { align-self: flex-end; background: #2456d6; color: #fff; }
  .msg.consumer { align-self: flex-start; background: #fff; border: 1px solid #d5dbe6; }
  .msg.system { align-self: center; color: #5b6475; font-size: 12px; }
  .msg.pending { opacity: .6; }
  .msg img, .msg video { max-width: 260px; border-radius: 6px; display: block; margin-top: 4px; }
  form.reply { display: flex; gap: 6px; padding: 10px 16px; background: #fff; border-top: 1px solid #d5dbe6; }
  form.reply textarea { flex: 1; height: 40px; resize: none; padding: 6px; border: 1px solid #d5dbe6; border-radius: 6px; }
  .typing { font-size: 12px; color: #5b6475; padding: 0 16px; min-height: 16px; }
  .notice { color: #a32020; padding: 6px 16px; }
  .empty { color: #5b6475; margin: auto; }
`;

class AgentDesk extends HTMLElement {
  constructor() {
    super();
    this.root = this.attachShadow({ mode: 'open' });
    this.me = null;
    this.chats = new Map();      // chat id -> { info, messages: Map(id -> message), pending: [], typing, ended }
    this.selected = null;
    this.drafts = new Map();     // chat id -> the reply being typed, kept across renders
    this.tones = null;
    this.toneTimer = null;
    this.tonePlays = 0;
    this.backoff = 500;
    this.queues = [];
    this.agents = [];
    this.customStatuses = [];    // the center's custom statuses, as `custom:<name>`
    this.typingTimer = null;
    this.phone = document.createElement('sb-phone');
    // Where the agent is for emergency calls; kept across renders like the phone.
    this.location = document.createElement('sb-location');
    // Voicemails routed to the agent; kept across renders so a message keeps playing.
    this.voicemails = document.createElement('sb-voicemails');
    this.voicemails.addEventListener('callback', (event) => this.phone.dial(event.detail.number));
    // The main view says when the agent is on a call rather than waiting for chats.
    this.phone.addEventListener('phonechange', () => this.render());
  }

  async connectedCallback() {
    let session;
    try {
      session = await api('GET', '/api/v1/auth/me');
    } catch {
      this.renderLogin();
      return;
    }
    this.begin(session);
  }

  /// A signed-in user whose role takes no contacts (a supervisor, an admin) belongs in the portal.
  begin(session) {
    if (!session.permissions.includes('handle_contacts')) {
      location.replace('/portal/');
      return;
    }
    this.me = session.user;
    this.start();
  }

  renderLogin(message) {
    const username = element('input', { name: 'username', placeholder: 'Username', autocomplete: 'username' });
    const password = element('input', { name: 'password', type: 'password', placeholder: 'Password', autocomplete: 'current-password' });
    const code = element('input', { name: 'totp', placeholder: 'Authenticator code (if enabled)', inputmode: 'numeric' });
    const form = element('form', {
      class: 'login',
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const body = { username: username.value, password: password.value };
          if (code.value) body.totp_code = code.value;
          this.begin(await api('POST', '/api/v1/auth/login', body));
        } catch (error) {
          this.renderLogin(error.message);
        }
      },
    }, element('h2', {}, 'Switchboard agent'), username, password, code, element('button', { type: 'submit' }, 'Sign in'),
    message ? element('div', { class: 'notice' }, message) : null);
    this.root.replaceChildren(element('style', {}, STYLE), form);
  }

  // The leaf queues a contact of `channel` may be transferred to now (AHD-6: outside their
  // hours only as the center allows), with their paths from the menu tree.
  async transferTargets(channel) {
    const [targets, queues] = await Promise.all([
      api('GET', `/api/v1/transfer-targets?channel=${channel}`),
      api('GET', `/api/v1/queues?channel=${channel}`),
    ]);
    const paths = new Map(queues.map((q) => [q.id, q.path]));
    return targets.map((t) => ({ id: t.queue_id, path: (paths.get(t.queue_id) || t.name) + (t.open ? '' : ' (after hours)') }));
  }

  // Reads both transfer menus again: on start, and whenever a chat or call arrives, since
  // queues open and close with the hours.
  async refreshTransferTargets() {
    try {
      this.queues = await this.transferTargets('web');
    } catch {
      this.queues = [];
    }
    try {
      this.phone.setQueues(await this.transferTargets('voice'));
    } catch {
      this.phone.setQueues([]);
    }
  }

  async start() {
    await this.refreshTransferTargets();
    try {
      this.customStatuses = (await api('GET', '/api/v1/custom-statuses')).map((s) => `custom:${s.name}`);
    } catch {
      this.customStatuses = [];
    }
    this.connect();
    this.render();
  }

  connect() {
    const socket = new WebSocket(location.origin.replace(/^http/, 'ws') + '/api/v1/agent/ws');
    this.socket = socket;
    socket.onmessage = (event) => this.onEvent(JSON.parse(event.data));
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    };
  }

  send(frame) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(frame));
  }

  chatState(info) {
    let chat = this.chats.get(info.chat_id);
    if (!chat) {
      chat = { info, messages: new Map(), pending: [], typing: false, ended: false };
      this.chats.set(info.chat_id, chat);
    } else {
      chat.info = info;
      chat.ended = false;
    }
    return chat;
  }

  onEvent(event) {
    // The phone's own frames, and errors about its calls (their `ref` is a leg id).
    if (PHONE_FRAMES.has(event.type) || (event.type === 'error' && event.ref && this.phone.calls.has(event.ref))) {
      if (event.type === 'call_ring') this.refreshTransferTargets();
      this.phone.onFrame(event);
      return;
    }
    if (this.voicemails.onFrame(event)) return;
    switch (event.type) {
      case 'welcome':
        this.backoff = 500;
        if (event.presence) this.me.presence = event.presence;
        this.phone.connected((frame) => this.send(frame));
        this.tones = event.tones;
        this.phone.setTones(event.tones);
        this.voicemails.reload();
        for (const info of event.agent_chats) {
          const chat = this.chatState(info);
          this.send({ type: 'history', chat_id: info.chat_id, after_seq: 0 });
          for (const pending of chat.pending) this.send({ type: 'message', chat_id: info.chat_id, client_id: pending.client_id, text: pending.text, attachment_id: pending.attachment?.id });
        }
        if (!this.selected && event.agent_chats.length) this.selected = event.agent_chats[0].chat_id;
        this.ring();
        break;
      case 'chat_assigned':
        this.refreshTransferTargets().then(() => this.render());
        this.chatState(event.chat);
        this.send({ type: 'history', chat_id: event.chat.chat_id, after_seq: 0 });
        if (!this.selected) this.selected = event.chat.chat_id;
        this.ring();
        break;
      case 'history': {
        const chat = this.chats.get(event.chat_id);
        if (chat) for (const message of event.messages) chat.messages.set(message.id, message);
        break;
      }
      case 'message': {
        const chat = this.chats.get(event.chat_id);
        if (chat) {
          chat.messages.set(event.message.id, event.message);
          chat.pending = chat.pending.filter((p) => p.client_id !== event.message.client_id || event.message.from !== 'agent');
          if (event.message.from === 'consumer') {
            chat.typing = false;
            this.play(this.tones?.new_message);
          }
        }
        break;
      }
      case 'ack': {
        const chat = this.chats.get(event.chat_id);
        const sent = chat?.pending.find((p) => p.client_id === event.client_id);
        if (chat && sent) {
          chat.messages.set(event.message_id, { id: event.message_id, seq: event.seq, from: 'agent', agent_name: this.me.display_name, client_id: sent.client_id, text: sent.text, attachment: sent.attachment || null });
          chat.pending = chat.pending.filter((p) => p.client_id !== event.client_id);
        }
        break;
      }
      case 'typing': {
        const chat = this.chats.get(event.chat_id);
        if (chat) chat.typing = event.active;
        break;
      }
      case 'properties': {
        const chat = this.chats.get(event.chat_id);
        if (chat) chat.info.properties = event.properties;
        break;
      }
      case 'accepted': {
        const chat = this.chats.get(event.chat_id);
        if (chat) chat.info.accepted = true;
        this.ring();
        break;
      }
      case 'chat_removed':
      case 'chat_ended': {
        const chat = this.chats.get(event.chat_id);
        if (chat) {
          chat.ended = true;
          chat.endReason = event.reason;
          // Taken away (transferred, or back to its queue) rather than ended.
          chat.removed = event.type === 'chat_removed';
        }
        this.ring();
        break;
      }
      case 'presence':
        this.me.presence = event.presence;
        break;
      case 'error':
        this.notice = event.message;
        break;
      default:
        break;
    }
    this.render();
  }

  /// Plays the new-chat tone while any chat waits to be accepted: once, or every N seconds.
  ring() {
    const waiting = [...this.chats.values()].some((c) => !c.ended && !c.info.accepted);
    if (!waiting) {
      clearInterval(this.toneTimer);
      this.toneTimer = null;
      return;
    }
    if (this.toneTimer) return;
    this.play(this.tones?.new_chat);
    const every = this.tones?.repeat_seconds;
    this.toneTimer = every ? setInterval(() => this.play(this.tones?.new_chat), every * 1000) : -1;
  }

  play(url) {
    if (!url) return;
    this.tonePlays += 1;
    this.setAttribute('data-tone-plays', String(this.tonePlays));
    const audio = new Audio(url);
    audio.play().catch(() => {
      // Browsers may refuse sound before the first click; the count above still shows intent.
    });
  }

  async setPresence(presence) {
    try {
      this.me.presence = (await api('PUT', `/api/v1/agents/${this.me.id}/presence`, { presence })).presence;
      this.notice = null;
    } catch (error) {
      this.notice = error.message;
    }
    this.render();
  }

  /// Ends the session on the server (which sets the agent offline and hands their chats back
  /// to their queues), closes the socket without reconnecting, and shows the sign-in form.
  async signOut() {
    try {
      await api('POST', '/api/v1/auth/logout');
    } catch (error) {
      if (error.status !== 401) {
        this.notice = error.message;
        this.render();
        return;
      }
    }
    const socket = this.socket;
    this.socket = null;
    socket?.close();
    clearInterval(this.toneTimer);
    this.toneTimer = null;
    this.me = null;
    this.chats.clear();
    this.selected = null;
    this.notice = null;
    this.renderLogin('You have signed out.');
  }

  /// Tells the consumer the agent is typing, and that they stopped two seconds after the last key.
  typing(chatId) {
    if (!this.typingTimer) this.send({ type: 'typing', chat_id: chatId, active: true });
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => {
      this.typingTimer = null;
      this.send({ type: 'typing', chat_id: chatId, active: false });
    }, 2000);
  }

  reply(chatId, text, attachment) {
    const chat = this.chats.get(chatId);
    if (!chat) return;
    const pending = { client_id: newClientId('a'), text, attachment };
    chat.pending.push(pending);
    this.send({ type: 'message', chat_id: chatId, client_id: pending.client_id, text, attachment_id: attachment?.id });
    this.render();
  }

  async attach(chatId, file) {
    if (!file) return;
    const response = await fetch(`/api/v1/chats/${chatId}/attachments?name=${encodeURIComponent(file.name)}`, {
      method: 'POST',
      headers: { 'content-type': file.type || 'application/octet-stream' },
      body: file,
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      this.notice = body.message || 'The file was not accepted.';
      this.render();
      return;
    }
    this.reply(chatId, '', { id: body.id, name: body.name, mime: body.mime, size: body.size });
  }

  flags(properties) {
    const box = element('div', { class: 'flags', 'data-testid': 'flags' });
    for (const [key, label] of Object.entries(FLAG_LABELS)) {
      const value = properties?.[key];
      if (value === true) box.append(element('span', { class: key === 'reserved_bad_actor' ? 'bad' : 'good', 'data-flag': key }, label));
    }
    return box;
  }

  render() {
    if (!this.me) return;
    if (this.phone.emergency) {
      this.renderEmergency();
      return;
    }
    // Every status the agent may choose, and the one the server holds even when it is not
    // among them (a custom status removed since, say), so the menu never shows another one.
    const choices = [...PRESENCES, ...this.customStatuses];
    let reply = null;
    if (this.me.presence && !choices.includes(this.me.presence)) choices.push(this.me.presence);
    const presence = element('select', { 'data-testid': 'presence', 'aria-label': 'Presence', onchange: () => this.setPresence(presence.value) },
      ...choices.map((p) => element('option', { value: p, selected: p === this.me.presence }, presenceLabel(p))));
    const signOut = element('button', { class: 'secondary', 'data-testid': 'sign-out', onclick: () => this.signOut() }, 'Sign out');
    const top = element('div', { class: 'top' }, element('strong', {}, 'Switchboard'), element('span', { class: 'grow' }, this.me.display_name), this.location, presence, signOut);
    const list = element('div', { class: 'list', 'data-testid': 'chat-list' });
    const side = element('div', { class: 'side' }, this.phone, this.voicemails, list);
    for (const [id, chat] of this.chats) {
      list.append(element('div', {
        class: `item${id === this.selected ? ' selected' : ''}${!chat.info.accepted && !chat.ended ? ' ringing' : ''}`,
        'data-chat': id,
        onclick: () => { this.selected = id; this.render(); },
      }, element('div', {}, chat.info.customer.name), element('div', { class: 'issue' }, chat.ended ? `${chat.info.issue} · ended` : chat.info.issue), this.flags(chat.info.properties)));
    }
    const view = element('div', { class: 'chat' });
    const chat = this.chats.get(this.selected);
    if (!chat) {
      const onCall = { ringing: 'A call is ringing.', connecting: 'Connecting the call…', talking: 'On a call.', held: 'A call is on hold.' }[this.phone.state];
      view.append(element('div', { class: 'empty', 'data-testid': 'empty' }, onCall || (this.me.presence === 'available' ? 'Waiting for chats or calls…' : 'Set yourself available to take chats and calls.')));
    } else {
      const id = this.selected;
      const header = element('header', {}, element('div', { class: 'grow' }, element('strong', {}, chat.info.customer.name), ' · ', chat.info.issue, this.flags(chat.info.properties)));
      if (!chat.ended) {
        if (!chat.info.accepted) header.append(element('button', { 'data-testid': 'accept', onclick: () => this.send({ type: 'accept', chat_id: id }) }, 'Accept'));
        const transfer = element('select', { 'data-testid': 'transfer', onchange: () => {
          if (transfer.value) this.send({ type: 'transfer', chat_id: id, queue_id: transfer.value });
        } }, element('option', { value: '' }, 'Transfer to…'), ...this.queues.map((q) => element('option', { value: q.id }, q.path)));
        header.append(transfer, element('button', { class: 'secondary', 'data-testid': 'end', onclick: () => this.send({ type: 'end', chat_id: id }) }, 'End'));
      }
      const messages = element('div', { class: 'messages', 'data-testid': 'messages' });
      const sorted = [...chat.messages.values()].sort((a, b) => a.seq - b.seq);
      for (const message of sorted) {
        const bubble = element('div', { class: `msg ${message.from}`, 'data-seq': String(message.seq) }, message.text);
        if (message.attachment) {
          const url = `/api/v1/attachments/${message.attachment.id}`;
          bubble.append(message.attachment.mime.startsWith('video/')
            ? element('video', { src: url, controls: true })
            : element('img', { src: url, alt: message.attachment.name, 'data-attachment': message.attachment.id }));
        }
        messages.append(bubble);
      }
      for (const pending of chat.pending) messages.append(element('div', { class: 'msg agent pending' }, pending.text || '(file)'));
      view.append(header, messages, element('div', { class: 'typing', 'data-testid': 'typing' }, chat.typing && !chat.ended ? 'Customer is typing…' : ''));
      // A chat the agent took and that ended (not one that left them) gets its wrap-up; the
      // same form every render, so what they typed stays.
      if (chat.ended && chat.info.accepted && !chat.removed && !chat.wrapped) {
        if (!chat.wrapNode) {
          chat.wrapNode = element('sb-wrap-up', { contact: id, title: `Chat with ${chat.info.customer.name}` });
          chat.wrapNode.addEventListener('wrapupdone', () => {
            chat.wrapped = true;
            this.render();
          });
        }
        view.append(chat.wrapNode);
      }
      if (!chat.ended) {
        const input = element('textarea', { placeholder: 'Reply', 'data-testid': 'reply', oninput: () => { this.drafts.set(id, input.value); this.typing(id); } });
        input.value = this.drafts.get(id) || '';
        reply = input;
        const file = element('input', { type: 'file', style: 'display:none', 'data-testid': 'file', onchange: () => this.attach(id, file.files[0]) });
        view.append(element('form', { class: 'reply', onsubmit: (event) => {
          event.preventDefault();
          if (input.value.trim()) this.reply(id, input.value);
          input.value = '';
          this.drafts.delete(id);
        } }, input, file, element('button', { type: 'button', class: 'secondary', 'aria-label': 'Attach a file', onclick: () => file.click() }, 'File'), element('button', { type: 'submit', 'data-testid': 'send' }, 'Send')));
      }
      queueMicrotask(() => { messages.scrollTop = messages.scrollHeight; });
    }
    if (this.notice) view.append(element('div', { class: 'notice', 'data-testid': 'notice' }, this.notice));
    // A render while the agent types (a new chat, a presence change) keeps the reply and its focus.
    const typing = this.root.activeElement?.dataset?.testid === 'reply';
    this.root.replaceChildren(element('style', {}, STYLE), top, element('div', { class: 'main' }, side, view));
    if (typing && reply) {
      reply.focus();
      reply.setSelectionRange(reply.value.length, reply.value.length);
    }
  }

  /// During an emergency call (EMG-5) the page is the call alone: its card (device controls
  /// and End call) and a word about what waits; nothing else can be clicked, and nothing is
  /// routed to the agent (Do Not Disturb until the call ends).
  renderEmergency() {
    const top = element('div', { class: 'top emergency' }, element('strong', {}, 'Switchboard'),
      element('span', { class: 'grow' }, this.me.display_name), element('span', { 'data-testid': 'presence-locked' }, 'Do not disturb'));
    const side = element('div', { class: 'side' }, this.phone);
    const view = element('div', { class: 'chat' }, element('div', { class: 'empty', 'data-testid': 'emergency-view' },
      'Emergency call in progress. Your chats wait, and nothing new reaches you until you end the call.'));
    this.root.replaceChildren(element('style', {}, STYLE), top, element('div', { class: 'main' }, side, view));
  }
}

customElements.define('sb-agent-desk', AgentDesk);
