// agents.js - the list of agents: search, create, import (drag and drop or
// a file), export (a download) and delete (after a confirmation).

import { api, download } from './api.js';
import { $, h, clear, toast } from './dom.js';

let app;
let all = []; // [{id, name, ...}] as GET /v1/agents/ gives them

export function init(theApp) {
  app = theApp;
  $('#agent-search').addEventListener('input', render);
  $('#new-agent').addEventListener('click', openCreate);
  $('#create-form').addEventListener('submit', create);
  app.addEventListener('agent', render);
  const drop = $('#drop-zone');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer.files[0]) importFile(e.dataTransfer.files[0]);
  });
  drop.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); $('#import-file').click(); }
  });
  $('#import-file').addEventListener('change', (e) => {
    if (e.target.files[0]) importFile(e.target.files[0]);
    e.target.value = '';
  });
}

// Every agent, newest first, page by page.
export async function load() {
  const out = [];
  let after;
  for (;;) {
    const page = await api('GET', '/v1/agents/', undefined, { limit: 100, after });
    out.push(...page);
    if (page.length < 100) break;
    after = page[page.length - 1].id;
  }
  all = out;
  render();
  return all;
}

function render() {
  const list = clear($('#agent-list'));
  const words = $('#agent-search').value.trim().toLowerCase();
  const shown = all.filter((a) => !words || a.name.toLowerCase().includes(words)
    || (a.description || '').toLowerCase().includes(words)
    || (a.tags || []).some((t) => t.toLowerCase().includes(words)));
  for (const a of shown) {
    const selected = app.agent && app.agent.id === a.id;
    list.append(h('li', { class: selected ? 'selected' : '' },
      h('button', { type: 'button', class: 'open', 'aria-current': selected ? 'true' : null,
        title: a.description || a.name, onclick: () => app.open(a.id) }, a.name),
      h('button', { type: 'button', class: 'tool', 'aria-label': `Export ${a.name}`,
        title: 'Export as an Agent File', onclick: () => exportAgent(a) }, '⤓'),
      h('button', { type: 'button', class: 'tool', 'aria-label': `Delete ${a.name}`,
        title: 'Delete', onclick: () => remove(a) }, '✕')));
  }
  if (!shown.length) list.append(h('li', { class: 'muted' }, all.length ? 'No agent matches.' : 'No agents yet.'));
}

async function openCreate() {
  const select = clear($('#create-model'));
  try {
    const models = await api('GET', '/v1/models/');
    for (const m of models) select.append(h('option', { value: m.handle }, m.handle));
  } catch (e) {
    toast(`Cannot list models: ${e.message}`, 'error');
  }
  $('#create-form').reset();
  $('#create-error').textContent = '';
  $('#create-dialog').showModal();
}

async function create(e) {
  e.preventDefault();
  const f = e.target;
  const blocks = [];
  if (f.persona.value.trim()) blocks.push({ label: 'persona', value: f.persona.value });
  if (f.human.value.trim()) blocks.push({ label: 'human', value: f.human.value });
  const body = { name: f.name.value.trim(), model: f.model.value || undefined, memory_blocks: blocks };
  if (f.window.value) body.context_window_limit = Number(f.window.value);
  try {
    const agent = await api('POST', '/v1/agents/', body);
    $('#create-dialog').close('created');
    await load();
    await app.open(agent.id);
    toast(`Created ${agent.name}.`);
  } catch (err) {
    $('#create-error').textContent = err.message;
  }
}

async function importFile(file) {
  const form = new FormData();
  form.append('file', file, file.name);
  try {
    const result = await api('POST', '/v1/agents/import', form);
    await load();
    const ids = result.agent_ids || [];
    if (ids[0]) await app.open(ids[0]);
    const missing = (result.agents || []).flatMap((a) => a.unavailable_tools || []);
    toast(`Imported ${ids.length} agent${ids.length === 1 ? '' : 's'} from ${file.name}.`
      + (missing.length ? ` Not available here: ${missing.join(', ')}.` : ''));
  } catch (err) {
    toast(`Import failed: ${err.message}`, 'error');
  }
}

async function exportAgent(a) {
  try {
    const blob = await download(`/v1/agents/${a.id}/export`);
    const url = URL.createObjectURL(blob);
    const link = h('a', { href: url, download: `${a.name.replace(/[^\w.-]+/g, '_')}.af` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    toast(`Export failed: ${err.message}`, 'error');
  }
}

function confirmDelete(name) {
  return new Promise((resolve) => {
    const dialog = $('#confirm-dialog');
    $('#confirm-text').textContent = `Delete the agent "${name}" with all its memory? This cannot be undone.`;
    dialog.onclose = () => resolve(dialog.returnValue === 'yes');
    dialog.showModal();
  });
}

async function remove(a) {
  if (!(await confirmDelete(a.name))) return;
  try {
    await api('DELETE', `/v1/agents/${a.id}`);
    const wasOpen = app.agent && app.agent.id === a.id;
    const left = await load();
    if (wasOpen) await app.open(left[0] ? left[0].id : null);
    toast(`Deleted ${a.name}.`);
  } catch (err) {
    toast(`Delete failed: ${err.message}`, 'error');
  }
}
