// Monitoring from the browser (MON-1, MON-2, MON-6): the portal's own phone and what this page
// monitors. The phone is a WebSocket to `/api/v1/monitor/ws` (the browser phone's frames of
// docs/browser-phone.md, for the user's monitor legs only), opened the first time it is
// needed; each leg's media is the adapter's `WebRtcLeg`. Starting asks the server for a
// monitor leg on this phone's session (or on the user's SIP phone), which rings here and is
// answered at once; a switch of mode keeps the leg; Stop hangs it up. In listen mode the
// microphone sends silence, so nothing of the supervisor leaves the browser unless they coach
// or barge.

import { api } from '/portal/api.js';
import { WebRtcLeg } from '/agent/webrtc.js';

/// The modes, their button labels, what the user needs for each, and what the notice says.
export const MODES = [
  ['listen', 'Listen', 'monitor_calls_listen', 'Listening'],
  ['coach', 'Coach', 'monitor_calls_coach', 'Coaching the agent'],
  ['barge', 'Barge', 'monitor_calls_barge', 'Barging'],
];

/// The portal's browser phone: one WebSocket, its session id once the server said it is on.
class PortalPhone {
  constructor(onChange) {
    this.onChange = onChange;
    this.socket = null;
    this.ready = null;        // a promise of the session id while the socket is open
    this.expected = new Map(); // call id -> the leg handler waiting for its ring
    this.legs = new Map();    // leg id -> { call, media }
  }

  send(frame) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(frame));
  }

  /// The session id of this page's phone, opening it first if need be.
  session() {
    if (this.ready) return this.ready;
    this.ready = new Promise((resolve, reject) => {
      const socket = new WebSocket(location.origin.replace(/^http/, 'ws') + '/api/v1/monitor/ws');
      this.socket = socket;
      socket.onopen = () => this.send({ type: 'phone_ready' });
      socket.onmessage = (message) => {
        let frame;
        try {
          frame = JSON.parse(message.data);
        } catch {
          return;
        }
        if (frame.type === 'phone_ready') resolve(frame.session_id);
        else if (frame.type === 'error' && !frame.ref) reject(new Error(frame.message));
        else this.frame(frame);
      };
      socket.onclose = () => {
        if (this.socket !== socket) return;
        this.socket = null;
        this.ready = null;
        reject(new Error('The browser phone could not connect.'));
        for (const leg of this.legs.values()) leg.media.close();
        this.legs.clear();
        this.onChange(null);
      };
    });
    return this.ready;
  }

  /// Expects the ring of a monitor leg of `call`: `handler(state, leg)` hears `connecting`,
  /// `connected`, `failed` and `ended`.
  expect(call, handler) {
    this.expected.set(call, handler);
  }

  frame(frame) {
    switch (frame.type) {
      case 'call_ring': {
        const handler = this.expected.get(frame.call_id);
        if (!handler) {
          this.send({ type: 'call_decline', leg_id: frame.leg_id });
          return;
        }
        this.expected.delete(frame.call_id);
        const media = new WebRtcLeg(frame.leg_id, (f) => this.send(f), (state) => handler(state, leg));
        const leg = { id: frame.leg_id, call: frame.call_id, media, handler };
        this.legs.set(frame.leg_id, leg);
        handler('connecting', leg);
        media.answer().catch((error) => {
          this.send({ type: 'call_decline', leg_id: frame.leg_id });
          this.end(frame.leg_id, error);
        });
        break;
      }
      case 'call_sdp':
        this.legs.get(frame.leg_id)?.media.answered(frame.sdp).catch((error) => this.end(frame.leg_id, error));
        break;
      case 'call_stop':
        this.end(frame.leg_id);
        break;
      case 'error':
        if (this.legs.has(frame.ref)) this.end(frame.ref, new Error(frame.message));
        break;
      default:
        break;
    }
  }

  end(legId, error) {
    const leg = this.legs.get(legId);
    if (!leg) return;
    leg.media.close();
    this.legs.delete(legId);
    leg.handler(error ? 'failed' : 'ended', leg, error);
  }
}

