// main.js - the app's frame: which agent is open, the panes and tabs, the
// password prompt. Each part of the page is its own module; they talk
// through `app`, an event target:
//   "agent"  the open agent changed (detail: AgentState or null)
//   "send"   a message is being sent (a turn begins)
//   "step"   a turn stored something (memory and context may have moved)
//   "turn"   a turn ended
//   "window" where the context window starts (detail: {first, summarized,
//            lastFlush}), after each read of /context

import { api, auth } from './api.js';
import { $, toast } from './dom.js';
import * as agents from './agents.js';
import * as chat from './chat.js';
import * as memory from './memory.js';
import * as context from './context.js';
import * as search from './search.js';
import * as settings from './settings.js';

export const app = new EventTarget();
app.agent = null;

// Opens agent `id`; `known`, its state fresh from the list, saves a request.
app.open = async (id, known) => {
  if (!id) {
    app.agent = null;
    history.replaceState(null, '', location.pathname);
  } else {
    try {
      app.agent = known && known.id === id ? known : await api('GET', `/v1/agents/${encodeURIComponent(id)}`);
    } catch (e) {
      toast(`Cannot open the agent: ${e.message}`, 'error');
      app.agent = null;
    }
    if (app.agent && location.hash !== `#${app.agent.id}`) history.replaceState(null, '', `#${app.agent.id}`);
  }
  $('#current-agent').textContent = app.agent ? app.agent.name : '';
  document.title = app.agent ? `${app.agent.name} - memgpt` : 'memgpt';
  app.dispatchEvent(new CustomEvent('agent', { detail: app.agent }));
};

// Re-reads the open agent (after a settings change) without a reload.
app.reload = async () => {
  if (!app.agent) return;
  app.agent = await api('GET', `/v1/agents/${app.agent.id}`);
  app.dispatchEvent(new CustomEvent('agent', { detail: app.agent }));
};

app.emit = (name) => app.dispatchEvent(new Event(name));

// A side pane drawn for the open agent only once it is on screen: at once
// if its tab is selected, else when the tab is next shown. Panes nobody
// opens cost nothing when the page starts or the agent changes.
app.pane = (tabId, draw) => {
  const tab = $(`#${tabId}`);
  const panel = $(`#${tab.getAttribute('aria-controls')}`);
  let drawnFor; // the agent state the pane shows
  const update = () => {
    if (panel.hidden || drawnFor === app.agent) return;
    drawnFor = app.agent;
    draw();
  };
  app.addEventListener('agent', update);
  tab.addEventListener('shown', update);
};

// ---- the password, asked once per browser session
auth.prompt = (wrong) => new Promise((resolve) => {
  const dialog = $('#password-dialog');
  const form = $('#password-form');
  $('#password-error').textContent = wrong ? 'That password is not right. Try again.' : '';
  form.reset();
  dialog.onclose = () => resolve(dialog.returnValue === 'ok' ? form.password.value : null);
  dialog.showModal();
});

// Dialogs: buttons marked data-close close without submitting.
for (const button of document.querySelectorAll('dialog [data-close]')) {
  button.addEventListener('click', () => button.closest('dialog').close('cancel'));
}

// ---- tabs (arrow keys move between them, as a tab list should)
const tabs = [...document.querySelectorAll('[role=tab]')];
function selectTab(tab) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    $(`#${t.getAttribute('aria-controls')}`).hidden = !on;
  }
  tab.dispatchEvent(new Event('shown', { bubbles: true }));
}
for (const tab of tabs) {
  tab.addEventListener('click', () => selectTab(tab));
  tab.addEventListener('keydown', (e) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
    if (!step) return;
    const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
    selectTab(next);
    next.focus();
  });
}

// ---- narrow screens: one pane at a time
function showView(view) {
  document.body.dataset.view = view;
  for (const b of document.querySelectorAll('.views button')) {
    b.setAttribute('aria-pressed', String(b.dataset.show === view));
  }
}
for (const b of document.querySelectorAll('.views button')) {
  b.addEventListener('click', () => showView(b.dataset.show));
}
app.addEventListener('agent', () => showView('chat'));

// ---- start
agents.init(app);
chat.init(app);
memory.init(app);
context.init(app);
search.init(app);
settings.init(app);
showView('chat');

// The address names the open agent (#agent-...). A hash that names an
// element of the page (the skip link's #composer-text) is not an agent.
const agentInAddress = () => {
  const id = location.hash.slice(1);
  return id && !document.getElementById(id) ? id : '';
};

window.addEventListener('hashchange', () => {
  const id = agentInAddress();
  if (id && id !== app.agent?.id) app.open(id);
});

(async () => {
  const wanted = agentInAddress();
  if (wanted) chat.prefetch(wanted); // its messages and the list of agents at once
  const list = await agents.load();
  const first = list.find((a) => a.id === wanted) || list[0];
  await app.open(first ? first.id : null, first);
  await app.history; // its latest messages on screen too
  document.documentElement.dataset.ready = 'true';
  performance.mark('memgpt-ready'); // the first screen is up (bench/bench_web.py)
})();
