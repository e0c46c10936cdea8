// app.mjs - browser scenarios for the memgpt web app, driven with
// puppeteer-core in Debian's headless chromium against a running `memgpt
// serve` (tests/integration/test_web_app.py starts it and the mock LLM,
// and scripts the mock's replies first).
//
//   node app.mjs SCENARIO [JSON-ARG]    (MEMGPT_URL, CHROMIUM, SHOTS)
//
// Each scenario asserts what the page shows and what the API then holds,
// and fails on any error in the browser's console. It prints one line of
// JSON, its result.

import assert from 'node:assert/strict';
import puppeteer from 'puppeteer-core';

const BASE = process.env.MEMGPT_URL;
const [scenarioName, argText] = process.argv.slice(2);
const arg = argText ? JSON.parse(argText) : {};
const consoleErrors = [];

async function launch(viewport = { width: 1280, height: 860 }, dark = false) {
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
      '--disable-background-networking', '--disable-extensions'],
  });
  const page = await browser.newPage();
  await page.setViewport(viewport);
  if (dark) await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }]);
  page.on('console', (m) => {
    if (m.type() === 'error' && !arg.allowConsoleErrors) consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  return { browser, page };
}

// The page, loaded and settled (main.js marks <html data-ready>).
async function openApp(page, hash = '') {
  await page.goto('about:blank'); // a new document even when only the hash differs
  const started = Date.now();
  await page.goto(`${BASE}/${hash}`, { waitUntil: 'load' });
  await page.waitForSelector('html[data-ready=true]', { timeout: 15000 });
  return Date.now() - started;
}

async function api(method, path, body) {
  const r = await fetch(BASE + path, {
    method, headers: { 'Content-Type': 'application/json', ...(arg.password ? { Authorization: `Bearer ${arg.password}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const texts = (page, selector) => page.$$eval(selector, (els) => els.map((e) => e.textContent));

async function sendMessage(page, text) {
  await page.click('#composer-text');
  await page.type('#composer-text', text);
  await page.keyboard.press('Enter');
}

// Waits until the turn is over (the Cancel button hides again).
const turnDone = (page) => page.waitForFunction(() => document.querySelector('#cancel').hidden
  && !document.querySelector('#send').disabled, { timeout: 30000 });

const scenarios = {
  // Create an agent in the dialog, send a message, watch the reply stream in.
  async chat(page) {
    const firstScreenMs = await openApp(page);
    await page.click('#new-agent');
    await page.waitForSelector('#create-dialog[open]');
    await page.type('#create-form input[name=name]', 'Web Friend');
    await page.type('#create-form textarea[name=human]', 'Name: Ada');
    await page.click('#create-form button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#current-agent').textContent === 'Web Friend');
    const agentId = await page.evaluate(() => location.hash.slice(1));
    assert.match(agentId, /^agent-[0-9a-f-]{36}$/);
    // Seen while streaming: the reply's bubble grows and is marked as streaming.
    await page.evaluate(() => {
      window.__pieces = [];
      window.__watch = new MutationObserver(() => {
        const row = document.querySelector('#timeline .row.assistant.streaming .bubble');
        if (row && window.__pieces[window.__pieces.length - 1] !== row.textContent) window.__pieces.push(row.textContent);
      }).observe(document.querySelector('#timeline'), { subtree: true, childList: true, characterData: true });
    });
    await sendMessage(page, 'Hello there');
    await turnDone(page);
    const replies = await texts(page, '#timeline .row.assistant .bubble');
    assert.deepEqual(replies, [arg.reply]);
    const pieces = await page.evaluate(() => window.__pieces);
    assert.ok(pieces.length > 1, `the reply arrived in ${pieces.length} piece(s)`);
    assert.equal(await page.$eval('#composer-text', (e) => e.value), '');
    // The same conversation comes back from history after a reload.
    await openApp(page, `#${agentId}`);
    assert.deepEqual(await texts(page, '#timeline .row .bubble'), ['Hello there', arg.reply]);
    const stored = await api('GET', `/v1/agents/${agentId}/messages?limit=100`);
    assert.ok(stored.some((m) => m.message_type === 'assistant_message' && m.content === arg.reply));
    return { agent_id: agentId, pieces: pieces.length, first_screen_ms: firstScreenMs };
  },

  // A tool call is folded with its arguments and result; a click unfolds it.
  async fold(page) {
    await openApp(page, `#${arg.agent_id}`);
    await sendMessage(page, 'Remember that I like tea');
    await turnDone(page);
    const call = await page.waitForSelector('#timeline details.call');
    assert.equal(await call.evaluate((d) => d.open), false);
    assert.match(await call.$eval('summary', (s) => s.textContent), /core_memory_append/);
    const thought = await page.$('#timeline details.thought');
    assert.ok(thought, 'the inner monologue is shown');
    assert.equal(await thought.evaluate((d) => d.open), false);
    await call.$eval('summary', (s) => s.click());
    assert.equal(await call.evaluate((d) => d.open), true);
    assert.match(await call.$eval('.arguments', (p) => p.textContent), /likes tea/);
    assert.match(await call.$eval('.result', (p) => p.textContent), /OK|ok|success|appended/i);
    // The block the agent changed is highlighted, with its diff.
    const changed = await page.waitForSelector('#panel-memory .block.changed');
    assert.match(await changed.$eval('.diff ins', (e) => e.textContent), /likes tea/);
    return {};
  },

  // Edit a block in place; the API then has the new value. Read-only
  // blocks are locked.
  async block_edit(page) {
    await openApp(page, `#${arg.agent_id}`);
    const area = await page.waitForSelector('#panel-memory .block[data-label=human] textarea');
    await area.click({ clickCount: 3 });
    await page.keyboard.down('Control');
    await page.keyboard.press('a');
    await page.keyboard.up('Control');
    await page.keyboard.press('Backspace');
    await area.type('Name: Grace Hopper');
    await page.click('#panel-memory .block[data-label=human] .buttons button');
    await page.waitForFunction(() => document.querySelector('#toast').textContent.startsWith('Saved'));
    const blocks = await api('GET', `/v1/agents/${arg.agent_id}/core-memory/blocks`);
    assert.equal(blocks.find((b) => b.label === 'human').value, 'Name: Grace Hopper');
    const locked = await page.$('#panel-memory .block[data-label=locked] textarea');
    assert.ok(locked, 'the read-only block is shown');
    assert.equal(await locked.evaluate((t) => t.readOnly), true);
    assert.equal(await page.$('#panel-memory .block[data-label=locked] .buttons'), null);
    return {};
  },

  // The context bar's parts add up to the numbers of /context.
  async context(page) {
    await openApp(page, `#${arg.agent_id}`);
    await page.click('#tab-context');
    await page.waitForSelector('#context-bar');
    const c = await api('GET', `/v1/agents/${arg.agent_id}/context`);
    const parts = await page.$$eval('#context-bar .part', (els) => els.map((e) => Number(e.dataset.tokens)));
    const fields = ['num_tokens_system', 'num_tokens_functions_definitions', 'num_tokens_core_memory',
      'num_tokens_external_memory_summary', 'num_tokens_summary_memory', 'num_tokens_messages'];
    const used = fields.reduce((s, f) => s + c[f], 0);
    assert.deepEqual(parts.slice(0, fields.length), fields.map((f) => c[f]));
    assert.equal(parts.reduce((s, n) => s + n, 0), c.context_window_size_max);
    assert.equal(await page.$eval('#context-used', (e) => e.textContent), used.toLocaleString('en-US'));
    assert.ok(await page.$('#context-bar .line.warning'));
    assert.ok(await page.$('#context-bar .line.flush'));
    // Hovering a part names it with its tokens.
    const title = await page.$eval('#context-bar .part', (e) => e.getAttribute('title'));
    assert.equal(title, `System instructions: ${c.num_tokens_system.toLocaleString('en-US')} tokens`);
    return { used };
  },

  // Whatever the model writes is text: no script runs, no element is made.
  async xss(page) {
    await openApp(page, `#${arg.agent_id}`);
    await page.evaluate(() => { window.__xss = 0; });
    await sendMessage(page, '<img src=x onerror="window.__xss=1">');
    await turnDone(page);
    const shown = await texts(page, '#timeline .row .bubble');
    for (const evil of arg.evil) assert.ok(shown.some((t) => t.includes(evil)), `shown as text: ${evil}`);
    assert.equal(await page.evaluate(() => window.__xss), 0);
    assert.equal(await page.$$eval('#timeline img, #timeline script, #timeline a, #timeline iframe', (e) => e.length), 0);
    await openApp(page, `#${arg.agent_id}`); // and from history
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    assert.equal(await page.$$eval('#timeline img, #timeline script, #timeline a', (e) => e.length), 0);
    // What users write is text too: the agent's name, a block, a passage.
    assert.equal(await page.$eval('#current-agent', (e) => e.textContent), arg.name);
    assert.ok((await texts(page, '#agent-list .open')).includes(arg.name));
    await page.waitForSelector('#panel-memory .block textarea');
    const values = await page.$$eval('#panel-memory .block textarea', (t) => t.map((a) => a.value));
    assert.ok(values.includes(arg.block), JSON.stringify(values));
    await page.click('#tab-archival');
    await page.type('#panel-archival input[name=query]', 'beacon');
    await page.click('#panel-archival form[role=search] button[type=submit]');
    const hit = await page.waitForSelector('#panel-archival .result');
    assert.ok((await hit.evaluate((e) => e.textContent)).includes(arg.passage));
    const made = ['img', 'script', 'iframe', 'a[href]', '[onerror]'];
    for (const where of ['#agent-list', '#current-agent', '#panel-memory', '#panel-archival']) {
      const selector = made.map((m) => `${where} ${m}`).join(', ');
      assert.deepEqual(await page.$$eval(selector, (e) => e.map((x) => x.outerHTML)), [], where);
    }
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    return {};
  },
};

// After a flush: the marker where the window starts, and the summary with
// the time of the flush in the context pane.
scenarios.flush = async (page) => {
  await openApp(page, `#${arg.agent_id}`);
  const marker = await page.waitForSelector('#window-start');
  assert.match(await marker.evaluate((e) => e.textContent), /context window starts here: \d+ older messages were summarized/);
  await page.click('#tab-context');
  const summary = await page.waitForSelector('#summary-text');
  assert.equal(await summary.evaluate((e) => e.textContent), arg.summary);
  assert.match(await page.$eval('#last-flush', (e) => e.textContent), /Last flush: \d/);
  return {};
};

// A running turn is cancelled from the page.
scenarios.cancel = async (page) => {
  await openApp(page, `#${arg.agent_id}`);
  await sendMessage(page, 'Think for a long time');
  await page.waitForSelector('#cancel:not([hidden])');
  await page.click('#cancel');
  await turnDone(page);
  const markers = await texts(page, '#timeline .marker');
  assert.ok(markers.includes('stopped: cancelled'), JSON.stringify(markers));
  return {};
};

// The history scrolls back page by page to the first message.
scenarios.history = async (page) => {
  await openApp(page, `#${arg.agent_id}`);
  const count = () => page.$$eval('#timeline .row.user', (r) => r.length);
  const first = await count();
  assert.ok(first < arg.turns, `only a page at first (${first})`);
  for (let i = 0; i < 40 && (await count()) < arg.turns; i++) {
    await page.$eval('#timeline', (t) => { t.scrollTop = 0; t.dispatchEvent(new Event('scroll')); });
    await new Promise((r) => setTimeout(r, 100));
  }
  const said = await texts(page, '#timeline .row.user .bubble');
  assert.deepEqual(said, Array.from({ length: arg.turns }, (_, i) => `message ${i}`));
  // The server said which page was the first one: scrolling on at the
  // top asks for nothing more (not even one empty page).
  const asked = () => page.evaluate(() => performance.getEntriesByType('resource')
    .filter((e) => e.name.includes('/messages?')).length);
  const before = await asked();
  for (let i = 0; i < 3; i++) {
    await page.$eval('#timeline', (t) => { t.scrollTop = 0; t.dispatchEvent(new Event('scroll')); });
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(await asked(), before, 'pages asked for after the first message was shown');
  return { first_page: first };
};

// Archival memory: insert a passage, find it, delete it.
scenarios.archival = async (page) => {
  await openApp(page, `#${arg.agent_id}`);
  await page.click('#tab-archival');
  await page.type('#panel-archival textarea[name=text]', 'The lighthouse on the point was built in 1871.');
  await page.type('#panel-archival form:last-of-type input[name=tags]', 'history, coast');
  await page.click('#panel-archival form:last-of-type button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#toast').textContent === 'Passage stored.');
  await page.type('#panel-archival input[name=query]', 'when was the lighthouse built');
  await page.click('#panel-archival form[role=search] button[type=submit]');
  const hit = await page.waitForSelector('#panel-archival .result');
  assert.match(await hit.evaluate((e) => e.textContent), /built in 1871/);
  assert.match(await hit.evaluate((e) => e.textContent), /history, coast/);
  const stored = await api('GET', `/v1/agents/${arg.agent_id}/archival-memory`);
  assert.equal(stored.length, 1);
  await hit.$eval('button', (b) => b.click());
  await page.waitForFunction(() => document.querySelector('#toast').textContent === 'Passage deleted.');
  assert.deepEqual(await api('GET', `/v1/agents/${arg.agent_id}/archival-memory`), []);
  return {};
};

// Export an agent as a download, then import the file back.
scenarios.agent_file = async (page) => {
  await openApp(page, `#${arg.agent_id}`);
  const cdp = await page.createCDPSession();
  await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: arg.dir });
  await page.click(`#agent-list button[aria-label="Export ${arg.name}"]`);
  const fs = await import('node:fs');
  const file = `${arg.dir}/${arg.name}.af`;
  for (let i = 0; i < 100 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 100));
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.equal(doc.agents[0].name, arg.name);
  const input = await page.$('#import-file');
  await input.uploadFile(arg.import);
  await page.waitForFunction(() => /^Imported 1 agent/.test(document.querySelector('#toast').textContent));
  const names = await texts(page, '#agent-list .open');
  assert.ok(names.includes(arg.imported_name), JSON.stringify(names));
  assert.equal(await page.$eval('#current-agent', (e) => e.textContent), arg.imported_name);
  // Delete asks first; keeping it changes nothing, deleting removes it.
  await page.click(`#agent-list button[aria-label="Delete ${arg.imported_name}"]`);
  await page.waitForSelector('#confirm-dialog[open]');
  await page.click('#confirm-dialog button[value=no]');
  assert.ok((await texts(page, '#agent-list .open')).includes(arg.imported_name));
  await page.click(`#agent-list button[aria-label="Delete ${arg.imported_name}"]`);
  await page.waitForSelector('#confirm-dialog[open]');
  await page.click('#confirm-dialog button[value=yes]');
  await page.waitForFunction((n) => ![...document.querySelectorAll('#agent-list .open')].some((b) => b.textContent === n), {}, arg.imported_name);
  return { exported_bytes: fs.statSync(file).size };
};

// A server with a password: the page asks once, says when it is wrong.
scenarios.password = async (page) => {
  await page.goto(`${BASE}/`, { waitUntil: 'load' });
  await page.waitForSelector('#password-dialog[open]');
  await page.type('#password-form input[name=password]', 'wrong');
  await page.click('#password-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#password-error').textContent.includes('not right')
    && document.querySelector('#password-dialog').open);
  await page.$eval('#password-form input[name=password]', (i) => { i.value = ''; });
  await page.type('#password-form input[name=password]', arg.password);
  await page.click('#password-form button[type=submit]');
  await page.waitForSelector('html[data-ready=true]');
  assert.deepEqual(await texts(page, '#agent-list .open'), [arg.name]);
  // Kept for the session: a reload does not ask again.
  await page.reload({ waitUntil: 'load' });
  await page.waitForSelector('html[data-ready=true]');
  assert.equal(await page.$eval('#password-dialog', (d) => d.open), false);
  return {};
};

// Long tasks (over 50 ms) on the page's main thread, from now on.
async function watchLongTasks(page) {
  await page.evaluate(() => {
    window.__long = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__long.push(e.duration);
    }).observe({ type: 'longtask' });
  });
}
const longest = (page) => page.evaluate(() => Math.max(0, ...window.__long));

