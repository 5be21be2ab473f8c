// Switchboard chat widget (PLT-8). Embed with one tag on any page:
//   <script type="module" src="https://your-center/widget/switchboard.js"></script>
// Optional attributes on that tag: data-identity-token (a JWT signed with the center's identity
// secret, UAC-3), data-properties (JSON of reserved_* booleans, RDP-1), data-open (start open).
//
// Nothing is lost on a reload or a network cut: every message carries a client id and waits in
// localStorage until the server acknowledges it (the server acknowledges only what it stored),
// and on reconnect the widget resends what is waiting and replays the chat from the server.

import { element, newClientId } from './common.js';
import { LeaveMessageForm, OFFER_STYLE, waitOfferBanner } from './offers.js';

const SERVER = new URL(import.meta.url).origin;
const SOCKET_URL = SERVER.replace(/^http/, 'ws') + '/chat/v1/ws';
const PREFIX = `switchboard:${SERVER}:`;

function load(key, fallback) {
  try {
    const text = localStorage.getItem(PREFIX + key);
    return text === null ? fallback : JSON.parse(text);
  } catch {
    return fallback;
  }
}

function save(key, value) {
  try {
    if (value === null || value === undefined) localStorage.removeItem(PREFIX + key);
    else localStorage.setItem(PREFIX + key, JSON.stringify(value));
  } catch {
    // Private mode or a full quota: the chat still works, it only forgets on reload.
  }
}

const STYLE = `
  :host { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; font: 14px/1.4 system-ui, sans-serif; color: #1d2330; }
  button { font: inherit; cursor: pointer; border: 0; border-radius: 6px; padding: 8px 12px; background: #2456d6; color: #fff; }
  button.secondary { background: #e7ebf3; color: #1d2330; }
  .launcher { border-radius: 24px; padding: 12px 18px; box-shadow: 0 4px 14px rgba(0,0,0,.2); }
  .panel { width: 340px; height: 480px; display: flex; flex-direction: column; background: #fff; border-radius: 10px; box-shadow: 0 8px 30px rgba(0,0,0,.25); overflow: hidden; }
  header { background: #2456d6; color: #fff; padding: 10px 12px; display: flex; justify-content: space-between; align-items: center; gap: 8px; }
  header button { background: transparent; padding: 2px 6px; }
  .status { font-size: 12px; opacity: .85; }
  .body { flex: 1; overflow-y: auto; padding: 10px; display: flex; flex-direction: column; gap: 6px; background: #f6f8fb; }
  .menu button { display: block; width: 100%; text-align: left; margin: 4px 0; background: #fff; color: #1d2330; border: 1px solid #d5dbe6; }
  .msg { max-width: 80%; padding: 6px 10px; border-radius: 10px; white-space: pre-wrap; word-wrap: break-word; }
  .msg.consumer { align-self: flex-end; background: #2456d6; color: #fff; }
  .msg.agent { align-self: flex-start; background: #fff; border: 1px solid #d5dbe6; }
  .msg.system { align-self: center; background: none; color: #5b6475; font-size: 12px; }
  .msg.pending { opacity: .6; }
  .msg img, .msg video { max-width: 100%; border-radius: 6px; display: block; margin-top: 4px; }
  .typing { font-size: 12px; color: #5b6475; min-height: 16px; padding: 0 10px; }
  .standing { font-size: 12px; padding: 6px 12px; background: #eef3ff; color: #1d3a8a; border-bottom: 1px solid #d5dbe6; }
  form { display: flex; gap: 6px; padding: 8px; border-top: 1px solid #e1e6ef; }
  textarea { flex: 1; resize: none; font: inherit; padding: 6px; border: 1px solid #d5dbe6; border-radius: 6px; height: 36px; }
  .notice { color: #a32020; font-size: 12px; padding: 0 10px; }
  .time { display: block; font-size: 11px; opacity: .7; margin-top: 2px; }
  .offer { background: #fff; border: 1px solid #d5dbe6; border-radius: 8px; padding: 10px; margin: 8px 0; display: flex; flex-direction: column; gap: 6px; }
  .offer h3 { margin: 0; font-size: 14px; }
  .offer label { font-size: 12px; color: #5b6475; display: flex; flex-direction: column; gap: 2px; }
  .offer select, .offer input { font: inherit; padding: 6px; border: 1px solid #d5dbe6; border-radius: 6px; }
  .offer .hint { font-size: 11px; color: #5b6475; }
  .confirmed { background: #eaf7ee; border-color: #9fd3ae; color: #1e5b2f; }
  .msg.consumer .time { text-align: right; }
  @media (max-width: 480px) {
    :host { right: 12px; bottom: 12px; }
    :host(.open) { inset: 0; }
    :host(.open) .panel { width: 100vw; height: 100dvh; border-radius: 0; }
    form button { padding: 8px 9px; }
  }
`;

