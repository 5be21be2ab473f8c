// The Switchboard portal (PLT-7): sign-in with the agent adapter's sessions (TOTP included),
// then a navigation holding only what the user's permissions allow: Live for supervisors and
// managers (the server scopes a manager's view to their teams), Dashboards, Set-up for admins
// and the audit log, the emergency log for those allowed it, and a red banner above every page
// while an agent in the user's reach is on an emergency call. Pages are chosen by the address's fragment (#/live/calls), so a reload
// or a shared link opens the same page.

import { api, element, notice, words } from '/portal/api.js';
import '/portal/live.js';
import '/portal/setup.js';
import '/portal/audit.js';
import '/portal/emergency.js';
import '/portal/after_hours.js';
import '/portal/emergency_log.js';
import '/portal/tickets.js';
import { SETUP_PAGES } from '/portal/entities.js';

const MONITOR = ['monitor_calls_listen', 'monitor_calls_coach', 'monitor_calls_barge', 'monitor_chats_view', 'monitor_chats_edit'];

/// Every page of the portal: its address, its group in the navigation, what it needs and how
/// it is drawn.
function pages() {
  const live = (view, title) => ({
    path: `live/${view}`, group: 'Live', title, allowed: (can) => MONITOR.some(can),
  });
  return [
    live('calls', 'Calls'),
    live('chats', 'Chats'),
    live('agents', 'Agents'),
    {
      path: 'dashboards', group: 'Reports', title: 'Dashboards', allowed: (can) => MONITOR.some(can) || can('settings_edit'),
      render: () => dashboards(),
    },
    {
      path: 'audit', group: 'Reports', title: 'Audit log', allowed: (can) => can('settings_edit'),
      render: () => element('sb-audit'),
    },
    {
      path: 'tickets', group: 'Reports', title: 'Tickets', allowed: (can) => can('settings_edit'),
      render: () => element('sb-tickets'),
    },
    {
      path: 'emergency/log', group: 'Reports', title: 'Emergency log', allowed: (can) => can('emergency_log_view'),
      render: () => element('sb-emergency-log'),
    },
    {
      path: 'emergency/template', group: 'Set-up', title: 'Emergency notification', allowed: (can) => can('settings_edit'),
      render: () => element('sb-emergency-template'),
    },
    ...SETUP_PAGES.map((page) => ({
      path: `setup/${page.key}`, group: 'Set-up', title: page.title, allowed: (can) => can(page.permission),
      render: (session) => {
        const node = element('sb-setup');
        node.start(page, session);
        return node;
      },
    })),
    {
      path: 'setup/after-hours', group: 'Set-up', title: 'After hours', allowed: (can) => can('settings_edit'),
      render: () => element('sb-after-hours'),
    },
    {
      path: 'setup/emergency', group: 'Set-up', title: 'Emergency', allowed: (can) => can('settings_edit'),
      render: () => element('sb-emergency'),
    },
  ];
}

/// The dashboards page is its own module, loaded when first opened.
function dashboards() {
  const body = element('div', {}, element('p', { class: 'lead' }, 'Loading dashboards…'));
  import('/portal/dashboards.js').then(
    () => body.replaceChildren(element('sb-dashboards')),
    () => body.replaceChildren(element('p', { class: 'lead', 'data-testid': 'dashboards-missing' }, 'Dashboards are not available on this server.')),
  );
  return element('div', { 'data-testid': 'dashboards' }, element('h1', {}, 'Dashboards'), body);
}

class Portal extends HTMLElement {
  async connectedCallback() {
    window.addEventListener('hashchange', () => this.route());
    try {
      this.begin(await api('GET', '/api/v1/auth/me'));
    } catch {
      this.renderLogin();
    }
  }