// A history of thousands of messages: only a window of rows is in the
// page, scrolling up reads older pages, and down again newer ones.
scenarios.long_history = async (page) => {
  const firstScreenMs = await openApp(page, `#${arg.agent_id}`);
  const rowCount = () => page.$eval('#timeline', (t) => t.children.length);
  const userTexts = () => texts(page, '#timeline .row.user .bubble');
  const lastSaid = (await userTexts()).at(-1);
  assert.equal(lastSaid, `message ${arg.turns - 1}`);
  await watchLongTasks(page);
  let most = 0;
  let moved = 0; // how far the row at the edge scrolled to moved while a page came in
  const scrollTo = async (top) => {
    await page.$eval('#timeline', (t, where) => {
      t.scrollTop = where === 'top' ? 0 : t.scrollHeight;
      const row = where === 'top' ? t.firstElementChild : t.lastElementChild;
      window.__seen = { row, y: row.getBoundingClientRect().top };
      t.dispatchEvent(new Event('scroll'));
    }, top);
    await new Promise((r) => setTimeout(r, 60));
    most = Math.max(most, await rowCount());
    moved = Math.max(moved, await page.evaluate(() => {
      const { row, y } = window.__seen;
      return row.isConnected ? Math.abs(row.getBoundingClientRect().top - y) : 0;
    }));
  };
  for (let i = 0; i < arg.pages_up; i++) await scrollTo('top');
  const shown = await userTexts();
  const oldestShown = Number(shown[0].split(' ')[1]);
  assert.ok(oldestShown < arg.turns - 300, `scrolled back to message ${oldestShown}`);
  // Consecutive and in order, whatever was dropped.
  assert.deepEqual(shown, shown.map((_, i) => `message ${oldestShown + i}`));
  // Forward again, page by page: bounded by time, since a page read is
  // slow when the machine is busy.
  const deadline = Date.now() + 120000;
  while ((await userTexts()).at(-1) !== lastSaid && Date.now() < deadline) {
    await scrollTo('bottom');
  }
  assert.equal((await userTexts()).at(-1), lastSaid);
  assert.ok(moved <= 2, `the rows in view moved by ${moved} px when rows were dropped`);
  assert.ok(most <= 300 + 3 * 50, `at most ${most} rows were in the page`);
  return { most_rows: most, oldest_reached: oldestShown, longest_task_ms: await longest(page),
    first_screen_ms: firstScreenMs };
};

