// Set-up > After hours: what happens to calls, chats and texts that arrive while their queue is
// closed (AHD-1..AHD-8). One rule per channel for the whole center (for calls, the IVR's) and
// per queue, the queue's replacing its channel's; whether agents may transfer to queues
// outside their hours (AHD-6); and where messages consumers leave go, with the wait offer for
// chats that wait too long. Every refusal is shown with the server's message in its card.

import { api, element, notice, CHANNELS, channelName } from '/portal/api.js';

const ACTIONS = {
  message: 'Play or show the after-hours message, then end',
  queue: 'Send to another queue',
  forward: 'Forward to a phone number',
  voicemail: 'Take a voicemail',
};

/// The actions a channel's rule may take: calls all of them, chats and texts the message.
function actionsFor(channel) {
  return channel === 'voice' ? ['message', 'queue', 'forward', 'voicemail'] : ['message'];
}

function blankRule(channel) {
  return { queue_id: null, channel, enabled: true, action: 'message', target_queue_id: null, number: null, max_seconds: null, messages: [{ language: null, text: '' }], offers: [] };
}

class AfterHours extends HTMLElement {
  connectedCallback() {
    this.editing = null;
    this.load();
  }

  async load() {
    this.notices = this.notices || element('div', { 'data-testid': 'page-notice' });
    try {
      const [hours, queues, offers] = await Promise.all([
        api('GET', '/api/v1/after-hours'),
        api('GET', '/api/v1/queues'),
        api('GET', '/api/v1/contact-offers'),
      ]);
      this.hours = hours;
      this.queues = queues;
      this.offers = offers;
      this.render();
    } catch (error) {
      this.replaceChildren(element('h1', {}, 'After hours'), this.notices);
      notice(this.notices, error);
    }
  }

  queueName(id) {
    const queue = this.queues.find((q) => q.id === id);
    return queue ? queue.path : 'a removed queue';
  }

  render() {
    const cards = [this.rulesCard()];
    if (this.editing) cards.push(this.editorCard());
    this.replaceChildren(
      element('h1', {}, 'After hours'),
      element('p', { class: 'lead' }, 'What happens to calls, chats and texts that arrive while their queue is closed by its business hours. A queue’s own rule replaces its channel’s; without a rule, contacts wait for an agent as in hours.'),
      this.notices,
      ...cards,
      this.transfersCard(),
      this.offersCard(),
    );
  }

  describe(rule) {
    switch (rule.action) {
      case 'queue': return `Sent to ${this.queueName(rule.target_queue_id)}`;
      case 'forward': return `Forwarded to ${rule.number}`;
      case 'voicemail': return `Voicemail, up to ${rule.max_seconds} seconds`;
      default: {
        if (rule.channel === 'voice') return 'Hear the message, then hang up';
        const offers = (rule.offers || []).map((o) => (o.kind === 'email' ? 'to leave a message' : `a call back from ${this.queueName(o.queue_id)}`));
        return offers.length ? `Shown the message, offering ${offers.join(' and ')}` : 'Shown the message';
      }
    }
  }

  rulesCard() {
    const rows = this.hours.rules.map((rule) => element('tr', { 'data-rule': `${rule.queue_id ?? 'center'}:${rule.channel}` },
      element('td', {}, channelName(rule.channel)),
      element('td', {}, rule.queue_id ? this.queueName(rule.queue_id) : element('em', {}, rule.channel === 'voice' ? 'Every queue (the IVR)' : 'Every queue')),
      element('td', {}, rule.enabled ? this.describe(rule) : element('span', { class: 'path' }, 'Off: contacts wait as in hours')),
      element('td', { class: 'path' }, rule.messages.map((m) => `${m.language ?? 'any language'}: ${m.text}`).join(' · ') || 'The built-in message'),
      element('td', { class: 'actions' },
        element('button', { type: 'button', class: 'secondary small', 'data-testid': 'rule-edit', onclick: () => { this.editing = structuredClone(rule); this.editing.existing = true; this.render(); } }, 'Edit'),
        element('button', { type: 'button', class: 'secondary small', 'data-testid': 'rule-remove', onclick: () => this.remove(rule) }, 'Remove'))));
    return element('div', { class: 'card', 'data-testid': 'after-hours-rules' },
      element('h3', {}, 'Rules'),
      element('table', { class: 'grid' },
        element('tr', {}, ...['Channel', 'Applies to', 'Outside hours', 'Message', ''].map((label) => element('th', {}, label))),
        ...(rows.length ? rows : [element('tr', {}, element('td', { class: 'empty', colspan: 5 }, 'No rules: outside hours, contacts wait for an agent.'))])),
      element('div', { class: 'buttons spaced' },
        element('button', { type: 'button', 'data-testid': 'rule-add', onclick: () => { this.editing = blankRule('voice'); this.render(); } }, 'Add a rule')));
  }

