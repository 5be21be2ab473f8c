// The call details (MON-5): a panel beside Live opened from a call (queued or connected) or
// from the agent on it. It shows the call as `GET /api/v1/calls/{id}/details` says: where it
// stands, its figures (wait, ring, talk, hold so far, ticking here between reads), the queue
// path, the caller's profile flags, who is on it (monitors only to those who may monitor it),
// its transfers, and the monitoring controls the user's permissions allow (in this browser, or
// on their SIP phone when they have one registered). It reads the details again whenever the
// event stream changes the call, when this page's monitoring changes, and every few seconds
// (another supervisor joining changes nothing the stream carries).

import { api, duration, element, when, words } from '/portal/api.js';
import { MODES, monitoring } from '/portal/monitor.js';

const FLAGS = [
  ['reserved_verified_customer', 'Verified customer', 'available'],
  ['reserved_repeat_customer', 'Repeat customer', ''],
  ['reserved_bad_actor', 'Bad actor', 'break'],
];
const REFRESH_MS = 5000;

class CallDetails extends HTMLElement {
  constructor() {
    super();
    this.details = null;
    this.error = null;
    this.device = 'browser';
    this.onMonitoring = () => this.load();
  }

  /// Shows `callId`; `known` is the call as the live list has it now (a change reloads).
  show(callId, known) {
    if (this.callId !== callId) {
      this.callId = callId;
      this.details = null;
      this.error = null;
      this.render();
      this.load();
    } else if (known && known !== this.known) {
      this.load();
    }
    this.known = known;
  }

  connectedCallback() {
    monitoring.addEventListener('change', this.onMonitoring);
    this.timer ??= setInterval(() => this.load(), REFRESH_MS);
    this.ticker ??= setInterval(() => this.tick(), 1000);
  }

  disconnectedCallback() {
    monitoring.removeEventListener('change', this.onMonitoring);
    clearInterval(this.timer);
    clearInterval(this.ticker);
    this.timer = null;
    this.ticker = null;
  }

  async load() {
    const callId = this.callId;
    if (!callId) return;
    try {
      const details = await api('GET', `/api/v1/calls/${encodeURIComponent(callId)}/details`);
      if (callId !== this.callId) return;
      this.details = details;
      this.loadedAt = Date.now();
      this.error = null;
      if (!details.sip_phone) this.device = 'browser';
    } catch (error) {
      if (callId !== this.callId) return;
      this.error = error;
    }
    this.render();
  }

  close() {
    this.dispatchEvent(new CustomEvent('sb-details-close', { bubbles: true }));
  }

  /// A figure that runs while its stage lasts: its value at the read plus the time since.
  figure(ms, running) {
    if (ms === null || ms === undefined) return element('dd', {}, '—');
    const attrs = running ? { 'data-base': String(ms), 'data-running': '1' } : {};
    return element('dd', attrs, duration(ms + (running ? Date.now() - this.loadedAt : 0)));
  }

  tick() {
    for (const node of this.querySelectorAll('[data-running]')) {
      node.textContent = duration(Number(node.dataset.base) + Date.now() - this.loadedAt);
    }
  }

  monitorControls(d) {
    if (!d.live || !d.may_monitor.length) return null;
    const current = monitoring.current?.callId === d.call.id ? monitoring.current : null;
    const buttons = MODES.filter(([mode]) => d.may_monitor.includes(mode)).map(([mode, label]) => element('button', {
      type: 'button', class: 'secondary', 'data-testid': `details-${mode}`, 'aria-pressed': String(current?.mode === mode),
      onclick: () => this.dispatchEvent(new CustomEvent('sb-monitor', { bubbles: true, detail: { call_id: d.call.id, mode, device: this.device } })),
    }, label));
    if (current) {
      buttons.push(element('button', {
        type: 'button', class: 'danger', 'data-testid': 'details-stop',
        onclick: () => this.dispatchEvent(new CustomEvent('sb-monitor', { bubbles: true, detail: { call_id: d.call.id, mode: null } })),
      }, 'Stop'));
    }
    const device = d.sip_phone && !current ? element('label', { class: 'device' }, 'Monitor on ',
      element('select', { 'data-testid': 'details-device', onchange: (event) => { this.device = event.target.value; } },
        element('option', { value: 'browser', selected: this.device === 'browser' }, 'this browser'),
        element('option', { value: 'sip', selected: this.device === 'sip' }, 'my SIP phone'))) : null;
    const state = current ? element('div', { class: 'legend', 'data-testid': 'details-monitoring', 'data-state': current.state, 'data-mode': current.mode },
      element('span', { class: `state-dot ${current.state === 'connected' ? 'live' : ''}` }),
      `${MODES.find(([m]) => m === current.mode)[3]} ${current.device === 'sip' ? 'on your SIP phone' : 'in this browser'}`,
      current.state === 'connected' || current.device === 'sip' ? '' : ' (connecting…)') : null;
    return element('section', {}, element('h3', {}, 'Monitor'), element('div', { class: 'buttons' }, ...buttons), device, state);
  }

