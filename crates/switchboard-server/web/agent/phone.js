// The browser phone (PLT-6): calls routed to the agent ring here, with the caller's number and
// the queue; the agent answers (WebRTC to Switchboard: the browser's RTCPeerConnection and
// microphone, DTLS-SRTP, G.711), declines, mutes, holds and resumes, sends DTMF from a keypad,
// transfers to a queue or a number, pauses and resumes the call's recording (redact), and
// hangs up. Signalling rides the adapter's WebSocket
// (docs/browser-phone.md); hold, resume and transfer are the calls API.
//
// The desk owns the socket: it hands this element every call_* frame (`onFrame`) and gives it
// a `send` function. The remote audio plays through an Audio object kept outside the DOM, so
// the desk re-rendering around the phone never interrupts it.

import { element } from '/widget/common.js';

const KEYS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'];

const STYLE = `
  :host { display: block; min-width: 0; }
  .phone { background: #fff; border-bottom: 1px solid #d5dbe6; padding: 12px; display: grid; gap: 8px; }
  .title { font-size: 12px; text-transform: uppercase; letter-spacing: .05em; color: #5b6475; display: flex; justify-content: space-between; }
  .idle { color: #5b6475; }
  .card { border-radius: 10px; padding: 12px; display: grid; gap: 6px; background: #f1f4f9; }
  .card.ringing { background: #fff4e5; border: 1px solid #f0c27b; animation: pulse 1.2s ease-in-out infinite; }
  .card.talking { background: #e8f6ec; border: 1px solid #9fd3ad; }
  .card.held { background: #eef0f5; border: 1px solid #c4cad6; }
  @keyframes pulse { 50% { box-shadow: 0 0 0 4px rgba(240, 194, 123, .35); } }
  .caller { font-size: 18px; font-weight: 600; }
  .queue { font-size: 13px; color: #5b6475; }
  .status { font-size: 13px; display: flex; justify-content: space-between; }
  .timer { font-variant-numeric: tabular-nums; font-weight: 600; }
  .buttons { display: flex; flex-wrap: wrap; gap: 6px; }
  button { font: inherit; cursor: pointer; border: 0; border-radius: 6px; padding: 6px 10px; background: #e7ebf3; color: #1d2330; }
  button.answer { background: #1d8a3f; color: #fff; }
  button.hangup, button.decline { background: #c93434; color: #fff; }
  button[aria-pressed=true] { background: #1d2330; color: #fff; }
  .keypad { display: grid; grid-template-columns: repeat(3, 1fr); gap: 4px; }
  .keypad button { padding: 8px 0; font-weight: 600; }
  .transfer { display: grid; grid-template-columns: minmax(0, 1fr) auto; gap: 4px; }
  .transfer select { grid-column: 1 / -1; }
  .transfer select, .transfer input { width: 100%; box-sizing: border-box; min-width: 0; font: inherit; padding: 4px; border: 1px solid #d5dbe6; border-radius: 6px; background: #fff; }
  .notice { color: #a32020; font-size: 13px; }
  .recording { font-size: 13px; display: flex; align-items: center; justify-content: space-between; gap: 6px; }
  .recording .dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; background: #c93434; margin-right: 6px; }
  .recording.paused .dot { background: #8a93a6; }
  .recording.off .dot { background: transparent; border: 1px solid #8a93a6; }
`;

