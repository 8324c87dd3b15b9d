// workflows: the list, and one workflow: its phases and prompts, its YAML as
// `GET /workflows/{id}/export` gives it, and a form to run it with its declared
// inputs (required ones marked, defaults filled in).
import { api, may } from './api.js';
import { clock, fill, h } from './dom.js';

export function mount(main, id, _params, app) {
  return id ? one(main, id, app) : list(main, app);
}

function list(main, app) {
  const body = h('tbody');
  fill(main, h('h1', {}, 'Workflows'),
    h('div', { class: 'scroll' }, h('table', { class: 'list', id: 'workflows' },
      h('thead', {}, h('tr', {}, ['Workflow', 'Name', 'Type', 'Phases', 'Version', 'Created']
        .map((c) => h('th', { scope: 'col' }, c)))), body)));
  api('/workflows?page_size=100').then((r) => {
    fill(body, r.workflows.length ? r.workflows.map((w) => h('tr', { 'data-workflow': w.id },
      h('td', {}, h('a', { href: `#/workflows/${encodeURIComponent(w.id)}`, class: 'mono' }, w.id)),
      h('td', {}, w.name), h('td', {}, w.workflow_type), h('td', { class: 'num' }, w.phase_count),
      h('td', { class: 'num' }, w.version), h('td', { title: w.created_at }, new Date(w.created_at).toLocaleString())))
      : h('tr', {}, h('td', { colspan: '6', class: 'muted' }, 'No workflows.')));
  }).catch((err) => app.showError(err));
  return null;
}

function one(main, id, app) {
  const path = `/workflows/${encodeURIComponent(id)}`;
  const yaml = h('pre', { id: 'yaml', class: 'output', tabindex: '0' });
  const runArea = h('section', { class: 'card', id: 'run', 'aria-labelledby': 'run-title' });
  const phases = h('ol', { class: 'phases' });
  const title = h('h1', {}, id);
  const about = h('p', { class: 'muted' });
  fill(main, h('p', {}, h('a', { href: '#/workflows' }, '← Workflows')), title, about, runArea,
    h('h2', {}, 'Phases'), phases,
    h('section', { class: 'card' }, h('h2', {}, 'YAML'), yaml));

  api(path).then((w) => {
    title.textContent = w.name || w.id;
    about.textContent = `${w.id} · ${w.workflow_type} · version ${w.version}${w.archived ? ' · archived' : ''}${w.description ? ` · ${w.description}` : ''}`;
    fill(phases, w.phases.map((p) => h('li', { 'data-phase': p.phase_id },
      h('h3', {}, `${p.name} `, h('span', { class: 'muted mono' }, p.phase_id)),
      h('p', { class: 'muted' }, `timeout ${p.timeout_seconds}s · ${p.max_attempts} attempts${p.model ? ` · ${p.model}` : ''}`),
      h('pre', { class: 'prompt' }, p.prompt_template))));
    fill(runArea, runForm(w, app));
  }).catch((err) => app.showError(err));
  api(`${path}/export`).then((text) => { yaml.textContent = text; }).catch((err) => app.showError(err));
  return null;
}

function runForm(w, app) {
  const title = h('h2', { id: 'run-title' }, 'Run');
  if (!may('run')) return [title, h('p', { class: 'muted' }, 'Your token may read, not run executions.')];
  if (w.archived) return [title, h('p', { class: 'muted' }, 'Archived: it cannot run.')];
  const fields = (w.input_declarations || []).map((d) => {
    const fid = `input-${d.name}`;
    return h('div', { class: 'field' },
      h('label', { for: fid }, d.name, d.required ? h('span', { class: 'required', title: 'required' }, ' *') : null),
      h('input', { id: fid, name: d.name, value: d.default ?? '', required: d.required && d.default == null,
        'aria-describedby': d.description ? `${fid}-help` : null }),
      d.description ? h('small', { id: `${fid}-help`, class: 'muted' }, d.description) : null);
  });
  const task = h('textarea', { id: 'run-task', name: 'task', rows: '2' });
  const result = h('p', { id: 'run-result', role: 'status' });
  const form = h('form', { id: 'run-form' }, fields,
    h('div', { class: 'field' }, h('label', { for: 'run-task' }, 'Task (replaces $ARGUMENTS)'), task),
    h('button', { type: 'submit', id: 'run-submit' }, 'Run'), result);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const inputs = {};
    for (const d of w.input_declarations || []) {
      const v = form.querySelector(`#${CSS.escape(`input-${d.name}`)}`).value;
      if (v !== '') inputs[d.name] = v;
    }
    const body = { inputs };
    if (task.value.trim()) body.task = task.value;
    try {
      const r = await api(`/workflows/${encodeURIComponent(w.id)}/execute`, { method: 'POST', body });
      app.clearError();
      fill(result, `Started ${clock(new Date().toISOString())}: `,
        h('a', { href: `#/executions/${encodeURIComponent(r.execution_id)}`, class: 'mono', id: 'run-started' }, r.execution_id));
    } catch (err) {
      fill(result, h('span', { class: 'error' }, err.message));
    }
  });
  return [title, form];
}