// A long reply streamed in small pieces: it arrives whole, and the longest
// task of the page's main thread meanwhile is reported (bench_web.py).
scenarios.long_reply = async (page) => {
  await openApp(page, `#${arg.agent_id}`);
  await watchLongTasks(page);
  await sendMessage(page, 'Tell me everything');
  await turnDone(page);
  const replies = await texts(page, '#timeline .row.assistant .bubble');
  assert.equal(replies.at(-1), arg.reply);
  return { longest_task_ms: await longest(page) };
};

// The panes no other scenario walks: the agent search, the markers of a
// tool call that asked for a heartbeat, recall search (words, dates, with
// and without the monologue and tools), settings, and an Agent File
// dropped on the page.
scenarios.panes = async (page) => {
  await openApp(page, `#${arg.agent_id}`);
  // The list, searched.
  const listed = () => texts(page, '#agent-list .open');
  assert.deepEqual((await listed()).sort(), [arg.name, arg.other].sort());
  await page.type('#agent-search', arg.other.slice(0, 4));
  await page.waitForFunction((n) => document.querySelectorAll('#agent-list .open').length === n, {}, 1);
  assert.deepEqual(await listed(), [arg.other]);
  await page.$eval('#agent-search', (i) => { i.value = ''; i.dispatchEvent(new Event('input')); });
  // The turn's heartbeat is a quiet marker.
  const markers = await texts(page, '#timeline .marker.heartbeat');
  assert.ok(markers.length >= 1 && markers.every((m) => m.startsWith('heartbeat')), JSON.stringify(markers));

  // Recall: the user's words, then with the tool calls too, then a range
  // of dates that holds nothing.
  await page.click('#tab-recall');
  const form = '#panel-recall form[role=search]';
  await page.type(`${form} input[name=query]`, arg.word);
  const search = async () => {
    await page.$eval('#panel-recall .results', (r) => r.replaceChildren());
    await page.click(`${form} button[type=submit]`);
    await page.waitForSelector('#panel-recall .results li.muted');
    return texts(page, '#panel-recall .results li');
  };
  let found = await search();
  assert.match(found[0], /^[1-9]\d* found/);
  assert.ok(found.slice(1).some((t) => t.includes(arg.said)), JSON.stringify(found));
  assert.ok(!found.slice(1).some((t) => t.includes('core_memory_append')), JSON.stringify(found));
  await page.click(`${form} input[name=all]`);
  found = await search();
  assert.ok(found.slice(1).some((t) => t.includes('core_memory_append')), JSON.stringify(found));
  await page.$eval(`${form} input[name=from]`, (i) => { i.value = '2001-01-01'; });
  await page.$eval(`${form} input[name=to]`, (i) => { i.value = '2001-12-31'; });
  found = await search();
  assert.deepEqual(found, ['0 found']);

  // Settings: saved through the API, shown again after a reload.
  await page.click('#tab-settings');
  const set = async (name, value) => {
    await page.$eval(`#panel-settings input[name=${name}]`, (i, v) => { i.value = v; }, value);
  };
  await page.waitForSelector('#panel-settings select[name=model] option');
  await set('steps', '7');
  await set('warn', '0.6');
  await set('flush', '0.9');
  await set('reflect', '-1');
  await page.click('#panel-settings button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#toast').textContent === 'Settings saved.');
  const agent = await api('GET', `/v1/agents/${arg.agent_id}`);
  assert.equal(agent.settings.step_limit, 7);
  assert.equal(agent.settings.warn_fraction, 0.6);
  assert.equal(agent.settings.flush_fraction, 0.9);
  assert.equal(agent.settings.reflect_every, -1);
  await openApp(page, `#${arg.agent_id}`);
  await page.click('#tab-settings');
  assert.equal(await page.$eval('#panel-settings input[name=steps]', (i) => i.value), '7');

  // An Agent File dropped on the drop zone is imported and opened.
  await page.$eval('#drop-zone', (zone, text) => {
    const data = new DataTransfer();
    data.items.add(new File([text], 'dropped.af', { type: 'application/json' }));
    zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: data, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
  }, arg.agent_file);
  await page.waitForFunction(() => /^Imported 1 agent/.test(document.querySelector('#toast').textContent));
  assert.equal(await page.$eval('#current-agent', (e) => e.textContent), arg.imported_name);
  assert.ok((await listed()).includes(arg.imported_name));
  return {};
};

