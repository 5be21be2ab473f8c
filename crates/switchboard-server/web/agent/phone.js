// The browser phone (PLT-6) and the call card. Calls routed to the agent ring here (with the
// incoming-call tone, once or every N seconds); the card shows who calls (number, the queue
// path as the issue, profile flags), how long they waited, the timer and the hold state. The
// agent answers (WebRTC to Switchboard: the browser's RTCPeerConnection and microphone,
// DTLS-SRTP, G.711), declines, mutes, holds and resumes, sends DTMF from a keypad, transfers
// blind or attended to a queue or a number, pauses and resumes the call's recording (redact),
// and hangs up; then wraps up (wrapup.js). The
// dialer places the agent's own calls: the number is checked first (`/api/v1/dialing/check`),
// then `POST /api/v1/calls` from this adapter, which rings here and is answered at once.
// Signalling rides the adapter's WebSocket (docs/browser-phone.md); call control is the calls
// API.
//
// The desk owns the socket: it hands this element every call_* frame (`onFrame`) and gives it
// a `send` function. Each leg's media is a `WebRtcLeg` (webrtc.js, shared with the portal's
// monitoring), whose audio plays outside the DOM, so re-rendering never interrupts it.

import { element } from '/widget/common.js';
import { WebRtcLeg } from '/agent/webrtc.js';
import '/agent/wrapup.js';

const KEYS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'];

const FLAGS = [
  ['reserved_verified_customer', 'Verified customer', 'good'],
  ['reserved_repeat_customer', 'Repeat customer', 'info'],
  ['reserved_bad_actor', 'Bad actor', 'bad'],
];

const STYLE = `
  :host { display: block; min-width: 0; }
  .phone { background: #fff; border-bottom: 1px solid #d5dbe6; padding: 12px; display: grid; gap: 8px; }
  .title { font-size: 12px; text-transform: uppercase; letter-spacing: .05em; color: #5b6475; display: flex; justify-content: space-between; }
  .idle { color: #5b6475; }
  .card { border-radius: 10px; padding: 12px; display: grid; gap: 6px; background: #f1f4f9; }
  .card.ringing { background: #fff4e5; border: 1px solid #f0c27b; animation: pulse 1.2s ease-in-out infinite; }
  .card.calling, .card.connecting { background: #eef3fd; border: 1px solid #b7c8ef; }
  .card.talking { background: #e8f6ec; border: 1px solid #9fd3ad; }
  .card.held { background: #eef0f5; border: 1px solid #c4cad6; }
  @keyframes pulse { 50% { box-shadow: 0 0 0 4px rgba(240, 194, 123, .35); } }
  .kind { font-size: 11px; text-transform: uppercase; letter-spacing: .05em; color: #5b6475; }
  .caller { font-size: 18px; font-weight: 600; overflow-wrap: anywhere; }
  .queue { font-size: 13px; color: #5b6475; }
  .facts { display: flex; flex-wrap: wrap; gap: 4px 12px; font-size: 12px; color: #5b6475; }
  .flags { display: flex; flex-wrap: wrap; gap: 4px; }
  .flag { font-size: 11px; border-radius: 999px; padding: 1px 8px; background: #e7ebf3; }
  .flag.good { background: #dff3e5; color: #1d6b35; }
  .flag.bad { background: #fbe3e3; color: #a32020; }
  .flag.info { background: #e4ecfb; color: #2f4f9e; }
  .status { font-size: 13px; display: flex; justify-content: space-between; }
  .timer { font-variant-numeric: tabular-nums; font-weight: 600; }
  .buttons { display: flex; flex-wrap: wrap; gap: 6px; }
  button { font: inherit; cursor: pointer; border: 0; border-radius: 6px; padding: 6px 10px; background: #e7ebf3; color: #1d2330; }
  button:disabled { opacity: .5; cursor: default; }
  button.answer, button.call { background: #1d8a3f; color: #fff; }
  button.hangup, button.decline { background: #c93434; color: #fff; }
  button[aria-pressed=true] { background: #1d2330; color: #fff; }
  .keypad { display: grid; grid-template-columns: repeat(3, 1fr); gap: 4px; }
  .keypad button { padding: 8px 0; font-weight: 600; }
  .transfer, .dialer { display: grid; grid-template-columns: minmax(0, 1fr) auto; gap: 4px; }
  .transfer select, .transfer label { grid-column: 1 / -1; }
  .transfer label { font-size: 12px; color: #5b6475; display: flex; gap: 4px; align-items: center; }
  select, input { width: 100%; box-sizing: border-box; min-width: 0; font: inherit; padding: 4px 6px; border: 1px solid #d5dbe6; border-radius: 6px; background: #fff; }
  input[type=checkbox] { width: auto; }
  .check { font-size: 12px; color: #5b6475; grid-column: 1 / -1; min-height: 1em; }
  .check.refused { color: #a32020; }
  .notice { color: #a32020; font-size: 13px; }
  .recording { font-size: 13px; display: flex; align-items: center; justify-content: space-between; gap: 6px; }
  .recording .dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; background: #c93434; margin-right: 6px; }
  .recording.paused .dot { background: #8a93a6; }
  .recording.off .dot { background: transparent; border: 1px solid #8a93a6; }
  .card.emergency { background: #fdecec; border: 2px solid #c93434; animation: none; }
  .alert { background: #c93434; color: #fff; border-radius: 6px; padding: 8px 10px; font-weight: 600; font-size: 14px; }
  .alert small { display: block; font-weight: 400; font-size: 12px; margin-top: 2px; }
`;