// A callback slot as the center's clock shows it: "Mon 30 Mar, 09:00".
function slotText(iso, timeZone) {
  return new Date(iso).toLocaleString([], {
    timeZone, weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit',
  });
}

// A message's time as the consumer's clock shows it (hours and minutes; the date too when it
// is not today).
function shownTime(iso) {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return '';
  const time = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return at.toDateString() === new Date().toDateString()
    ? time
    : `${at.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${time}`;
}

class SwitchboardChat extends HTMLElement {
  constructor() {
    super();
    this.root = this.attachShadow({ mode: 'open' });
    this.socket = null;
    this.backoff = 500;
    this.visitor = load('visitor', null);
    this.chat = null;              // { chat_id, status, issue, agent_name }
    this.closed = null;            // { queue_id, message, offers } when the queue asked for is closed
    this.booking = null;           // { slot, number, error, confirmed } for a scheduled_call offer
    this.standing = null;          // { position, estimated_wait_seconds } while the chat waits
    this.messages = new Map();     // message id -> message, from the server
    this.outbox = load('outbox', []); // [{ client_id, chat_id, text, attachment_id }]
    this.open = false;
    this.menu = [];
    this.typingTimer = null;
    this.media = new Map();        // attachment id -> object URL, fetched once
    this.centerName = 'Support';   // until the center's own name arrives
    this.leaving = null;           // the leave-a-message form while it is open (LeaveMessageForm)
    this.waitOffer = null;         // { chat_id, queue_id, offers } once the chat waited past the wait offer
    this.waitCall = null;          // the wait offer's scheduled_call while the consumer books it
  }

  connectedCallback() {
    this.open = this.hasAttribute('open');
    this.render();
    this.connect();
    this.loadCenter();
  }

  async loadCenter() {
    try {
      const response = await fetch(`${SERVER}/chat/v1/center`);
      if (!response.ok) return;
      const center = await response.json();
      if (center.name) {
        this.centerName = center.name;
        this.render();
      }
    } catch {
      // Keep the generic title.
    }
  }

  identityToken() {
    return this.getAttribute('identity-token') || undefined;
  }

  connect() {
    const socket = new WebSocket(SOCKET_URL);
    this.socket = socket;
    socket.onopen = () => {
      this.send({ type: 'hello', visitor_id: this.visitor?.id, visitor_token: this.visitor?.token, identity_token: this.identityToken() });
    };
    socket.onmessage = (event) => {
      try {
        this.onEvent(JSON.parse(event.data));
      } catch (error) {
        console.error('switchboard: bad event', error);
      }
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.ready = false;
      this.setStatus('Reconnecting…');
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    };
  }

