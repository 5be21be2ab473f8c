// Set-up pages: one list-and-form element driven by a page description (entities.js says, per
// entity, where it is listed, created, changed and removed, its columns and its form's
// fields). A description with `single` is one settings form rather than a list. Every refusal
// from the API is shown with the server's message, in the form that caused it.

import { api, confirmAction, element, notice } from '/portal/api.js';

/// Loaders for the other entities a form chooses from, shared by every page of one visit.
const LOOKUPS = {
  teams: () => api('GET', '/api/v1/teams'),
  roles: () => api('GET', '/api/v1/roles'),
  queues: () => api('GET', '/api/v1/queues'),
  profiles: () => api('GET', '/api/v1/capacity-profiles'),
  settings: () => api('GET', '/api/v1/settings'),
  sites: () => api('GET', '/api/v1/sites'),
  users: () => api('GET', '/api/v1/users'),
};

/// Reads a field's value from a row (`scope.queue_id` reaches into `scope`).
function readField(field, row) {
  if (!row) return field.initial ?? (field.type === 'choices' || field.type === 'lines' ? [] : field.type === 'checkbox' ? false : '');
  if (field.read) return field.read(row);
  return field.name.split('.').reduce((value, part) => value?.[part], row);
}

/// One input for a field; returns the node and a reader of its value as the API takes it.
function inputFor(field, value, lookups, testid, tab) {
  const id = `field-${testid}-${field.name.replaceAll('.', '-')}`;
  const common = { id, name: field.name, 'data-testid': `field-${field.name}` };
  switch (field.type) {
    case 'checkbox': {
      const box = element('input', { ...common, type: 'checkbox', checked: Boolean(value) });
      return [element('div', { class: 'choices' }, element('label', {}, box, field.caption ?? 'Yes')), () => box.checked];
    }
    case 'select': {
      const options = field.options(lookups, tab);
      const select = element('select', common,
        ...(field.none !== undefined ? [element('option', { value: '' }, field.none)] : []),
        ...options.map(([v, label]) => element('option', { value: v, selected: String(value ?? '') === String(v) }, label)));
      return [select, () => (select.value === '' && field.none !== undefined ? null : select.value)];
    }
    case 'choices': {
      const chosen = new Set(value ?? []);
      const boxes = field.options(lookups, tab).map(([v, label]) => {
        const box = element('input', { type: 'checkbox', value: v, checked: chosen.has(v), 'data-choice': v });
        return [box, element('label', {}, box, label)];
      });
      const node = element('div', { class: 'choices', ...common }, ...(boxes.length ? boxes.map(([, label]) => label) : [element('span', { class: 'path' }, 'None defined yet')]));
      return [node, () => boxes.filter(([box]) => box.checked).map(([box]) => box.value)];
    }
    case 'lines': {
      const area = element('textarea', { ...common, placeholder: field.placeholder ?? '' });
      area.value = (value ?? []).join('\n');
      return [area, () => area.value.split('\n').map((line) => line.trim()).filter(Boolean)];
    }
    case 'file': {
      const input = element('input', { ...common, type: 'file', accept: field.accept ?? '' });
      return [input, () => input.files[0] ?? null];
    }
    case 'number': {
      const input = element('input', { ...common, type: 'number', value: value ?? '', min: field.min, max: field.max });
      return [input, () => (input.value === '' ? undefined : Number(input.value))];
    }
    default: {
      const input = element('input', { ...common, type: field.type === 'password' ? 'password' : 'text', value: value ?? '', placeholder: field.placeholder ?? '', autocomplete: field.type === 'password' ? 'new-password' : 'off' });
      return [input, () => input.value.trim()];
    }
  }
}

/// Collects a form's values into the body the API takes: empty optional fields are null,
/// empty `omitEmpty` fields are left out, and dotted names make nested objects.
function collect(fields, readers) {
  const body = {};
  for (const field of fields) {
    let value = readers.get(field.name)();
    if ((value === '' || value === undefined) && field.omitEmpty) continue;
    if ((value === '' || value === undefined) && field.optional) value = null;
    if (value === undefined) continue;
    const parts = field.name.split('.');
    let target = body;
    for (const part of parts.slice(0, -1)) target = target[part] ??= {};
    target[parts.at(-1)] = value;
  }
  return body;
}

class Setup extends HTMLElement {
  /// Shows `page` (a description from entities.js) for the signed-in `session`.
  start(page, session) {
    this.page = page;
    this.session = session;
    this.rows = [];
    this.tab = page.tabs?.[0]?.[0];
    this.lookups = {};
    this.reload();
  }

