// api: the gateway's HTTP API as the pages use it: who the caller is (the token
// kept in sessionStorage, sent as a bearer header), JSON requests with their errors,
// and event streams that say when they are lost and resume with Last-Event-ID.
const KEY = 'syn.token';
const RANK = { read: 1, run: 2, admin: 3 };

export const caller = {
  token: sessionStorage.getItem(KEY),
  auth: false, // the gateway asks for tokens
  scope: null, // what this caller may do: null (nobody known), read, run, admin
  name: null,
};

export function setToken(token) {
  caller.token = token || null;
  if (token) sessionStorage.setItem(KEY, token);
  else sessionStorage.removeItem(KEY);
}

export function may(scope) {
  return (RANK[caller.scope] || 0) >= RANK[scope];
}

export class HttpError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// The gateway's "detail": a text, or FastAPI-style [{loc, msg}].
function detailText(status, body) {
  const d = body && typeof body === 'object' ? body.detail : null;
  if (typeof d === 'string') return d;
  if (Array.isArray(d)) return d.map((e) => `${(e.loc || []).slice(1).join('.')}: ${e.msg}`).join('; ');
  return `HTTP ${status}`;
}

export async function api(path, { method = 'GET', body } = {}) {
  const headers = {};
  if (caller.token) headers.Authorization = `Bearer ${caller.token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const type = response.headers.get('content-type') || '';
  const data = type.includes('json') ? await response.json() : await response.text();
  if (!response.ok) {
    if (response.status === 401) window.dispatchEvent(new Event('syn:unauthorized'));
    throw new HttpError(response.status, detailText(response.status, data));
  }
  return data;
}

export async function whoami() {
  const me = await api('/whoami');
  caller.auth = me.auth;
  caller.scope = me.scope;
  caller.name = me.name;
  return me;
}

// One event stream. onFrame gets each frame (parsed); onState gets 'live' (with
// fresh=true when the stream started over rather than resumed), 'lost' or 'ended'.
// The browser's EventSource resumes by itself, sending Last-Event-ID, while the
// gateway cannot be reached; when it gives up (the gateway answered with an error,
// e.g. 503 while its broker is away) a new stream is opened after a pause, and
// fresh tells the page to read its state again.
export class Stream {
  constructor(path, onFrame, onState, { endOnTerminal = false } = {}) {
    this.path = path;
    this.onFrame = onFrame;
    this.onState = onState;
    this.endOnTerminal = endOnTerminal;
    this.closed = false;
    this.source = null;
    this.timer = null;
    this.open(false);
  }

  open(fresh) {
    let url = this.path;
    if (caller.token) url += `${url.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(caller.token)}`;
    const source = new EventSource(url);
    this.source = source;
    let opened = false;
    source.onopen = () => {
      this.onState('live', fresh && !opened);
      opened = true;
    };
    source.onmessage = (e) => {
      let frame;
      try {
        frame = JSON.parse(e.data);
      } catch {
        return; // not ours to show; the next frame will do
      }
      if (frame.type === 'terminal' && this.endOnTerminal) {
        this.close();
        this.onFrame(frame);
        this.onState('ended');
        return;
      }
      this.onFrame(frame);
    };
    source.onerror = () => {
      if (this.closed || source !== this.source) return;
      this.onState('lost');
      if (source.readyState === EventSource.CLOSED) {
        this.timer = setTimeout(() => {
          if (!this.closed) this.open(true);
        }, 2000);
      }
    };
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.source) this.source.close();
  }
}