  send(frame) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  onEvent(event) {
    switch (event.type) {
      case 'welcome':
        this.backoff = 500;
        this.ready = true;
        if (event.visitor_token) {
          this.visitor = { id: event.visitor_id, token: event.visitor_token };
          save('visitor', this.visitor);
        }
        this.chat = event.chats[0] || null;
        if (this.chat) {
          this.messages.clear();
          this.send({ type: 'resume', chat_id: this.chat.chat_id, after_seq: 0 });
        } else {
          this.outbox = [];
          save('outbox', []);
          this.loadMenu();
        }
        this.render();
        break;
      case 'error':
        if (this.leaving && this.leaving.answers(event.ref)) {
          this.leaving.fail(event.message);
        } else if (event.code === 'unauthorized') {
          // The stored visitor is unknown here (a reset center): start afresh.
          this.visitor = null;
          save('visitor', null);
          save('outbox', []);
          this.outbox = [];
        } else if (event.ref && this.outbox.some((m) => m.client_id === event.ref)) {
          this.outbox = this.outbox.filter((m) => m.client_id !== event.ref);
          save('outbox', this.outbox);
          this.notice = event.message;
          this.render();
        } else {
          this.notice = event.message;
          this.render();
        }
        break;
      case 'queue_closed':
        // The queue is outside its hours and deflects chats: show its message (and, once the
        // server sends them, its offers) instead of a chat.
        this.closed = { queue_id: event.queue_id, message: event.message, offers: event.offers || [] };
        this.booking = null;
        this.render();
        break;
      case 'wait_offers':
        if (this.chat && event.chat_id === this.chat.chat_id && (event.offers || []).some((o) => o.kind === 'email')) {
          this.waitOffer = event;
          this.render();
        }
        break;
      case 'message_left':
        if (this.leaving && this.leaving.answers(event.client_id)) {
          this.leaving.sent(event.delivery);
          this.render();
        }
        break;
      case 'chat_started':
        this.closed = null;
        this.chat = event.chat;
        this.messages.clear();
        this.send({ type: 'resume', chat_id: this.chat.chat_id, after_seq: 0 });
        this.render();
        break;
      case 'message':
        if (this.chat && event.chat_id === this.chat.chat_id) {
          this.messages.set(event.message.id, event.message);
          if (event.message.client_id) this.acknowledge(event.message.client_id);
          this.render();
        }
        break;
      case 'ack': {
        // The server stored it: show it in its place from what was sent.
        const sent = this.outbox.find((m) => m.client_id === event.client_id);
        if (sent && this.chat && event.chat_id === this.chat.chat_id) {
          this.messages.set(event.message_id, {
            id: event.message_id, seq: event.seq, from: 'consumer', client_id: sent.client_id,
            text: sent.text, attachment: sent.attachment || null, sent_at: new Date().toISOString(),
          });
        }
        this.acknowledge(event.client_id);
        this.render();
        break;
      }
      case 'resumed':
        if (this.chat && event.chat_id === this.chat.chat_id) {
          this.chat.status = event.status;
          this.flushOutbox();
          this.render();
        }
        break;
      case 'typing':
        this.agentTyping = event.active;
        this.render();
        break;
      case 'agent_joined':
        if (this.chat) {
          this.chat.agent_name = event.agent_name;
          this.chat.status = 'assigned';
          this.standing = null;
          this.waitOffer = null;
          this.render();
        }
        break;
      case 'chat_queued':
        if (this.chat) {
          this.chat.status = 'queued';
          this.chat.agent_name = null;
          this.chat.issue = event.issue;
          this.agentTyping = false;
          this.render();
        }
        break;
      case 'queue_position':
        if (this.chat && event.chat_id === this.chat.chat_id) {
          this.standing = { position: event.position, estimated_wait_seconds: event.estimated_wait_seconds };
          this.render();
        }
        break;
      case 'chat_ended':
        if (this.chat && event.chat_id === this.chat.chat_id) {
          this.chat.status = 'ended';
          this.standing = null;
          this.waitOffer = null;
          this.outbox = [];
          save('outbox', []);
          this.render();
        }
        break;
      default:
        break;
    }
  }

  acknowledge(clientId) {
    const before = this.outbox.length;
    this.outbox = this.outbox.filter((m) => m.client_id !== clientId);
    if (this.outbox.length !== before) save('outbox', this.outbox);
  }

  flushOutbox() {
    for (const message of this.outbox) {
      if (this.chat && message.chat_id === this.chat.chat_id) {
        this.send({ type: 'message', chat_id: message.chat_id, client_id: message.client_id, text: message.text, attachment_id: message.attachment_id });
      }
    }
  }

  async loadMenu() {
    try {
      const response = await fetch(`${SERVER}/chat/v1/menu`);
      this.menu = await response.json();
    } catch {
      this.menu = [];
    }
    this.render();
  }

  start(queue) {
    let properties;
    const text = this.getAttribute('properties');
    if (text) {
      try {
        properties = JSON.parse(text);
      } catch {
        properties = undefined;
      }
    }
    this.notice = null;
    this.send({ type: 'start', client_id: newClientId('c'), queue_id: queue.id, properties });
  }

