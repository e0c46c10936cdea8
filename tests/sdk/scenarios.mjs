// Scenarios that drive `memgpt serve` through Letta's official TypeScript
// SDK, exactly as an application would. tests/integration/test_server.py
// starts the server (against a strict mock LLM) and runs one scenario per
// call:  node scenarios.mjs NAME [JSON-ARG]
// Environment: MEMGPT_URL (the server's root), MEMGPT_PASSWORD (optional).
// A scenario asserts with node:assert and prints its result as one JSON
// line; any failure exits non-zero with the assertion's message.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import Letta, {
  toFile,
  AuthenticationError,
  NotFoundError,
  UnprocessableEntityError,
} from '@letta-ai/letta-client';

const baseURL = process.env.MEMGPT_URL;
const client = new Letta({ baseURL, apiKey: process.env.MEMGPT_PASSWORD ?? null, maxRetries: 0 });
const arg = process.argv[3] ? JSON.parse(process.argv[3]) : {};

const ID = /^[a-z]+-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function newAgent(name, extra = {}) {
  return client.agents.create({
    name,
    model: 'openai/gpt-4o-mini',
    memory_blocks: [
      { label: 'persona', value: 'I am a careful test assistant.' },
      { label: 'human', value: 'Name: Ada', limit: 500 },
    ],
    ...extra,
  });
}

function reply(messages) {
  const texts = messages.filter((m) => m.message_type === 'assistant_message').map((m) => m.content);
  return texts.join('\n');
}

async function collect(stream) {
  const events = [];
  for await (const ev of stream) events.push(ev);
  return events;
}