  renderLogin(message) {
    const username = element('input', { name: 'username', placeholder: 'Username', autocomplete: 'username', required: true });
    const password = element('input', { name: 'password', type: 'password', placeholder: 'Password', autocomplete: 'current-password', required: true });
    const code = element('input', { name: 'totp', placeholder: 'Authenticator code', inputmode: 'numeric', autocomplete: 'one-time-code', hidden: true });
    const area = element('div');
    const form = element('form', {
      class: 'login',
      onsubmit: async (event) => {
        event.preventDefault();
        notice(area, null);
        try {
          const body = { username: username.value, password: password.value };
          if (code.value) body.totp_code = code.value.trim();
          this.begin(await api('POST', '/api/v1/auth/login', body));
        } catch (error) {
          if (error.code === 'totp_required') {
            code.hidden = false;
            code.focus();
          }
          notice(area, error);
        }
      },
    }, element('h1', {}, 'Switchboard'), element('div', { class: 'brand' }, 'Portal for supervisors and admins'),
    username, password, code, element('button', { type: 'submit' }, 'Sign in'), area);
    this.replaceChildren(form);
    if (message) notice(area, message);
    username.focus();
  }

  /// Signed in: `session` is the SessionView (the user, their permissions).
  begin(session) {
    const granted = new Set(session.permissions);
    this.session = { ...session, can: (permission) => granted.has(permission) };
    this.pages = pages().filter((page) => page.allowed(this.session.can));
    this.cache = new Map();
    const top = element('header', { class: 'top' },
      element('div', { class: 'brand' }, 'Switchboard', element('span', {}, 'Portal')),
      element('div', { class: 'grow' }),
      this.session.can('handle_contacts') ? element('a', { href: '/agent/', 'data-testid': 'agent-desk-link' }, 'Agent desk') : null,
      element('span', { class: 'who', 'data-testid': 'who' }, `${session.user.display_name} · ${words(session.user.role)}`),
      element('button', { class: 'secondary small', 'data-testid': 'sign-out', onclick: () => this.signOut() }, 'Sign out'));
    this.nav = element('nav', { class: 'side', 'data-testid': 'nav' });
    let group = null;
    for (const page of this.pages) {
      if (page.group !== group) {
        group = page.group;
        this.nav.append(element('div', { class: 'group' }, group));
      }
      this.nav.append(element('a', { href: `#/${page.path}`, 'data-page': page.path }, page.title));
    }
    this.main = element('main');
    // Every signed-in user has the banner; the server sends each only the emergency calls of
    // the agents in their reach.
    this.banner = element('sb-emergency-banner', { hidden: true });
    this.replaceChildren(top, this.banner, element('div', { class: 'shell' }, this.nav, this.main));
    this.route();
  }

  route() {
    if (!this.session) return;
    if (!this.pages.length) {
      this.main.replaceChildren(element('h1', {}, 'Nothing to show'), element('p', { class: 'lead' },
        this.session.can('handle_contacts') ? 'Your role takes contacts: use the agent desk.' : 'Your role has no portal pages. Ask an admin for access.'),
      this.session.can('handle_contacts') ? element('a', { href: '/agent/' }, 'Open the agent desk') : null);
      return;
    }
    const wanted = location.hash.replace(/^#\/?/, '');
    const page = this.pages.find((p) => p.path === wanted) ?? this.pages[0];
    if (page.path !== wanted) history.replaceState(null, '', `#/${page.path}`);
    for (const link of this.nav.querySelectorAll('a')) link.classList.toggle('active', link.dataset.page === page.path);
    document.title = `Switchboard · ${page.title}`;
    // Live pages keep one element so the event stream and its state survive switching views.
    if (page.path.startsWith('live/')) {
      let live = this.cache.get('live');
      if (!live) {
        live = element('sb-live');
        live.session = this.session;
        this.cache.set('live', live);
      }
      live.setAttribute('view', page.path.slice(5));
      live.dataset.testid = 'live';
      if (live.parentNode !== this.main) this.main.replaceChildren(live);
      return;
    }
    const node = page.render(this.session);
    node.session = this.session;
    this.main.replaceChildren(node);
  }

  async signOut() {
    try {
      await api('POST', '/api/v1/auth/logout');
    } catch {
      // Signed out already, or the server is gone: the sign-in form is right either way.
    }
    this.cache?.get('live')?.stop();
    this.banner?.remove();
    this.session = null;
    this.cache = new Map();
    history.replaceState(null, '', '/portal/');
    this.renderLogin();
  }
}

customElements.define('sb-portal', Portal);
