// settings.js - the open agent's settings: model, window, step limit,
// reflection interval and the warning and flush fractions.

import { api } from './api.js';
import { $, h, clear, toast } from './dom.js';

let app;

export function init(theApp) {
  app = theApp;
  app.pane('tab-settings', render);
}

async function render() {
  const panel = clear($('#panel-settings'));
  const a = app.agent;
  if (!a) return;
  const s = a.settings || {};
  const model = h('select', { name: 'model' });
  const num = (name, value, attrs) => h('input', { type: 'number', name, value: String(value ?? ''), ...attrs });
  const win = num('window', a.llm_config?.context_window, { min: 2048, step: 1 });
  const steps = num('steps', s.step_limit, { min: 1, max: 1000, step: 1 });
  const reflect = num('reflect', s.reflect_every, { min: -1, step: 1 });
  const warn = num('warn', s.warn_fraction, { min: 0.05, max: 1, step: 0.05 });
  const flush = num('flush', s.flush_fraction, { min: 0.05, max: 1, step: 0.05 });
  const field = (label, input, hint) => h('label', { class: 'field' }, label, input, hint ? h('span', { class: 'muted' }, hint) : null);
  const form = h('form', { onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api('PATCH', `/v1/agents/${a.id}`, {
        model: model.value,
        context_window_limit: Number(win.value),
        settings: { step_limit: Number(steps.value), reflect_every: Number(reflect.value),
          warn_fraction: Number(warn.value), flush_fraction: Number(flush.value) },
      });
      toast('Settings saved.');
      await app.reload();
      app.emit('step');
    } catch (err) { toast(`Cannot save: ${err.message}`, 'error'); }
  } },
  field('Model', model),
  field('Context window (tokens)', win),
  field('Step limit (model calls per event)', steps),
  field('Reflect every (user messages; -1: never)', reflect),
  field('Warn at (fraction of the window)', warn),
  field('Flush at (fraction of the window)', flush),
  h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Save')));
  panel.append(form);
  try {
    const models = await api('GET', '/v1/models/');
    const handles = new Set(models.map((m) => m.handle));
    handles.add(a.model);
    for (const handle of handles) model.append(h('option', { value: handle, selected: handle === a.model }, handle));
  } catch (e) { toast(`Cannot list models: ${e.message}`, 'error'); }
}
