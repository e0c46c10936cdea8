// chat.js - the conversation: the stored history, page by page, and turns
// streamed as they happen.
//
// One stored message can be several Letta messages with the same id (the
// monologue, then each call), so rows are keyed by id and type. The inner
// monologue and each tool call (with its result, matched by tool_call_id)
// are folded <details>, closed until clicked. Events, heartbeats, warnings
// and flushes are quiet one-line markers.
//
// The history is a window of pages: scrolling up reads older pages and
// scrolling down newer ones, and rows past MAX_ROWS at the far end are
// dropped (whole stored messages at a time), so a history of any length
// keeps a few hundred rows in the page.

import { api, page as listPage, stream } from './api.js';
import { $, h, clear, when, toast } from './dom.js';

const PAGE = 50;
const MAX_ROWS = 300;
const NEAR = 300;     // px from an end at which the next page is read
let app;
let oldest = null;    // cursor: the id of the oldest message shown
let newest = null;    // cursor: the id of the newest one, when newer ones were dropped
let exhausted = false; // nothing older
let atLatest = true;  // nothing newer
let loading = false;
let running = null;   // the turn in progress: {agentId}
let generation = 0;   // bumped when the agent changes, to drop late answers
let early = null;     // {agentId, answer}: the newest page, asked for before the agent opened

export function init(theApp) {
  app = theApp;
  // app.history: the first page of the open agent, shown (main.js waits for it).
  app.addEventListener('agent', () => { app.history = open(app.agent); });
  $('#composer').addEventListener('submit', (e) => { e.preventDefault(); send(); });
  $('#composer-text').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  $('#cancel').addEventListener('click', cancel);
  app.addEventListener('window', (e) => markWindow(e.detail));
  $('#timeline').addEventListener('scroll', nearEdge);
}

// Asks for the newest page of agent `agentId` now, before the agent is
// opened (main.js calls it with the address's agent while the list of
// agents is still on its way): the two requests overlap.
export function prefetch(agentId) {
  early = { agentId, answer: readPage(agentId, true, null) };
  early.answer.catch(() => {}); // reported when it is used
}

const readPage = (agentId, older, after) => listPage(`/v1/agents/${agentId}/messages`,
  { limit: PAGE, order: older ? 'desc' : 'asc', after: after || undefined });

async function open(agent) {
  generation++;
  oldest = null;
  newest = null;
  exhausted = false;
  atLatest = true;
  windowInfo = null;
  clear($('#timeline'));
  $('#no-agent').hidden = Boolean(agent);
  setBusy(false);
  $('#composer-text').disabled = !agent;
  $('#send').disabled = !agent;
  if (!agent) return;
  // Enough pages to fill the view, so that it can scroll.
  const t = $('#timeline');
  // (An empty timeline fits, without asking the browser for a layout.)
  for (let i = 0; i < 5 && !exhausted && (!t.firstElementChild || t.scrollHeight <= t.clientHeight + NEAR); i++) {
    await loadOlder();
  }
  scrollToEnd();
}

// ---- rendering one Letta message

function parseEnvelope(text) {
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' ? v : null;
  } catch { return null; }
}

// The marker of a system message: [class, text].
function describeSystem(text) {
  const env = parseEnvelope(text);
  if (env && env.type === 'heartbeat') return ['heartbeat', `heartbeat: ${env.reason || ''}`];
  if (env && env.type === 'login') return ['event', 'login'];
  const body = env ? (env.message || env.reason || text) : text;
  if (/^Memory pressure/i.test(body)) return ['warning', `warning: ${body}`];
  if (/^Context flush/i.test(body)) return ['flush', body];
  if (env && env.type === 'system_alert') return ['event', `alert: ${body}`];
  return ['event', body];
}

function short(text, n = 80) {
  const one = String(text || '').replace(/\s+/g, ' ');
  return one.length > n ? `${one.slice(0, n - 1)}…` : one;
}

function pretty(json) {
  try { return JSON.stringify(JSON.parse(json), null, 2); } catch { return String(json || ''); }
}

function bubbleRow(kind, key, text, date) {
  return h('div', { class: `row ${kind}`, dataset: { key } },
    h('div', { class: 'bubble' }, text),
    date ? h('div', { class: 'meta' }, when(date)) : null);
}

