// context.js - the context window as a picture: one stacked bar of what
// the next request to the model holds (instructions, tool schemas, core
// memory, memory statistics, the recursive summary, the messages) and the
// room left, with the warning and flush lines where the runtime acts.
// Updated after every step; the summary is readable in full below.

import { api } from './api.js';
import { $, h, clear, fmt, toast, when } from './dom.js';

let app;

// [field of /context, name shown, CSS color variable]
export const PARTS = [
  ['num_tokens_system', 'System instructions', '--part-system'],
  ['num_tokens_functions_definitions', 'Tool schemas', '--part-tools'],
  ['num_tokens_core_memory', 'Core memory', '--part-core'],
  ['num_tokens_external_memory_summary', 'Memory statistics', '--part-external'],
  ['num_tokens_summary_memory', 'Summary', '--part-summary'],
  ['num_tokens_messages', 'Messages', '--part-messages'],
];

export function init(theApp) {
  app = theApp;
  app.addEventListener('agent', refresh);
  app.addEventListener('step', refresh);
  app.addEventListener('turn', refresh);
  $('#tab-context').addEventListener('shown', refresh);
}

function part(tokens, max, name, color) {
  const el = h('div', { class: 'part', title: `${name}: ${fmt(tokens)} tokens`,
    role: 'img', 'aria-label': `${name}: ${fmt(tokens)} tokens`, dataset: { tokens: String(tokens) } });
  el.style.width = `${(100 * tokens) / max}%`;
  el.style.background = color.startsWith('--') ? `var(${color})` : color;
  return el;
}

function line(at, max, cls, label) {
  const el = h('div', { class: `line ${cls}`, title: `${label} at ${fmt(at)} tokens` }, h('span', {}, label));
  el.style.left = `${Math.min(100, (100 * at) / max)}%`;
  return el;
}

// Reads /context; tells the chat where the window starts ("window" event:
// {first, summarized, lastFlush}); draws the pane when it is shown.
export async function refresh() {
  const panel = $('#panel-context');
  if (!app.agent) return;
  const agentId = app.agent.id;
  let c;
  try {
    c = await api('GET', `/v1/agents/${agentId}/context`);
  } catch (e) { toast(`Cannot read the context: ${e.message}`, 'error'); return; }
  if (!app.agent || app.agent.id !== agentId) return;
  app.dispatchEvent(new CustomEvent('window', { detail: {
    first: c.messages && c.messages.length ? c.messages[0].id : null,
    summarized: c.summarized_messages || 0, lastFlush: c.last_flush_at } }));
  if (panel.hidden) return;
  const max = c.context_window_size_max || 1;
  const used = PARTS.reduce((sum, [k]) => sum + (c[k] || 0), 0);
  const bar = h('div', { class: 'bar', id: 'context-bar', role: 'group', 'aria-label': `Context window: ${fmt(used)} of ${fmt(max)} tokens` },
    PARTS.map(([k, name, color]) => part(c[k] || 0, max, name, color)),
    part(Math.max(0, max - used), max, 'Free', 'transparent'),
    c.warn_at_tokens ? line(c.warn_at_tokens, max, 'warning', 'warning') : null,
    c.flush_at_tokens ? line(c.flush_at_tokens, max, 'flush', 'flush') : null);
  clear(panel).append(
    h('p', {}, h('strong', { id: 'context-used' }, fmt(used)), ` of ${fmt(max)} tokens in use`,
      c.warned ? h('span', { class: 'marker warning' }, ' (warned: a flush is near)') : null),
    bar,
    h('ul', { class: 'legend' },
      PARTS.map(([k, name, color]) => {
        const sw = h('span', { class: 'swatch' });
        sw.style.background = `var(${color})`;
        return h('li', {}, sw, name, h('span', { class: 'n', dataset: { part: k } }, fmt(c[k] || 0)));
      }),
      h('li', {}, h('span', { class: 'swatch' }), 'Free', h('span', { class: 'n' }, fmt(Math.max(0, max - used))))),
    h('p', { class: 'muted' },
      `${fmt(c.num_messages)} messages in view, ${fmt(c.num_recall_memory)} in recall memory, `
      + `${fmt(c.num_archival_memory)} passages in archival memory. Warning at ${fmt(c.warn_at_tokens)}, `
      + `flush at ${fmt(c.flush_at_tokens)} tokens. Tokens counted: ${c.token_counter || ''}.`),
    h('h3', {}, 'Summary'),
    c.summarized_messages
      ? h('p', { class: 'muted', id: 'last-flush' }, `${fmt(c.summarized_messages)} older messages are summarized here `
        + `(they stay in recall memory). Last flush: ${c.last_flush_at ? when(c.last_flush_at) : 'unknown'}.`)
      : h('p', { class: 'muted', id: 'last-flush' }, 'No flush yet: nothing is summarized.'),
    c.summary_memory ? h('div', { class: 'summary', id: 'summary-text' }, c.summary_memory) : null);
}
