// app: the dashboard's shell: who the caller is (asking for a token when the gateway
// wants one), the page named by the URL's hash (#/executions, #/executions/ID,
// #/workflows, #/workflows/ID, #/fleet), and the one activity stream every page
// listens to.
import { caller, setToken, Stream, whoami } from './api.js';
import { fill, h } from './dom.js';
import * as executions from './executions.js';
import * as execution from './execution.js';
import * as workflows from './workflows.js';
import * as fleet from './fleet.js';

const main = document.getElementById('main');
const streamState = document.getElementById('stream-state');
const banner = document.getElementById('banner');
const listeners = new Set();
let activity = null;
let unmount = null;

// What the pages get: the activity stream's frames, and a call when the stream
// started over (events may be missing: read everything again).
export const app = {
  onActivity(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },
  showError(err) {
    fill(banner, String(err && err.message ? err.message : err));
    banner.hidden = false;
  },
  clearError() {
    banner.hidden = true;
  },
};

export function setStreamState(state) {
  const text = {
    live: 'live',
    lost: 'lost the event stream: reconnecting…',
    connecting: 'connecting…',
  }[state] || state;
  streamState.textContent = text;
  streamState.dataset.state = state;
}

function startActivity() {
  if (activity) activity.close();
  setStreamState('connecting');
  activity = new Stream(
    '/sse/activity',
    (frame) => {
      for (const fn of listeners) fn(frame);
    },
    (state, fresh) => {
      setStreamState(state);
      if (state === 'live' && fresh) for (const fn of listeners) fn({ type: 'resync' });
    },
  );
}

function route() {
  const hash = location.hash.replace(/^#\/?/, '') || 'executions';
  const [path, query = ''] = hash.split('?');
  const parts = path.split('/').map(decodeURIComponent);
  const params = new URLSearchParams(query);
  if (parts[0] === 'executions' && parts[1]) return [execution, parts[1], params, 'executions'];
  if (parts[0] === 'workflows') return [workflows, parts[1] || null, params, 'workflows'];
  if (parts[0] === 'fleet') return [fleet, null, params, 'fleet'];
  return [executions, null, params, 'executions'];
}

function render() {
  if (unmount) unmount();
  unmount = null;
  app.clearError();
  const [page, id, params, nav] = route();
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main.replaceChildren();
  unmount = page.mount(main, id, params, app) || null;
}

function showWho() {
  const who = document.getElementById('who');
  if (!caller.auth) {
    fill(who);
    return;
  }
  fill(
    who,
    h('span', { class: 'muted' }, `${caller.name || 'user'} (${caller.scope})`),
    ' ',
    h('button', { type: 'button', class: 'link', onclick: forget }, 'Forget token'),
  );
}

function forget() {
  setToken(null);
  start();
}

// The gateway wants a token and has none it knows: ask for one.
function askToken(message) {
  if (unmount) unmount();
  unmount = null;
  if (activity) activity.close();
  activity = null;
  setStreamState('connecting');
  const input = h('input', {
    id: 'token',
    type: 'password',
    autocomplete: 'off',
    required: true,
    'aria-describedby': 'token-help',
  });
  const form = h(
    'form',
    { class: 'card token-form', 'aria-labelledby': 'token-title' },
    h('h1', { id: 'token-title' }, 'API token'),
    h('p', { id: 'token-help' }, 'This gateway needs an API token (made with ',
      h('code', {}, 'syn token new'), '). It is kept in this tab only.'),
    message ? h('p', { class: 'error', role: 'alert' }, message) : null,
    h('label', { for: 'token' }, 'Token'),
    input,
    h('button', { type: 'submit' }, 'Sign in'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    start();
  });
  fill(main, form);
  input.focus();
}

async function start() {
  try {
    await whoami();
  } catch (err) {
    app.showError(`Cannot reach the gateway: ${err.message}`);
    setTimeout(start, 2000);
    return;
  }
  showWho();
  if (caller.auth && !caller.scope) {
    askToken(caller.token ? 'That token is not known to this gateway.' : null);
    return;
  }
  startActivity();
  render();
}

window.addEventListener('hashchange', () => {
  if (!caller.auth || caller.scope) render();
});
window.addEventListener('syn:unauthorized', () => {
  if (caller.auth) {
    setToken(null);
    caller.scope = null;
    askToken('The gateway no longer accepts that token.');
  }
});


start();