function clock(seconds) {
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  return `${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
}

async function request(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const value = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(value.message || response.statusText);
  return value;
}

const post = (path, body) => request('POST', path, body ?? {});

class Phone extends HTMLElement {
  constructor() {
    super();
    this.root = this.attachShadow({ mode: 'open' });
    this.send = () => {};
    this.ready = false;
    this.session = null;        // this adapter's phone session id (from phone_ready)
    this.calls = new Map();     // leg id -> call (see `onFrame`)
    this.queues = [];           // voice leaf queues, for transfers
    this.wrapUps = [];          // ended calls waiting for their wrap-up: { contact, title }
    this.dialling = null;       // the call id this adapter just dialled (answered at once)
    this.dialCheck = null;      // what the dialing check said of the number being typed
    this.dialNumber = '';
    this.notice = null;
    this.ticker = null;
    this.tones = null;
    this.toneTimer = null;
    this.tonePlays = 0;
  }

  // Not in the constructor: an element made by createElement may not set attributes there.
  connectedCallback() {
    this.render();
  }

  /// The desk's socket (re)connected: announce that this adapter takes calls. Calls of the
  /// old connection ended with it.
  connected(send) {
    this.send = send;
    for (const call of this.calls.values()) this.close(call);
    this.calls.clear();
    this.ready = false;
    this.send({ type: 'phone_ready' });
  }

  setQueues(queues) {
    this.queues = queues;
    this.render();
  }

  /// The agent's tones (from the welcome frame): `new_call` and `call_repeat_seconds`.
  setTones(tones) {
    this.tones = tones;
  }

  onFrame(frame) {
    switch (frame.type) {
      case 'phone_ready':
        this.ready = true;
        this.session = frame.session_id ?? null;
        break;
      case 'call_ring': {
        const outbound = frame.direction === 'outbound';
        const call = {
          leg: frame.leg_id,
          id: frame.call_id,
          contact: frame.contact_id,
          outbound,
          // Who is on the other end: the caller, or the number the agent calls.
          party: outbound ? frame.number : frame.caller,
          queue: frame.queue,
          flags: frame.flags || {},
          transfers: frame.transfers || 0,
          waitFrom: frame.queued_at ? Date.parse(frame.queued_at) : null,
          waited: null,
          state: 'ringing',
          muted: false,
          held: false,
          consulting: null,
          since: null,
          media: null,            // the WebRtcLeg, once answered here
          // `outgoing` or `callback` on an emergency call (EMG-5): the card shows only End call.
          emergency: frame.emergency || null,
          // On an emergency call: the number the service calls back (leased to the agent).
          callbackNumber: frame.emergency === 'outgoing' ? frame.caller : null,
        };
        this.calls.set(frame.leg_id, call);
        // The agent's own call from this adapter: pick up at once.
        if (outbound && this.dialling === frame.call_id) {
          this.dialling = null;
          this.answer(call);
        }
        break;
      }
      case 'call_sdp': {
        const call = this.calls.get(frame.leg_id);
        if (call?.media) call.media.answered(frame.sdp).catch((error) => this.fail(call, error));
        break;
      }
      case 'call_stop': {
        const call = this.calls.get(frame.leg_id);
        if (call) this.ended(call, true);
        break;
      }
      case 'error': {
        const call = frame.ref && this.calls.get(frame.ref);
        if (call) this.fail(call, new Error(frame.message));
        break;
      }
      default:
        break;
    }
    this.ring();
    this.render();
  }

  /// Plays the incoming-call tone while a call rings here: once, or every N seconds.
  ring() {
    const ringing = [...this.calls.values()].some((c) => c.state === 'ringing' && !c.outbound);
    if (!ringing) {
      clearInterval(this.toneTimer);
      this.toneTimer = null;
      return;
    }
    if (this.toneTimer) return;
    this.playTone();
    const every = this.tones?.call_repeat_seconds;
    this.toneTimer = every ? setInterval(() => this.playTone(), every * 1000) : -1;
  }

  playTone() {
    this.tonePlays += 1;
    this.dataset.tonePlays = String(this.tonePlays);
    if (!this.tones?.new_call) return;
    new Audio(this.tones.new_call).play().catch(() => {});
  }

  /// Answers: the microphone, an offer, and the server's answer back as `call_sdp`. The call
  /// counts as answered once the media is up (the server sees DTLS complete).
  async answer(call) {
    call.state = 'connecting';
    this.ring();
    this.render();
    try {
      call.media = new WebRtcLeg(call.leg, (frame) => this.send(frame), (state) => {
        if (state === 'connected' && call.state === 'connecting') {
          // An outbound call rings at the far end now; an inbound one is connected.
          call.state = call.outbound ? 'calling' : 'talking';
          call.since = Date.now();
          if (call.waitFrom) call.waited = Math.max(0, Math.round((Date.now() - call.waitFrom) / 1000));
          this.tick();
          if (call.outbound) this.follow(call);
          // Recording starts when the caller is connected, after the whisper: watch for it.
          this.watchRecording(call);
        } else if (state === 'failed') {
          this.fail(call, new Error('the call\'s media could not connect'));
        }
        this.render();
      });
      await call.media.answer();
    } catch (error) {
      this.fail(call, error);
      this.send({ type: 'call_decline', leg_id: call.leg });
    }
  }

  /// While an outbound call rings at the far end: read the call until it is answered (the
  /// timer then counts the conversation).
  async follow(call) {
    while (this.calls.get(call.leg) === call && call.state === 'calling') {
      try {
        const record = await request('GET', `/api/v1/calls/${call.id}`);
        if (record.answered_at) {
          call.state = 'talking';
          call.since = Date.now();
          this.watchRecording(call);
          this.render();
          return;
        }
        if (record.ended_at) return;
      } catch {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 700));
    }
  }

  decline(call) {
    this.send({ type: 'call_decline', leg_id: call.leg });
    this.close(call);
    this.calls.delete(call.leg);
    this.ring();
    this.render();
  }

  hangUp(call) {
    this.send({ type: 'call_hangup', leg_id: call.leg });
    this.ended(call, false);
  }

  /// The call is over here; one that was answered (or dialled) gets its wrap-up form. An
  /// outbound call that ended without an answer says why.
  async ended(call, byServer) {
    const answered = call.since !== null;
    this.close(call);
    this.calls.delete(call.leg);
    this.ring();
    if (answered && call.contact) {
      this.wrapUps.push({ contact: call.contact, title: `${call.outbound ? 'Call to' : 'Call with'} ${call.party}` });
    }
    this.render();
    if (byServer && call.outbound) {
      const record = await request('GET', `/api/v1/calls/${call.id}`).catch(() => null);
      if (record?.disposition === 'unanswered') {
        this.notice = record.ended_by === 'number' ? `${call.party} did not answer (busy, refused or unreachable).` : 'The call was not picked up.';
        this.render();
      }
    }
  }

  mute(call) {
    call.muted = !call.muted;
    call.media?.mute(call.muted);
    this.render();
  }

  async act(call, action) {
    try {
      await post(`/api/v1/calls/${call.id}/${action}`);
      this.notice = null;
      return true;
    } catch (error) {
      this.notice = error.message;
      return false;
    } finally {
      this.render();
    }
  }

  async hold(call) {
    if (await this.act(call, call.held ? 'resume' : 'hold')) call.held = !call.held;
    this.render();
  }

  /// Blind: the call leaves the agent. Attended: the agent talks to the target first, then
  /// completes or cancels.
  async transfer(call, target, attended) {
    try {
      await post(`/api/v1/calls/${call.id}/transfer`, { ...target, attended });
      this.notice = null;
      if (attended) call.consulting = target.number || this.queues.find((q) => q.id === target.queue_id)?.path || 'the target';
    } catch (error) {
      this.notice = error.message;
    }
    this.render();
  }

  async finishTransfer(call, complete) {
    if (await this.act(call, complete ? 'complete-transfer' : 'cancel-transfer')) call.consulting = null;
    this.render();
  }

  /// Reads the call's recording state each second until a recording is running (it starts
  /// once the whisper has played and the caller is connected), for up to half a minute: a
  /// queue that does not record shows "Not recorded" all along.
  async watchRecording(call) {
    for (let tries = 0; tries < 30; tries++) {
      await new Promise((resolve) => setTimeout(resolve, tries ? 1000 : 400));
      if (this.calls.get(call.leg) !== call || call.state !== 'talking') return;
      await this.refreshRecording(call);
      if (call.recording) return;
    }
  }

  /// The call's recording state from its record (`recording`: null, or its id and
  /// `recording` or `paused`).
  async refreshRecording(call) {
    try {
      const response = await fetch(`/api/v1/calls/${call.id}`);
      if (response.ok) call.recording = (await response.json()).recording;
    } catch {
      // The card keeps what it showed; the next change asks again.
    }
    this.render();
  }

  /// Redact: pauses the recording (silence in the file, the span in its metadata) or resumes it.
  async toggleRecording(call) {
    const action = call.recording?.state === 'paused' ? 'resume' : 'pause';
    try {
      call.recording = (await post(`/api/v1/calls/${call.id}/recording/${action}`)).recording;
      this.notice = null;
    } catch (error) {
      this.notice = error.message;
    }
    this.render();
  }

  /// The card's recording line: what is recorded now, and the pause/resume button.
  recordingControls(call) {
    if (call.state !== 'talking' || call.recording === undefined) return null;
    const state = call.recording ? call.recording.state : 'off';
    const label = { recording: 'Recording', paused: 'Recording paused', off: 'Not recorded' }[state];
    return element('div', { class: `recording ${state}`, 'data-testid': 'recording', 'data-recording': state },
      element('span', {}, element('span', { class: 'dot' }), label),
      call.recording ? element('button', {
        'data-testid': 'recording-toggle',
        'aria-pressed': String(state === 'paused'),
        onclick: () => this.toggleRecording(call),
      }, state === 'paused' ? 'Resume recording' : 'Pause recording') : null);
  }

  /// DTMF to the far end, in the media as RFC 4733 telephone-events.
  dtmf(call, key) {
    call.media?.dtmf(key);
  }

  /// Asks whether the number may be dialled, as it is typed.
  async check(number) {
    this.dialNumber = number;
    if (!number.trim()) {
      this.dialCheck = null;
      this.renderCheck();
      return;
    }
    try {
      const check = await request('GET', `/api/v1/dialing/check?number=${encodeURIComponent(number.replace(/[\s().-]/g, ''))}`);
      if (this.dialNumber === number) this.dialCheck = check;
    } catch (error) {
      if (this.dialNumber === number) this.dialCheck = { allowed: false, reason: error.message };
    }
    this.renderCheck();
  }

  async dial(number) {
    this.notice = null;
    try {
      const placed = await post('/api/v1/calls', { number, session_id: this.session });
      // Its ring may have come before this answer: then pick it up now, else when it comes.
      const rung = [...this.calls.values()].find((c) => c.id === placed.id && c.state === 'ringing');
      if (rung) this.answer(rung);
      else this.dialling = placed.id;
      this.dialNumber = '';
      this.dialCheck = null;
      this.dialerNode = null;
    } catch (error) {
      this.notice = error.message;
    }
    this.render();
  }

  fail(call, error) {
    this.notice = error.message;
    this.close(call);
    this.calls.delete(call.leg);
    this.ring();
    this.render();
  }

  close(call) {
    call.media?.close();
    call.media = null;
  }

  /// Packets the browser sent and received on the current call (what getStats says), for a
  /// person checking their line, and for tests.
  async stats() {
    const call = [...this.calls.values()].find((c) => c.media);
    return call ? call.media.stats() : { packetsSent: 0, packetsReceived: 0, audioLevel: 0, totalAudioEnergy: 0, codec: null };
  }

  tick() {
    if (this.ticker) return;
    this.ticker = setInterval(() => {
      if (![...this.calls.values()].some((c) => c.since)) {
        clearInterval(this.ticker);
        this.ticker = null;
      }
      for (const node of this.root.querySelectorAll('[data-since]')) {
        node.textContent = clock(Math.floor((Date.now() - Number(node.dataset.since)) / 1000));
      }
    }, 1000);
  }

  /// An emergency call's card (EMG-5): the alert, who is called, the timer, and End call
  /// (Answer for the emergency service's callback); nothing else to click.
  emergencyCard(call) {
    const callback = call.emergency === 'callback';
    const label = {
      ringing: callback ? 'The emergency service is calling you back' : 'Connecting your emergency call…',
      connecting: 'Connecting…',
      calling: `Calling ${call.party}…`,
      talking: call.muted ? 'Muted' : 'Connected',
    }[call.state];
    const card = element('div', { class: `card emergency ${call.state}`, 'data-testid': 'call', 'data-state': call.state, 'data-leg': call.leg, 'data-emergency': call.emergency },
      element('div', { class: 'alert', role: 'alert', 'data-testid': 'emergency-alert' },
        callback ? 'Emergency callback' : 'Emergency call in progress',
        element('small', {}, callback
          ? 'The emergency service is calling back on your callback number. Nothing else is routed to you.'
          : 'Stay on the line and tell them where you are. Nothing else is routed to you until you end this call.')),
      element('div', { class: 'caller', 'data-testid': 'caller' }, callback ? call.party || 'Emergency service' : call.party),
      call.callbackNumber ? element('div', { class: 'facts', 'data-testid': 'callback-number' }, `Your callback number: ${call.callbackNumber}`) : null,
      element('div', { class: 'status' }, element('span', { 'data-testid': 'call-status' }, label),
        call.since && call.state === 'talking' ? element('span', { class: 'timer', 'data-testid': 'timer', 'data-since': String(call.since) }, clock(Math.floor((Date.now() - call.since) / 1000))) : null));
    const buttons = element('div', { class: 'buttons' });
    if (call.state === 'ringing' && callback) {
      buttons.append(element('button', { class: 'answer', 'data-testid': 'answer', onclick: () => this.answer(call) }, 'Answer'));
    }
    if (call.state === 'talking') {
      buttons.append(element('button', { 'data-testid': 'mute', 'aria-pressed': String(call.muted), onclick: () => this.mute(call) }, call.muted ? 'Unmute microphone' : 'Mute microphone'));
    }
    if (!(call.state === 'ringing' && callback)) {
      buttons.append(element('button', { class: 'hangup', 'data-testid': 'hangup', onclick: () => this.hangUp(call) }, 'End call'));
    }
    card.append(buttons);
    return card;
  }

  card(call) {
    if (call.emergency) return this.emergencyCard(call);
    const state = call.held ? 'held' : call.state;
    const kind = call.outbound ? 'Outbound call' : (call.transfers ? 'Transferred call' : 'Inbound call');
    const card = element('div', { class: `card ${state}`, 'data-testid': 'call', 'data-state': state, 'data-leg': call.leg },
      element('div', { class: 'kind', 'data-testid': 'call-kind' }, kind),
      element('div', { class: 'caller', 'data-testid': 'caller' }, call.party || 'Unknown caller'),
      element('div', { class: 'queue', 'data-testid': 'call-queue' }, call.outbound ? 'Your call' : (call.queue || 'Direct call')));
    const flags = FLAGS.filter(([key]) => call.flags[key] === true)
      .map(([, label, tone]) => element('span', { class: `flag ${tone}`, 'data-testid': 'call-flag' }, label));
    if (flags.length) card.append(element('div', { class: 'flags' }, ...flags));
    const facts = [];
    if (call.waited !== null) facts.push(element('span', { 'data-testid': 'call-waited' }, `Waited ${clock(call.waited)}`));
    else if (call.waitFrom && call.state === 'ringing') facts.push(element('span', {}, 'Waiting ', element('span', { 'data-since': String(call.waitFrom) }, clock(Math.floor((Date.now() - call.waitFrom) / 1000)))));
    if (call.transfers) facts.push(element('span', {}, `Transferred ${call.transfers}×`));
    if (facts.length) card.append(element('div', { class: 'facts' }, ...facts));
    const label = {
      ringing: call.outbound ? 'Your call is ready: answer to place it' : 'Incoming call',
      connecting: 'Connecting…',
      calling: `Calling ${call.party}…`,
      talking: call.held ? 'On hold' : (call.consulting ? `Talking to ${call.consulting}; the caller holds` : (call.muted ? 'Muted' : 'Connected')),
    }[call.state];
    card.append(element('div', { class: 'status' }, element('span', { 'data-testid': 'call-status' }, label),
      call.since && call.state === 'talking' ? element('span', { class: 'timer', 'data-testid': 'timer', 'data-since': String(call.since) }, clock(Math.floor((Date.now() - call.since) / 1000))) : null));
    const buttons = element('div', { class: 'buttons' });
    if (call.state === 'ringing') {
      buttons.append(
        element('button', { class: 'answer', 'data-testid': 'answer', onclick: () => this.answer(call) }, 'Answer'),
        element('button', { class: 'decline', 'data-testid': 'decline', onclick: () => this.decline(call) }, 'Decline'));
    } else {
      if (call.state === 'talking') {
        buttons.append(
          element('button', { 'data-testid': 'mute', 'aria-pressed': String(call.muted), onclick: () => this.mute(call) }, call.muted ? 'Unmute' : 'Mute'),
          element('button', { 'data-testid': 'hold', 'aria-pressed': String(call.held), disabled: Boolean(call.consulting), onclick: () => this.hold(call) }, call.held ? 'Resume' : 'Hold'),
          element('button', { 'data-testid': 'keypad-toggle', 'aria-pressed': String(Boolean(call.keypad)), onclick: () => { call.keypad = !call.keypad; this.render(); } }, 'Keypad'));
      }
      buttons.append(element('button', { class: 'hangup', 'data-testid': 'hangup', onclick: () => this.hangUp(call) }, call.state === 'calling' ? 'Cancel' : 'Hang up'));
    }
    card.append(buttons);
    const recording = this.recordingControls(call);
    if (recording) card.append(recording);
    if (call.state === 'talking' && call.keypad) {
      card.append(element('div', { class: 'keypad', 'data-testid': 'keypad' },
        ...KEYS.map((key) => element('button', { 'data-key': key, onclick: () => this.dtmf(call, key) }, key))));
    }
    if (call.state === 'talking' && call.consulting) {
      card.append(element('div', { class: 'buttons' },
        element('button', { class: 'answer', 'data-testid': 'complete-transfer', onclick: () => this.finishTransfer(call, true) }, 'Complete transfer'),
        element('button', { 'data-testid': 'cancel-transfer', onclick: () => this.finishTransfer(call, false) }, 'Back to the caller')));
    } else if (call.state === 'talking' && !call.held) {
      card.append(this.transferForm(call));
    }
    return card;
  }

  transferForm(call) {
    const queue = element('select', { 'aria-label': 'Transfer to a queue', 'data-testid': 'transfer-queue' },
      element('option', { value: '' }, 'Transfer to queue…'), ...this.queues.map((q) => element('option', { value: q.id }, q.path)));
    const number = element('input', { placeholder: 'or a number', 'aria-label': 'Transfer to a number', 'data-testid': 'transfer-number', inputmode: 'tel' });
    const attended = element('input', { type: 'checkbox', 'data-testid': 'transfer-attended' });
    return element('form', {
      class: 'transfer',
      onsubmit: (event) => {
        event.preventDefault();
        const target = queue.value ? { queue_id: queue.value } : (number.value.trim() ? { number: number.value.trim() } : null);
        if (!target) return;
        // An attended transfer talks to a person first: a number (a queue has nobody yet).
        this.transfer(call, target, attended.checked && !queue.value);
      },
    }, queue, number, element('button', { type: 'submit', 'data-testid': 'transfer' }, 'Transfer'),
    element('label', {}, attended, 'Talk to the number first (attended)'));
  }

  dialer() {
    const number = element('input', { placeholder: 'Number to call', 'aria-label': 'Number to call', 'data-testid': 'dial-number', inputmode: 'tel', autocomplete: 'off', value: this.dialNumber });
    number.oninput = () => this.check(number.value);
    const check = element('div', { class: 'check', 'data-testid': 'dial-check' });
    this.checkNode = check;
    const form = element('form', {
      class: 'dialer',
      'data-testid': 'dialer',
      onsubmit: (event) => {
        event.preventDefault();
        if (number.value.trim()) this.dial(number.value.trim());
      },
    }, number, element('button', { type: 'submit', class: 'call', 'data-testid': 'dial', disabled: !this.ready }, 'Call'), check);
    this.renderCheck();
    return form;
  }

  renderCheck() {
    const node = this.checkNode;
    if (!node) return;
    const check = this.dialCheck;
    node.className = `check${check && !check.allowed ? ' refused' : ''}`;
    node.textContent = !check ? '' : (check.allowed ? `${check.number} · ${check.kind.replace('_', ' ')} number` : (check.reason || 'This number may not be dialled'));
  }

  /// `outgoing` or `callback` while an emergency call is here (EMG-5), else null.
  get emergency() {
    return [...this.calls.values()].find((c) => c.emergency)?.emergency || null;
  }

  /// The phone's state, for the desk and tests: offline, idle, ringing, connecting, calling,
  /// talking, held.
  get state() {
    const call = [...this.calls.values()][0];
    if (!call) return this.ready ? 'idle' : 'offline';
    return call.held ? 'held' : call.state;
  }

  render() {
    const calls = [...this.calls.values()];
    const state = this.state;
    if (this.dataset.state !== state) {
      this.dataset.state = state;
      this.dispatchEvent(new CustomEvent('phonechange', { detail: { state, caller: calls[0]?.party, emergency: calls[0]?.emergency || null } }));
    }
    const box = element('div', { class: 'phone', 'data-testid': 'phone' },
      element('div', { class: 'title' }, element('span', {}, 'Phone'), element('span', { 'data-testid': 'phone-ready' }, this.ready ? 'ready' : 'connecting…')));
    if (!calls.length) {
      box.append(element('div', { class: 'idle' }, this.ready ? 'No call. Calls routed to you ring here.' : 'Connecting the phone…'));
      // The same dialer every render, so a number being typed stays.
      this.dialerNode ??= this.dialer();
      this.dialerNode.querySelector('[data-testid=dial]').disabled = !this.ready;
      box.append(this.dialerNode);
    }
    for (const call of calls) box.append(this.card(call));
    for (const wrap of this.wrapUps) {
      // The same form every render, so what the agent typed stays.
      if (!wrap.node) {
        wrap.node = element('sb-wrap-up', { contact: wrap.contact, title: wrap.title });
        wrap.node.addEventListener('wrapupdone', () => {
          this.wrapUps = this.wrapUps.filter((w) => w !== wrap);
          this.render();
        });
      }
      box.append(wrap.node);
    }
    if (this.notice) box.append(element('div', { class: 'notice', 'data-testid': 'phone-notice' }, this.notice));
    this.root.replaceChildren(element('style', {}, STYLE), box);
  }
}

customElements.define('sb-phone', Phone);
