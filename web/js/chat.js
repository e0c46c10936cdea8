// chat.js - the conversation: the stored history, page by page, and turns
// streamed as they happen.
//
// One stored message can be several Letta messages with the same id (the
// monologue, then each call), so rows are keyed by id and type. The inner
// monologue and each tool call (with its result, matched by tool_call_id)
// are folded <details>, closed until clicked. Events, heartbeats, warnings
// and flushes are quiet one-line markers.

import { api, stream } from './api.js';
import { $, h, clear, when, toast } from './dom.js';

const PAGE = 50;
let app;
let oldest = null;    // cursor: the id of the oldest message shown
let exhausted = false;
let loading = false;
let running = null;   // the turn in progress: {agentId}
let generation = 0;   // bumped when the agent changes, to drop late answers

export function init(theApp) {
  app = theApp;
  app.addEventListener('agent', () => open(app.agent));
  $('#composer').addEventListener('submit', (e) => { e.preventDefault(); send(); });
  $('#composer-text').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  $('#cancel').addEventListener('click', cancel);
  app.addEventListener('window', (e) => markWindow(e.detail));
  $('#timeline').addEventListener('scroll', () => {
    if ($('#timeline').scrollTop < 40) loadOlder();
  });
}

async function open(agent) {
  generation++;
  oldest = null;
  exhausted = false;
  windowInfo = null;
  clear($('#timeline'));
  $('#no-agent').hidden = Boolean(agent);
  setBusy(false);
  $('#composer-text').disabled = !agent;
  $('#send').disabled = !agent;
  if (!agent) return;
  await loadOlder();
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

async function loadOlder() {
  if (!app.agent || loading || exhausted) return;
  loading = true;
  const mine = generation;
  const timeline = $('#timeline');
  try {
    const page = await api('GET', `/v1/agents/${app.agent.id}/messages`, undefined,
      { limit: PAGE, order: 'desc', after: oldest || undefined }); // after: next in this order
    if (mine !== generation) return;
    // A page counts stored messages, each one or more Letta messages (or
    // none: results of send_message are left out), so only an empty page
    // is the end.
    if (!page.length) { exhausted = true; return; }
    oldest = page[page.length - 1].id;
    const before = timeline.scrollHeight - timeline.scrollTop;
    // Oldest first, so that calls come before their results. One stored
    // message gives several in order (monologue, calls): they stay so.
    const groups = [];
    for (const m of page) {
      const last = groups[groups.length - 1];
      if (last && last[0].id === m.id) last.push(m); else groups.push([m]);
    }
    const batch = h('div');
    for (const m of groups.reverse().flat()) {
      const row = render(m, batch);
      if (row) { row.dataset.id = m.id; batch.append(row); }
    }
    timeline.prepend(...batch.children);
    markWindow();
    timeline.scrollTop = timeline.scrollHeight - before;
  } catch (e) {
    toast(`Cannot load messages: ${e.message}`, 'error');
  } finally {
    loading = false;
  }
}

function scrollToEnd() {
  const t = $('#timeline');
  t.scrollTop = t.scrollHeight;
}

// ---- a turn

function setBusy(busy) {
  $('#send').disabled = busy || !app.agent;
  $('#cancel').hidden = !busy;
}

async function send() {
  const box = $('#composer-text');
  const text = box.value;
  if (!text.trim() || !app.agent || running) return;
  box.value = '';
  const agentId = app.agent.id;
  const mine = generation;
  running = { agentId };
  setBusy(true);
  app.emit('send');
  const timeline = $('#timeline');
  timeline.append(bubbleRow('user', 'pending', text, new Date().toISOString()));
  scrollToEnd();
  const streamed = new Map(); // message id -> the row whose text grows
  try {
    await stream(`/v1/agents/${agentId}/messages/stream`,
      { messages: [{ role: 'user', content: text }], stream_tokens: true },
      (m) => {
        if (mine !== generation) return;
        const stick = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 60;
        if (m.message_type === 'assistant_message') {
          const row = streamed.get(m.id);
          if (row) { row.querySelector('.bubble').append(m.content); }
          else {
            const fresh = render(m);
            fresh.dataset.id = m.id;
            fresh.classList.add('streaming');
            streamed.set(m.id, fresh);
            timeline.append(fresh);
          }
        } else {
          for (const row of streamed.values()) row.classList.remove('streaming');
          if (m.message_type === 'usage_statistics') return;
          const row = render(m);
          if (row) { row.dataset.id = m.id || ''; timeline.append(row); }
          if (['tool_return_message', 'system_message'].includes(m.message_type)) app.emit('step');
        }
        if (stick) scrollToEnd();
      });
  } catch (e) {
    if (mine === generation) timeline.append(h('div', { class: 'marker error', role: 'alert' }, `error: ${e.message}`));
  } finally {
    for (const row of streamed.values()) row.classList.remove('streaming');
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
