// executions: the list of executions, newest first, filtered by status and workflow,
// paged, and read again whenever the activity stream says one of them changed.
import { api } from './api.js';
import { ACTIVE, badge, cost, duration, fill, h, keepFocus, parseTime, throttle, tickDurations, tokens } from './dom.js';

const STATUSES = ['pending', 'running', 'paused', 'completed', 'failed', 'cancelled'];
const PAGE_SIZE = 20;

export function mount(main, _id, params, app) {
  const status = params.get('status') || '';
  const workflow = params.get('workflow') || '';
  const page = Math.max(1, parseInt(params.get('page') || '1', 10) || 1);
  const go = (changes) => {
    const next = new URLSearchParams({ status, workflow, page: String(page), ...changes });
    for (const [k, v] of [...next]) if (!v || (k === 'page' && v === '1')) next.delete(k);
    const q = next.toString();
    location.hash = `#/executions${q ? `?${q}` : ''}`;
  };

  const statusSelect = h('select', { id: 'f-status', onchange: (e) => go({ status: e.target.value, page: '1' }) },
    h('option', { value: '' }, 'any status'),
    STATUSES.map((s) => h('option', { value: s, selected: s === status }, s)));
  const workflowSelect = h('select', { id: 'f-workflow', onchange: (e) => go({ workflow: e.target.value, page: '1' }) },
    h('option', { value: '' }, 'any workflow'));
  const body = h('tbody');
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages of executions' });
  fill(main,
    h('h1', {}, 'Executions'),
    h('div', { class: 'filters' },
      h('label', { for: 'f-status' }, 'Status'), statusSelect,
      h('label', { for: 'f-workflow' }, 'Workflow'), workflowSelect),
    h('div', { class: 'scroll' },
      h('table', { class: 'list', id: 'executions' },
        h('thead', {}, h('tr', {},
          ['Execution', 'Status', 'Workflow', 'Phase', 'Progress', 'Started', 'Duration', 'Tokens', 'Cost']
            .map((c) => h('th', { scope: 'col' }, c)))),
        body)),
    pager);

  const names = new Map(); // workflow id → name, for rows drawn from events
  api('/workflows?page_size=100').then((r) => {
    for (const w of r.workflows) names.set(w.id, w.name);
    for (const w of r.workflows) workflowSelect.append(h('option', { value: w.id, selected: w.id === workflow }, w.name || w.id));
    if (workflow && !r.workflows.some((w) => w.id === workflow)) workflowSelect.append(h('option', { value: workflow, selected: true }, workflow));
  }).catch((err) => app.showError(err));

  let rows = [];
  let current = new Map(); // execution id → its current phase (from the active list)
  let total = 0;
  const query = new URLSearchParams({ page: String(page), page_size: String(PAGE_SIZE) });
  if (status) query.set('status', status);
  if (workflow) query.set('workflow_id', workflow);

  const draw = () => keepFocus(main, () => {
    const now = Date.now();
    fill(body, rows.length ? rows.map((e) => {
      const running = ACTIVE.has(e.status);
      const seconds = running ? (now - parseTime(e.started_at)) / 1000 : e.duration_seconds;
      return h('tr', { 'data-execution': e.execution_id, 'data-status': e.status },
        h('td', {}, h('a', { href: `#/executions/${encodeURIComponent(e.execution_id)}`, class: 'mono' }, e.execution_id)),
        h('td', {}, badge(e.status)),
        h('td', {}, h('a', { href: `#/workflows/${encodeURIComponent(e.workflow_id)}` }, e.workflow_name || e.workflow_id)),
        h('td', { class: 'phase' }, running ? current.get(e.execution_id) || '–' : '–'),
        h('td', { class: 'progress' },
          h('progress', { max: String(e.total_phases || 1), value: String(e.completed_phases) }),
          ` ${e.completed_phases}/${e.total_phases}`),
        h('td', { title: e.started_at }, new Date(parseTime(e.started_at)).toLocaleString()),
        h('td', { class: 'num', 'data-since': running ? e.started_at : null }, duration(seconds)),
        h('td', { class: 'num', title: `${e.total_input_tokens} in, ${e.total_output_tokens} out` },
          tokens(e.total_input_tokens + e.total_output_tokens)),
        h('td', { class: 'num' }, cost(e.total_cost_usd)));
    }) : h('tr', {}, h('td', { colspan: '9', class: 'muted' }, 'No executions.')));
    const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
    fill(pager,
      h('button', { type: 'button', id: 'newer', disabled: page <= 1, onclick: () => go({ page: String(page - 1) }) }, '← Newer'),
      h('span', {}, ` page ${page} of ${pages} · ${total} executions `),
      h('button', { type: 'button', id: 'older', disabled: page >= pages, onclick: () => go({ page: String(page + 1) }) }, 'Older →'));
  });

  let gone = false;
  const load = throttle(async () => {
    try {
      const [list, active] = await Promise.all([
        api(`/executions?${query}`),
        api('/workflows/executions/active?limit=100'),
      ]);
      if (gone) return;
      rows = list.executions;
      total = list.total;
      current = new Map(active.map((a) => [a.execution_id, a.current_phase]));
      app.clearError();
      draw();
    } catch (err) {
      if (!gone) app.showError(err);
    }
  }, 250);
  load();
  // A new execution is shown from its ExecutionStarted frame at once, before the
  // API is read again (which then fills in the rest).
  const started = (frame) => {
    const d = frame.data || {};
    if (page !== 1 || rows.some((e) => e.execution_id === frame.execution_id)) return;
    if ((status && status !== 'pending') || (workflow && workflow !== d.workflow_id)) return;
    rows = [{
      execution_id: frame.execution_id, workflow_id: d.workflow_id, workflow_name: names.get(d.workflow_id),
      status: 'pending', started_at: frame.timestamp, completed_at: null, completed_phases: 0,
      total_phases: d.total_phases, duration_seconds: 0, total_input_tokens: 0, total_output_tokens: 0,
      total_cost_usd: 0,
    }, ...rows].slice(0, PAGE_SIZE);
    total++;
    draw();
  };
  const off = app.onActivity((frame) => {
    if (frame.event_type === 'ExecutionStarted' && !gone) started(frame);
    if (frame.type === 'resync' || frame.execution_id || frame.event_type === 'ExecutionsDeleted') load();
  });
  // Durations of running executions grow between events.
  const tick = setInterval(() => tickDurations(body), 1000);
  return () => {
    gone = true;
    off();
    load.cancel();
    clearInterval(tick);
  };
}
