-- The DuckDB workbench schema: the harness's `conversations` and
-- `conversation_entries` tables (SPEC §4, migrations 1-8) with native JSON and
-- TIMESTAMP types, plus the columns that keep several loaded sources apart.
--
-- source: where a row came from ('store' for rows the DuckDBStore wrote, or a
--   loaded source's name). Every rule (seq space, id uniqueness) holds per source.
-- dup: 0 for a normal row. A loader that meets a duplicate (conversation_id, seq)
--   or a duplicate id in one source keeps the row (it is an anomaly, not junk)
--   and gives it a unique positive dup, so the store's unique keys (keys.sql)
--   still guard every row it writes (dup = 0) while anomalies stay loadable.
--
-- No keys here: a workspace that is loaded and audited needs none (the load
-- ranks duplicates itself), and maintaining them was a third of a load's
-- time. The DuckDBStore adds them (keys.sql) before its first write.
-- ordinal: the row's position in its source, a stable tie-breaker for equal seqs.

CREATE TABLE IF NOT EXISTS conversations (
    source VARCHAR NOT NULL DEFAULT 'store',
    id VARCHAR NOT NULL,
    agent_id VARCHAR NOT NULL,
    tenant_id VARCHAR NOT NULL DEFAULT '__default__',
    owner_id VARCHAR NOT NULL DEFAULT 'local-owner',
    title VARCHAR NOT NULL DEFAULT 'New conversation',
    data JSON NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP,
    updated_at TIMESTAMP,
    tool_result_archive JSON,
    harness_messages JSON,
    continuation_messages JSON,
    parent_conversation_id VARCHAR,
    has_pending_approvals INTEGER NOT NULL DEFAULT 0,
    channel_meta JSON,
    parent_message_id VARCHAR
);

CREATE TABLE IF NOT EXISTS conversation_entries (
    source VARCHAR NOT NULL DEFAULT 'store',
    seq BIGINT NOT NULL,
    id VARCHAR NOT NULL,
    agent_id VARCHAR NOT NULL,
    tenant_id VARCHAR NOT NULL DEFAULT '__default__',
    conversation_id VARCHAR NOT NULL,
    type VARCHAR NOT NULL,
    payload JSON NOT NULL,
    created_at TIMESTAMP,
    dup INTEGER NOT NULL DEFAULT 0,
    ordinal BIGINT
);

CREATE TABLE IF NOT EXISTS quarantine (
    source VARCHAR NOT NULL,
    "table" VARCHAR NOT NULL,
    row_key VARCHAR,
    conversation_id VARCHAR,
    seq BIGINT,
    reason VARCHAR NOT NULL,
    detail VARCHAR,
    raw VARCHAR
);
