// timeline: an execution drawn in the page as gateway/timeline.c draws timeline.svg:
// one row per phase, one bar per attempt on a shared time axis, coloured by how the
// attempt ended; bars of running attempts grow to "now" each time it is drawn.
import { duration, h, parseTime } from './dom.js';

const ROW = 28;
const LABEL = 130;
const TOP = 22;

export function drawTimeline(detail, now = Date.now()) {
  const phases = detail.phases || [];
  const start = parseTime(detail.started_at);
  let end = detail.completed_at ? parseTime(detail.completed_at) : now;
  for (const p of phases) for (const a of p.attempts || []) {
    const e = a.completed_at ? parseTime(a.completed_at) : now;
    if (e > end) end = e;
  }
  const width = 760;
  const plot = width - LABEL - 10;
  const span = Math.max(1, end - start);
  const x = (t) => LABEL + Math.max(0, Math.min(plot, ((t - start) / span) * plot));
  const height = TOP + phases.length * ROW + 6;
  const svg = h('svg:svg', {
    viewBox: `0 0 ${width} ${height}`, class: 'timeline', role: 'img',
    'aria-label': `Timeline of ${detail.execution_id}`,
  });
  // The axis: start, middle, end.
  for (const f of [0, 0.5, 1]) {
    const gx = LABEL + f * plot;
    svg.append(h('svg:line', { x1: gx, x2: gx, y1: TOP - 4, y2: height, class: 'grid' }));
    svg.append(h('svg:text', { x: gx, y: 12, class: 'axis', 'text-anchor': f === 0 ? 'start' : f === 1 ? 'end' : 'middle' },
      `+${duration((span * f) / 1000)}`));
  }
  phases.forEach((p, i) => {
    const y = TOP + i * ROW;
    svg.append(h('svg:text', { x: 4, y: y + ROW / 2 + 4, class: 'label' }, p.name || p.phase_id));
    for (const a of p.attempts || []) {
      if (!a.started_at) continue;
      const s = parseTime(a.started_at);
      const e = a.completed_at ? parseTime(a.completed_at) : now;
      const x0 = x(s);
      const w = Math.max(2, x(e) - x0);
      const why = a.error ? `: ${a.error}` : '';
      svg.append(h('svg:rect', {
        x: x0, y: y + 5, width: w, height: ROW - 10, rx: 3,
        class: `bar a-${a.status}`, 'data-phase': p.phase_id, 'data-attempt': a.attempt,
      }, h('svg:title', {}, `${p.phase_id} attempt ${a.attempt} on ${a.worker || '?'}: ${a.status}, ${duration((e - s) / 1000)}${why}`)));
    }
  });
  return svg;
}
