// Wrap-up: after a call or a chat the agent picks one of the center's dispositions and adds a
// note, stored on the contact (`PUT /api/v1/contacts/{id}/wrap-up`). The form stays until it is
// saved or skipped; a refusal (no disposition where the center needs one) is shown in place.
//
// <sb-wrap-up contact="…" title="Call with 5551234"> fires `wrapupdone` once saved or skipped.

import { element } from '/widget/common.js';

const STYLE = `
  :host { display: block; }
  form { display: grid; gap: 6px; border-radius: 10px; padding: 10px 12px; background: #fff; border: 1px solid #d5dbe6; }
  .title { font-weight: 600; }
  .hint { color: #5b6475; font-size: 12px; }
  select, textarea { font: inherit; width: 100%; box-sizing: border-box; padding: 4px 6px; border: 1px solid #d5dbe6; border-radius: 6px; background: #fff; }
  textarea { min-height: 56px; resize: vertical; }
  .buttons { display: flex; gap: 6px; justify-content: flex-end; }
  button { font: inherit; cursor: pointer; border: 0; border-radius: 6px; padding: 6px 10px; background: #e7ebf3; color: #1d2330; }
  button.save { background: #2f5bd3; color: #fff; }
  .error { color: #a32020; font-size: 13px; }
`;

let dispositions = null;

/// The center's dispositions, read once per page.
async function centerDispositions() {
  if (!dispositions) {
    dispositions = fetch('/api/v1/dispositions')
      .then((r) => (r.ok ? r.json() : { dispositions: [] }))
      .then((body) => body.dispositions || [])
      .catch(() => []);
  }
  return dispositions;
}

class WrapUp extends HTMLElement {
  constructor() {
    super();
    this.root = this.attachShadow({ mode: 'open' });
    this.error = null;
    this.choices = [];
  }

  // Rendered once: moving the element (its owner re-renders around it) keeps what was typed.
  async connectedCallback() {
    if (this.started) return;
    this.started = true;
    this.render();
    this.choices = await centerDispositions();
    this.render();
  }

  done(saved) {
    this.dispatchEvent(new CustomEvent('wrapupdone', { detail: { saved, contact: this.getAttribute('contact') } }));
  }

  async save(disposition, note) {
    this.values = { disposition, note };
    const contact = this.getAttribute('contact');
    const response = await fetch(`/api/v1/contacts/${contact}/wrap-up`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ disposition: disposition || null, note }),
    });
    if (response.ok) {
      this.done(true);
      return;
    }
    const body = await response.json().catch(() => ({}));
    this.error = body.message || response.statusText;
    this.render();
  }

  render() {
    const select = element('select', { 'aria-label': 'Disposition', 'data-testid': 'disposition' },
      element('option', { value: '' }, this.choices.length ? 'Choose a disposition…' : 'No dispositions set'),
      ...this.choices.map((d) => element('option', { value: d }, d)));
    const note = element('textarea', { 'aria-label': 'Note', placeholder: 'Note (optional)', maxlength: '4000', 'data-testid': 'wrapup-note' });
    // What was chosen and typed survives a re-render (a refusal shown in place).
    if (this.values) {
      select.value = this.values.disposition;
      note.value = this.values.note;
    }
    const form = element('form', {
      'data-testid': 'wrapup',
      onsubmit: (event) => {
        event.preventDefault();
        this.save(select.value, note.value.trim());
      },
    },
    element('div', { class: 'title' }, `Wrap-up · ${this.getAttribute('title') || 'contact'}`),
    element('div', { class: 'hint' }, 'Stored on the contact for reports and the next agent.'),
    select, note,
    this.error ? element('div', { class: 'error', 'data-testid': 'wrapup-error' }, this.error) : null,
    element('div', { class: 'buttons' },
      element('button', { type: 'button', 'data-testid': 'wrapup-skip', onclick: () => this.done(false) }, 'Skip'),
      element('button', { type: 'submit', class: 'save', 'data-testid': 'wrapup-save' }, 'Save')));
    this.root.replaceChildren(element('style', {}, STYLE), form);
  }
}

customElements.define('sb-wrap-up', WrapUp);
