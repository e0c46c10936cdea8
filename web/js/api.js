// api.js - the server's public API (/v1/...), the app's only way in.
//
// With a password, every request carries it as a Bearer token. It is
// asked for once per browser session (sessionStorage) when the server
// first answers 401, and asked again if it is wrong.

const KEY = 'memgpt.password';
let asking = null; // the password prompt in progress, shared by requests

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === 'string' ? detail
      : Array.isArray(detail) ? detail.map((d) => `${(d.loc || []).slice(-1)[0] || ''}: ${d.msg}`).join('; ')
        : `HTTP ${status}`);
    this.status = status;
  }
}

// Set by main.js: shows the password dialog; resolves with the password
// (or null when the user gives up).
export const auth = { prompt: async () => null };

function headers(extra = {}) {
  const h = { ...extra };
  const password = sessionStorage.getItem(KEY);
  if (password) h.Authorization = `Bearer ${password}`;
  return h;
}

async function askPassword(wrong) {
  if (!asking) {
    asking = auth.prompt(wrong).then((password) => {
      asking = null;
      if (password) sessionStorage.setItem(KEY, password);
      return password;
    });
  }
  return asking;
}

// fetch with the password; on 401 asks for it and tries again.
async function send(path, init = {}) {
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(path, { ...init, headers: headers(init.headers) });
    if (response.status !== 401) return response;
    const had = sessionStorage.getItem(KEY);
    if (had) sessionStorage.removeItem(KEY);
    const password = await askPassword(Boolean(had) || attempt > 0);
    if (!password) throw new ApiError(401, 'a password is needed');
  }
}

async function fail(response) {
  let detail = `HTTP ${response.status}`;
  try { detail = (await response.json()).detail ?? detail; } catch { /* not JSON */ }
  throw new ApiError(response.status, detail);
}

// The answer to a request, checked: JSON in, Response out. Query
// parameters from `query` (arrays repeat).
async function request(method, path, body, query) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v === undefined || v === null || v === '') continue;
    for (const one of Array.isArray(v) ? v : [v]) url.searchParams.append(k, one);
  }
  const init = { method };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'Content-Type': 'application/json' };
  }
  const response = await send(url.pathname + url.search, init);
  if (!response.ok) await fail(response);
  return response;
}

async function json(response) {
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

// JSON in, JSON out.
export async function api(method, path, body, query) {
  return json(await request(method, path, body, query));
}

// A page of a list: {items, end}, `end` when the server said that nothing
// follows it in its direction (X-Memgpt-Page-End).
export async function page(path, query) {
  const response = await request('GET', path, undefined, query);
  return { end: response.headers.get('X-Memgpt-Page-End') === 'true', items: await json(response) };
}

// A blob (downloads).
export async function download(path) {
  const response = await send(path);
  if (!response.ok) await fail(response);
  return response.blob();
}

// POSTs `body` and calls onEvent(object) for each server-sent event until
// "[DONE]" or the end of the stream.
export async function stream(path, body, onEvent, signal) {
  const response = await send(path, {
    method: 'POST', body: JSON.stringify(body), signal,
    headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
  });
  if (!response.ok) await fail(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += value;
    // One read can hold thousands of events: walk them by index and cut
    // the string once, not once per event.
    let start = 0;
    let cut;
    while ((cut = pending.indexOf('\n\n', start)) >= 0) {
      const block = pending.slice(start, cut);
      start = cut + 2;
      const data = block.split('\n').filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart()).join('\n');
      if (!data) continue;
      if (data === '[DONE]') return;
      try { onEvent(JSON.parse(data)); } catch (e) { if (!(e instanceof SyntaxError)) throw e; }
    }
    pending = pending.slice(start);
  }
}
