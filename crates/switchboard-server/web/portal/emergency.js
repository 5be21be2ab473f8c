// Set-up > Emergency: the emergency numbers agents may dial, per country, with a direct route
// where a number must leave through a trunk of its own; the pool of callback numbers leased to
// an agent who dials one; and the trunks allowed to carry emergency calls. Every refusal is
// shown with the server's message in the card that caused it.

import { api, element, notice } from '/portal/api.js';
import { COUNTRIES } from '/portal/entities.js';

class Emergency extends HTMLElement {
  connectedCallback() {
    this.load();
  }

  async load() {
    this.notices = element('div', { 'data-testid': 'page-notice' });
    try {
      const [registry, trunks, settings] = await Promise.all([
        api('GET', '/api/v1/emergency/numbers'),
        api('GET', '/api/v1/voice/trunks'),
        api('GET', '/api/v1/settings'),
      ]);
      this.rows = registry.numbers.map((row) => ({ ...row }));
      this.trunks = trunks.filter((t) => t.direction === 'outbound');
      this.settings = settings;
      this.render();
    } catch (error) {
      this.replaceChildren(element('h1', {}, 'Emergency'), this.notices);
      notice(this.notices, error);
    }
  }

  render() {
    this.replaceChildren(
      element('h1', {}, 'Emergency'),
      element('p', { class: 'lead' }, 'The numbers agents may dial in an emergency and how those calls leave. An agent can dial them only with a location: their site’s address or one of their own.'),
      this.notices,
      this.numbersCard(),
      this.poolCard(),
      this.trunksCard(),
    );
  }

  numbersCard() {
    const area = element('div');
    const trunkOptions = [['', 'An emergency trunk'], ...this.trunks.map((t) => [t.id, t.name])];
    const select = (options, value, testid, onchange) => element('select', { 'data-testid': testid, onchange },
      ...options.map(([v, label]) => element('option', { value: v, selected: (value ?? '') === v }, label)));
    const body = this.rows.map((row, index) => element('tr', { 'data-row': index },
      element('td', {}, select(COUNTRIES.map(([code, name]) => [code, `${name} (${code})`]), row.country, 'number-country', (e) => { row.country = e.target.value; })),
      element('td', {}, element('input', {
        type: 'text', value: row.number, size: 6, inputmode: 'numeric', 'data-testid': 'number-digits', 'aria-label': 'Number',
        oninput: (e) => { row.number = e.target.value.trim(); },
      })),
      element('td', {}, element('label', { class: 'inline' }, element('input', {
        type: 'checkbox', checked: row.test, 'data-testid': 'number-test', onchange: (e) => { row.test = e.target.checked; },
      }), 'Test number')),
      element('td', {}, select(trunkOptions, row.trunk_id, 'number-trunk', (e) => { row.trunk_id = e.target.value || null; })),
      element('td', { class: 'actions' }, element('button', {
        type: 'button', class: 'secondary small', 'data-testid': 'number-remove',
        onclick: () => { this.rows.splice(index, 1); this.render(); },
      }, 'Remove')),
    ));
    const save = async () => {
      notice(area, null);
      try {
        const saved = await api('PUT', '/api/v1/emergency/numbers', { numbers: this.rows });
        this.rows = saved.numbers.map((row) => ({ ...row }));
        this.render();
        notice(this.querySelector('[data-testid=numbers-notice]'), `Saved ${saved.numbers.length} emergency numbers.`, 'ok');
      } catch (error) {
        notice(area, error);
      }
    };
    return element('div', { class: 'card', 'data-testid': 'emergency-numbers' },
      element('h3', {}, 'Emergency numbers'),
      element('p', { class: 'path' }, 'Recognised as typed, before any dial rule: 9911 and 9-911 are 911 where 9 reaches an outside line. A test number (933) is handled the same way and marked as a test.'),
      element('table', { class: 'grid' },
        element('tr', {}, ...['Country', 'Number', 'Test', 'Leaves through', ''].map((label) => element('th', {}, label))),
        ...(body.length ? body : [element('tr', {}, element('td', { class: 'empty', colspan: 5 }, 'No emergency numbers: agents cannot dial any.'))])),
      element('div', { class: 'buttons spaced' },
        element('button', { type: 'button', class: 'secondary', 'data-testid': 'number-add', onclick: () => { this.rows.push({ country: 'US', number: '', test: false, trunk_id: null }); this.render(); } }, 'Add number'),
        element('button', { type: 'button', 'data-testid': 'numbers-save', onclick: save }, 'Save numbers')),
      element('div', { 'data-testid': 'numbers-notice' }),
      area);
  }

  poolCard() {
    const area = element('div');
    const pool = element('textarea', { 'data-testid': 'callback-pool', rows: 3, placeholder: '15550190-15550199' });
    pool.value = this.settings.callback_pool ?? '';
    const save = async () => {
      notice(area, null);
      try {
        this.settings = await api('PUT', '/api/v1/settings', { ...this.settings, callback_pool: pool.value.trim() });
        pool.value = this.settings.callback_pool ?? '';
        notice(area, 'Saved the callback numbers.', 'ok');
      } catch (error) {
        notice(area, error);
      }
    };
    return element('div', { class: 'card', 'data-testid': 'emergency-pool' },
      element('h3', {}, 'Callback numbers'),
      element('p', { class: 'path' }, 'An agent who dials an emergency number is given one of these for 60 minutes: it is sent as their caller id, and a call back to it reaches them first. Numbers and ranges separated by commas or new lines, at most 1,000. They should be numbers your inbound trunks deliver.'),
      pool,
      element('div', { class: 'buttons spaced' }, element('button', { type: 'button', 'data-testid': 'pool-save', onclick: save }, 'Save callback numbers')),
      area);
  }

  trunksCard() {
    const allowed = this.trunks.filter((t) => t.emergency);
    const direct = new Set(this.rows.map((row) => row.trunk_id).filter(Boolean));
    return element('div', { class: 'card', 'data-testid': 'emergency-trunks' },
      element('h3', {}, 'Trunks allowed to carry emergency calls'),
      allowed.length
        ? element('ul', { class: 'plain' }, ...allowed.map((t) => element('li', {}, element('strong', {}, t.name), ' ',
          element('span', { class: 'path' }, `${t.host ?? ''}${t.port ? `:${t.port}` : ''}`))))
        : element('div', { class: 'notice warn', role: 'status' }, direct.size
          ? 'No trunk is allowed to carry emergency calls: only numbers with a direct route can be dialled.'
          : 'No trunk is allowed to carry emergency calls, so agents cannot dial emergency numbers.'),
      element('p', { class: 'path' }, 'Allow a trunk on the ', element('a', { href: '#/setup/trunks' }, 'Trunks'), ' page (outbound trunks only).'));
  }
}

customElements.define('sb-emergency', Emergency);
