// fleet: the workers (GET /workers) with their slots busy and free, providers, host
// and last heartbeat; read again when the activity stream says a worker joined,
// was lost or changed health, or an attempt started or ended.
import { api } from './api.js';
import { ago, fill, h, keepFocus, throttle } from './dom.js';

const MOVES = new Set(['worker_joined', 'worker_lost', 'worker_unhealthy', 'worker_healthy',
  'PhaseStarted', 'PhaseCompleted', 'PhaseFailed', 'PhaseRetrying', 'ExecutionCancelled']);

function state(w) {
  if (!w.connected) return 'lost';
  if (w.draining) return 'draining';
  return w.healthy ? 'healthy' : 'unhealthy';
}

export function mount(main, _id, _params, app) {
  const body = h('tbody');
  const summary = h('p', { id: 'fleet-summary', class: 'muted' });
  fill(main, h('h1', {}, 'Fleet'), summary,
    h('div', { class: 'scroll' }, h('table', { class: 'list', id: 'fleet' },
      h('thead', {}, h('tr', {}, ['Worker', 'State', 'Slots busy / free', 'Providers', 'Host', 'Version', 'Last heartbeat', 'Done / failed']
        .map((c) => h('th', { scope: 'col' }, c)))), body)));
  let workers = [];
  let gone = false;
  const draw = () => keepFocus(main, () => {
    const now = Date.now();
    const live = workers.filter((w) => w.connected);
    const busy = live.reduce((n, w) => n + w.running, 0);
    const slots = live.reduce((n, w) => n + w.slots, 0);
    summary.textContent = `${live.length} connected · ${busy} of ${slots} slots busy`;
    fill(body, workers.length ? workers.map((w) => h('tr', { 'data-worker': w.name, 'data-state': state(w) },
      h('td', { class: 'mono', title: w.id }, w.name),
      h('td', { title: w.unhealthy_reason || w.lost_reason || '' }, h('span', { class: `badge w-${state(w)}` }, state(w))),
      h('td', { class: 'slots' }, h('meter', { min: '0', max: String(w.slots || 1), value: String(w.running) }),
        ` ${w.running} / ${Math.max(0, w.slots - w.running)}`, w.prefetched ? ` (+${w.prefetched} waiting)` : ''),
      h('td', {}, (w.providers || []).join(', ')),
      h('td', {}, w.host || '–', w.address ? h('span', { class: 'muted' }, ` ${w.address}`) : null),
      h('td', {}, w.version || '–'),
      h('td', { 'data-heartbeat': w.connected ? w.last_heartbeat_at : null, title: w.last_heartbeat_at },
        w.connected ? ago(w.last_heartbeat_at, now) : `lost ${ago(w.lost_at, now)}`),
      h('td', { class: 'num' }, `${w.attempts_completed} / ${w.attempts_failed}`)))
      : h('tr', {}, h('td', { colspan: '8', class: 'muted' }, 'No workers.')));
  });
  const load = throttle(async () => {
    try {
      const r = await api('/workers');
      if (gone) return;
      workers = r.workers;
      app.clearError();
      draw();
    } catch (err) {
      if (!gone) app.showError(err);
    }
  }, 300);
  load();
  const off = app.onActivity((f) => (f.type === 'resync' || MOVES.has(f.event_type)) && load());
  const tick = setInterval(() => {
    for (const el of body.querySelectorAll('[data-heartbeat]')) el.textContent = ago(el.dataset.heartbeat);
  }, 1000);
  return () => {
    gone = true;
    off();
    load.cancel();
    clearInterval(tick);
  };
}
