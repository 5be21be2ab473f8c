// The agent's location for emergency calls: a button in the adapter's header says where the
// agent is (their site, their own address, or nowhere), and opens a panel where they enter an
// address of their own (working from home, say) or clear it to be at their site again.
// Without a location an agent cannot dial emergency numbers, so the button says so plainly.

import { element } from '/widget/common.js';

const COUNTRIES = [['US', 'United States'], ['CA', 'Canada'], ['PR', 'Puerto Rico'], ['GB', 'United Kingdom'], ['DK', 'Denmark']];

const STYLE = `
  :host { display: inline-block; }
  button { font: inherit; cursor: pointer; border: 0; border-radius: 6px; padding: 6px 10px; background: #2456d6; color: #fff; }
  button.secondary { background: #e7ebf3; color: #1d2330; }
  button.where { background: transparent; color: #fff; border: 1px solid #4a5366; }
  button.where.missing { background: #fff1d6; color: #8a5a00; border-color: #fff1d6; font-weight: 600; }
  dialog { border: 0; border-radius: 12px; padding: 20px 22px; width: min(520px, 92vw); box-shadow: 0 10px 40px rgba(0,0,0,.25); color: #1d2330; font: 14px/1.45 system-ui, sans-serif; }
  dialog::backdrop { background: rgba(29,35,48,.35); }
  h2 { font-size: 17px; margin: 0 0 8px; }
  .now { padding: 8px 10px; border-radius: 8px; background: #f1f4f9; margin-bottom: 14px; }
  .now.missing { background: #fff1d6; color: #8a5a00; }
  .now .label { font-size: 12px; color: #5b6475; display: block; }
  .now.missing .label { color: inherit; }
  form { display: grid; grid-template-columns: 1fr 1fr; gap: 8px 12px; }
  label { display: grid; gap: 3px; font-size: 12px; color: #5b6475; }
  label.wide { grid-column: 1 / -1; }
  input, select { font: inherit; color: #1d2330; padding: 6px 8px; border: 1px solid #d5dbe6; border-radius: 6px; }
  .buttons { grid-column: 1 / -1; display: flex; gap: 8px; margin-top: 6px; }
  .buttons .grow { flex: 1; }
  .error { grid-column: 1 / -1; color: #a32020; background: #fbe6e6; padding: 6px 10px; border-radius: 6px; }
  .help { grid-column: 1 / -1; font-size: 12px; color: #5b6475; margin: 0; }
`;

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const value = text ? JSON.parse(text) : null;
  if (!response.ok) throw Object.assign(new Error(value?.message || response.statusText), { code: value?.code });
  return value;
}

/// What the agent's location is, in one line.
function describe(location) {
  if (!location) return 'Checking your location…';
  if (location.source === 'own') return `Your address: ${location.one_line}`;
  if (location.source === 'site') return `At ${location.site_name}: ${location.one_line}`;
  return 'No location set: you cannot dial emergency numbers until you set one.';
}

class AgentLocation extends HTMLElement {
  constructor() {
    super();
    this.root = this.attachShadow({ mode: 'open' });
    this.location = null;
  }

  connectedCallback() {
    if (!this.button) this.build();
    if (!this.location) this.refresh();
  }

  async refresh() {
    try {
      this.location = await api('GET', '/api/v1/me/address');
    } catch {
      this.location = null;
    }
    this.draw();
  }

  build() {
    this.button = element('button', { type: 'button', class: 'where', 'data-testid': 'location', onclick: () => this.open() });
    this.dialog = element('dialog', { 'data-testid': 'location-panel' });
    this.root.append(element('style', {}, STYLE), this.button, this.dialog);
    this.draw();
  }

  draw() {
    if (!this.button) return;
    const missing = this.location?.source === 'none';
    this.button.className = `where${missing ? ' missing' : ''}`;
    this.button.title = describe(this.location);
    this.button.textContent = !this.location ? 'Location'
      : missing ? 'Location not set'
        : this.location.source === 'own' ? 'Location: your address' : `Location: ${this.location.site_name}`;
  }

  open() {
    this.renderPanel();
    this.dialog.showModal();
  }

  /// Draws the panel; after a refusal, with the `typed` values kept and the server's reason.
  renderPanel(error, typed) {
    const location = this.location;
    const own = location?.source === 'own' ? location.address : null;
    const value = (name) => typed?.[name] ?? own?.[name] ?? '';
    const input = (name, label, attributes = {}, wide = false) => {
      const box = element('input', { name, value: value(name), 'data-testid': `location-${name}`, autocomplete: 'off', ...attributes });
      return element('label', { class: wide ? 'wide' : '' }, label, box);
    };
    const country = element('select', { name: 'country', 'data-testid': 'location-country' },
      ...COUNTRIES.map(([code, name]) => element('option', { value: code, selected: (value('country') || 'US') === code }, name)));
    const form = element('form', {
      onsubmit: async (event) => {
        event.preventDefault();
        const body = Object.fromEntries(new FormData(form).entries());
        try {
          this.location = await api('PUT', '/api/v1/me/address', body);
          this.draw();
          this.dialog.close();
        } catch (failure) {
          this.renderPanel(failure, body);
          this.dialog.querySelector('[data-testid=location-error]')?.scrollIntoView({ block: 'nearest' });
        }
      },
    },
    element('label', { class: 'wide' }, 'Country', country),
    input('street', 'Street', { placeholder: 'Oak Avenue' }, true),
    input('number', 'House number', { placeholder: '12' }),
    input('building', 'Building'),
    input('floor', 'Floor'),
    input('room', 'Apartment or room'),
    input('city', 'City', { placeholder: 'Springfield' }),
    input('state', 'State or province', { placeholder: 'IL' }),
    input('postcode', 'Postcode', { placeholder: '62701' }),
    element('p', { class: 'help' }, 'Emergency services are sent this address when you dial an emergency number. Keep it current when you work from somewhere else.'),
    error ? element('div', { class: 'error', role: 'alert', 'data-testid': 'location-error' }, error.message) : null,
    element('div', { class: 'buttons' },
      element('button', { type: 'submit', 'data-testid': 'location-save' }, 'Use this address'),
      own ? element('button', {
        type: 'button', class: 'secondary', 'data-testid': 'location-clear',
        onclick: async () => {
          try {
            this.location = await api('DELETE', '/api/v1/me/address');
            this.draw();
            this.renderPanel();
          } catch (failure) {
            this.renderPanel(failure);
          }
        },
      }, location.site_name ? `Use ${location.site_name} again` : 'Clear my address') : null,
      element('span', { class: 'grow' }),
      element('button', { type: 'button', class: 'secondary', onclick: () => this.dialog.close() }, 'Close')));
    const missing = location?.source === 'none';
    this.dialog.replaceChildren(
      element('h2', {}, 'Your location for emergency calls'),
      element('div', { class: `now${missing ? ' missing' : ''}`, 'data-testid': 'location-now' },
        element('span', { class: 'label' }, 'Now'), describe(location)),
      form);
  }
}

customElements.define('sb-location', AgentLocation);
