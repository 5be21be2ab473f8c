// What the widget offers instead of a chat (a closed queue, AHD-4) or instead of waiting longer:
// the form that leaves a message for the help center. It is one element kept across the
// widget's renders, so what the consumer typed survives a queue update; the widget sends its
// `leave_message` frame and tells it how that went.

import { element, newClientId } from './common.js';

export const OFFER_STYLE = `
  .offer { background: #fff; border: 1px solid #d5dbe6; border-radius: 8px; padding: 10px; display: flex; flex-direction: column; gap: 8px; }
  .offer p { margin: 0; }
  .offer label { display: flex; flex-direction: column; gap: 3px; font-size: 12px; color: #5b6475; }
  .offer input, .offer textarea { font: inherit; color: #1d2330; padding: 6px; border: 1px solid #d5dbe6; border-radius: 6px; }
  .offer textarea { height: 90px; resize: vertical; }
  .offer .actions { display: flex; gap: 6px; justify-content: flex-end; }
  .offer .problem { color: #a32020; font-size: 12px; }
  .offer.done { border-color: #9fd3b0; background: #f1faf4; }
  .wait-offer { font-size: 12px; padding: 8px 12px; background: #fff7e6; color: #6b4a00; border-bottom: 1px solid #f0dcae; display: flex; gap: 8px; align-items: center; justify-content: space-between; }
  .wait-offer button { padding: 4px 8px; font-size: 12px; }
`;

/// The form. `send(frame)` is the widget's (false when the connection is down);
/// `onClose()` is called when the consumer goes back.
export class LeaveMessageForm {
  constructor({ queueId, chatId, send, onClose }) {
    this.queueId = queueId;
    this.chatId = chatId || null;
    this.send = send;
    this.onClose = onClose;
    this.clientId = null;
    this.state = 'editing';        // editing | sending | sent
    this.delivery = null;
    this.node = element('div', { class: 'offer', 'data-testid': 'leave-message' });
    this.email = element('input', { type: 'email', name: 'email', required: true, autocomplete: 'email', 'data-testid': 'leave-email' });
    this.name = element('input', { type: 'text', name: 'name', autocomplete: 'name', maxlength: '120', 'data-testid': 'leave-name' });
    this.text = element('textarea', { name: 'text', required: true, maxlength: '4000', 'data-testid': 'leave-text' });
    this.problem = element('div', { class: 'problem', role: 'alert', 'data-testid': 'leave-problem' });
    for (const input of [this.email, this.text]) input.addEventListener('input', () => { this.problem.textContent = ''; });
    this.draw();
  }

  /// Whether a frame answers this form's request.
  answers(ref) {
    return this.clientId !== null && ref === this.clientId;
  }

  submit() {
    if (this.state !== 'editing') return;
    if (!this.email.value.trim() || !this.text.value.trim()) {
      this.fail('Please give your email address and a message.');
      return;
    }
    // One id per message: a resend after a lost answer is the same message.
    this.clientId = this.clientId || newClientId('m');
    const sent = this.send({
      type: 'leave_message', client_id: this.clientId, queue_id: this.queueId, chat_id: this.chatId,
      email: this.email.value.trim(), name: this.name.value.trim() || null, text: this.text.value,
    });
    if (!sent) {
      this.fail('Not connected. Please try again in a moment.');
      return;
    }
    this.state = 'sending';
    this.problem.textContent = '';
    this.draw();
  }

  sent(delivery) {
    this.state = 'sent';
    this.delivery = delivery;
    this.draw();
  }

  fail(message) {
    this.state = 'editing';
    this.problem.textContent = message;
    this.draw();
  }

  draw() {
    const node = this.node;
    node.classList.toggle('done', this.state === 'sent');
    if (this.state === 'sent') {
      node.replaceChildren(
        element('p', { 'data-testid': 'message-left' }, `Thank you. Your message is with our team, and we will answer you at ${this.email.value.trim()}.`),
        element('div', { class: 'actions' }, element('button', { type: 'button', 'data-testid': 'leave-done', onclick: () => this.onClose() }, 'Done')));
      return;
    }
    const sending = this.state === 'sending';
    // The form checks itself (and the server checks again), so the page can say what is missing.
    const form = element('form', {
      novalidate: true,
      style: 'display:flex;flex-direction:column;gap:8px;padding:0;border:0',
      onsubmit: (event) => { event.preventDefault(); this.submit(); },
    },
    element('p', {}, this.chatId
      ? 'Leave us a message instead of waiting, and we will answer you by email.'
      : 'Leave us a message, and we will answer you by email.'),
    element('label', {}, 'Your email', this.email),
    element('label', {}, 'Your name (optional)', this.name),
    element('label', {}, 'Your message', this.text),
    this.problem,
    element('div', { class: 'actions' },
      element('button', { type: 'button', class: 'secondary', 'data-testid': 'leave-back', onclick: () => this.onClose() }, 'Back'),
      element('button', { type: 'submit', 'data-testid': 'leave-send', disabled: sending }, sending ? 'Sending…' : 'Send message')));
    for (const input of [this.email, this.name, this.text]) input.disabled = sending;
    node.replaceChildren(form);
  }
}

/// The banner over a chat that has waited past the center's wait offer: leave a message, and
/// (when the queue offers one) book a call back.
export function waitOfferBanner(onLeave, onCall) {
  return element('div', { class: 'wait-offer', 'data-testid': 'wait-offer' },
    element('span', {}, onCall ? 'Still waiting? You can leave a message or be called back instead.' : 'Still waiting? You can leave a message instead.'),
    element('span', { style: 'display:flex;gap:4px' },
      onCall ? element('button', { type: 'button', class: 'secondary', 'data-testid': 'wait-call-me', onclick: onCall }, 'Call me') : null,
      element('button', { type: 'button', 'data-testid': 'wait-leave-message', onclick: onLeave }, 'Leave a message')));
}
