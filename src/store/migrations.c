/*
 * migrations.c - the schema, as an ordered list of migrations.
 *
 * Migration i (1-based) takes the database from user_version i-1 to i. Never
 * edit a migration that has shipped: append a new one. Each runs inside one
 * transaction together with the user_version bump, so a crash mid-migration
 * leaves the previous version intact.
 *
 * Times are epoch milliseconds. Messages are never deleted by the runtime:
 * eviction only clears in_context. search_text is the text worth finding
 * (what was said, not the JSON envelope), kept in an external-content FTS5
 * table by triggers.
 */
#include "store/migrations.h"

/* An id as util/uuid.c makes them, led by the time `ms` (an SQL
 * expression), random after it; evaluated afresh for every row. */
#define SQL_UUID(ms)                                                                               \
    "(printf('%08x-%04x-4', (" ms ") >> 16, (" ms ") & 65535) ||"                                   \
    " substr(lower(hex(randomblob(2))), 2) || '-' ||"                                              \
    " substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' ||" \
    " lower(hex(randomblob(6))))"

static const char *const migrations[] = {
    /* 1: agents, core memory blocks, recall messages, archival passages. */
    "CREATE TABLE agents("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  model TEXT NOT NULL,"
    "  context_window INTEGER NOT NULL CHECK(context_window > 0),"
    "  system_prompt TEXT,"
    "  embedder TEXT NOT NULL,"
    "  step_limit INTEGER NOT NULL,"
    "  reflect_every INTEGER NOT NULL,"
    "  idle_seconds INTEGER NOT NULL,"
    "  warn_fraction REAL NOT NULL,"
    "  flush_fraction REAL NOT NULL,"
    "  summary TEXT NOT NULL DEFAULT '',"
    "  summarized_count INTEGER NOT NULL DEFAULT 0,"
    "  warned INTEGER NOT NULL DEFAULT 0,"
    "  user_since_reflect INTEGER NOT NULL DEFAULT 0,"
    "  paused_until INTEGER NOT NULL DEFAULT 0,"
    "  token_scale REAL NOT NULL DEFAULT 1.0,"
    "  memory_updated_at INTEGER NOT NULL,"
    "  last_login INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE blocks("
    "  agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    "  label TEXT NOT NULL,"
    "  value TEXT NOT NULL,"
    "  char_limit INTEGER NOT NULL CHECK(char_limit > 0),"
    "  description TEXT,"
    "  read_only INTEGER NOT NULL DEFAULT 0,"
    "  position INTEGER NOT NULL,"
    "  PRIMARY KEY(agent_id, label)"
    ");"
    "CREATE TABLE messages("
    "  id INTEGER PRIMARY KEY,"
    "  agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    "  role TEXT NOT NULL CHECK(role IN ('user', 'assistant', 'tool')),"
    "  kind TEXT NOT NULL,"
    "  content TEXT,"
    "  tool_calls TEXT,"
    "  tool_call_id TEXT,"
    "  tool_name TEXT,"
    "  search_text TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL,"
    "  in_context INTEGER NOT NULL DEFAULT 1"
    ");"
    "CREATE INDEX messages_context ON messages(agent_id, in_context, id);"
    "CREATE INDEX messages_time ON messages(agent_id, created_at);"
    "CREATE VIRTUAL TABLE messages_fts USING fts5(search_text, content='messages',"
    "  content_rowid='id', tokenize='porter unicode61 remove_diacritics 2');"
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN"
    "  INSERT INTO messages_fts(rowid, search_text) VALUES (new.id, new.search_text);"
    "END;"
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN"
    "  INSERT INTO messages_fts(messages_fts, rowid, search_text)"
    "    VALUES ('delete', old.id, old.search_text);"
    "END;"
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF search_text ON messages BEGIN"
    "  INSERT INTO messages_fts(messages_fts, rowid, search_text)"
    "    VALUES ('delete', old.id, old.search_text);"
    "  INSERT INTO messages_fts(rowid, search_text) VALUES (new.id, new.search_text);"
    "END;"
    "CREATE TABLE passages("
    "  id INTEGER PRIMARY KEY,"
    "  agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    "  text TEXT NOT NULL,"
    "  tags TEXT NOT NULL DEFAULT '[]',"
    "  created_at INTEGER NOT NULL,"
    "  embedder TEXT NOT NULL,"
    "  embedding BLOB NOT NULL"
    ");"
    "CREATE INDEX passages_agent ON passages(agent_id, id);"
    "CREATE VIRTUAL TABLE passages_fts USING fts5(text, content='passages',"
    "  content_rowid='id', tokenize='porter unicode61 remove_diacritics 2');"
    "CREATE TRIGGER passages_fts_insert AFTER INSERT ON passages BEGIN"
    "  INSERT INTO passages_fts(rowid, text) VALUES (new.id, new.text);"
    "END;"
    "CREATE TRIGGER passages_fts_delete AFTER DELETE ON passages BEGIN"
    "  INSERT INTO passages_fts(passages_fts, rowid, text) VALUES ('delete', old.id, old.text);"
    "END;",

    /* 2: per-agent counts kept by triggers, so opening an agent (every
     * `memgpt send`) does not count its whole history. */
    "ALTER TABLE agents ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN passage_count INTEGER NOT NULL DEFAULT 0;"
    "UPDATE agents SET"
    "  message_count = (SELECT count(*) FROM messages WHERE agent_id = agents.id),"
    "  passage_count = (SELECT count(*) FROM passages WHERE agent_id = agents.id);"
    "CREATE TRIGGER messages_count_insert AFTER INSERT ON messages BEGIN"
    "  UPDATE agents SET message_count = message_count + 1 WHERE id = new.agent_id;"
    "END;"
    "CREATE TRIGGER messages_count_delete AFTER DELETE ON messages BEGIN"
    "  UPDATE agents SET message_count = message_count - 1 WHERE id = old.agent_id;"
    "END;"
    "CREATE TRIGGER passages_count_insert AFTER INSERT ON passages BEGIN"
    "  UPDATE agents SET passage_count = passage_count + 1 WHERE id = new.agent_id;"
    "END;"
    "CREATE TRIGGER passages_count_delete AFTER DELETE ON passages BEGIN"
    "  UPDATE agents SET passage_count = passage_count - 1 WHERE id = old.agent_id;"
    "END;",

    /* 3: an assistant message's own content blocks, kept when the provider
     * must get them back unchanged (Anthropic's signed thinking blocks); NULL
     * for every other message. See mg_msg.raw_content. */
    "ALTER TABLE messages ADD COLUMN raw_content TEXT;",

    /* 4: where a loaded passage came from (`archival load`): its file, the
     * byte offset of its text there (of its line, for JSON Lines), and the
     * SHA-256 of its whitespace-normalised text, so loading a file twice
     * stores nothing new. NULL for passages stored otherwise until a load
     * hashes them. See memory/passages_db.h. */
    "ALTER TABLE passages ADD COLUMN source TEXT;"
    "ALTER TABLE passages ADD COLUMN position INTEGER;"
    "ALTER TABLE passages ADD COLUMN content_hash TEXT;"
    "CREATE INDEX passages_hash ON passages(agent_id, content_hash);",

    /* 5: recall search by default covers what was said; an option adds the
     * rest. search_text now holds only what was said (a user message, the
     * agent's send_message texts, a plain-text reply); the new inner_text
     * holds the rest (inner monologue, other function calls as
     * name(arguments), function results as "name: text", system events).
     * messages_fts indexes both as two columns, so a default search is a
     * column filter on the same index (see memory/recall.c). Old rows are
     * split here the way recall_index_text splits new ones: the old
     * assistant search_text was the monologue, a newline, then the replies;
     * the old text of every other row moves whole. Malformed tool_calls are
     * skipped rather than allowed to abort the upgrade.
     * Inserts no longer fire triggers: recall_insert adds the FTS row and
     * bumps agents.message_count itself. Any trigger on an INSERT makes
     * SQLite open a statement savepoint, and FTS5 (3.40) flushes its pending
     * terms to a new segment at every savepoint, so each message became a
     * segment to merge: bulk inserts ran at a fifth of FTS5's own speed
     * (bench/README.md, recall). Deletes and text edits are rare and keep
     * their triggers. */
    "DROP TRIGGER messages_fts_insert;"
    "DROP TRIGGER messages_fts_delete;"
    "DROP TRIGGER messages_fts_update;"
    "DROP TABLE messages_fts;"
    "ALTER TABLE messages ADD COLUMN inner_text TEXT NOT NULL DEFAULT '';"
    "UPDATE messages SET"
    "  inner_text = CASE WHEN coalesce(content, '') = '' THEN"
    "      substr(coalesce((SELECT group_concat(c.text, '') FROM (SELECT char(10) ||"
    "        json_extract(value, '$.name') || '(' || json_extract(value, '$.arguments') || ')'"
    "        AS text FROM json_each(CASE WHEN json_valid(tool_calls) THEN tool_calls ELSE '[]' END)"
    "        WHERE json_extract(value, '$.name') IS NOT 'send_message' ORDER BY key) c), ''), 2)"
    "    ELSE content || coalesce((SELECT group_concat(c.text, '') FROM (SELECT char(10) ||"
    "        json_extract(value, '$.name') || '(' || json_extract(value, '$.arguments') || ')'"
    "        AS text FROM json_each(CASE WHEN json_valid(tool_calls) THEN tool_calls ELSE '[]' END)"
    "        WHERE json_extract(value, '$.name') IS NOT 'send_message' ORDER BY key) c), '')"
    "    END,"
    "  search_text = CASE WHEN coalesce(content, '') = '' THEN search_text"
    "    WHEN length(search_text) > length(content) THEN substr(search_text, length(content) + 2)"
    "    ELSE '' END"
    "  WHERE role = 'assistant' AND tool_calls IS NOT NULL;"
    "UPDATE messages SET inner_text = CASE WHEN coalesce(tool_name, '') = '' THEN search_text"
    "    ELSE tool_name || ': ' || search_text END, search_text = ''"
    "  WHERE role = 'tool';"
    "UPDATE messages SET inner_text = search_text, search_text = ''"
    "  WHERE role = 'user' AND kind <> 'user_message';"
    "CREATE VIRTUAL TABLE messages_fts USING fts5(search_text, inner_text, content='messages',"
    "  content_rowid='id', tokenize='porter unicode61 remove_diacritics 2');"
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');"
    "DROP TRIGGER messages_count_insert;"
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN"
    "  INSERT INTO messages_fts(messages_fts, rowid, search_text, inner_text)"
    "    VALUES ('delete', old.id, old.search_text, old.inner_text);"
    "END;"
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF search_text, inner_text ON messages BEGIN"
    "  INSERT INTO messages_fts(messages_fts, rowid, search_text, inner_text)"
    "    VALUES ('delete', old.id, old.search_text, old.inner_text);"
    "  INSERT INTO messages_fts(rowid, search_text, inner_text)"
    "    VALUES (new.id, new.search_text, new.inner_text);"
    "END;",

    /* 6: passages, like messages in 5, are inserted without triggers:
     * passages_db_insert adds the FTS row and its callers bump
     * agents.passage_count, in the inserting transaction. With the triggers
     * FTS5 wrote a segment per passage and merged them again and again:
     * `archival load` took a third more CPU (bench/README.md, section 6).
     * The delete triggers stay. */
    "DROP TRIGGER passages_fts_insert;"
    "DROP TRIGGER passages_count_insert;",

    /* 7: public ids in the form Letta's API uses (see util/uuid.h) for
     * agents, blocks, messages and passages, new rows getting theirs from
     * the inserting code; existing rows get ids led by their creation time
     * (blocks: now), so the indexes fill in order. And the agent's fields
     * that only the server's clients set: a description, tags (a JSON
     * array) and metadata (a JSON object). */
    "ALTER TABLE agents ADD COLUMN uuid TEXT;"
    "UPDATE agents SET uuid = " SQL_UUID("created_at") ";"
    "CREATE UNIQUE INDEX agents_uuid ON agents(uuid);"
    "ALTER TABLE agents ADD COLUMN description TEXT;"
    "ALTER TABLE agents ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';"
    "ALTER TABLE agents ADD COLUMN metadata TEXT;"
    "ALTER TABLE blocks ADD COLUMN uuid TEXT;"
    "UPDATE blocks SET uuid = " SQL_UUID("CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)") ";"
    "CREATE UNIQUE INDEX blocks_uuid ON blocks(uuid);"
    "ALTER TABLE messages ADD COLUMN uuid TEXT;"
    "UPDATE messages SET uuid = " SQL_UUID("created_at") ";"
    "CREATE UNIQUE INDEX messages_uuid ON messages(uuid);"
    "ALTER TABLE passages ADD COLUMN uuid TEXT;"
    "UPDATE passages SET uuid = " SQL_UUID("created_at") ";"
    "CREATE UNIQUE INDEX passages_uuid ON passages(uuid);",

    /* 8: what an agent carries beyond our base functions, for Agent Files
     * (agent/agentfile.c): the optional built-in functions it is offered
     * (memory_insert, memory_replace, memory_rethink; a JSON array of
     * names), the tools of an imported file that we do not run (kept as
     * the file gave them, written back on export, never offered to the
     * model), and the file's tool rules (kept, not yet enforced). */
    "ALTER TABLE agents ADD COLUMN functions TEXT NOT NULL DEFAULT '[]';"
    "ALTER TABLE agents ADD COLUMN foreign_tools TEXT NOT NULL DEFAULT '[]';"
    "ALTER TABLE agents ADD COLUMN tool_rules TEXT NOT NULL DEFAULT '[]';",

    /* 9: work an application acknowledged before it ran (the server's
     * background runs): kept until the event it starts is stored, in the
     * same transaction, so a crash in between neither loses nor repeats it
     * (agent/pending.c). */
    "CREATE TABLE pending_inputs("
    "  id INTEGER PRIMARY KEY,"
    "  uuid TEXT NOT NULL UNIQUE,"
    "  agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    "  request TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL"
    ");",

    /* 10: how such work ended (the server's finished background runs), so
     * a client polling for it after a restart still gets its answer
     * (agent/pending.c): any JSON text the application defines. */
    "CREATE TABLE pending_outcomes("
    "  uuid TEXT PRIMARY KEY,"
    "  agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    "  outcome TEXT NOT NULL,"
    "  finished_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX pending_outcomes_agent ON pending_outcomes(agent_id);",

    /* 11: when the agent's last context flush happened (epoch ms; 0:
     * never), for those who watch its memory (the web app). */
    "ALTER TABLE agents ADD COLUMN last_flush_at INTEGER NOT NULL DEFAULT 0;",

    /* 12: MCP servers, shared by every agent of the data directory
     * (tools/tools.c): `config` is Letta's shape of one, secrets included
     * (never shown: lists redact them); and the tools attached to each
     * agent, with the schema offered to the model, taken at attach time so
     * that opening an agent starts no server. */
    "CREATE TABLE mcp_servers("
    "  id INTEGER PRIMARY KEY,"
    "  uuid TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL UNIQUE,"
    "  config TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE agent_tools("
    "  agent_id INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    "  server_id INTEGER NOT NULL REFERENCES mcp_servers(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  schema TEXT NOT NULL,"
    "  PRIMARY KEY(agent_id, name)"
    ");"
    "CREATE INDEX agent_tools_server ON agent_tools(server_id);",

    /* 13: Python tools (an Agent File's, kept in foreign_tools) run only
     * once the user enables them for the agent; tool_env holds the
     * variables their processes get (Letta's secrets), never shown. */
    "ALTER TABLE agents ADD COLUMN python_tools INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agents ADD COLUMN tool_env TEXT NOT NULL DEFAULT '{}';",
};

int mg_schema_version(void)
{
    return (int)(sizeof migrations / sizeof migrations[0]);
}

const char *mg_schema_migration(int version)
{
    if (version < 1 || version > mg_schema_version()) return 0;
    return migrations[version - 1];
}