  async reload(message) {
    try {
      const needed = this.page.lookups ?? [];
      const values = await Promise.all(needed.map((name) => LOOKUPS[name]().catch(() => [])));
      this.lookups = Object.fromEntries(needed.map((name, i) => [name, values[i]]));
      const answer = await api('GET', this.page.list);
      this.rows = this.page.single ? answer : this.page.rows ? this.page.rows(answer) : answer;
      this.error = null;
    } catch (error) {
      this.error = error;
    }
    this.render();
    if (message) notice(this.notices, message, 'ok');
  }

  render() {
    const page = this.page;
    this.notices = element('div', { 'data-testid': 'page-notice' });
    const head = element('div', { class: 'toolbar' }, element('div', {},
      element('h1', {}, page.title), page.lead ? element('p', { class: 'lead' }, page.lead) : null),
    element('div', { class: 'grow' }),
    page.create && !page.single ? element('button', { type: 'button', 'data-testid': 'new', onclick: () => this.openForm(null) }, page.createLabel ?? `New ${page.noun}`) : null);
    this.formArea = element('div');
    const parts = [head, this.notices, this.formArea];
    if (this.error) notice(this.notices, this.error);
    if (page.single) {
      if (!this.error) this.formArea.append(this.form(this.rows, page.fields, page.update, 'Save'));
    } else {
      if (page.tabs) {
        parts.push(element('div', { class: 'tabs' }, ...page.tabs.map(([key, label]) => element('button', {
          type: 'button', class: key === this.tab ? 'active' : '', 'data-testid': `tab-${key}`,
          onclick: () => { this.tab = key; this.render(); },
        }, label))));
      }
      parts.push(this.table());
    }
    this.replaceChildren(...parts);
  }

  visibleRows() {
    return this.page.tabs ? this.page.inTab(this.rows, this.tab) : this.rows;
  }

  table() {
    const page = this.page;
    const rows = this.visibleRows();
    const context = this.context();
    return element('table', { class: 'grid', 'data-testid': `${page.key}-list` },
      element('tr', {}, ...page.columns.map(([label]) => element('th', {}, label)), element('th', {}, '')),
      ...(rows.length ? rows.map((row, index) => element('tr', { 'data-row': page.id(row) },
        ...page.columns.map(([, cell]) => element('td', {}, cell(row, context) ?? '')),
        element('td', { class: 'actions' },
          ...(page.actions ?? []).filter((a) => !a.when || a.when(row, context)).map((action) => element('button', {
            type: 'button', class: 'secondary small', 'data-testid': action.testid, title: action.title ?? '',
            disabled: action.disabled?.(row, index, rows) ?? false,
            onclick: () => this.runAction(action, row),
          }, typeof action.label === 'function' ? action.label(row) : action.label)),
          page.update && (!page.editable || page.editable(row)) ? element('button', { type: 'button', class: 'secondary small', 'data-testid': 'edit', onclick: () => this.openForm(row) }, 'Edit') : null,
          page.remove && (!page.editable || page.editable(row)) ? element('button', { type: 'button', class: 'secondary small', 'data-testid': 'delete', onclick: () => this.remove(row) }, 'Delete') : null),
      )) : [element('tr', {}, element('td', { class: 'empty', colspan: page.columns.length + 1 }, page.empty ?? `No ${page.title.toLowerCase()} yet.`))]));
  }

  /// What descriptions get to work with: lookups, rows, the current tab, and ways to report.
  context() {
    return {
      lookups: this.lookups, rows: this.rows, tab: this.tab, session: this.session,
      reload: (message) => this.reload(message),
      fail: (error) => notice(this.notices, error),
      showSecret: (title, secret) => this.formArea.replaceChildren(element('div', { class: 'card', 'data-testid': 'secret' },
        element('h3', {}, title), element('div', { class: 'secret' }, secret),
        element('p', { class: 'path' }, 'Copy it now: it is not shown again.'),
        element('button', { type: 'button', class: 'secondary', onclick: () => this.formArea.replaceChildren() }, 'Done'))),
    };
  }