  editorCard() {
    const rule = this.editing;
    const area = element('div');
    const redraw = () => this.render();
    const select = (testid, options, value, onchange, disabled) => element('select', { 'data-testid': testid, onchange, disabled },
      ...options.map(([v, label]) => element('option', { value: v, selected: (value ?? '') === v }, label)));
    const ofChannel = this.queues.filter((q) => q.channel === rule.channel);
    const scope = select('rule-scope', [['', 'Every queue of the channel'], ...ofChannel.map((q) => [q.id, q.path])], rule.queue_id,
      (e) => { rule.queue_id = e.target.value || null; }, rule.existing);
    const channel = select('rule-channel', CHANNELS, rule.channel, (e) => {
      Object.assign(rule, blankRule(e.target.value), { messages: rule.messages });
      redraw();
    }, rule.existing);
    const actions = actionsFor(rule.channel);
    if (!actions.includes(rule.action)) rule.action = 'message';
    const action = select('rule-action', actions.map((a) => [a, ACTIONS[a]]), rule.action, (e) => {
      rule.action = e.target.value;
      rule.target_queue_id = null;
      rule.number = null;
      redraw();
    });
    const extra = [];
    if (rule.action === 'queue') {
      const leaves = ofChannel.filter((q) => q.kind === 'leaf' && q.id !== rule.queue_id);
      if (!rule.target_queue_id && leaves.length) rule.target_queue_id = leaves[0].id;
      extra.push(element('label', {}, 'Send to', select('rule-target', leaves.map((q) => [q.id, q.path]), rule.target_queue_id, (e) => { rule.target_queue_id = e.target.value; })));
    }
    if (rule.action === 'voicemail') {
      if (!rule.max_seconds) rule.max_seconds = 120;
      extra.push(element('label', {}, 'Longest message (seconds, 5 to 600)', element('input', {
        type: 'number', min: 5, max: 600, value: rule.max_seconds, 'data-testid': 'rule-max-seconds',
        oninput: (e) => { rule.max_seconds = Number(e.target.value) || null; },
      })));
    }
    if (rule.channel === 'web' || rule.channel === 'mobile') {
      rule.offers = rule.offers || [];
      const has = (kind) => rule.offers.find((o) => o.kind === kind);
      const toggle = (kind, on, extraFields = {}) => {
        rule.offers = rule.offers.filter((o) => o.kind !== kind);
        if (on) rule.offers.push({ kind, ...extraFields });
        redraw();
      };
      const voiceLeaves = this.queues.filter((q) => q.channel === 'voice' && q.kind === 'leaf');
      const call = has('scheduled_call');
      extra.push(element('label', { class: 'inline' }, element('input', {
        type: 'checkbox', checked: Boolean(has('email')), 'data-testid': 'offer-email', onchange: (e) => toggle('email', e.target.checked),
      }), 'Offer to leave a message (mailed to the help center, or a ticket)'));
      extra.push(element('label', { class: 'inline' }, element('input', {
        type: 'checkbox', checked: Boolean(call), 'data-testid': 'offer-call', disabled: !voiceLeaves.length,
        onchange: (e) => toggle('scheduled_call', e.target.checked, { queue_id: voiceLeaves[0]?.id }),
      }), 'Offer a call back at one of the next open times'));
      if (call) {
        extra.push(element('label', {}, 'The call back comes from', select('offer-call-queue', voiceLeaves.map((q) => [q.id, q.path]), call.queue_id, (e) => { call.queue_id = e.target.value; })));
      }
    }
    if (rule.action === 'forward') {
      extra.push(element('label', {}, 'Number', element('input', {
        type: 'tel', value: rule.number ?? '', 'data-testid': 'rule-number', placeholder: '15551234567',
        oninput: (e) => { rule.number = e.target.value.trim() || null; },
      })));
    }
    const messages = rule.messages.map((message, index) => element('div', { class: 'row', 'data-message': index },
      element('input', {
        type: 'text', size: 6, value: message.language ?? '', placeholder: 'any', 'aria-label': 'Language', 'data-testid': 'message-language',
        oninput: (e) => { message.language = e.target.value.trim() || null; },
      }),
      element('textarea', {
        rows: 2, cols: 60, 'aria-label': 'Message', 'data-testid': 'message-text', maxlength: 1000,
        oninput: (e) => { message.text = e.target.value; },
      }, message.text),
      element('button', { type: 'button', class: 'secondary small', onclick: () => { rule.messages.splice(index, 1); redraw(); } }, 'Remove')));
    const save = async () => {
      notice(area, null);
      const scopeKey = rule.queue_id ?? 'center';
      const body = {
        enabled: rule.enabled,
        action: rule.action,
        target_queue_id: rule.action === 'queue' ? rule.target_queue_id : null,
        number: rule.action === 'forward' ? rule.number : null,
        max_seconds: rule.action === 'voicemail' ? rule.max_seconds : null,
        offers: rule.channel === 'web' || rule.channel === 'mobile' ? rule.offers : [],
        messages: rule.messages.filter((m) => m.text.trim() !== ''),
      };
      try {
        await api('PUT', `/api/v1/after-hours/rules/${scopeKey}/${rule.channel}`, body);
        this.editing = null;
        await this.load();
        notice(this.notices, 'Saved the rule.', 'ok');
      } catch (error) {
        notice(area, error);
      }
    };
    return element('div', { class: 'card', 'data-testid': 'rule-editor' },
      element('h3', {}, rule.existing ? 'Edit the rule' : 'New rule'),
      element('div', { class: 'form' },
        element('label', {}, 'Channel', channel),
        element('label', {}, 'Applies to', scope),
        element('label', { class: 'inline' }, element('input', {
          type: 'checkbox', checked: rule.enabled, 'data-testid': 'rule-enabled', onchange: (e) => { rule.enabled = e.target.checked; },
        }), 'Deflect outside hours (off: contacts wait for an agent, and a queue’s rule opts it out of its channel’s)'),
        element('label', {}, 'Outside hours', action),
        ...extra),
      element('h4', {}, 'Message'),
      element('p', { class: 'path' }, rule.channel === 'voice'
        ? 'Spoken to callers with text-to-speech unless a recording is uploaded as after-hours:<queue or main>[:<language>] on the Audio page. One per language, and one for any language.'
        : 'Shown in the chat widget instead of a chat. One per language, and one for any language.'),
      ...messages,
      element('div', { class: 'buttons spaced' },
        element('button', { type: 'button', class: 'secondary', 'data-testid': 'message-add', onclick: () => { rule.messages.push({ language: null, text: '' }); redraw(); } }, 'Add a message'),
        element('button', { type: 'button', class: 'secondary', 'data-testid': 'rule-cancel', onclick: () => { this.editing = null; redraw(); } }, 'Cancel'),
        element('button', { type: 'button', 'data-testid': 'rule-save', onclick: save }, 'Save rule')),
      area);
  }

