-- The keys the DuckDBStore's writes rest on, added to schema.sql's tables by
-- poncho_replay.store.duckdb.ensure_keys before a store's first statement:
-- the harness's UNIQUE (conversation_id, seq) and UNIQUE (id) of its entries
-- (SPEC §4) and the blob's primary key, each per source and with the
-- loader's dup (0 for every row a store writes). A gap-free seq under
-- concurrent appenders and the upsert's ON CONFLICT need them; a workspace
-- that is only loaded and audited does not, so its loads skip them.
CREATE UNIQUE INDEX IF NOT EXISTS conversations_key ON conversations (source, id);
CREATE UNIQUE INDEX IF NOT EXISTS conversation_entries_seq_key ON conversation_entries (source, conversation_id, seq, dup);
CREATE UNIQUE INDEX IF NOT EXISTS conversation_entries_id_key ON conversation_entries (source, id, dup);