/// What this page monitors, if anything: `current` is { callId, mode, device, state }, where
/// `device` is `browser` or `sip` and `state` `starting`, `connecting`, `connected` or (a SIP
/// phone) `ringing`. It dispatches `change` whenever that changes, and `message` with
/// { text, kind } for the page's notice line.
export class Monitoring extends EventTarget {
  constructor() {
    super();
    this.current = null;
    this.leg = null;
    this.phone = new PortalPhone(() => this.lost());
  }

  changed() {
    this.dispatchEvent(new Event('change'));
  }

  say(text, kind = 'success') {
    this.dispatchEvent(new CustomEvent('message', { detail: { text, kind } }));
  }

  path(callId) {
    return `/api/v1/calls/${encodeURIComponent(callId)}/monitor`;
  }

  /// Listens, coaches or barges on `callId`: a switch of mode when already on it, else a new
  /// leg on this browser (or `device` `sip`, the user's SIP phone), after stopping any other.
  async start(callId, mode, device = 'browser') {
    const current = this.current;
    if (current?.callId === callId) return this.switchTo(mode);
    if (current) await this.stop();
    this.current = { callId, mode, device, state: device === 'sip' ? 'ringing' : 'starting' };
    this.changed();
    try {
      if (device === 'sip') {
        await api('POST', this.path(callId), { mode });
        this.say('Your SIP phone is ringing: answer it to monitor the call. Neither party can tell.');
        return;
      }
      const session = await this.phone.session();
      this.phone.expect(callId, (state, leg, error) => this.legState(callId, state, leg, error));
      await api('POST', this.path(callId), { mode, session_id: session });
    } catch (error) {
      this.phone.expected.delete(callId);
      if (this.current?.callId === callId) this.current = null;
      this.changed();
      throw error;
    }
  }

  legState(callId, state, leg, error) {
    if (this.current?.callId !== callId) {
      if (state !== 'ended' && state !== 'failed') leg.media.close();
      return;
    }
    if (state === 'ended' || state === 'failed') {
      this.current = null;
      this.leg = null;
      if (error) this.say(error.message, 'error');
    } else {
      this.leg = leg;
      this.current.state = state;
      leg.media.mute(this.current.mode === 'listen');
      if (state === 'connected') this.say(`${MODES.find(([m]) => m === this.current.mode)[3]} in this browser. Neither party can tell.`);
    }
    this.changed();
  }

  async switchTo(mode) {
    const current = this.current;
    if (!current || current.mode === mode) return;
    await api('PUT', this.path(current.callId), { mode });
    current.mode = mode;
    this.leg?.media.mute(mode === 'listen');
    this.say(`Now ${{ listen: 'listening', coach: 'coaching the agent', barge: 'barging in' }[mode]}.`);
    this.changed();
  }

  async stop() {
    const current = this.current;
    if (!current) return;
    this.current = null;
    this.changed();
    try {
      await api('DELETE', this.path(current.callId));
    } finally {
      this.leg?.media.close();
      this.leg = null;
    }
    this.say('Monitoring stopped.');
  }

  /// The call ended (seen on the event stream): a SIP phone's monitoring ends with it.
  callEnded(callId) {
    if (this.current?.callId !== callId) return;
    this.leg?.media.close();
    this.leg = null;
    this.current = null;
    this.changed();
  }

  lost() {
    if (this.current?.device !== 'browser') return;
    this.current = null;
    this.leg = null;
    this.changed();
  }

  /// What the browser leg heard and sent (getStats), for a person checking and for tests.
  stats() {
    return this.leg ? this.leg.media.stats() : Promise.resolve(null);
  }
}

/// The page's one monitoring.
export const monitoring = new Monitoring();