function clock(seconds) {
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  return `${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
}

async function post(path, body) {
  const response = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body ?? {}),
  });
  const value = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(value.message || response.statusText);
  return value;
}

class Phone extends HTMLElement {
  constructor() {
    super();
    this.root = this.attachShadow({ mode: 'open' });
    this.send = () => {};
    this.ready = false;
    this.calls = new Map();     // leg id -> call (see `onFrame`)
    this.queues = [];           // voice leaf queues, for transfers
    this.notice = null;
    this.ticker = null;
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
    this.send({ type: 'phone_ready' });
  }

  setQueues(queues) {
    this.queues = queues;
    this.render();
  }

  onFrame(frame) {
    switch (frame.type) {
      case 'phone_ready':
        this.ready = true;
        break;
      case 'call_ring':
        this.calls.set(frame.leg_id, {
          leg: frame.leg_id,
          id: frame.call_id,
          caller: frame.caller,
          queue: frame.queue,
          state: 'ringing',
          muted: false,
          held: false,
          since: null,
          pc: null,
          stream: null,
          audio: null,
        });
        break;
      case 'call_sdp': {
        const call = this.calls.get(frame.leg_id);
        if (call?.pc) call.pc.setRemoteDescription({ type: 'answer', sdp: frame.sdp }).catch((error) => this.fail(call, error));
        break;
      }
      case 'call_stop': {
        const call = this.calls.get(frame.leg_id);
        if (call) this.close(call);
        this.calls.delete(frame.leg_id);
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
    this.render();
  }

  /// Answers: the microphone, an offer, and the server's answer back as `call_sdp`. The call
  /// counts as answered once the media is up (the server sees DTLS complete).
  async answer(call) {
    call.state = 'connecting';
    this.render();
    try {
      call.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      const pc = new RTCPeerConnection({ iceServers: [] });
      call.pc = pc;
      for (const track of call.stream.getAudioTracks()) pc.addTrack(track, call.stream);
      pc.ontrack = (event) => {
        call.audio = new Audio();
        call.audio.autoplay = true;
        call.audio.srcObject = event.streams[0] || new MediaStream([event.track]);
        call.audio.play().catch(() => {});
      };
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === 'connected' && call.state === 'connecting') {
          call.state = 'talking';
          call.since = Date.now();
          this.tick();
          // The server starts recording once it sees the media up: ask a moment later.
          setTimeout(() => this.refreshRecording(call), 800);
        } else if (pc.connectionState === 'failed') {
          this.fail(call, new Error('the call\'s media could not connect'));
        }
        this.render();
      };
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      this.send({ type: 'call_answer', leg_id: call.leg, sdp: pc.localDescription.sdp });
    } catch (error) {
      this.fail(call, error);
      this.send({ type: 'call_decline', leg_id: call.leg });
    }
  }

  decline(call) {
    this.send({ type: 'call_decline', leg_id: call.leg });
    this.close(call);
    this.calls.delete(call.leg);
    this.render();
  }

  hangUp(call) {
    this.send({ type: 'call_hangup', leg_id: call.leg });
    this.close(call);
    this.calls.delete(call.leg);
    this.render();
  }

  mute(call) {
    call.muted = !call.muted;
    for (const track of call.stream?.getAudioTracks() || []) track.enabled = !call.muted;
    this.render();
  }

  async hold(call) {
    try {
      await post(`/api/v1/calls/${call.id}/${call.held ? 'resume' : 'hold'}`);
      call.held = !call.held;
      this.notice = null;
    } catch (error) {
      this.notice = error.message;
    }
    this.render();
  }

  async transfer(call, target) {
    try {
      await post(`/api/v1/calls/${call.id}/transfer`, target);
      this.notice = null;
    } catch (error) {
      this.notice = error.message;
    }
    this.render();
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
    const sender = call.pc?.getSenders().find((s) => s.track?.kind === 'audio');
    sender?.dtmf?.insertDTMF(key, 120, 70);
  }

  fail(call, error) {
    this.notice = error.message;
    this.close(call);
    this.calls.delete(call.leg);
    this.render();
  }

  close(call) {
    call.pc?.close();
    for (const track of call.stream?.getTracks() || []) track.stop();
    if (call.audio) call.audio.srcObject = null;
    call.pc = null;
  }

  /// Packets the browser sent and received on the current call (what getStats says), for a
  /// person checking their line, and for tests.
  async stats() {
    const call = [...this.calls.values()].find((c) => c.pc);
    const result = { packetsSent: 0, packetsReceived: 0, audioLevel: 0, codec: null };
    if (!call) return result;
    const report = await call.pc.getStats();
    report.forEach((entry) => {
      if (entry.type === 'outbound-rtp' && entry.kind === 'audio') result.packetsSent += entry.packetsSent || 0;
      if (entry.type === 'inbound-rtp' && entry.kind === 'audio') {
        result.packetsReceived += entry.packetsReceived || 0;
        result.audioLevel = Math.max(result.audioLevel, entry.audioLevel || 0);
        result.totalAudioEnergy = entry.totalAudioEnergy || 0;
      }
      if (entry.type === 'codec' && entry.mimeType?.startsWith('audio/') && entry.mimeType !== 'audio/telephone-event') result.codec = entry.mimeType;
    });
    return result;
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

  card(call) {
    const card = element('div', { class: `card ${call.held ? 'held' : call.state}`, 'data-testid': 'call', 'data-state': call.held ? 'held' : call.state, 'data-leg': call.leg },
      element('div', { class: 'caller', 'data-testid': 'caller' }, call.caller || 'Unknown caller'),
      element('div', { class: 'queue', 'data-testid': 'call-queue' }, call.queue || 'Direct call'));
    const label = { ringing: 'Incoming call', connecting: 'Connecting…', talking: call.held ? 'On hold' : (call.muted ? 'Muted' : 'Connected') }[call.state];
    card.append(element('div', { class: 'status' }, element('span', { 'data-testid': 'call-status' }, label),
      call.since ? element('span', { class: 'timer', 'data-testid': 'timer', 'data-since': String(call.since) }, clock(Math.floor((Date.now() - call.since) / 1000))) : null));
    const buttons = element('div', { class: 'buttons' });
    if (call.state === 'ringing') {
      buttons.append(
        element('button', { class: 'answer', 'data-testid': 'answer', onclick: () => this.answer(call) }, 'Answer'),
        element('button', { class: 'decline', 'data-testid': 'decline', onclick: () => this.decline(call) }, 'Decline'));
    } else {
      if (call.state === 'talking') {
        buttons.append(
          element('button', { 'data-testid': 'mute', 'aria-pressed': String(call.muted), onclick: () => this.mute(call) }, call.muted ? 'Unmute' : 'Mute'),
          element('button', { 'data-testid': 'hold', 'aria-pressed': String(call.held), onclick: () => this.hold(call) }, call.held ? 'Resume' : 'Hold'),
          element('button', { 'data-testid': 'keypad-toggle', 'aria-pressed': String(Boolean(call.keypad)), onclick: () => { call.keypad = !call.keypad; this.render(); } }, 'Keypad'));
      }
      buttons.append(element('button', { class: 'hangup', 'data-testid': 'hangup', onclick: () => this.hangUp(call) }, 'Hang up'));
    }
    card.append(buttons);
    const recording = this.recordingControls(call);
    if (recording) card.append(recording);
    if (call.state === 'talking' && call.keypad) {
      card.append(element('div', { class: 'keypad', 'data-testid': 'keypad' },
        ...KEYS.map((key) => element('button', { 'data-key': key, onclick: () => this.dtmf(call, key) }, key))));
    }
    if (call.state === 'talking') {
      const queue = element('select', { 'aria-label': 'Transfer to a queue', 'data-testid': 'transfer-queue' },
        element('option', { value: '' }, 'Transfer to queue…'), ...this.queues.map((q) => element('option', { value: q.id }, q.path)));
      const number = element('input', { placeholder: 'or a number', 'aria-label': 'Transfer to a number', 'data-testid': 'transfer-number', inputmode: 'tel' });
      card.append(element('form', {
        class: 'transfer',
        onsubmit: (event) => {
          event.preventDefault();
          if (queue.value) this.transfer(call, { queue_id: queue.value });
          else if (number.value.trim()) this.transfer(call, { number: number.value.trim() });
        },
      }, queue, number, element('button', { type: 'submit', 'data-testid': 'transfer' }, 'Transfer')));
    }
    return card;
  }

  /// The phone's state, for the desk and tests: offline, idle, ringing, connecting, talking, held.
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
      this.dispatchEvent(new CustomEvent('phonechange', { detail: { state, caller: calls[0]?.caller } }));
    }
    const box = element('div', { class: 'phone', 'data-testid': 'phone' },
      element('div', { class: 'title' }, element('span', {}, 'Phone'), element('span', { 'data-testid': 'phone-ready' }, this.ready ? 'ready' : 'connecting…')));
    if (!calls.length) box.append(element('div', { class: 'idle' }, this.ready ? 'No call. Calls routed to you ring here.' : 'Connecting the phone…'));
    for (const call of calls) box.append(this.card(call));
    if (this.notice) box.append(element('div', { class: 'notice', 'data-testid': 'phone-notice' }, this.notice));
    this.root.replaceChildren(element('style', {}, STYLE), box);
  }
}

customElements.define('sb-phone', Phone);