  render() {
    const d = this.details;
    const head = element('div', { class: 'head' },
      element('div', {},
        element('div', { class: 'caller', 'data-testid': 'details-caller' }, d ? (d.call.caller || 'Unknown caller') : 'Call'),
        d ? element('span', { class: `tag ${d.state === 'ringing' ? 'ringing' : d.state === 'talking' ? 'available' : ''}`, 'data-testid': 'details-state' }, words(d.state)) : null),
      element('button', { type: 'button', class: 'link', 'aria-label': 'Close', 'data-testid': 'details-close', onclick: () => this.close() }, '✕'));
    const parts = [head];
    if (this.error) parts.push(element('div', { class: 'notice error', 'data-testid': 'details-error' }, this.error.message, ' ', element('code', {}, this.error.code)));
    if (!d) {
      if (!this.error) parts.push(element('p', { class: 'legend' }, 'Loading…'));
      this.replaceChildren(...parts);
      return;
    }
    const t = d.times;
    const holding = Boolean(t.held_since);
    parts.push(
      this.monitorControls(d),
      element('section', {}, element('h3', {}, 'Figures'),
        element('dl', { class: 'figures', 'data-testid': 'details-figures' },
          element('dt', {}, 'Waited'), this.figure(t.wait_ms, d.live && t.wait_ms !== null && !d.call.ringing_at && !d.call.answered_at),
          element('dt', {}, 'Rang'), this.figure(t.ring_ms, d.live && t.ring_ms !== null && !d.call.answered_at),
          element('dt', {}, 'Talking'), this.figure(t.talk_ms, d.live && t.talk_ms !== null),
          element('dt', {}, 'On hold'), this.figure(t.hold_ms, d.live && holding))),
      element('section', {}, element('h3', {}, 'Call'),
        element('dl', { class: 'facts' },
          element('dt', {}, 'Queue'), element('dd', { 'data-testid': 'details-queue' }, d.queue_path || (d.call.ivr_path ? `Menu choices ${d.call.ivr_path}` : '—')),
          element('dt', {}, 'Number called'), element('dd', {}, d.call.did || '—'),
          element('dt', {}, 'Direction'), element('dd', {}, words(d.call.direction)),
          element('dt', {}, 'Started'), element('dd', {}, when(d.call.started_at)),
          element('dt', {}, 'Recording'), element('dd', {}, d.call.recording ? words(d.call.recording.state) : 'no'),
          element('dt', {}, 'Profile'), element('dd', { 'data-testid': 'details-flags' }, ...(() => {
            const flags = FLAGS.filter(([key]) => d.call.properties?.[key] === true)
              .map(([, label, tone]) => element('span', { class: `tag ${tone}`, 'data-testid': 'details-flag' }, label));
            return flags.length ? flags : ['no flags'];
          })()))),
      element('section', {}, element('h3', {}, 'Participants'),
        d.participants.length ? element('ul', { class: 'people', 'data-testid': 'details-participants' }, ...d.participants.map((p) => element('li', { 'data-role': p.role, 'data-testid': 'details-participant' },
          element('span', { class: 'tag' }, p.role === 'monitor' ? `monitor · ${p.mode}` : p.role),
          ' ', p.name,
          element('span', { class: 'legend' }, ` ${p.device === 'browser' ? 'browser' : 'SIP'}${p.answered ? '' : ', ringing'}`))))
          : element('p', { class: 'legend' }, d.live ? 'Nobody yet.' : 'The call has ended.')),
      element('section', {}, element('h3', {}, 'Transfers'),
        d.transfers.length ? element('ol', { class: 'people', 'data-testid': 'details-transfers' }, ...d.transfers.map((x) => element('li', {},
          element('span', { class: 'tag' }, x.kind), ' ', x.name)))
          : element('p', { class: 'legend' }, 'Not transferred.')));
    this.replaceChildren(...parts.filter(Boolean));
  }
}

customElements.define('sb-call-details', CallDetails);