async function expectError(cls, fn) {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e.constructor.name}: ${e.message}`);
    return e;
  }
  assert.fail(`expected ${cls.name}, but the call succeeded`);
}

const scenarios = {
  // Create an agent with blocks, read it back, send, read the reply.
  async basic() {
    const health = await client.health();
    assert.equal(health.status, 'ok');
    const agent = await newAgent('basic', {
      memory_blocks: [
        { label: 'persona', value: 'I am a careful test assistant.' },
        { label: 'human', value: 'Name: Ada', limit: 500 },
        { label: 'notes', value: 'Likes tea.', limit: 300, description: 'Loose notes', read_only: true },
      ],
      tags: ['test', 'basic'],
      description: 'an agent for the SDK tests',
      metadata: { team: 'qa' },
    });
    assert.match(agent.id, ID);
    assert.equal(agent.name, 'basic');
    assert.equal(agent.llm_config.model, 'gpt-4o-mini');
    assert.equal(agent.llm_config.model_endpoint_type, 'openai');
    assert.ok(agent.llm_config.context_window > 0);
    assert.ok(agent.embedding_config.embedding_dim > 0);
    assert.deepEqual(agent.tags, ['test', 'basic']);
    assert.deepEqual(agent.metadata, { team: 'qa' });
    const blocks = Object.fromEntries(agent.memory.blocks.map((b) => [b.label, b]));
    assert.equal(blocks.human.value, 'Name: Ada');
    assert.equal(blocks.human.limit, 500);
    assert.equal(blocks.notes.read_only, true);
    assert.equal(blocks.notes.description, 'Loose notes');
    for (const b of agent.blocks) assert.match(b.id, ID);
    assert.ok(agent.tools.some((t) => t.name === 'send_message'));
    for (const t of agent.tools) assert.match(t.id, ID);

    const again = await client.agents.retrieve(agent.id);
    assert.equal(again.name, 'basic');
    const listed = [];
    for await (const a of client.agents.list({ limit: 1 })) listed.push(a.id);
    assert.ok(listed.includes(agent.id));

    const response = await client.agents.messages.create(agent.id, {
      messages: [{ role: 'user', content: 'hello there' }],
    });
    assert.equal(reply(response.messages), 'You said: hello there');
    assert.equal(response.stop_reason.stop_reason, 'end_turn');
    assert.ok(response.usage.prompt_tokens > 0);
    assert.ok(response.usage.step_count >= 1);
    for (const m of response.messages) assert.match(m.id, ID);
    // Content as a list of text parts.
    const parts = await client.agents.messages.create(agent.id, {
      messages: [{ role: 'user', content: [{ type: 'text', text: 'in parts' }] }],
    });
    assert.equal(reply(parts.messages), 'You said: in parts');
    const after = await client.agents.retrieve(agent.id);
    assert.ok(after.message_ids.length >= 6);
    return { agent_id: agent.id };
  },

  // SSE with and without token pieces: what arrives is what is stored.
  async stream() {
    const agent = await newAgent('streamer');
    const steps = await collect(await client.agents.messages.create(agent.id, {
      messages: [{ role: 'user', content: 'step by step' }],
      streaming: true,
    }));
    const types = steps.map((e) => e.message_type);
    assert.deepEqual(types.slice(-2), ['stop_reason', 'usage_statistics']);
    assert.equal(reply(steps), 'You said: step by step');

    const pieces = await collect(await client.agents.messages.create(agent.id, {
      messages: [{ role: 'user', content: 'token by token, please' }],
      streaming: true,
      stream_tokens: true,
    }));
    const assistant = pieces.filter((e) => e.message_type === 'assistant_message');
    assert.ok(assistant.length > 1, `expected several pieces, got ${assistant.length}`);
    const ids = new Set(assistant.map((e) => e.id));
    assert.equal(ids.size, 1, 'every piece carries the id of its message');
    const joined = assistant.map((e) => e.content).join('');
    assert.equal(joined, 'You said: token by token, please');
    const stored = [];
    for await (const m of client.agents.messages.list(agent.id, { order: 'asc' })) stored.push(m);
    const same = stored.find((m) => m.message_type === 'assistant_message' && ids.has(m.id));
    assert.ok(same, 'the streamed message is stored under the same id');
    assert.equal(same.content, joined);

    // The deprecated /messages/stream route streams too.
    const old = await collect(await client.agents.messages.stream(agent.id, {
      messages: [{ role: 'user', content: 'old route' }],
    }));
    assert.equal(reply(old), 'You said: old route');
    return { pieces: assistant.length };
  },

  // Paging through every stored message with before and after.
  async paging() {
    const agent = await newAgent('pager');
    for (let i = 0; i < arg.turns; i++)
      await client.agents.messages.create(agent.id, { messages: [{ role: 'user', content: `message ${i}` }] });
    const all = [];
    for await (const m of client.agents.messages.list(agent.id, { order: 'asc', limit: 1000 })) all.push(m);
    assert.ok(all.length >= 500, `only ${all.length} messages`);
    const rows = [...new Set(all.map((m) => m.id))];
    // Forward (asc) pages of 37 through the SDK's own iteration.
    const fwd = [];
    for await (const m of client.agents.messages.list(agent.id, { order: 'asc', limit: 37 })) fwd.push(m.id);
    assert.deepEqual([...new Set(fwd)], rows);
    // Newest first, explicit pages with `after`.
    const back = [];
    let after;
    for (;;) {
      const page = await client.agents.messages.list(agent.id, { order: 'desc', limit: 50, after });
      if (!page.getPaginatedItems().length) break;
      back.push(...page.getPaginatedItems().map((m) => m.id));
      after = page.getPaginatedItems().at(-1).id;
    }
    assert.deepEqual([...new Set(back)], [...rows].reverse());
    // Backwards from the newest with `before`, in ascending order.
    const before = [];
    let cursor = rows.at(-1);
    for (;;) {
      const page = await client.agents.messages.list(agent.id, { order: 'asc', limit: 40, before: cursor });
      const items = page.getPaginatedItems();
      if (!items.length) break;
      before.unshift(...items.map((m) => m.id));
      cursor = items[0].id;
    }
    assert.deepEqual([...new Set(before)], rows.slice(0, -1));
    // A bounded range: after one message and before another.
    const range = await client.agents.messages.list(agent.id, { order: 'asc', after: rows[10], before: rows[20], limit: 100 });
    assert.deepEqual([...new Set(range.getPaginatedItems().map((m) => m.id))], rows.slice(11, 20));
    return { messages: all.length, rows: rows.length };
  },

  // Core memory edits and archival memory.
  async memory() {
    const agent = await newAgent('rememberer');
    const human = await client.agents.blocks.retrieve('human', { agent_id: agent.id });
    assert.equal(human.value, 'Name: Ada');
    const edited = await client.agents.blocks.update('human', { agent_id: agent.id, value: 'Name: Ada Lovelace' });
    assert.equal(edited.value, 'Name: Ada Lovelace');
    await expectError(UnprocessableEntityError, () =>
      client.agents.blocks.update('human', { agent_id: agent.id, value: 'x'.repeat(501) }));
    const grown = await client.agents.blocks.update('human', { agent_id: agent.id, limit: 800, value: 'y'.repeat(700) });
    assert.equal(grown.limit, 800);
    await expectError(NotFoundError, () => client.agents.blocks.retrieve('nope', { agent_id: agent.id }));
    const labels = [];
    for await (const b of client.agents.blocks.list(agent.id)) labels.push(b.label);
    assert.deepEqual(labels.sort(), ['human', 'persona']);

    const global = [];
    for await (const b of client.blocks.list({ label: 'human', limit: 2 })) global.push(b);
    const mine = global.find((b) => b.agent_id === agent.id);
    assert.ok(mine, 'the agent\'s block is in /v1/blocks/');
    const byId = await client.blocks.retrieve(mine.id);
    assert.equal(byId.value, 'y'.repeat(700));
    const viaId = await client.blocks.update(mine.id, { value: 'Name: Ada' });
    assert.equal(viaId.value, 'Name: Ada');
    await expectError(NotFoundError, () => client.blocks.retrieve('block-00000000-0000-4000-8000-000000000000'));

    const created = await client.agents.passages.create(agent.id, { text: 'The lighthouse keeper is named Quiltrude.', tags: ['people'] });
    assert.equal(created.length, 1);
    assert.match(created[0].id, ID);
    await client.agents.passages.create(agent.id, { text: 'Oslo has a long harbour front.', tags: ['places'] });
    const listed = await client.agents.passages.list(agent.id);
    assert.equal(listed.length, 2);
    const found = await client.agents.passages.search(agent.id, { query: 'lighthouse keeper' });
    assert.ok(found.count >= 1);
    assert.equal(found.results[0].id, created[0].id);
    assert.equal(found.results[0].content, 'The lighthouse keeper is named Quiltrude.');
    const tagged = await client.agents.passages.search(agent.id, { query: 'harbour lighthouse', tags: ['places'] });
    assert.deepEqual(tagged.results.map((r) => r.content), ['Oslo has a long harbour front.']);
    await client.agents.passages.delete(created[0].id, { agent_id: agent.id });
    const gone = await client.agents.passages.search(agent.id, { query: 'lighthouse keeper' });
    assert.ok(!gone.results.some((r) => r.id === created[0].id));
    await expectError(NotFoundError, () => client.agents.passages.delete(created[0].id, { agent_id: agent.id }));
    return { agent_id: agent.id };
  },

  // The context window overview, tools and models.
  async context() {
    const agent = await newAgent('viewer');
    await client.agents.messages.create(agent.id, { messages: [{ role: 'user', content: 'fill a little' }] });
    const ctx = await client.get(`/v1/agents/${agent.id}/context`);
    assert.equal(ctx.context_window_size_max, agent.llm_config.context_window);
    const parts = ctx.num_tokens_system + ctx.num_tokens_core_memory + ctx.num_tokens_external_memory_summary +
      ctx.num_tokens_summary_memory + ctx.num_tokens_functions_definitions + ctx.num_tokens_messages;
    assert.equal(ctx.context_window_size_current, parts);
    assert.ok(ctx.num_messages >= 3);
    assert.ok(ctx.num_recall_memory >= ctx.num_messages);
    assert.ok(ctx.core_memory.includes('Name: Ada'));
    assert.ok(ctx.functions_definitions.some((f) => f.function.name === 'archival_memory_search'));
    const tools = [];
    for await (const t of client.tools.list()) tools.push(t.name);
    assert.ok(tools.includes('send_message') && tools.includes('conversation_search'));
    const agentTools = [];
    for await (const t of client.agents.tools.list(agent.id)) agentTools.push(t.name);
    assert.ok(agentTools.length > 5 && agentTools.every((t) => tools.includes(t)));
    assert.ok(tools.includes('memory_rethink') && !agentTools.includes('memory_rethink'),
      'optional functions are listed, and offered only to agents that enable them');
    const models = await client.models.list();
    assert.ok(models.some((m) => m.handle === 'openai/gpt-4o-mini'), JSON.stringify(models.map((m) => m.handle)));
    const embeddings = await client.models.embeddings.list();
    assert.ok(embeddings.some((e) => e.handle === 'memgpt/offline'));
    return { tokens: ctx.context_window_size_current };
  },

  // Changing and deleting agents; lists by name and tags; the count.
  async agents() {
    const a = await newAgent('first', { tags: ['red'] });
    const b = await newAgent('second', { tags: ['red', 'blue'] });
    const updated = await client.agents.update(a.id, {
      name: 'Renamed Agent & co', description: 'changed', tags: ['green'], metadata: { k: 1 },
    });
    assert.equal(updated.name, 'Renamed Agent & co');
    assert.deepEqual(updated.tags, ['green']);
    assert.equal(updated.description, 'changed');
    const red = [];
    for await (const x of client.agents.list({ tags: ['red'] })) red.push(x.name);
    assert.deepEqual(red, ['second']);
    const byName = [];
    for await (const x of client.agents.list({ name: 'Renamed Agent & co' })) byName.push(x.id);
    assert.deepEqual(byName, [a.id]);
    assert.equal(await client.get('/v1/agents/count'), 2);
    // Newest first by default.
    const order = [];
    for await (const x of client.agents.list()) order.push(x.id);
    assert.deepEqual(order, [b.id, a.id]);
    await client.agents.delete(b.id);
    await expectError(NotFoundError, () => client.agents.retrieve(b.id));
    assert.equal(await client.get('/v1/agents/count'), 1);
    return { agent_id: a.id };
  },

  // Typed errors: not found, unprocessable, authentication.
  async errors() {
    await expectError(NotFoundError, () => client.agents.retrieve('agent-00000000-0000-4000-8000-000000000000'));
    await expectError(UnprocessableEntityError, () => client.agents.retrieve('not-an-id'));
    await expectError(UnprocessableEntityError, () => client.agents.create({ memory_blocks: 'nope' }));
    await expectError(UnprocessableEntityError, () => client.agents.create({ name: 'bad\nname' }));
    const agent = await newAgent('erring');
    await expectError(UnprocessableEntityError, () =>
      client.agents.messages.create(agent.id, { messages: [{ role: 'user' }] }));
    await expectError(UnprocessableEntityError, () =>
      client.agents.messages.create(agent.id, { messages: [{ role: 'tool', content: 'x' }] }));
    await expectError(NotFoundError, () => client.agents.messages.list('agent-00000000-0000-4000-8000-000000000000'));
    return {};
  },

  // With a password: refused without it or with a wrong one; health is open.
  async auth() {
    const none = new Letta({ baseURL, apiKey: null, maxRetries: 0 });
    const wrong = new Letta({ baseURL, apiKey: 'wrong', maxRetries: 0 });
    assert.equal((await none.health()).status, 'ok');
    const e1 = await expectError(AuthenticationError, () => none.agents.list());
    assert.equal(e1.status, 401);
    assert.ok(e1.error.detail, 'Letta\'s error shape: {"detail": ...}');
    await expectError(AuthenticationError, () => wrong.agents.list());
    const agent = await newAgent('guarded');
    const listed = [];
    for await (const a of client.agents.list()) listed.push(a.id);
    assert.deepEqual(listed, [agent.id]);
    return {};
  },

  // Cancel a running turn: it stops at its next step boundary.
  async cancel() {
    const stream = await client.agents.messages.create(arg.agent_id, {
      messages: [{ role: 'user', content: 'think for a long time' }],
      streaming: true,
    });
    const events = [];
    let cancelled = false;
    for await (const ev of stream) {
      events.push(ev);
      if (!cancelled && ev.message_type === 'tool_call_message') {
        const answer = await client.agents.messages.cancel(arg.agent_id);
        assert.equal(answer.cancelled_run_ids.length, 1);
        cancelled = true;
      }
    }
    const stop = events.find((e) => e.message_type === 'stop_reason');
    assert.equal(stop.stop_reason, 'cancelled');
    return { events: events.length };
  },

  // A background run, its status and its result.
  async async_run() {
    const agent = await newAgent('background');
    const run = await client.agents.messages.createAsync(agent.id, { messages: [{ role: 'user', content: 'later' }] });
    assert.match(run.id, ID);
    assert.ok(['created', 'running', 'completed'].includes(run.status));
    let status = run;
    for (let i = 0; i < 200 && status.status !== 'completed'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = await client.runs.retrieve(run.id);
    }
    assert.equal(status.status, 'completed');
    assert.equal(status.stop_reason, 'end_turn');
    const msgs = [];
    for await (const m of client.agents.messages.list(agent.id, { order: 'asc' })) msgs.push(m);
    assert.ok(msgs.some((m) => m.message_type === 'assistant_message' && m.content === 'You said: later'));
    await expectError(NotFoundError, () => client.runs.retrieve('run-00000000-0000-4000-8000-000000000000'));
    return {};
  },

  // Two clients on one agent; then twenty agents at once.
  async concurrent() {
    const one = await newAgent('shared');
    const second = new Letta({ baseURL, apiKey: process.env.MEMGPT_PASSWORD ?? null, maxRetries: 0 });
    const [a, b] = await Promise.all([
      client.agents.messages.create(one.id, { messages: [{ role: 'user', content: 'from client one' }] }),
      second.agents.messages.create(one.id, { messages: [{ role: 'user', content: 'from client two' }] }),
    ]);
    assert.equal(reply(a.messages), 'You said: from client one');
    assert.equal(reply(b.messages), 'You said: from client two');
    // Turns of one agent do not interleave: each reply follows its message.
    const msgs = [];
    for await (const m of client.agents.messages.list(one.id, { order: 'asc' })) msgs.push(m);
    const seq = msgs.filter((m) => m.message_type === 'user_message' || m.message_type === 'assistant_message')
      .map((m) => m.content);
    const i1 = seq.indexOf('from client one'), i2 = seq.indexOf('from client two');
    assert.equal(seq[i1 + 1], 'You said: from client one');
    assert.equal(seq[i2 + 1], 'You said: from client two');

    const agents = await Promise.all(Array.from({ length: 20 }, (_, i) => newAgent(`crowd-${i}`)));
    const replies = await Promise.all(agents.map((ag, i) =>
      client.agents.messages.create(ag.id, { messages: [{ role: 'user', content: `agent ${i}` }] })));
    replies.forEach((r, i) => assert.equal(reply(r.messages), `You said: agent ${i}`));
    return { agents: agents.length + 1 };
  },

  // Agent Files: export, import, the round trip, the published files.
  async agentfile() {
    const agent = await newAgent('traveller', { tags: ['af'], description: 'moves between servers' });
    for (const t of ['first words', 'second words'])
      await client.agents.messages.create(agent.id, { messages: [{ role: 'user', content: t }] });
    await client.agents.blocks.update('human', { agent_id: agent.id, value: 'Name: Ada\nLikes: tea' });
    const exported = await client.agents.exportFile(agent.id);
    const doc = typeof exported === 'string' ? JSON.parse(exported) : exported;
    assert.equal(doc.agents.length, 1);
    assert.equal(doc.agents[0].name, 'traveller');
    assert.ok(doc.agents[0].messages.length >= 7);
    const imported = await client.agents.importFile({
      file: await toFile(Buffer.from(JSON.stringify(doc)), 'traveller.af'),
      name: 'traveller-copy',
    });
    assert.equal(imported.agent_ids.length, 1);
    const copy = await client.agents.retrieve(imported.agent_ids[0]);
    assert.equal(copy.name, 'traveller-copy');
    assert.deepEqual(copy.tags, ['af']);
    const human = copy.memory.blocks.find((b) => b.label === 'human');
    assert.equal(human.value, 'Name: Ada\nLikes: tea');
    const said = [];
    for await (const m of client.agents.messages.list(copy.id, { order: 'asc' }))
      if (m.message_type === 'user_message') said.push(m.content);
    assert.deepEqual(said, ['first words', 'second words']);
    const again = await client.agents.exportFile(copy.id);
    const doc2 = typeof again === 'string' ? JSON.parse(again) : again;
    const strip = (d) => {
      const c = structuredClone(d);
      delete c.created_at;
      c.agents[0].name = 'x';
      c.agents[0].messages[0].created_at = 'x';
      return c;
    };
    assert.deepEqual(strip(doc2), strip(doc), 'export, import, export gives the same document');
    // The published files, in both forms.
    const report = {};
    for (const name of arg.files) {
      const data = readFileSync(name);
      const res = await client.agents.importFile({ file: await toFile(data, name.split('/').pop()) });
      assert.equal(res.agent_ids.length, 1);
      const a = await client.agents.retrieve(res.agent_ids[0]);
      report[name.split('/').pop()] = { name: a.name, blocks: a.blocks.length, tools: a.tools.map((t) => t.name) };
    }
    const bad = await toFile(Buffer.from('{"agents": [{"id": "agent-0", "block_ids": ["block-9"]}], "blocks": []}'), 'bad.af');
    const refused = await expectError(UnprocessableEntityError, () => client.agents.importFile({ file: bad }));
    assert.match(JSON.stringify(refused.error), /block_ids\[0\].*block-9/);
    return report;
  },

  // Reset empties the window (recall keeps everything); compact summarizes.
  // MCP servers and tools: add a stdio server, list its tools, attach one
  // to an agent, watch the agent call it, then detach, rename and delete.
  async mcp() {
    const stdio = { mcp_server_type: 'stdio', command: 'node', args: [arg.everything, 'stdio'] };
    const server = await client.mcpServers.create({
      server_name: 'every', config: { ...stdio, env: { PROBE_SECRET: 'hush-hush' } },
    });
    assert.match(server.id, /^mcp_server-[0-9a-f]{8}-[0-9a-f-]{27}$/);
    assert.equal(server.server_name, 'every');
    assert.equal(server.mcp_server_type, 'stdio');
    assert.deepEqual(server.env, { PROBE_SECRET: '****' });
    assert.deepEqual((await client.mcpServers.list()).map((s) => s.id), [server.id]);
    assert.equal((await client.mcpServers.retrieve(server.id)).command, 'node');
    const tools = await client.mcpServers.tools.list(server.id);
    const echo = tools.find((t) => t.name === 'echo');
    assert.ok(echo, 'echo among the tools');
    assert.match(echo.id, ID);
    assert.equal(echo.tool_type, 'external_mcp');
    assert.ok(echo.json_schema.parameters.properties.message);
    const agent = await newAgent('mcp-user');
    const attached = await client.agents.tools.attach(echo.id, { agent_id: agent.id });
    assert.ok(attached.tools.some((t) => t.id === echo.id && t.name === 'echo'));
    const listed = [];
    for await (const t of client.agents.tools.list(agent.id, { limit: 50 })) listed.push(t);
    assert.ok(listed.some((t) => t.id === echo.id && t.tool_type === 'external_mcp'));
    const res = await client.agents.messages.create(agent.id, {
      messages: [{ role: 'user', content: 'echo something' }],
    });
    const ret = res.messages.find((m) => m.message_type === 'tool_return_message' && m.name === 'echo');
    assert.ok(ret, JSON.stringify(res.messages));
    assert.match(ret.tool_return, /Echo: from the sdk/);
    assert.equal(reply(res.messages), arg.reply);
    const detached = await client.agents.tools.detach(echo.id, { agent_id: agent.id });
    assert.ok(!detached.tools.some((t) => t.name === 'echo'));
    await assert.rejects(client.agents.tools.detach(echo.id, { agent_id: agent.id }), NotFoundError);
    await assert.rejects(client.agents.tools.attach(`tool-${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`,
      { agent_id: agent.id }), NotFoundError);
    const renamed = await client.mcpServers.update(server.id, { server_name: 'everything', config: stdio });
    assert.equal(renamed.server_name, 'everything');
    assert.deepEqual(renamed.env, { PROBE_SECRET: '****' });
    await assert.rejects(client.mcpServers.create({
      server_name: 'old', config: { mcp_server_type: 'sse', server_url: 'http://127.0.0.1:9/sse' },
    }), UnprocessableEntityError);
    await client.mcpServers.delete(server.id);
    assert.deepEqual(await client.mcpServers.list(), []);
    await assert.rejects(client.mcpServers.retrieve(server.id), NotFoundError);
    return { tools: tools.length };
  },

  async reset() {
    const agent = await newAgent('forgetful');
    for (const t of ['one', 'two', 'three'])
      await client.agents.messages.create(agent.id, { messages: [{ role: 'user', content: t }] });
    const before = await client.agents.retrieve(agent.id);
    assert.ok(before.message_ids.length >= 9);
    const summary = await client.agents.messages.compact(agent.id);
    assert.ok(summary.num_messages_after < summary.num_messages_before);
    assert.ok(summary.summary.length > 0);
    const reset = await client.agents.messages.reset(agent.id, {});
    assert.equal(reset.message_ids.length, 0);
    const all = [];
    for await (const m of client.agents.messages.list(agent.id)) all.push(m);
    assert.ok(all.filter((m) => m.message_type === 'user_message').length >= 3, 'recall keeps everything');
    const again = await client.agents.messages.create(agent.id, { messages: [{ role: 'user', content: 'fresh start' }] });
    assert.equal(reply(again.messages), 'You said: fresh start');
    return {};
  },
};

const name = process.argv[2];
if (!scenarios[name]) {
  console.error(`unknown scenario '${name}'; one of: ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}
try {
  const result = await scenarios[name]();
  console.log(JSON.stringify(result ?? {}));
} catch (e) {
  console.error(e.stack || String(e));
  process.exit(1);
}