// The row for message `m`, or null when it joins another row (a result
// under its call, found in `root`).
function render(m, root = $('#timeline')) {
  const key = `${m.id}:${m.message_type}`;
  switch (m.message_type) {
    case 'user_message':
      return bubbleRow('user', key, m.content, m.date);
    case 'assistant_message':
      return bubbleRow('assistant', key, m.content, m.date);
    case 'reasoning_message':
      return h('div', { class: 'row', dataset: { key } },
        h('details', { class: 'fold thought' },
          h('summary', {}, `Thinking: ${short(m.reasoning)}`),
          h('pre', {}, m.reasoning)));
    case 'tool_call_message': {
      const call = m.tool_call || {};
      return h('div', { class: 'row', dataset: { key: `${key}:${call.tool_call_id}` } },
        h('details', { class: 'fold call', dataset: { call: call.tool_call_id || '' } },
          h('summary', {}, `Tool call: ${call.name}(${short(call.arguments, 60)})`),
          h('pre', { class: 'arguments' }, pretty(call.arguments))));
    }
    case 'tool_return_message': {
      const result = h('div', { class: `result ${m.status}` },
        h('div', { class: 'muted' }, m.status === 'error' ? 'Result (failed):' : 'Result:'),
        h('pre', {}, m.tool_return));
      const call = m.tool_call_id
        && [...root.querySelectorAll('details.call')].find((d) => d.dataset.call === m.tool_call_id);
      if (call) {
        call.append(result);
        if (m.status === 'error') call.classList.add('failed');
        return null;
      }
      return h('div', { class: 'row', dataset: { key } },
        h('details', { class: `fold call${m.status === 'error' ? ' failed' : ''}` },
          h('summary', {}, `Tool result: ${m.name || ''} ${short(m.tool_return, 60)}`), result));
    }
    case 'system_message': {
      const [cls, text] = describeSystem(m.content);
      return h('div', { class: `marker ${cls}`, dataset: { key } }, text);
    }
    case 'error_message':
      return h('div', { class: 'marker error', role: 'alert' }, `error: ${m.message}`);
    case 'stop_reason':
      return m.stop_reason && m.stop_reason !== 'end_turn'
        ? h('div', { class: 'marker' }, `stopped: ${m.stop_reason.replace(/_/g, ' ')}`) : null;
    default:
      return null;
  }
}

// ---- where the context window starts

let windowInfo = null;

// A marker before the first message the model still sees: what is above
// it was flushed out of view (and summarized), and stays in recall memory.
function markWindow(info) {
  windowInfo = info || windowInfo;
  const old = $('#window-start');
  if (old) old.remove();
  if (!windowInfo || !windowInfo.summarized) return;
  const first = windowInfo.first
    && [...$('#timeline').children].find((row) => row.dataset.id === windowInfo.first);
  if (!first) return;
  first.before(h('div', { class: 'marker flush', id: 'window-start', role: 'note' },
    `— context window starts here: ${windowInfo.summarized} older messages were summarized`
    + `${windowInfo.lastFlush ? ` (last flush ${when(windowInfo.lastFlush)})` : ''} —`));
}

// ---- history

// Rows for `messages`, oldest first (calls before their results), each
// marked with its message's id.
function rows(messages) {
  const batch = h('div');
  for (const m of messages) {
    const row = render(m, batch);
    if (row) { row.dataset.id = m.id; batch.append(row); }
  }
  return [...batch.children];
}

// The id of the first (or last) row that has one.
function edgeId(fromEnd) {
  const all = [...$('#timeline').children];
  const found = (fromEnd ? all.reverse() : all).find((r) => r.dataset.id);
  return found ? found.dataset.id : null;
}

// Runs `change` (rows added or dropped) without moving what is on screen:
// the first row in view is put back where it was. (The browser's own
// scroll anchoring is off for the timeline, in app.css, so that this is
// the only adjustment.)
function keepInView(change) {
  const t = $('#timeline');
  // Nothing to keep: no layout asked for (the first page of an agent).
  if (!t.firstElementChild) return change();
  const top = t.getBoundingClientRect().top;
  const anchor = [...t.children].find((r) => r.getBoundingClientRect().bottom > top);
  const y = anchor ? anchor.getBoundingClientRect().top : 0;
  change();
  if (anchor && anchor.isConnected) t.scrollTop += anchor.getBoundingClientRect().top - y;
}

// Drops whole stored messages from one end until MAX_ROWS rows are left.
function trim(fromEnd) {
  const t = $('#timeline');
  if (t.children.length <= MAX_ROWS) return;
  keepInView(() => {
    while (t.children.length > MAX_ROWS) {
      const edge = () => (fromEnd ? t.lastElementChild : t.firstElementChild);
      const id = edge().dataset.id;
      do edge().remove(); while (id && edge() && edge().dataset.id === id);
    }
  });
  if (fromEnd) {
    atLatest = false;
    newest = edgeId(true);
  } else {
    exhausted = false;
    oldest = edgeId(false);
  }
}

