-- Ingest of one loaded source: staged raw rows -> checked -> tables + quarantine.
--
-- Readers fill _stage_conversations / _stage_entries (every column VARCHAR,
-- exactly as the source holds it, plus the row's ordinal): Arrow tables the
-- Stager registers under those names, or temp tables for a source too large
-- to hold in memory (poncho_replay.sources.ingest.Stager). Each block below
-- is one statement, run by poncho_replay.sources.ingest in order; $source is
-- always a bound parameter. Nothing is repaired silently: a row either loads
-- as it was, or goes to quarantine with a reason from a fixed vocabulary.
--
-- Memory: the staged rows are the only copy of the source's text until the
-- final insert. The checks keep just (row_id, problem) of the bad rows
-- (_bad_conversations, _bad_entries: few, so excluding them is a cheap anti
-- join) and every later step joins back to the stage by row_id (the stager's
-- own counter: an export's ordinals need not be unique); duplicates are
-- ranked only among the rows that share a key, over the narrow key columns,
-- never over the payloads.

-- name: check_conversations
CREATE OR REPLACE TEMP TABLE _bad_conversations AS
WITH base AS (
    SELECT s.*, CASE
        WHEN s.problem_reason IS NOT NULL THEN {'reason': s.problem_reason, 'field': s.problem_field}
        WHEN s.data IS NOT NULL AND NOT json_valid(s.data) THEN {'reason': 'invalid_json', 'field': 'data'}
        WHEN s.id IS NULL THEN {'reason': 'missing_field', 'field': 'id'}
        WHEN s.agent_id IS NULL THEN {'reason': 'missing_field', 'field': 'agent_id'}
        WHEN s.tenant_id IS NULL THEN {'reason': 'missing_field', 'field': 'tenant_id'}
        WHEN s.owner_id IS NULL THEN {'reason': 'missing_field', 'field': 'owner_id'}
        WHEN s.title IS NULL THEN {'reason': 'missing_field', 'field': 'title'}
        WHEN s.data IS NULL THEN {'reason': 'missing_field', 'field': 'data'}
        WHEN json_type(s.data) <> 'OBJECT' THEN {'reason': 'wrong_type', 'field': 'data'}
        WHEN s.tool_result_archive IS NOT NULL AND NOT json_valid(s.tool_result_archive)
            THEN {'reason': 'invalid_json', 'field': 'tool_result_archive'}
        WHEN s.harness_messages IS NOT NULL AND NOT json_valid(s.harness_messages)
            THEN {'reason': 'invalid_json', 'field': 'harness_messages'}
        WHEN s.continuation_messages IS NOT NULL AND NOT json_valid(s.continuation_messages)
            THEN {'reason': 'invalid_json', 'field': 'continuation_messages'}
        WHEN s.channel_meta IS NOT NULL AND NOT json_valid(s.channel_meta)
            THEN {'reason': 'invalid_json', 'field': 'channel_meta'}
        -- INTEGER columns: digits that do not fit 32 bits are as wrong as letters (the insert casts).
        WHEN NOT pr_is_int_text(s.message_count) OR TRY_CAST(s.message_count AS INTEGER) IS NULL
            THEN {'reason': 'wrong_type', 'field': 'message_count'}
        WHEN s.has_pending_approvals IS NOT NULL AND (NOT pr_is_int_text(s.has_pending_approvals)
                OR TRY_CAST(s.has_pending_approvals AS INTEGER) IS NULL)
            THEN {'reason': 'wrong_type', 'field': 'has_pending_approvals'}
        WHEN s.created_at IS NOT NULL AND pr_ts(s.created_at) IS NULL
            THEN {'reason': 'wrong_type', 'field': 'created_at'}
        WHEN s.updated_at IS NOT NULL AND pr_ts(s.updated_at) IS NULL
            THEN {'reason': 'wrong_type', 'field': 'updated_at'}
    END AS problem
    FROM _stage_conversations s
)
SELECT * FROM (
    SELECT row_id, CASE
        WHEN problem IS NULL AND row_number() OVER (PARTITION BY problem IS NULL, id ORDER BY ordinal) > 1
            THEN {'reason': 'duplicate_conversation', 'field': 'id'}
        ELSE problem END AS problem
    FROM base
) WHERE problem IS NOT NULL;

-- name: check_entries
-- One pass: each payload is parsed for validity, for the JSON types of the
-- paths its type needs and for the strings compared (validate.sql); a row's
-- fields are checked only when nothing before them failed (CASE is lazy).
CREATE OR REPLACE TEMP TABLE _bad_entries AS
WITH parsed AS (
    SELECT s.*, json_valid(s.payload) AS valid FROM _stage_entries s
),
typed AS (
    SELECT p.*, CASE WHEN p.valid THEN pr_entry_json_types(p.payload, p.type) END AS t,
        CASE WHEN p.valid THEN pr_entry_json_strings(p.payload, p.type) END AS v
    FROM parsed p
)
SELECT * FROM (SELECT row_id, CASE
    WHEN problem_reason IS NOT NULL THEN {'reason': problem_reason, 'field': problem_field}
    WHEN payload IS NOT NULL AND NOT valid THEN {'reason': 'invalid_json', 'field': 'payload'}
    WHEN id IS NULL THEN {'reason': 'missing_field', 'field': 'id'}
    WHEN conversation_id IS NULL THEN {'reason': 'missing_field', 'field': 'conversation_id'}
    WHEN agent_id IS NULL THEN {'reason': 'missing_field', 'field': 'agent_id'}
    WHEN tenant_id IS NULL THEN {'reason': 'missing_field', 'field': 'tenant_id'}
    WHEN NOT pr_is_int_text(seq) THEN {'reason': 'bad_seq', 'field': 'seq'}
    WHEN payload IS NULL THEN {'reason': 'missing_field', 'field': 'payload'}
    WHEN t[1] <> 'OBJECT' THEN {'reason': 'wrong_type', 'field': 'payload'}
    WHEN created_at IS NOT NULL AND pr_ts(created_at) IS NULL THEN {'reason': 'wrong_type', 'field': 'created_at'}
    WHEN t[2] IS NULL THEN {'reason': 'missing_field', 'field': 'type'}
    WHEN t[2] <> 'VARCHAR' OR NOT list_contains(pr_entry_types(), v[1]) THEN {'reason': 'unknown_type', 'field': 'type'}
    WHEN type IS DISTINCT FROM v[1] THEN {'reason': 'type_mismatch', 'field': 'type'}
    ELSE pr_entry_problem(payload, type, t, v)
END AS problem
FROM typed) WHERE problem IS NOT NULL;

-- name: first_problem
SELECT tbl, conversation_id, seq, problem.reason, problem.field, source_row FROM (
    SELECT 'conversations' AS tbl, 0 AS k, s.ordinal, s.id AS conversation_id, NULL AS seq, problem, s.source_row
    FROM _bad_conversations JOIN _stage_conversations AS s USING (row_id)
    UNION ALL
    SELECT 'conversation_entries', 1, s.ordinal, s.conversation_id, s.seq, problem, s.source_row
    FROM _bad_entries JOIN _stage_entries AS s USING (row_id)
) ORDER BY k, ordinal LIMIT 1;

-- name: clear_source
DELETE FROM conversations WHERE source = $source;
-- name: clear_entries
DELETE FROM conversation_entries WHERE source = $source;
-- name: clear_quarantine
DELETE FROM quarantine WHERE source = $source;

-- name: insert_conversations
INSERT INTO conversations BY NAME
WITH blob AS (
    -- The blob keys read below, parsed once: t = their JSON types (NULL:
    -- absent), v = the two id strings.
    SELECT c.*,
        json_type(c.data, ['$._toolResultArchive', '$._harnessMessages', '$._continuationMessages',
            '$.pendingApprovals', '$.channelMeta']) AS t,
        json_extract_string(c.data, ['$.parentConversationId', '$.parentMessageId']) AS v
    FROM _stage_conversations c ANTI JOIN _bad_conversations k ON k.row_id = c.row_id
),
moved AS (
    -- Before migration 3 the heavy fields live inside `data`; the harness's
    -- get() then uses them as they are. Move them to their columns (the
    -- DuckDB store's layout) only when the column itself is empty.
    SELECT b.*,
        coalesce(b.tool_result_archive, CASE WHEN t[1] <> 'NULL'
            THEN json_extract(b.data, '$._toolResultArchive')::VARCHAR END) AS tra,
        coalesce(b.harness_messages, CASE WHEN t[2] <> 'NULL'
            THEN json_extract(b.data, '$._harnessMessages')::VARCHAR END) AS hm,
        coalesce(b.continuation_messages, CASE WHEN t[3] <> 'NULL'
            THEN json_extract(b.data, '$._continuationMessages')::VARCHAR END) AS cm,
        (b.tool_result_archive IS NULL AND t[1] IS NOT NULL) AS rm_tra,
        (b.harness_messages IS NULL AND t[2] IS NOT NULL) AS rm_hm,
        (b.continuation_messages IS NULL AND t[3] IS NOT NULL) AS rm_cm
    FROM blob b
)
SELECT $source AS source, id, agent_id, tenant_id, owner_id, title,
    CASE WHEN rm_tra OR rm_hm OR rm_cm THEN json_remove(json_remove(json_remove(data,
        CASE WHEN rm_tra THEN '$._toolResultArchive' ELSE '$.__pr_absent' END),
        CASE WHEN rm_hm THEN '$._harnessMessages' ELSE '$.__pr_absent' END),
        CASE WHEN rm_cm THEN '$._continuationMessages' ELSE '$.__pr_absent' END)::VARCHAR
    ELSE data END AS data,
    CAST(message_count AS INTEGER) AS message_count,
    pr_ts(created_at) AS created_at, pr_ts(updated_at) AS updated_at,
    tra AS tool_result_archive, hm AS harness_messages, cm AS continuation_messages,
    -- Migrations 4 and 6 backfilled these with SQL that reads NULL on a
    -- string-scalar blob (SPEC §4, On PostgreSQL), and older files lack them:
    -- a NULL takes the blob's value, as the harness's own row writes would.
    coalesce(parent_conversation_id, v[1]) AS parent_conversation_id,
    coalesce(CAST(has_pending_approvals AS INTEGER),
        CASE WHEN t[4] = 'ARRAY' AND json_array_length(data, '$.pendingApprovals') > 0 THEN 1 ELSE 0 END)
        AS has_pending_approvals,
    coalesce(channel_meta, CASE WHEN t[5] NOT IN ('NULL') THEN json_extract(data, '$.channelMeta')::VARCHAR END)
        AS channel_meta,
    coalesce(parent_message_id, v[2]) AS parent_message_id
FROM moved ORDER BY ordinal;

-- name: insert_entries
INSERT INTO conversation_entries BY NAME
WITH keys AS (  -- the narrow columns the duplicate ranking needs
    SELECT s.row_id, s.ordinal, s.id, s.conversation_id, CAST(s.seq AS BIGINT) AS seq_i
    FROM _stage_entries s ANTI JOIN _bad_entries k ON k.row_id = s.row_id
),
shared AS (  -- the rows that share a (conversation_id, seq) or an id: the only ones ranked
    SELECT * FROM keys WHERE (conversation_id, seq_i) IN (
        SELECT (conversation_id, seq_i) FROM keys GROUP BY conversation_id, seq_i HAVING count(*) > 1)
    UNION
    SELECT * FROM keys WHERE id IN (SELECT id FROM keys GROUP BY id HAVING count(*) > 1)
),
later AS (  -- every holder of a key but the first (by ordinal) of each of its keys
    SELECT row_id, ordinal FROM (
        SELECT row_id, ordinal,
            row_number() OVER (PARTITION BY conversation_id, seq_i ORDER BY ordinal) = 1
                AND row_number() OVER (PARTITION BY id ORDER BY ordinal) = 1 AS first
        FROM shared
    ) WHERE NOT first
),
dups AS (
    -- The schema header: duplicates keep a unique positive dup, firsts keep 0.
    SELECT row_id, row_number() OVER (ORDER BY ordinal) AS dup FROM later
)
SELECT $source AS source, CAST(s.seq AS BIGINT) AS seq, s.id, s.agent_id, s.tenant_id, s.conversation_id, s.type,
    s.payload, pr_ts(s.created_at) AS created_at, coalesce(d.dup, 0) AS dup, s.ordinal
FROM _stage_entries s ANTI JOIN _bad_entries k ON k.row_id = s.row_id
LEFT JOIN dups d ON d.row_id = s.row_id
ORDER BY s.ordinal;

-- name: insert_quarantine
-- A reader that knows where a row sits in its file (an export's "line 12")
-- and its original text (a line that is not JSON) sends them: they win.
INSERT INTO quarantine
SELECT $source, 'conversations', coalesce(source_row, id, '#' || ordinal), id, NULL, problem.reason, problem.field,
    coalesce(source_text, to_json({'id': id, 'agent_id': agent_id, 'tenant_id': tenant_id, 'owner_id': owner_id, 'title': title,
        'data': data, 'message_count': message_count, 'created_at': created_at, 'updated_at': updated_at,
        'tool_result_archive': tool_result_archive, 'harness_messages': harness_messages,
        'continuation_messages': continuation_messages, 'parent_conversation_id': parent_conversation_id,
        'has_pending_approvals': has_pending_approvals, 'channel_meta': channel_meta,
        'parent_message_id': parent_message_id})::VARCHAR)
FROM _bad_conversations JOIN _stage_conversations USING (row_id)
UNION ALL
SELECT $source, 'conversation_entries', coalesce(source_row, id, '#' || ordinal), conversation_id,
    TRY_CAST(seq AS BIGINT), problem.reason, problem.field,
    coalesce(source_text, to_json({'seq': seq, 'id': id, 'agent_id': agent_id, 'tenant_id': tenant_id,
        'conversation_id': conversation_id, 'type': type, 'payload': payload, 'created_at': created_at})::VARCHAR)
FROM _bad_entries JOIN _stage_entries USING (row_id);

-- name: counts
SELECT 'conversations' AS tbl, read, read - (SELECT count(*) FROM _bad_conversations) AS loaded
FROM (SELECT count(*) AS read FROM _stage_conversations)
UNION ALL
SELECT 'conversation_entries', read, read - (SELECT count(*) FROM _bad_entries)
FROM (SELECT count(*) AS read FROM _stage_entries);

-- name: quarantine_counts
SELECT reason, count(*) FROM quarantine WHERE source = $source GROUP BY reason ORDER BY reason;

-- name: anomaly_counts
SELECT kind, count(*) FROM anomalies WHERE source = $source GROUP BY kind ORDER BY kind;

-- name: drop_stage
DROP TABLE IF EXISTS _stage_conversations;
DROP TABLE IF EXISTS _stage_entries;
DROP TABLE IF EXISTS _bad_conversations;
DROP TABLE IF EXISTS _bad_entries;
