// execution: one execution, live: its phases and attempts, the timeline drawn in the
// page, the running agent's output as it streams, tokens and cost, operator messages,
// and the controls its status allows (for a caller whose token may run executions).
// The execution's own stream (/sse/executions/ID) replays its history, then goes on
// live: output chunks are added as they come; any other event reads the detail again.
import { api, may, Stream } from './api.js';
import { ACTIVE, badge, clock, cost, duration, fill, h, keepFocus, parseTime, throttle, tickDurations, tokens } from './dom.js';
import { drawTimeline } from './timeline.js';

const utf8 = new TextEncoder();
const ALLOWED = {
  pause: ['pending', 'running'],
  resume: ['paused'],
  cancel: ['pending', 'running', 'paused'],
  inject: ['pending', 'running', 'paused'],
};

export function mount(main, id, _params, app) {
  let detail = null;
  let selected = null; // the phase whose output is shown; null: the current one
  const outputs = new Map(); // phase id → {attempt, text} from PhaseOutput frames
  const fetched = new Set(); // phases whose whole output was read through the API
  let gone = false;

  const head = h('section', { class: 'card', id: 'exec-head', 'aria-label': 'Summary' });
  const error = h('p', { class: 'error', id: 'exec-error', role: 'alert', hidden: true });
  const timeline = h('div', { class: 'card', id: 'timeline' });
  const phases = h('tbody');
  const outTitle = h('h2', { id: 'output-title' }, 'Output');
  const output = h('pre', { id: 'output', class: 'output', tabindex: '0', 'aria-labelledby': 'output-title' });
  const messages = h('ul', { id: 'messages', class: 'messages' });
  const controls = may('run') ? makeControls() : null;

  fill(main,
    h('p', {}, h('a', { href: '#/executions' }, '← Executions')),
    h('h1', { class: 'mono' }, id),
    head, error, controls, timeline,
    h('h2', {}, 'Phases'),
    h('div', { class: 'scroll' }, h('table', { class: 'list', id: 'phases' },
      h('thead', {}, h('tr', {}, ['#', 'Phase', 'Status', 'Attempts', 'Duration', 'Tokens', 'Cost', 'Error']
        .map((c) => h('th', { scope: 'col' }, c)))), phases)),
    h('section', { class: 'card' }, outTitle, output),
    h('section', { class: 'card' }, h('h2', {}, 'Operator messages'), messages));

  function makeControls() {
    const act = (verb, body) => async () => {
      try {
        await api(`/executions/${encodeURIComponent(id)}/${verb}`, { method: 'POST', body });
        app.clearError();
        refresh();
      } catch (err) {
        app.showError(`${verb}: ${err.message}`);
      }
    };
    const text = h('textarea', { id: 'inject-text', rows: '2', placeholder: 'A message for the next phase' });
    const role = h('select', { id: 'inject-role' }, h('option', { value: 'user' }, 'user'), h('option', { value: 'system' }, 'system'));
    const form = h('form', { class: 'inject', 'aria-label': 'Inject a message' },
      h('label', { for: 'inject-text' }, 'Message'), text,
      h('label', { for: 'inject-role' }, 'Role'), role,
      h('button', { type: 'submit', id: 'btn-inject', 'data-verb': 'inject' }, 'Inject'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!text.value.trim()) return;
      await act('inject', { message: text.value, role: role.value })();
      text.value = '';
    });
    return h('section', { class: 'card controls', 'aria-label': 'Controls' },
      h('div', { class: 'buttons' },
        h('button', { type: 'button', id: 'btn-pause', 'data-verb': 'pause', onclick: act('pause', {}) }, 'Pause'),
        h('button', { type: 'button', id: 'btn-resume', 'data-verb': 'resume', onclick: act('resume') }, 'Resume'),
        h('button', { type: 'button', id: 'btn-cancel', 'data-verb': 'cancel', class: 'danger', onclick: act('cancel', {}) }, 'Cancel')),
      form);
  }

  function shownPhase() {
    if (selected) return selected;
    if (!detail) return null;
    const running = detail.phases.find((p) => p.status === 'running');
    if (running) return running.phase_id;
    const done = detail.phases.filter((p) => p.attempts && p.attempts.length);
    return done.length ? done[done.length - 1].phase_id : null;
  }

  function drawOutput() {
    const phase = shownPhase();
    outTitle.textContent = phase ? `Output of ${phase}` : 'Output';
    const got = phase && outputs.get(phase);
    output.textContent = got ? got.text : '';
    const info = detail && phase && detail.phases.find((p) => p.phase_id === phase);
    // Output streamed before this page opened is in the replay; a phase that has
    // none there (an output cut, or events retention dropped) is read whole.
    if (info && !got && !fetched.has(phase) && ['completed', 'failed'].includes(info.status)) {
      fetched.add(phase);
      api(`/executions/${encodeURIComponent(id)}/phases/${encodeURIComponent(phase)}/output`)
        .then((text) => {
          if (!outputs.has(phase)) outputs.set(phase, { attempt: 0, text, bytes: Infinity });
          drawOutput();
        }).catch(() => {});
    }
    output.dataset.phase = phase || '';
  }

  function draw() {
    const d = detail;
    const running = ACTIVE.has(d.status);
    const seconds = running ? (Date.now() - parseTime(d.started_at)) / 1000 : d.duration_seconds;
    keepFocus(main, () => {
      fill(head,
        h('dl', { class: 'facts' },
          h('dt', {}, 'Status'), h('dd', { id: 'exec-status', 'data-status': d.status }, badge(d.status)),
          h('dt', {}, 'Workflow'), h('dd', {}, h('a', { href: `#/workflows/${encodeURIComponent(d.workflow_id)}` }, d.workflow_name || d.workflow_id)),
          h('dt', {}, 'Progress'), h('dd', {}, h('progress', { max: String(d.total_phases || 1), value: String(d.completed_phases) }), ` ${d.completed_phases}/${d.total_phases}`),
          h('dt', {}, 'Current phase'), h('dd', {}, d.current_phase || '–'),
          h('dt', {}, 'Started'), h('dd', { title: d.started_at }, clock(d.started_at)),
          h('dt', {}, 'Duration'), h('dd', { 'data-since': running ? d.started_at : null }, duration(seconds)),
          h('dt', {}, 'Tokens'), h('dd', { id: 'exec-tokens' }, `${tokens(d.total_input_tokens)} in · ${tokens(d.total_output_tokens)} out`),
          h('dt', {}, 'Cost'), h('dd', { id: 'exec-cost' }, cost(d.total_cost_usd))));
      error.hidden = !d.error;
      error.textContent = d.error || '';
      fill(phases, d.phases.map((p) => h('tr', { 'data-phase': p.phase_id, 'data-status': p.status },
        h('td', {}, p.order),
        h('td', {}, h('button', {
          type: 'button', class: 'link', 'aria-pressed': String(shownPhase() === p.phase_id),
          name: `phase-${p.phase_id}`,
          onclick: () => { selected = p.phase_id; draw(); },
        }, p.name || p.phase_id)),
        h('td', {}, badge(p.status)),
        h('td', {}, h('ol', { class: 'attempts' }, (p.attempts || []).map((a) => h('li', {
          'data-attempt': a.attempt, 'data-status': a.status, 'data-worker': a.worker,
        }, `#${a.attempt} ${a.worker || '?'} `, badge(a.status),
        ` ${clock(a.started_at)}–${a.completed_at ? clock(a.completed_at) : '…'}`,
        a.error ? h('span', { class: 'error' }, ` ${a.error}`) : null)))),
        h('td', { class: 'num' }, duration(p.duration_seconds)),
        h('td', { class: 'num' }, tokens((p.input_tokens || 0) + (p.output_tokens || 0))),
        h('td', { class: 'num' }, cost(p.cost_usd)),
        h('td', { class: 'error' }, p.error || ''))));
      fill(messages, (d.operator_messages || []).length
        ? d.operator_messages.map((m) => h('li', {}, h('span', { class: 'muted' }, `${clock(m.created_at)} [${m.role}] → ${m.phase_id || 'next phase'}: `), m.message))
        : h('li', { class: 'muted' }, 'None.'));
      if (controls) {
        for (const b of controls.querySelectorAll('[data-verb]')) b.disabled = !ALLOWED[b.dataset.verb].includes(d.status);
        controls.querySelector('#inject-text').disabled = !ALLOWED.inject.includes(d.status);
      }
    });
    drawOutput();
    fill(timeline, drawTimeline(d));
  }

  const refresh = throttle(async () => {
    try {
      const d = await api(`/executions/${encodeURIComponent(id)}`);
      if (gone) return;
      detail = d;
      draw();
    } catch (err) {
      if (!gone) app.showError(err);
    }
  }, 200);
  refresh();

  const stream = new Stream(`/sse/executions/${encodeURIComponent(id)}`, (frame) => {
    if (frame.type === 'connected') return;
    const data = frame.data || {};
    if (frame.event_type === 'PhaseOutput') {
      let got = outputs.get(data.phase_id);
      if (!got || data.attempt > got.attempt) {
        got = { attempt: data.attempt, text: '', bytes: 0 };
        outputs.set(data.phase_id, got);
      }
      // offset counts bytes (UTF-8) before this chunk: a chunk already shown is skipped.
      if (data.attempt === got.attempt && (data.offset || 0) >= got.bytes) {
        got.text += data.text;
        got.bytes = (data.offset || 0) + utf8.encode(data.text).length;
      }
      if (detail && shownPhase() === data.phase_id) drawOutput();
      return;
    }
    refresh();
  }, (state, fresh) => {
    if (state === 'live' && fresh) outputs.clear(); // the replay starts from the beginning
    if (state === 'ended' || (state === 'live' && fresh)) refresh();
  }, { endOnTerminal: true });

  // Bars and durations of what runs grow between events.
  const tick = setInterval(() => {
    if (detail && ACTIVE.has(detail.status)) {
      fill(timeline, drawTimeline(detail));
      tickDurations(head);
    }
  }, 500);
  return () => {
    gone = true;
    stream.close();
    refresh.cancel();
    clearInterval(tick);
  };
}