  async remove(rule) {
    notice(this.notices, null);
    try {
      await api('DELETE', `/api/v1/after-hours/rules/${rule.queue_id ?? 'center'}/${rule.channel}`);
      await this.load();
      notice(this.notices, 'Removed the rule.', 'ok');
    } catch (error) {
      notice(this.notices, error);
    }
  }

  transfersCard() {
    const area = element('div');
    const box = element('input', { type: 'checkbox', checked: this.hours.allow_transfers, 'data-testid': 'allow-transfers' });
    const save = async () => {
      notice(area, null);
      try {
        const saved = await api('PUT', '/api/v1/after-hours/settings', { allow_transfers: box.checked });
        this.hours.allow_transfers = saved.allow_transfers;
        notice(area, 'Saved.', 'ok');
      } catch (error) {
        notice(area, error);
      }
    };
    return element('div', { class: 'card', 'data-testid': 'after-hours-transfers' },
      element('h3', {}, 'Transfers outside hours'),
      element('p', { class: 'path' }, 'In hours agents may transfer to every queue. Outside hours, with this on, they may also transfer to closed queues that deflect or have agents online.'),
      element('label', { class: 'inline' }, box, 'Allow transfers to after-hours queues'),
      element('div', { class: 'buttons spaced' }, element('button', { type: 'button', 'data-testid': 'transfers-save', onclick: save }, 'Save')),
      area);
  }

  offersCard() {
    const area = element('div');
    const email = element('input', { type: 'email', value: this.offers.help_email ?? '', placeholder: 'help@example.com', 'data-testid': 'help-email' });
    const wait = element('input', { type: 'number', min: 10, max: 86400, value: this.offers.wait_offer_seconds ?? '', placeholder: 'never', 'data-testid': 'wait-offer-seconds' });
    const save = async () => {
      notice(area, null);
      try {
        this.offers = await api('PUT', '/api/v1/contact-offers', {
          help_email: email.value.trim() || null,
          wait_offer_seconds: wait.value === '' ? null : Number(wait.value),
        });
        this.render();
        notice(this.querySelector('[data-testid=offers-notice]'), this.offers.delivery === 'mail'
          ? `Messages go to ${this.offers.help_email}.` : 'Messages become tickets in the CRM.', 'ok');
      } catch (error) {
        notice(area, error);
      }
    };
    return element('div', { class: 'card', 'data-testid': 'contact-offers' },
      element('h3', {}, 'Messages consumers leave'),
      element('p', { class: 'path' }, 'A closed queue can offer the chat widget’s visitors to leave a message instead, and a chat that waits long enough is offered the same. Messages are mailed to the help-center address; without one they become tickets in the CRM.'),
      element('div', { class: 'form' },
        element('label', {}, 'Help-center address', email),
        element('label', {}, 'Offer a message to chats waiting longer than (seconds)', wait)),
      element('p', { class: 'path', 'data-testid': 'offers-delivery' }, this.offers.delivery === 'mail'
        ? `Now: mailed to ${this.offers.help_email}.` : 'Now: tickets in the CRM.'),
      element('div', { class: 'buttons spaced' }, element('button', { type: 'button', 'data-testid': 'offers-save', onclick: save }, 'Save')),
      element('div', { 'data-testid': 'offers-notice' }),
      area);
  }
}

customElements.define('sb-after-hours', AfterHours);