// The keyboard alone: Tab to an agent and open it, write and send with
// Enter, unfold a tool call, move between the side tabs with the arrows.
scenarios.keyboard = async (page) => {
  await openApp(page);
  const focused = () => page.evaluate(() => {
    const e = document.activeElement;
    return e ? `${e.tagName.toLowerCase()}#${e.id}.${e.className}:${e.textContent.slice(0, 40)}` : '';
  });
  // Tab until `want(description of the focused element)`, at most 40 times.
  const tabTo = async (want, what) => {
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press('Tab');
      if (want(await focused())) return;
    }
    assert.fail(`Tab never reached ${what}`);
  };
  await tabTo((f) => f.startsWith('button#.open:') && f.endsWith(arg.name), 'the agent');
  await page.keyboard.press('Enter');
  await page.waitForFunction((n) => document.querySelector('#current-agent').textContent === n, {}, arg.name);
  await tabTo((f) => f.startsWith('textarea#composer-text'), 'the message box');
  await page.keyboard.type('first line');
  await page.keyboard.down('Shift');
  await page.keyboard.press('Enter');
  await page.keyboard.up('Shift');
  await page.keyboard.type('second line');
  await page.keyboard.press('Enter');
  await turnDone(page);
  assert.deepEqual(await texts(page, '#timeline .row.user .bubble'), ['first line\nsecond line']);
  assert.deepEqual(await texts(page, '#timeline .row.assistant .bubble'), [arg.reply]);
  // Back up through the page to the folded call, and open it with Enter.
  await page.focus('#timeline');
  await tabTo((f) => f.startsWith('summary#') && f.includes('Tool call'), 'the tool call');
  await page.keyboard.press('Enter');
  assert.equal(await page.$eval('#timeline details.call', (d) => d.open), true);
  await page.focus('#tab-memory');
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.$eval('#tab-context', (t) => t.getAttribute('aria-selected')), 'true');
  assert.equal(await focused().then((f) => f.startsWith('button#tab-context')), true);
  await page.waitForSelector('#panel-context:not([hidden]) #context-bar');
  // The skip link, first on the page, goes to the message box and leaves
  // the open agent open (its #composer-text is not an agent's address).
  await page.focus('a.skip');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => location.hash === '#composer-text');
  await new Promise((r) => setTimeout(r, 300)); // time for a wrong hashchange to act
  assert.equal(await page.$eval('#current-agent', (e) => e.textContent), arg.name);
  assert.equal(await page.$eval('#composer-text', (t) => t.disabled), false);
  await page.keyboard.type('typed after the skip');
  assert.equal(await page.$eval('#composer-text', (t) => t.value), 'typed after the skip');
  return { ok: true };
};