// Reads one page beside what is shown: older (before the first row) or
// newer (after the last).
async function loadPage(older) {
  if (!app.agent || loading || (older ? exhausted : atLatest)) return;
  loading = true;
  const mine = generation;
  const timeline = $('#timeline');
  try {
    // `after` is the next page in the order asked for.
    const cursor = older ? oldest : newest;
    const asked = early && early.agentId === app.agent.id && older && !cursor ? early.answer
      : readPage(app.agent.id, older, cursor);
    early = null;
    // A page counts stored messages, each one or more Letta messages (or
    // none: results of send_message are left out), so a short page can
    // still have more behind it: the server says when it is the last.
    const { items: page, end } = await asked;
    if (mine !== generation) return;
    const atEnd = end || !page.length;
    if (older) exhausted = atEnd; else atLatest = atEnd;
    if (!page.length) return;
    if (older) {
      oldest = page[page.length - 1].id;
      // Newest first: reverse the stored messages, not the Letta messages
      // one of them gives (monologue, then calls).
      const groups = [];
      for (const m of page) {
        const last = groups[groups.length - 1];
        if (last && last[0].id === m.id) last.push(m); else groups.push([m]);
      }
      keepInView(() => timeline.prepend(...rows(groups.reverse().flat())));
      trim(true);
    } else {
      newest = page[page.length - 1].id;
      timeline.append(...rows(page));
      trim(false);
    }
    markWindow();
    setTimeout(nearEdge); // still at an end (a short page): the next one
  } catch (e) {
    toast(`Cannot load messages: ${e.message}`, 'error');
  } finally {
    loading = false;
  }
}

// Reads the next page when the view is near either end of what is shown.
function nearEdge() {
  const t = $('#timeline');
  if (t.scrollTop < NEAR) loadOlder();
  else if (t.scrollHeight - t.scrollTop - t.clientHeight < NEAR) loadNewer();
}

const loadOlder = () => loadPage(true);
const loadNewer = () => loadPage(false);

function scrollToEnd() {
  const t = $('#timeline');
  t.scrollTop = t.scrollHeight;
}

// ---- a turn

function setBusy(busy) {
  $('#send').disabled = busy || !app.agent;
  $('#cancel').hidden = !busy;
}

// Draws a streamed turn. A reply comes as thousands of small pieces, often
// many in one network read; drawing each one (a text node, a layout read
// to decide on scrolling, a trim) would block the page for seconds. So
// pieces and rows are queued and drawn once per frame: each reply's text
// grows by one appendData, and the view is measured once.
function painter(timeline) {
  const growing = new Map(); // message id -> {row, text: its Text node}
  const pieces = new Map();  // message id -> text not drawn yet
  const rowsDue = [];        // rows (and replies begun) not drawn yet
  let frame = 0;
  const draw = () => {
    frame = 0;
    const stick = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 60;
    if (rowsDue.length) timeline.append(...rowsDue.splice(0));
    for (const [id, more] of pieces) growing.get(id).text.appendData(more);
    pieces.clear();
    if (stick) scrollToEnd();
    trim(false);
  };
  const later = () => { if (!frame) frame = requestAnimationFrame(draw); };
  return {
    piece(m) {
      if (growing.has(m.id)) {
        pieces.set(m.id, (pieces.get(m.id) || '') + m.content);
      } else {
        const row = render(m);
        row.dataset.id = m.id;
        row.classList.add('streaming');
        growing.set(m.id, { row, text: row.querySelector('.bubble').firstChild });
        rowsDue.push(row);
      }
      later();
    },
    row(row) { rowsDue.push(row); later(); },
    // The reply (if any) is whole: draw what is queued now.
    done() {
      if (frame) { cancelAnimationFrame(frame); draw(); }
      for (const { row } of growing.values()) row.classList.remove('streaming');
    },
  };
}

async function send() {
  const box = $('#composer-text');
  const text = box.value;
  if (!text.trim() || !app.agent || running) return;
  box.value = '';
  if (!atLatest) await open(app.agent); // back to the newest messages first
  const agentId = app.agent.id;
  const mine = generation;
  running = { agentId };
  setBusy(true);
  app.emit('send');
  const timeline = $('#timeline');
  timeline.append(bubbleRow('user', 'pending', text, new Date().toISOString()));
  scrollToEnd();
  const paint = painter(timeline);
  try {
    await stream(`/v1/agents/${agentId}/messages/stream`,
      { messages: [{ role: 'user', content: text }], stream_tokens: true },
      (m) => {
        if (mine !== generation) return;
        if (m.message_type === 'assistant_message') { paint.piece(m); return; }
        paint.done();
        if (m.message_type === 'usage_statistics') return;
        const row = render(m);
        if (row) { row.dataset.id = m.id || ''; paint.row(row); }
        if (['tool_return_message', 'system_message'].includes(m.message_type)) app.emit('step');
      });
  } catch (e) {
    if (mine === generation) timeline.append(h('div', { class: 'marker error', role: 'alert' }, `error: ${e.message}`));
  } finally {
    paint.done();
    running = null;
    if (mine === generation) {
      setBusy(false);
      app.emit('turn');
      box.focus();
    }
  }
}

async function cancel() {
  if (!running) return;
  try {
    await api('POST', `/v1/agents/${running.agentId}/messages/cancel`);
  } catch (e) {
    toast(`Cannot cancel: ${e.message}`, 'error');
  }
}
