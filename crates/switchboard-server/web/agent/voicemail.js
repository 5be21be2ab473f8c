// The agent's voicemails (AHD-7): messages callers left at a closed queue, routed to this agent
// like a contact. Each shows the caller's number, the queue's path and its length, an audio
// player fed by the server's WAV, "Call back" (the phone's dialer calls the number) and Done
// (the contact ends; the call's ticket goes to the CRM with the audio). The list is read from
// the server when the adapter connects and follows the agent protocol's `voicemail_offered`
// and `voicemail_gone` frames.

import { element } from '/widget/common.js';

const STYLE = `
  :host { display: block; }
  .vm { padding: 10px 12px; border-bottom: 1px solid #eef1f6; border-left: 4px solid #7a4fd6; background: #faf8ff; display: grid; gap: 6px; }
  .vm .title { font-weight: 600; }
  .vm .meta { font-size: 12px; color: #5b6475; }
  .vm audio { width: 100%; height: 32px; }
  .vm .actions { display: flex; gap: 6px; }
  button { font: inherit; cursor: pointer; border: 0; border-radius: 6px; padding: 4px 10px; background: #2456d6; color: #fff; }
  button.secondary { background: #e7ebf3; color: #1d2330; }
  .notice { color: #a32020; font-size: 12px; }
`;

function length(ms) {
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

class Voicemails extends HTMLElement {
  constructor() {
    super();
    this.root = this.attachShadow({ mode: 'open' });
    this.items = new Map(); // contact id -> voicemail
    this.players = new Map(); // contact id -> its <audio>, kept across renders so playback goes on
    this.notice = null;
  }

  /// Reads the voicemails now with the agent (after each connection of the adapter).
  async reload() {
    try {
      const response = await fetch('/api/v1/me/voicemails');
      if (!response.ok) return;
      this.items = new Map((await response.json()).map((v) => [v.contact_id, v]));
      this.render();
    } catch {
      // The next connection reads them again.
    }
  }

  /// A frame of the agent protocol about a voicemail; true when it was one.
  onFrame(event) {
    if (event.type === 'voicemail_offered') {
      const { type, ...voicemail } = event;
      this.items.set(voicemail.contact_id, voicemail);
    } else if (event.type === 'voicemail_gone') {
      this.items.delete(event.contact_id);
      this.players.delete(event.contact_id);
    } else {
      return false;
    }
    this.render();
    return true;
  }

  async done(voicemail) {
    const response = await fetch(`/api/v1/voicemails/${voicemail.voicemail_id}/done`, { method: 'POST' });
    if (response.ok || response.status === 409) {
      this.items.delete(voicemail.contact_id);
      this.players.delete(voicemail.contact_id);
      this.notice = null;
    } else {
      const body = await response.json().catch(() => ({}));
      this.notice = body.message || 'The voicemail could not be closed.';
    }
    this.render();
  }

  player(voicemail) {
    let audio = this.players.get(voicemail.contact_id);
    if (!audio) {
      audio = element('audio', { controls: true, preload: 'metadata', src: voicemail.audio_url, 'data-testid': 'voicemail-audio' });
      this.players.set(voicemail.contact_id, audio);
    }
    return audio;
  }

  render() {
    const list = [...this.items.values()].sort((a, b) => a.left_at.localeCompare(b.left_at));
    const cards = list.map((v) => element('div', { class: 'vm', 'data-testid': 'voicemail', 'data-contact': v.contact_id },
      element('div', { class: 'title' }, `Voicemail from ${v.caller}`),
      element('div', { class: 'meta', 'data-testid': 'voicemail-queue' }, `${v.queue_path} · ${length(v.duration_ms)} · ${new Date(v.left_at).toLocaleString()}`),
      this.player(v),
      element('div', { class: 'actions' },
        element('button', { 'data-testid': 'voicemail-call-back', onclick: () => this.dispatchEvent(new CustomEvent('callback', { detail: { number: v.caller } })) }, 'Call back'),
        element('button', { class: 'secondary', 'data-testid': 'voicemail-done', onclick: () => this.done(v) }, 'Done'))));
    this.root.replaceChildren(element('style', {}, STYLE), ...cards, this.notice ? element('div', { class: 'notice' }, this.notice) : '');
  }
}

customElements.define('sb-voicemails', Voicemails);
