// dom: building elements and writing numbers, times and statuses as every page shows
// them. No framework: h() makes an element; pages rebuild their parts on events.
const SVG = 'http://www.w3.org/2000/svg';
const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'open', 'required']);

export function h(tag, attrs, ...children) {
  const svg = tag.startsWith('svg:');
  const el = svg ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (!svg && PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// Replaces what el holds.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const ACTIVE = new Set(['pending', 'running', 'paused']);

export function badge(status) {
  return h('span', { class: `badge s-${status}` }, status);
}

export function parseTime(ts) {
  return ts ? Date.parse(ts) : NaN;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '–';
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function ago(ts, now = Date.now()) {
  const t = parseTime(ts);
  if (Number.isNaN(t)) return '–';
  const s = Math.max(0, (now - t) / 1000);
  return s < 1 ? 'just now' : `${duration(s)} ago`;
}

export function clock(ts) {
  const t = parseTime(ts);
  return Number.isNaN(t) ? '–' : new Date(t).toLocaleTimeString();
}

export function tokens(n) {
  if (!n) return '0';
  if (n < 1000) return String(n);
  if (n < 1e6) return `${(n / 1000).toFixed(n < 1e4 ? 1 : 0)}k`;
  return `${(n / 1e6).toFixed(1)}M`;
}

export function cost(usd) {
  if (!usd) return '$0';
  return usd < 0.01 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

// Runs fn (which may be async) at most once per `ms`, and once more after the last
// call; never two at once, so an older answer cannot land after a newer one. Events
// come in bursts, and one read of the API covers a burst.
export function throttle(fn, ms) {
  let timer = null;
  let busy = false;
  let again = false;
  let stopped = false;
  const run = async () => {
    timer = null;
    if (!again || stopped) return;
    again = false;
    busy = true;
    try {
      await fn();
    } finally {
      busy = false;
    }
    if (!stopped) timer = setTimeout(run, ms);
  };
  const call = () => {
    again = true;
    if (!timer && !busy) run();
  };
  call.cancel = () => {
    stopped = true;
    clearTimeout(timer);
    timer = null;
  };
  return call;
}

// Rebuilds inside container with fn, keeping the keyboard focus on the element of
// the same id, href or name, so a page redrawn by an event does not lose the user's place.
export function keepFocus(container, fn) {
  const active = document.activeElement;
  const inside = active && active !== container && container.contains(active);
  const key = inside && (active.id ? `#${CSS.escape(active.id)}`
    : active.getAttribute('href') ? `[href="${CSS.escape(active.getAttribute('href'))}"]`
      : active.getAttribute('name') ? `[name="${CSS.escape(active.getAttribute('name'))}"]` : null);
  fn();
  if (key) {
    const again = container.querySelector(key);
    if (again) again.focus();
  }
}

// The running durations under root: cells with data-since (a start time) count up.
export function tickDurations(root) {
  const now = Date.now();
  for (const el of root.querySelectorAll('[data-since]')) el.textContent = duration((now - parseTime(el.dataset.since)) / 1000);
}