// The first screen, loaded afresh `arg.times` times: ms from the start of
// the navigation until the agent and its messages are shown. Warm (the
// default): the app's files in the browser's cache, as on every visit but
// the first; `arg.cold`: with the cache off.
scenarios.first_screen = async (page) => {
  const times = [];
  // Cold: as on a first visit, nothing from the browser's cache.
  await page.setCacheEnabled(!arg.cold);
  for (let i = 0; i < arg.times; i++) {
    await openApp(page, `#${arg.agent_id}`);
    times.push(await page.evaluate(() => performance.getEntriesByName('memgpt-ready')[0].startTime));
  }
  return { first_screen_ms: times };
};

// Screenshots for the README: desktop and phone, light and dark, of an
// agent with a conversation (arg.agent_id), into arg.dir.
scenarios.screenshots = async () => {
  const shots = [];
  for (const [name, viewport] of [['desktop', { width: 1440, height: 900 }], ['phone', { width: 360, height: 740, isMobile: true, hasTouch: true }]]) {
    for (const dark of [false, true]) {
      const { browser: b, page: p } = await launch(viewport, dark);
      try {
        await openApp(p, `#${arg.agent_id}`);
        if (name === 'desktop') {
          await p.click('#tab-context');
          await p.waitForSelector('#context-bar');
          await p.click('#tab-memory');
          await p.waitForSelector('#panel-memory .block');
        }
        await p.$$eval('#timeline details', (ds) => ds.slice(-2).forEach((d) => { d.open = true; }));
        await new Promise((r) => setTimeout(r, 300));
        const file = `${arg.dir}/web-${name}-${dark ? 'dark' : 'light'}.png`;
        await p.screenshot({ path: file });
        shots.push(file);
      } finally { await b.close(); }
    }
  }
  return { shots };
};

const run = scenarios[scenarioName];
if (!run) {
  console.error(`no scenario ${scenarioName}`);
  process.exit(2);
}
const { browser, page } = await launch();
try {
  const result = await run(page);
  assert.deepEqual(consoleErrors, [], 'errors in the browser console');
  console.log(JSON.stringify(result));
} catch (e) {
  console.error(e.stack || String(e));
  if (consoleErrors.length) console.error('console:', consoleErrors);
  process.exitCode = 1;
} finally {
  await browser.close();
}
