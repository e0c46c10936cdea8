// memory.js - core memory beside the chat: every block with its label,
// description and how full it is, editable in place (read-only blocks are
// locked). After a turn, a block the agent changed is highlighted and its
// change shown as a diff.

import { api } from './api.js';
import { $, h, clear, toast } from './dom.js';
import { diff } from './diff.js';

let app;
let known = new Map(); // label -> value last shown, to see what a turn changed
let editing = new Set(); // labels with unsaved edits: not overwritten by a refresh
let changes = new Map(); // label -> its value before the current turn changed it

export function init(theApp) {
  app = theApp;
  app.addEventListener('agent', () => {
    known = new Map(); editing = new Set(); changes = new Map(); refresh(false);
  });
  app.addEventListener('send', () => { changes = new Map(); refresh(false); });
  app.addEventListener('step', () => refresh(true));
  app.addEventListener('turn', () => refresh(true));
}

function diffView(before, after) {
  return h('div', { class: 'diff', 'aria-label': 'What changed' },
    diff(before, after).map(([kind, text]) => (kind === '-' ? h('del', {}, text)
      : kind === '+' ? h('ins', {}, text) : text)));
}

function blockView(b, changedFrom) {
  const limit = b.limit || 1;
  const used = b.value.length;
  const area = h('textarea', {
    'aria-label': `Value of ${b.label}`, value: b.value, readOnly: b.read_only,
    oninput: () => { editing.add(b.label); save.disabled = false; },
  });
  const save = h('button', {
    type: 'button', disabled: true, onclick: async () => {
      try {
        await api('PATCH', `/v1/agents/${app.agent.id}/core-memory/blocks/${encodeURIComponent(b.label)}`,
          { value: area.value });
        editing.delete(b.label);
        known.set(b.label, area.value);
        toast(`Saved ${b.label}.`);
        refresh(false);
        app.emit('step');
      } catch (e) { toast(`Cannot save ${b.label}: ${e.message}`, 'error'); }
    },
  }, 'Save');
  const full = used > limit * 0.9;
  return h('article', { class: `block${changedFrom !== undefined ? ' changed' : ''}`, dataset: { label: b.label } },
    h('header', {},
      h('h3', { class: 'label' }, b.label, b.read_only ? h('span', { class: 'muted', title: 'Only you can edit it; the agent cannot' }, ' 🔒 read-only') : null),
      h('span', { class: 'muted', title: 'characters used of the limit' }, `${used} / ${limit}`)),
    b.description ? h('p', { class: 'desc' }, b.description) : null,
    h('div', { class: `fill${full ? ' full' : ''}`, role: 'meter', 'aria-label': `${b.label} is ${Math.round((100 * used) / limit)}% full`,
      'aria-valuemin': 0, 'aria-valuemax': limit, 'aria-valuenow': used },
    h('span', { style: null, dataset: { pct: String(Math.min(100, (100 * used) / limit)) } })),
    area,
    changedFrom !== undefined ? diffView(changedFrom, b.value) : null,
    b.read_only ? null : h('div', { class: 'buttons' }, save));
}

// Reads the blocks; with `highlight`, marks those whose value moved since
// they were last shown, until the next message is sent.
export async function refresh(highlight) {
  const panel = $('#panel-memory');
  if (!app.agent) { clear(panel); return; }
  const agentId = app.agent.id;
  let blocks;
  try {
    blocks = await api('GET', `/v1/agents/${agentId}/core-memory/blocks`);
  } catch (e) { toast(`Cannot read core memory: ${e.message}`, 'error'); return; }
  if (!app.agent || app.agent.id !== agentId) return;
  const kept = new Map([...panel.querySelectorAll('.block')].map((el) => [el.dataset.label, el]));
  clear(panel);
  for (const b of blocks) {
    if (editing.has(b.label) && kept.has(b.label)) { panel.append(kept.get(b.label)); continue; }
    const before = known.get(b.label);
    if (highlight && before !== undefined && before !== b.value && !changes.has(b.label)) {
      changes.set(b.label, before);
    }
    const from = changes.get(b.label);
    panel.append(blockView(b, from !== undefined && from !== b.value ? from : undefined));
    known.set(b.label, b.value);
  }
  // Widths are set from data, not inline styles (the page's CSP forbids them).
  for (const bar of panel.querySelectorAll('.fill > span')) bar.style.width = `${bar.dataset.pct}%`;
}