  async runAction(action, row) {
    if (action.fields) {
      // An action may load more of the row first (`load`), and give its fields their values
      // (`read`); `lead` is a line above the fields.
      let values = row;
      try {
        if (action.load) values = await action.load(row);
      } catch (error) {
        notice(this.notices, error);
        return;
      }
      const form = this.form(action.read ? { ...values, ...action.read(values) } : values, action.fields,
        { submit: (_, body) => action.submit(values, body), done: action.done }, action.save ?? 'Save', action.heading?.(values), action.lead?.(values));
      this.formArea.replaceChildren(form);
      return;
    }
    notice(this.notices, null);
    try {
      const message = await action.run(row, this.context());
      if (message !== false) this.reload(message);
    } catch (error) {
      notice(this.notices, error);
    }
  }

  async remove(row) {
    const name = this.page.name(row);
    if (!(await confirmAction(`Delete ${this.page.noun} “${name}”?`, 'This cannot be undone.', 'Delete'))) return;
    try {
      await api('DELETE', this.page.remove(row));
      this.reload(`Deleted ${this.page.noun} “${name}”.`);
    } catch (error) {
      notice(this.notices, error);
    }
  }

  openForm(row) {
    const target = row ? this.page.update : this.page.create;
    const heading = row ? `Edit ${this.page.noun} “${this.page.name(row)}”` : `New ${this.page.noun}`;
    this.formArea.replaceChildren(this.form(row, this.page.fields, target, row ? 'Save' : 'Create', heading));
    this.formArea.querySelector('input, select, textarea')?.focus();
  }

  /// A form for `fields` (of `row`, or a new one); `target` says how to send it: `method` and
  /// `path(row, body)`, or `submit(row, body, context)` for anything else.
  form(row, fields, target, save, heading, lead) {
    const creating = !row;
    const shown = fields.filter((f) => !(f.createOnly && row && !this.page.single) && !(f.editOnly && !row) && !(f.inTab && f.inTab !== this.tab));
    const readers = new Map();
    const area = element('div');
    const form = element('form', { class: 'entity', 'data-testid': `${this.page.key}-form` });
    // Fields with `shownWhen(values)` appear only while the form's values say so (the CRM
    // connector's own settings, say); they are sent either way.
    const conditional = [];
    for (const field of shown) {
      const initial = field.tabValue ? this.tab : readField(field, row);
      if (field.type === 'hidden') {
        readers.set(field.name, () => initial);
        continue;
      }
      const [input, read] = inputFor(field, initial, this.lookups, this.page.key, this.tab);
      readers.set(field.name, read);
      const nodes = [element('label', { class: 'name', for: input.id || '' }, field.label), input];
      if (field.help) nodes.push(element('div', { class: 'help' }, field.help));
      form.append(...nodes);
      if (field.shownWhen) conditional.push([field, nodes]);
    }
    if (conditional.length) {
      const toggle = () => {
        const values = collect(shown, readers);
        for (const [field, nodes] of conditional) for (const node of nodes) node.hidden = !field.shownWhen(values);
      };
      form.addEventListener('input', toggle);
      form.addEventListener('change', toggle);
      toggle();
    }
    let preview = null;
    if (this.page.preview && fields === this.page.fields) {
      preview = element('div', { 'data-testid': 'preview' });
      const redraw = () => preview.replaceChildren(this.page.preview(collect(shown, readers)));
      form.addEventListener('input', redraw);
      redraw();
    }
    form.append(element('div', { class: 'buttons' },
      element('button', { type: 'submit', 'data-testid': 'save' }, save),
      this.page.single ? null : element('button', { type: 'button', class: 'secondary', onclick: () => this.formArea.replaceChildren() }, 'Cancel')));
    form.onsubmit = async (event) => {
      event.preventDefault();
      notice(area, null);
      let body = collect(shown, readers);
      if (this.page.toInput && fields === this.page.fields) body = this.page.toInput(body, row, this.context());
      try {
        const answer = target.submit
          ? await target.submit(row, body, this.context())
          : await api(target.method, target.path(row, body), body);
        if (creating && this.page.afterCreate?.(answer, this.context())) return;
        if (this.page.single) {
          this.rows = answer ?? body;
          notice(area, 'Saved.', 'ok');
          return;
        }
        if (target.done) {
          this.reload(target.done(row));
          return;
        }
        this.reload(`Saved ${this.page.noun} “${answer ? this.page.name(answer) : this.page.name(row ?? body)}”.`);
      } catch (error) {
        notice(area, error);
      }
    };
    return element('div', { class: 'card' }, heading ? element('h3', {}, heading) : null,
      lead ? element('p', { class: 'lead', 'data-testid': 'form-lead' }, lead) : null, form, preview, area);
  }
}

customElements.define('sb-setup', Setup);