  post(text, attachment) {
    if (!this.chat) return;
    const message = { client_id: newClientId('c'), chat_id: this.chat.chat_id, text, attachment_id: attachment?.id, attachment };
    this.outbox.push(message);
    save('outbox', this.outbox);
    this.send({ type: 'message', chat_id: message.chat_id, client_id: message.client_id, text, attachment_id: message.attachment_id });
    this.render();
  }

  // A scheduled call: the queue's next open slots in the center's time, a phone number, and
  // the confirmation once booked.
  callbackOffer(offer) {
    const booking = this.booking ??= { slot: offer.slots[0], number: '', error: null, confirmed: null };
    if (booking.confirmed) {
      return element('div', { class: 'offer confirmed', 'data-testid': 'callback-confirmed' },
        element('h3', {}, 'Your call is booked'),
        element('p', {}, `We will call ${booking.confirmed.number} on ${slotText(booking.confirmed.slot, offer.time_zone)} (${offer.time_zone.replace(/_/g, ' ')}).`));
    }
    const slots = element('select', { 'data-testid': 'callback-slot', onchange: (e) => { booking.slot = e.target.value; } },
      ...offer.slots.map((slot) => element('option', { value: slot, ...(slot === booking.slot ? { selected: '' } : {}) }, slotText(slot, offer.time_zone))));
    const number = element('input', { type: 'tel', 'data-testid': 'callback-number', placeholder: '+33 6 12 34 56 78', value: booking.number, oninput: (e) => { booking.number = e.target.value; } });
    const book = async () => {
      booking.error = null;
      const response = await fetch(`${SERVER}/api/v1/widget/callbacks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-visitor-id': this.visitor?.id || '', 'x-visitor-token': this.visitor?.token || '' },
        body: JSON.stringify({ queue_id: offer.queue_id, slot: booking.slot, number: booking.number.replace(/[\s().-]/g, '') }),
      }).catch(() => null);
      const body = response ? await response.json().catch(() => ({})) : {};
      if (response && response.ok) booking.confirmed = body;
      else booking.error = body.message || 'The call could not be booked. Please try again.';
      this.render();
    };
    return element('div', { class: 'offer', 'data-testid': 'callback-offer' },
      element('h3', {}, 'We can call you back'),
      element('label', {}, `When (${offer.time_zone.replace(/_/g, ' ')} time)`, slots),
      element('label', {}, 'Your phone number', number),
      element('span', { class: 'hint' }, 'With the country code, such as +33 or +1.'),
      booking.error ? element('div', { class: 'notice', 'data-testid': 'callback-error' }, booking.error) : '',
      element('button', { 'data-testid': 'callback-book', onclick: book }, 'Book the call'));
  }

  async attach(file) {
    if (!this.chat || !file) return;
    this.notice = null;
    const url = `${SERVER}/chat/v1/attachments?chat_id=${encodeURIComponent(this.chat.chat_id)}&name=${encodeURIComponent(file.name)}`;
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': file.type || 'application/octet-stream', 'x-visitor-id': this.visitor.id, 'x-visitor-token': this.visitor.token },
      body: file,
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      this.notice = body.message || 'The file was not accepted.';
      this.render();
      return;
    }
    this.post('', { id: body.id, name: body.name, mime: body.mime, size: body.size });
  }

  async showAttachment(container, attachment) {
    try {
      let url = this.media.get(attachment.id);
      if (!url) {
        const response = await fetch(`${SERVER}/chat/v1/attachments/${attachment.id}`, {
          headers: { 'x-visitor-id': this.visitor.id, 'x-visitor-token': this.visitor.token },
        });
        if (!response.ok) return;
        url = URL.createObjectURL(await response.blob());
        this.media.set(attachment.id, url);
      }
      const media = attachment.mime.startsWith('video/') ? element('video', { src: url, controls: '' }) : element('img', { src: url, alt: attachment.name });
      container.insertBefore(media, container.querySelector('.time'));
    } catch {
      container.append(element('span', {}, ` (${attachment.name})`));
    }
  }

  /// "You are number 2 in the queue · about 3 minutes" while the chat waits for an agent.
  standingText() {
    if (!this.standing || !this.chat || this.chat.agent_name) return '';
    const place = this.standing.position === 1 ? 'You are next in the queue' : `You are number ${this.standing.position} in the queue`;
    const wait = this.standing.estimated_wait_seconds;
    if (wait === null || wait === undefined) return place;
    const minutes = Math.round(wait / 60);
    return `${place} · about ${minutes < 1 ? 'a minute or less' : minutes === 1 ? '1 minute' : `${minutes} minutes`}`;
  }

  setStatus(text) {
    const node = this.root.querySelector('.status');
    if (node) node.textContent = text;
  }

  statusText() {
    if (!this.ready) return 'Connecting…';
    if (!this.chat) return 'How can we help?';
    if (this.chat.status === 'ended' || this.chat.status === 'abandoned') return 'Chat ended';
    if (this.chat.agent_name) return `Chatting with ${this.chat.agent_name}`;
    return 'Waiting for an agent…';
  }

  /// Opens the leave-a-message form for a queue (and the chat it replaces, if any).
  leaveMessage(queueId, chatId) {
    this.leaving = new LeaveMessageForm({
      queueId,
      chatId,
      send: (frame) => this.send(frame),
      onClose: () => {
        const done = this.leaving && this.leaving.state === 'sent';
        this.leaving = null;
        if (done) {
          // The message replaced the chat (or the closed queue's answer): back to the menu.
          this.closed = null;
          this.chat = null;
          this.standing = null;
          this.waitOffer = null;
          this.messages.clear();
          this.loadMenu();
        }
        this.render();
      },
    });
    this.render();
    this.leaving.email.focus();
  }

  render() {
    const root = this.root;
    // The form is kept across renders; so is the field the consumer is typing in.
    const focused = this.leaving && this.leaving.node.contains(root.activeElement) ? root.activeElement : null;
    root.replaceChildren(element('style', {}, STYLE + OFFER_STYLE));
    this.classList.toggle('open', this.open);
    if (!this.open) {
      root.append(element('button', { class: 'launcher', 'data-testid': 'open-chat', onclick: () => { this.open = true; this.render(); } }, 'Chat with us'));
      return;
    }
    const body = element('div', { class: 'body', 'data-testid': 'messages' });
    const panel = element('div', { class: 'panel', 'data-testid': 'chat-panel' },
      element('header', {},
        element('div', {}, element('strong', { 'data-testid': 'center-name' }, this.centerName), element('div', { class: 'status', 'data-testid': 'status' }, this.statusText())),
        element('button', { 'aria-label': 'Close', onclick: () => { this.open = false; this.render(); } }, '×')),
      body);
    root.append(panel);
    const ended = this.chat && (this.chat.status === 'ended' || this.chat.status === 'abandoned');
    const standing = ended ? '' : this.standingText();
    if (standing) panel.insertBefore(element('div', { class: 'standing', 'data-testid': 'queue-position' }, standing), body);
    const waiting = this.chat && !ended && !this.chat.agent_name;
    if (waiting && this.waitOffer && this.waitOffer.chat_id === this.chat.chat_id && !this.leaving) {
      const offer = this.waitOffer;
      const call = offer.offers.find((o) => o.kind === 'scheduled_call' && o.slots.length);
      panel.insertBefore(waitOfferBanner(
        () => this.leaveMessage(offer.queue_id, offer.chat_id),
        call && !this.waitCall ? () => { this.waitCall = call; this.render(); } : null,
      ), body);
    }
    if (this.leaving) {
      body.append(this.leaving.node);
    } else if (waiting && this.waitCall) {
      // A call back instead of waiting on: booked like a closed queue's, the chat still waits.
      body.append(this.callbackOffer(this.waitCall),
        element('button', { class: 'secondary', 'data-testid': 'wait-call-back', onclick: () => { this.waitCall = null; this.booking = null; this.render(); } }, 'Back to the chat'));
    } else if (!this.chat && this.closed) {
      const closed = element('div', { class: 'closed', 'data-testid': 'queue-closed' },
        element('p', { 'data-testid': 'after-hours-message' }, this.closed.message));
      for (const offer of this.closed.offers) {
        if (offer.kind === 'scheduled_call' && offer.slots.length) closed.append(this.callbackOffer(offer));
      }
      const queueId = this.closed.queue_id;
      const email = this.closed.offers.some((o) => o.kind === 'email');
      closed.append(element('div', { class: 'actions', style: 'display:flex;gap:6px' },
        element('button', { class: 'secondary', 'data-testid': 'closed-back', onclick: () => { this.closed = null; this.booking = null; this.render(); } }, 'Back'),
        email ? element('button', { 'data-testid': 'closed-leave-message', onclick: () => this.leaveMessage(queueId, null) }, 'Leave a message') : null));
      body.append(closed);
    } else if (!this.chat) {
      const menu = element('div', { class: 'menu', 'data-testid': 'menu' });
      const add = (nodes, depth) => {
        for (const node of nodes) {
          if (node.kind === 'leaf') menu.append(element('button', { 'data-queue': node.path, onclick: () => this.start(node) }, node.path));
          else add(node.children, depth + 1);
        }
      };
      add(this.menu, 0);
      body.append(menu);
    } else {
      const sorted = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
      for (const message of sorted) {
        const bubble = element('div', { class: `msg ${message.from}`, 'data-seq': String(message.seq) }, element('span', { class: 'text' }, message.text));
        if (message.attachment) this.showAttachment(bubble, message.attachment);
        if (message.sent_at) bubble.append(element('time', { class: 'time', datetime: message.sent_at }, shownTime(message.sent_at)));
        body.append(bubble);
      }
      const shown = new Set(sorted.map((m) => m.client_id).filter(Boolean));
      for (const pending of this.outbox) {
        if (pending.chat_id === this.chat.chat_id && !shown.has(pending.client_id)) {
          body.append(element('div', { class: 'msg consumer pending', 'data-pending': pending.client_id }, pending.text || '(file)'));
        }
      }
    }
    if (this.notice) panel.append(element('div', { class: 'notice', 'data-testid': 'notice' }, this.notice));
    panel.append(element('div', { class: 'typing', 'data-testid': 'typing' }, this.agentTyping && !ended ? 'Agent is typing…' : ''));
    if (this.leaving) {
      // The form has its own buttons.
    } else if (this.chat && !ended) {
      const input = element('textarea', { placeholder: 'Type a message', 'data-testid': 'input', oninput: () => this.typing() });
      const file = element('input', { type: 'file', accept: '.png,.jpg,.jpeg,.mp4,image/png,image/jpeg,video/mp4', 'data-testid': 'file', style: 'display:none', onchange: () => this.attach(file.files[0]) });
      const form = element('form', {
        onsubmit: (event) => {
          event.preventDefault();
          const text = input.value.trim();
          if (text) this.post(input.value);
          input.value = '';
        },
      }, input, file,
      element('button', { type: 'button', class: 'secondary', 'aria-label': 'Attach a file', onclick: () => file.click() }, 'File'),
      element('button', { type: 'submit', 'data-testid': 'send' }, 'Send'),
      element('button', { type: 'button', class: 'secondary', 'data-testid': 'end-chat', onclick: () => this.send({ type: 'end', chat_id: this.chat.chat_id }) }, 'End'));
      panel.append(form);
    } else if (ended) {
      panel.append(element('form', {}, element('button', {
        type: 'button', 'data-testid': 'new-chat',
        onclick: () => { this.chat = null; this.standing = null; this.messages.clear(); this.loadMenu(); this.render(); },
      }, 'Start a new chat')));
    }
    if (focused) focused.focus();
    else body.scrollTop = body.scrollHeight;
  }

  typing() {
    if (!this.chat) return;
    if (!this.typingTimer) this.send({ type: 'typing', chat_id: this.chat.chat_id, active: true });
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => {
      this.typingTimer = null;
      if (this.chat) this.send({ type: 'typing', chat_id: this.chat.chat_id, active: false });
    }, 2000);
  }
}

customElements.define('switchboard-chat', SwitchboardChat);

// Mount one widget unless the page placed its own <switchboard-chat>.
const tag = [...document.querySelectorAll('script[src]')].find((s) => s.src.startsWith(`${SERVER}/widget/switchboard.js`));
if (!document.querySelector('switchboard-chat') && !tag?.hasAttribute('data-manual')) {
  const widget = document.createElement('switchboard-chat');
  if (tag?.dataset.identityToken) widget.setAttribute('identity-token', tag.dataset.identityToken);
  if (tag?.dataset.properties) widget.setAttribute('properties', tag.dataset.properties);
  if (tag?.hasAttribute('data-open')) widget.setAttribute('open', '');
  document.body.append(widget);
}
