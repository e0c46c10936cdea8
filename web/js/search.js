// search.js - the recall and archival panes: searching what was said (by
// words and dates, optionally with the monologue and tools), and the
// agent's archival memory (by meaning and tags), with insert and delete.

import { api } from './api.js';
import { $, h, clear, when, toast } from './dom.js';

let app;

export function init(theApp) {
  app = theApp;
  app.pane('tab-recall', recallPane);
  app.pane('tab-archival', archivalPane);
}

const field = (label, input) => h('label', { class: 'field' }, label, input);

function recallPane() {
  const panel = clear($('#panel-recall'));
  if (!app.agent) return;
  const q = h('input', { type: 'search', name: 'query', placeholder: 'words (empty: by date)' });
  const from = h('input', { type: 'date', name: 'from' });
  const to = h('input', { type: 'date', name: 'to' });
  const all = h('input', { type: 'checkbox', name: 'all' });
  const results = h('ul', { class: 'results', 'aria-label': 'Recall results', 'aria-live': 'polite' });
  const form = h('form', { class: 'search-form', role: 'search', onsubmit: (e) => { e.preventDefault(); run(0); } },
    h('div', { class: 'wide' }, field('Search what was said', q)),
    field('From', from), field('To', to),
    h('label', { class: 'check wide' }, all, 'Include inner monologue, tool calls and events'),
    h('div', { class: 'buttons wide' }, h('button', { type: 'submit', class: 'primary' }, 'Search')));
  async function run(page) {
    try {
      const found = await api('GET', `/v1/agents/${app.agent.id}/messages/search`, undefined,
        { query: q.value.trim(), start_datetime: from.value, end_datetime: to.value,
          include_all: all.checked ? 'true' : undefined, limit: 20, page });
      clear(results);
      results.append(h('li', { class: 'muted' }, `${found.total} found${found.older_matches ? ' (only the newest are ranked)' : ''}`));
      for (const r of found.results) {
        results.append(h('li', { class: 'result' },
          h('div', { class: 'meta' }, h('span', {}, `${r.role} · ${r.kind}`), h('span', {}, when(r.date))),
          r.inner ? h('div', { class: 'inner' }, r.inner) : null,
          r.text ? h('div', {}, r.text) : null));
      }
      if (found.pages > page + 1) {
        results.append(h('li', {}, h('button', { type: 'button', onclick: () => run(page + 1) }, 'Next page')));
      }
    } catch (e) { toast(`Search failed: ${e.message}`, 'error'); }
  }
  panel.append(form, results);
}

function archivalPane() {
  const panel = clear($('#panel-archival'));
  if (!app.agent) return;
  const agentId = app.agent.id;
  const q = h('input', { type: 'search', name: 'query', required: true, placeholder: 'what to look for' });
  const tags = h('input', { name: 'tags', placeholder: 'tags, comma-separated (optional)' });
  const results = h('ul', { class: 'results', 'aria-label': 'Archival results', 'aria-live': 'polite' });
  const splitTags = (text) => text.split(',').map((t) => t.trim()).filter(Boolean);
  async function run() {
    try {
      const found = await api('GET', `/v1/agents/${agentId}/archival-memory/search`, undefined,
        { query: q.value, tags: splitTags(tags.value), top_k: 20 });
      clear(results);
      results.append(h('li', { class: 'muted' }, `${found.count} found`));
      for (const p of found.results) {
        const item = h('li', { class: 'result' },
          h('div', { class: 'meta' }, h('span', {}, (p.tags || []).join(', ')), h('span', {}, when(p.timestamp))),
          h('div', {}, p.content),
          h('div', { class: 'buttons' }, h('button', { type: 'button', 'aria-label': 'Delete this passage',
            onclick: async () => {
              try {
                await api('DELETE', `/v1/agents/${agentId}/archival-memory/${p.id}`);
                item.remove();
                toast('Passage deleted.');
              } catch (e) { toast(`Cannot delete: ${e.message}`, 'error'); }
            } }, 'Delete')));
        results.append(item);
      }
    } catch (e) { toast(`Search failed: ${e.message}`, 'error'); }
  }
  const text = h('textarea', { name: 'text', rows: 3, required: true, placeholder: 'a passage to remember' });
  const newTags = h('input', { name: 'tags', placeholder: 'tags, comma-separated (optional)' });
  const insert = h('form', { class: 'search-form', onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api('POST', `/v1/agents/${agentId}/archival-memory`, { text: text.value, tags: splitTags(newTags.value) });
      text.value = '';
      newTags.value = '';
      toast('Passage stored.');
      app.emit('step');
    } catch (err) { toast(`Cannot store: ${err.message}`, 'error'); }
  } },
  h('div', { class: 'wide' }, field('New passage', text)),
  h('div', { class: 'wide' }, field('Tags', newTags)),
  h('div', { class: 'buttons wide' }, h('button', { type: 'submit' }, 'Insert')));
  const search = h('form', { class: 'search-form', role: 'search', onsubmit: (e) => { e.preventDefault(); run(); } },
    h('div', { class: 'wide' }, field('Search archival memory', q)),
    h('div', { class: 'wide' }, field('Tags', tags)),
    h('div', { class: 'buttons wide' }, h('button', { type: 'submit', class: 'primary' }, 'Search')));
  panel.append(search, results, h('hr'), insert);
}
