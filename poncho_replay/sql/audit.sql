-- The parity audit, set-based: for every conversation at once, what a rebuild
-- policy serves against what the blob holds, the harness's own verdict, and
-- the causes of each divergence with their evidence. Needs schema.sql and
-- rebuild_fleet.sql first; poncho_replay/audit.py registers the Python
-- scalar functions used here (audit_canon, audit_custom, js_quote120) and
-- runs parity_at() with bound parameters.
--
-- Fields compared: 'llm' (served _harnessMessages vs the blob's),
-- 'display' (served messages vs the blob's messages), 'pending' (served
-- pendingSubagentResults vs the blob's). Positions are 0-based.
--
-- Alignment (as Vitess VDiff counts rows): the longest common prefix and the
-- longest common suffix match; the rest is paired by position: pairs are
-- `changed`, leftovers `missing_in_entries` (blob only) or
-- `extra_in_entries` (served only). poncho_replay.audit.align is the Python
-- twin, held equal by tests.

-- JavaScript's `text.replace(/\s+/g, " ").trim()`: RE2 spells out the
-- ECMAScript WhiteSpace + LineTerminator set (RE2's \s is narrower).
CREATE OR REPLACE MACRO js_collapse_ws(txt_) AS
    trim(regexp_replace(txt_,
        '[\t\n\x{0b}\x{0c}\r \x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}\x{feff}]+',
        ' ', 'g'), ' ');

-- getTextContent: the string content, or the text parts joined (files ignored).
-- Part lists are rare: they go to poncho_replay.models.message_text (message_text_py).
CREATE OR REPLACE MACRO message_text(msg_) AS
    CASE WHEN json_type(json_extract(msg_, '$.content')) = 'VARCHAR' THEN json_extract_string(msg_, '$.content')
         ELSE message_text_py(msg_::VARCHAR) END;

-- The harness parity projection "<role>:<text>" (dualwrite.project_text).
CREATE OR REPLACE MACRO message_projection(msg_) AS
    coalesce(json_extract_string(msg_, '$.role'), 'undefined') || ':' || js_collapse_ws(message_text(msg_));

-- What equal values must share, read in two passes over the item's text and
-- kept small (hashes): the kind (from the first character: items are DuckDB's
-- minified JSON; numbers and booleans together, coarse on purpose, so a
-- different kind always means a different value), the key set, and a few
-- fields, each as audit_fp_field. Fields are left out when the object has a
-- duplicate key (read differently here and in Python).
CREATE OR REPLACE MACRO audit_fingerprint(j_) AS
    CASE WHEN j_ IS NOT NULL THEN list_transform([json_keys(j_)], lambda ks_: {
        'kind': CASE left(ltrim(j_::VARCHAR), 1)
                    WHEN '{' THEN 'OBJECT' WHEN '[' THEN 'ARRAY' WHEN '"' THEN 'VARCHAR' WHEN 'n' THEN 'NULL'
                    ELSE 'NUMBER' END,
        'keys': hash(list_sort(list_distinct(ks_))),
        'fields': CASE WHEN len(ks_) > 0 AND len(ks_) = len(list_distinct(ks_)) THEN
            list_transform([json_extract(j_, ['$.role', '$.content', '$.metadata.id', '$.subagentId', '$.result'])],
                lambda f_: {'role': audit_fp_field(f_[1]), 'content': audit_fp_field(f_[2]), 'id': audit_fp_field(f_[3]),
                            'subagent': audit_fp_field(f_[4]), 'result': audit_fp_field(f_[5])})[1] END})[1]
    END;

-- A field's value reduced to what proves a difference: a string's text hash
-- (a JSON string's text is canonical), 1 for an object, 2 for an array,
-- NULL (proves nothing) for a number, boolean, null or a missing field.
CREATE OR REPLACE MACRO audit_fp_field(x_) AS
    CASE left(x_::VARCHAR, 1) WHEN '"' THEN hash(x_::VARCHAR) WHEN '{' THEN 1::UBIGINT WHEN '[' THEN 2::UBIGINT END;

-- Natively proven inequality from two fingerprints (false = not proven): a
-- different kind or key set, or a field whose reductions differ. It spares
-- the Python canonical form for the common unequal pair.
CREATE OR REPLACE MACRO audit_fp_differ(fa_, fb_) AS
    list_transform([{'a': fa_, 'b': fb_}], lambda p_:  -- binds each fingerprint once (a macro argument is pasted)
        coalesce(p_.a.kind <> p_.b.kind, false) OR coalesce(p_.a.keys <> p_.b.keys, false)
        OR coalesce(p_.a.fields.role <> p_.b.fields.role, false)
        OR coalesce(p_.a.fields.content <> p_.b.fields.content, false)
        OR coalesce(p_.a.fields.id <> p_.b.fields.id, false)
        OR coalesce(p_.a.fields.subagent <> p_.b.fields.subagent, false)
        OR coalesce(p_.a.fields.result <> p_.b.fields.result, false))[1];

-- The comparison a field gets under a mode (pending results are always exact).
CREATE OR REPLACE MACRO audit_mode_for(mode_, field_) AS
    CASE WHEN mode_ = 'text' AND field_ <> 'pending' THEN 'text' WHEN mode_ = 'custom' THEN 'custom' ELSE 'exact' END;

-- An item reduced to what its comparison needs, computed once per item so the
-- alignment joins stay narrow: the compared value ('text', 'custom'), or for
-- 'exact' the JSON text's hash and length (the item views' item_hash and
-- item_len, computed when they are materialized).
CREATE OR REPLACE MACRO audit_digest(mode_, field_, item_, hash_, len_) AS
    CASE audit_mode_for(mode_, field_)
        WHEN 'text' THEN {'v': message_projection(item_), 'h': NULL::UBIGINT, 'n': NULL::BIGINT}
        WHEN 'custom' THEN {'v': audit_custom(field_, item_::VARCHAR), 'h': NULL, 'n': NULL}
        ELSE {'v': NULL, 'h': hash_, 'n': len_}
    END;

-- audit_eq from two digests: true, false, or NULL when only the items can
-- tell (exact mode, different text: the same value may be written with its
-- keys in another order). Equal text is taken from an equal 64-bit hash and length.
CREATE OR REPLACE MACRO audit_eq_digest(mode_, field_, da_, db_) AS
    CASE audit_mode_for(mode_, field_)
        WHEN 'text' THEN da_.v = db_.v
        WHEN 'custom' THEN da_.v IS NOT DISTINCT FROM db_.v
        ELSE CASE WHEN da_.h = db_.h AND da_.n = db_.n THEN true END
    END;

-- A sample item as a reader sees it, at most 160 characters: a message's
-- role:text projection, any other item's JSON text; NULL for none (or null).
CREATE OR REPLACE MACRO audit_preview(field_, item_) AS
    list_transform([CASE
        WHEN item_ IS NULL OR item_::VARCHAR = 'null' THEN NULL
        WHEN field_ <> 'pending' AND starts_with(item_::VARCHAR, '{') AND json_exists(item_, '$.content')
            THEN message_projection(item_)
        ELSE item_::VARCHAR END],
        lambda t_: CASE WHEN length(t_) <= 160 THEN t_ ELSE left(t_, 159) || '…' END)[1];

-- Equality of two served/blob items under a comparison mode. For 'exact',
-- different text is settled by the fingerprints when they prove a
-- difference, else by the canonical form (Python: sorted keys).
CREATE OR REPLACE MACRO audit_eq(mode_, field_, a_, b_) AS
    CASE
        WHEN mode_ = 'text' AND field_ <> 'pending'
            THEN message_projection(a_) = message_projection(b_)
        WHEN mode_ = 'custom'
            THEN audit_custom(field_, a_::VARCHAR) IS NOT DISTINCT FROM audit_custom(field_, b_::VARCHAR)
        WHEN a_::VARCHAR = b_::VARCHAR THEN true
        WHEN audit_fp_differ(audit_fingerprint(a_), audit_fingerprint(b_)) THEN false
        ELSE audit_canon(a_::VARCHAR) = audit_canon(b_::VARCHAR)
    END;

-- The identity of an item, for following it between the log and the blob:
-- a message's metadata.id, a subagent result's subagentId@timestamp.
CREATE OR REPLACE MACRO audit_item_key(field_, item_) AS
    CASE WHEN field_ = 'pending'
         THEN (json_extract_string(item_, '$.subagentId')) || '@' || (json_extract(item_, '$.timestamp'))::VARCHAR
         ELSE json_extract_string(item_, '$.metadata.id') END;

-- What every item-level rule reads of an item besides the item itself, so it
-- is computed once per item: its identity (audit_item_key), and its JSON
-- text's hash and length (the 'exact' digest).
CREATE OR REPLACE MACRO audit_item_columns(field_, item_) AS
    {'item_key': audit_item_key(field_, item_), 'item_hash': hash(item_::VARCHAR), 'item_len': strlen(item_::VARCHAR)};

-- The item and entry sets every part of the audit reads, as views over the
-- whole database. audit.parity_df() materializes them once (TEMP tables of
-- the same names shadow the views for the duration of one audit), so a
-- fleet's payloads are parsed and rebuilt once, not once per part.

-- The log's entries with the payload fields the rules read, parsed once.
-- The fields every entry has are read in one pass over the payload (p).
CREATE OR REPLACE VIEW audit_entry_facts AS
    SELECT source, conversation_id, seq, id, type, created_at,
           p[1] AS turn_id,
           -- the message's (or, without one, the summary message's) metadata.id
           CASE WHEN message_type IS NOT NULL THEN p[2] ELSE p[3] END AS msg_id,
           CASE WHEN type = 'subagent_result' THEN audit_item_key('pending', payload -> 'result') END AS result_key,
           -- (CASE, not AND, so only the rows of that type parse the payload again)
           CASE WHEN type = 'user_message' THEN js_truthy(payload -> 'hidden') ELSE false END AS hidden,
           CASE WHEN type = 'assistant_amendment' THEN payload ->> 'targetEntryId' END AS target,
           -- an assistant_message's message kind: NULL when the key is missing
           CASE WHEN type = 'assistant_message' THEN message_type END AS message_kind,
           CASE WHEN type = 'harness_message'
                THEN coalesce(json_extract(payload, '$.message.metadata.isCompactionSummary')::VARCHAR, '') = 'true'
                ELSE false END AS summary_flag,
           CASE WHEN type = 'compaction' THEN (payload -> 'firstKeptSeq')::VARCHAR END AS first_kept,
           -- the run that wrote it: an assistant_message's runId, a harness message's metadata.runId
           CASE type WHEN 'assistant_message' THEN p[4] WHEN 'harness_message' THEN p[5] END AS run_id,
           CASE WHEN type = 'assistant_amendment' THEN p[6] END AS append_text,
           -- when the message was written (metadata.timestamp, epoch ms), to date blob messages against
           CASE WHEN type IN ('user_message', 'assistant_message') THEN TRY_CAST(p[7] AS BIGINT) END AS message_ts
    FROM (SELECT *, json_type(payload, '$.message') AS message_type,
                 json_extract_string(payload, ['$.turnId', '$.message.metadata.id', '$.summaryMessage.metadata.id',
                                               '$.runId', '$.message.metadata.runId', '$.appendText',
                                               '$.message.metadata.timestamp']) AS p
          FROM conversation_entries);

-- The blob's three arrays, one row per item. A missing or non-array field is empty.
CREATE OR REPLACE VIEW audit_blob_items AS
    WITH lists AS (  -- a wildcard over a non-array (or a missing field) gives no items
        SELECT source, id AS conversation_id, 'llm' AS field, json_extract(harness_messages, '$[*]') AS items
        FROM conversations
        UNION ALL
        SELECT source, id, 'display', json_extract(data, '$.messages[*]') FROM conversations
        UNION ALL
        SELECT source, id, 'pending', json_extract(data, '$.pendingSubagentResults[*]') FROM conversations
    )
    SELECT *, unnest(audit_item_columns(field, item))
    FROM (SELECT source, conversation_id, field,
                 generate_subscripts(items, 1) - 1 AS position, unnest(items) AS item
          FROM lists);

-- The log's rebuild of the three fields (rebuild_fleet.sql), one row per item.
CREATE OR REPLACE VIEW audit_log_items AS
    SELECT *, unnest(audit_item_columns(field, item)) FROM (
        SELECT source, conversation_id, 'llm' AS field, position, seq, coalesce(message, 'null'::JSON) AS item
        FROM llm_context
        UNION ALL
        SELECT source, conversation_id, 'display', position, seq, coalesce(message, 'null'::JSON) FROM display_messages
        UNION ALL
        SELECT source, conversation_id, 'pending', position, seq, coalesce(result, 'null'::JSON)
        FROM pending_subagent_results);

-- What the plan reads of each conversation's log, whatever the policy: entry
-- counts, where the transcript and the callbacks end, and the entries that
-- make a rebuild raise. A view, materialized once per audit with the item
-- views (audit.parity_df), so each part's plan is a join of two small tables.
CREATE OR REPLACE VIEW audit_log_counts AS
    WITH n AS (
        SELECT source, conversation_id, count(*) AS n_entries,
               count(*) FILTER (WHERE type IN ('subagent_result', 'callback_started')) AS n_queue,
               max(seq) FILTER (WHERE type NOT IN ('subagent_result', 'callback_started')) AS last_transcript_seq,
               max(seq) FILTER (WHERE type = 'callback_started') AS last_callback_seq,
               max(created_at) AS last_entry_at,
               bool_or(audit_written_by_queue_release(type, payload)) AS outcome_results
        FROM conversation_entries GROUP BY ALL
    ),
    err AS (
        SELECT source, conversation_id,
               bool_or(field = 'display') AS display_err, bool_or(field = 'pending') AS pending_err
        FROM rebuild_errors_at() GROUP BY ALL
    )
    SELECT n.*, coalesce(err.display_err, false) AS display_err, coalesce(err.pending_err, false) AS pending_err
    FROM n LEFT JOIN err USING (source, conversation_id);

-- Which fields a policy serves from the log, per conversation (SPEC §3, §7).
-- `policy` is the behaviour poncho_replay.policy resolves a release to:
-- 'full' (0.58.x) all three, 'pending_all' (0.59.0-0.59.2) pending results
-- when the log has any entry, 'pending_queue' (0.59.3+) pending results when
-- it has a subagent_result or callback_started entry, 'blob' none. The read
-- cutover assigns llm, display, pending in that order, so a display error
-- leaves llm rebuilt and display + pending blob.
-- era: which harness wrote the log (SPEC §7): 'blob' (no entries), 'queue'
-- (queue entries only: 0.59.3+), 'mixed' (transcript entries, then 0.59.3+
-- queue writes: a result with a taskOutcome, or a callback_started after the
-- last transcript entry, which 0.58 always followed with hidden user
-- messages), 'transcript' (0.56-0.59.2 dual-write).
CREATE OR REPLACE MACRO audit_plan(policy, src := NULL) AS TABLE
    WITH n AS (SELECT * FROM audit_log_counts WHERE src IS NULL OR source = src)
    SELECT c.source, c.id AS conversation_id, coalesce(n.n_entries, 0) AS n_entries,
           coalesce(n.n_queue, 0) AS n_queue, n.last_callback_seq, n.last_entry_at,
           CASE WHEN n.n_entries IS NULL THEN 'blob'
                WHEN n.last_transcript_seq IS NULL THEN 'queue'
                WHEN n.outcome_results OR n.last_callback_seq > n.last_transcript_seq THEN 'mixed'
                ELSE 'transcript' END AS era,
           coalesce(n.display_err, false) AS display_err,
           coalesce(n.pending_err, false) AS pending_err,
           policy = 'full' AND coalesce(n.n_entries, 0) > 0 AS llm_log,
           policy = 'full' AND coalesce(n.n_entries, 0) > 0 AND NOT coalesce(n.display_err, false) AS display_log,
           NOT coalesce(n.pending_err, false) AND CASE policy
               WHEN 'full' THEN coalesce(n.n_entries, 0) > 0 AND NOT coalesce(n.display_err, false)
               WHEN 'pending_all' THEN coalesce(n.n_entries, 0) > 0
               WHEN 'pending_queue' THEN coalesce(n.n_queue, 0) > 0
               ELSE false END AS pending_log
    FROM conversations AS c
    LEFT JOIN n ON n.source = c.source AND n.conversation_id = c.id
    WHERE src IS NULL OR c.source = src;

-- What get() returns under a policy, one row per item, with the log seq of
-- items that come from the log.
CREATE OR REPLACE MACRO audit_served_items(policy, src := NULL) AS TABLE
    WITH plan AS (SELECT * FROM audit_plan(policy, src := src))
    SELECT l.source, l.conversation_id, l.field, l.position, l.seq, l.item, l.item_key, l.item_hash, l.item_len
    FROM audit_log_items AS l SEMI JOIN plan AS p
        ON p.source = l.source AND p.conversation_id = l.conversation_id
        AND CASE l.field WHEN 'llm' THEN p.llm_log WHEN 'display' THEN p.display_log ELSE p.pending_log END
    UNION ALL
    SELECT b.source, b.conversation_id, b.field, b.position, NULL::BIGINT, b.item, b.item_key, b.item_hash, b.item_len
    FROM audit_blob_items AS b SEMI JOIN plan AS p
        ON p.source = b.source AND p.conversation_id = b.conversation_id
        AND NOT CASE b.field WHEN 'llm' THEN p.llm_log WHEN 'display' THEN p.display_log ELSE p.pending_log END;

-- Every message or result the log holds, by field and identity, with its seq.
CREATE OR REPLACE VIEW audit_log_keys AS
    SELECT source, conversation_id, seq,
           CASE WHEN type IN ('harness_message', 'compaction') THEN 'llm'
                WHEN type = 'subagent_result' THEN 'pending' ELSE 'display' END AS field,
           CASE WHEN type = 'subagent_result' THEN result_key ELSE msg_id END AS k
    FROM audit_entry_facts
    WHERE type IN ('harness_message', 'compaction', 'subagent_result', 'user_message', 'assistant_message');

-- The full-sequence comparison: one row per (conversation, field), with the
-- first divergent position and up to three aligned sample pairs from there.
CREATE OR REPLACE MACRO audit_compare(policy, mode, src := NULL) AS TABLE
    WITH s AS (SELECT * FROM audit_served_items(policy, src := src)),
    b AS (SELECT * FROM audit_blob_items WHERE src IS NULL OR source = src),
    sd AS MATERIALIZED (SELECT source, conversation_id, field, position,
                               audit_digest(mode, field, item, item_hash, item_len) AS d FROM s),
    bd AS MATERIALIZED (SELECT source, conversation_id, field, position,
                               audit_digest(mode, field, item, item_hash, item_len) AS d FROM b),
    sn AS (SELECT source, conversation_id, field, count(*) AS n FROM sd GROUP BY ALL),
    bm AS (SELECT source, conversation_id, field, count(*) AS m FROM bd GROUP BY ALL),
    sizes AS MATERIALIZED (
        SELECT p.source, p.conversation_id, f.field, coalesce(sn.n, 0) AS n, coalesce(bm.m, 0) AS m
        FROM audit_plan(policy, src := src) AS p
        CROSS JOIN (VALUES ('llm'), ('display'), ('pending')) AS f(field)
        LEFT JOIN sn ON sn.source = p.source AND sn.conversation_id = p.conversation_id AND sn.field = f.field
        LEFT JOIN bm ON bm.source = p.source AND bm.conversation_id = p.conversation_id AND bm.field = f.field
    ),
    aligned AS MATERIALIZED (  -- aligned from the start (dir 0) and from the end (dir 1): positions on each side
        SELECT 0 AS dir, x.source, x.conversation_id, x.field, x.position AS sp, y.position AS bp, x.position AS k,
               audit_eq_digest(mode, x.field, x.d, y.d) AS eq
        FROM sd AS x JOIN bd AS y USING (source, conversation_id, field, position)
        UNION ALL
        SELECT 1, x.source, x.conversation_id, x.field, x.position, y.position, x.rev,
               audit_eq_digest(mode, x.field, x.d, y.d)
        FROM (SELECT sd.*, z.n - 1 - sd.position AS rev FROM sd JOIN sizes AS z USING (source, conversation_id, field)) AS x
        JOIN (SELECT bd.*, z.m - 1 - bd.position AS rev FROM bd JOIN sizes AS z USING (source, conversation_id, field)) AS y
            USING (source, conversation_id, field, rev)
    ),
    -- Pairs the digests leave open (exact mode, different text) are settled
    -- from the items, but only as far as needed: the first open pair in each
    -- direction, and the rest of that direction only when the first turns out
    -- equal (the same value in another key order, which is rare).
    undecided AS MATERIALIZED (
        SELECT *, row_number() OVER (PARTITION BY source, conversation_id, field, dir ORDER BY k) AS r
        FROM aligned WHERE eq IS NULL
    ),
    first_try AS MATERIALIZED (
        SELECT u.dir, u.source, u.conversation_id, u.field, u.k, audit_eq(mode, u.field, x.item, y.item) AS eq
        FROM undecided AS u
        JOIN s AS x ON x.source = u.source AND x.conversation_id = u.conversation_id AND x.field = u.field
            AND x.position = u.sp
        JOIN b AS y ON y.source = u.source AND y.conversation_id = u.conversation_id AND y.field = u.field
            AND y.position = u.bp
        WHERE u.r = 1
    ),
    second_try AS (
        SELECT u.dir, u.source, u.conversation_id, u.field, u.k, audit_eq(mode, u.field, x.item, y.item) AS eq
        FROM undecided AS u
        SEMI JOIN first_try AS f ON f.source = u.source AND f.conversation_id = u.conversation_id
            AND f.field = u.field AND f.dir = u.dir AND f.eq
        JOIN s AS x ON x.source = u.source AND x.conversation_id = u.conversation_id AND x.field = u.field
            AND x.position = u.sp
        JOIN b AS y ON y.source = u.source AND y.conversation_id = u.conversation_id AND y.field = u.field
            AND y.position = u.bp
        WHERE u.r > 1
    ),
    unequal AS (
        SELECT dir, source, conversation_id, field, k FROM aligned WHERE NOT eq
        UNION ALL SELECT dir, source, conversation_id, field, k FROM first_try WHERE NOT eq
        UNION ALL SELECT dir, source, conversation_id, field, k FROM second_try WHERE NOT eq
    ),
    fwd AS (SELECT source, conversation_id, field, min(k) AS first_diff FROM unequal WHERE dir = 0 GROUP BY ALL),
    bwd AS (SELECT source, conversation_id, field, min(k) AS first_diff_rev FROM unequal WHERE dir = 1 GROUP BY ALL),
    counted AS (
        SELECT z.source, z.conversation_id, z.field, z.n, z.m,
               coalesce(f.first_diff, least(z.n, z.m)) AS prefix,
               least(coalesce(w.first_diff_rev, least(z.n, z.m)),
                     least(z.n, z.m) - coalesce(f.first_diff, least(z.n, z.m))) AS suffix
        FROM sizes AS z
        LEFT JOIN fwd AS f USING (source, conversation_id, field)
        LEFT JOIN bwd AS w USING (source, conversation_id, field)
    ),
    win AS (  -- the aligned pairs at the first divergence and the two after it
        SELECT c.source, c.conversation_id, c.field, s.position, s.seq, s.item AS served_item, NULL::JSON AS blob_item,
               NULL::VARCHAR AS blob_key
        FROM counted AS c JOIN s USING (source, conversation_id, field)
        WHERE c.prefix < greatest(c.n, c.m) AND s.position >= c.prefix AND s.position < c.prefix + 3
        UNION ALL
        SELECT c.source, c.conversation_id, c.field, b.position, NULL, NULL, b.item, b.item_key
        FROM counted AS c JOIN b USING (source, conversation_id, field)
        WHERE c.prefix < greatest(c.n, c.m) AND b.position >= c.prefix AND b.position < c.prefix + 3
    ),
    pairs AS (
        SELECT source, conversation_id, field, position, max(seq) AS seq,
               any_value(served_item) AS served_item, any_value(blob_item) AS blob_item,
               any_value(blob_key) AS blob_key
        FROM win GROUP BY ALL
    ),
    keyseq AS (
        SELECT source, conversation_id, field, k, min(seq) AS seq FROM audit_log_keys WHERE src IS NULL OR source = src GROUP BY ALL
    ),
    samples AS (
        SELECT source, conversation_id, field,
               list({'position': position, 'seq': seq, 'entries': audit_preview(field, served_item),
                     'blob': audit_preview(field, blob_item)} ORDER BY position) AS samples
        FROM pairs GROUP BY ALL
    )
    SELECT c.source, c.conversation_id, c.field, c.n AS served, c.m AS blob,
           c.prefix + c.suffix AS matching,
           least(c.n, c.m) - c.prefix - c.suffix AS changed,
           greatest(c.m - c.n, 0) AS missing_in_entries,
           greatest(c.n - c.m, 0) AS extra_in_entries,
           CASE WHEN c.prefix < greatest(c.n, c.m) THEN c.prefix END AS first_position,
           p.seq AS first_seq_entries, ks.seq AS first_seq_blob, sm.samples
    FROM counted AS c
    LEFT JOIN pairs AS p ON p.source = c.source AND p.conversation_id = c.conversation_id
        AND p.field = c.field AND p.position = c.prefix
    LEFT JOIN keyseq AS ks ON ks.source = c.source AND ks.conversation_id = c.conversation_id
        AND ks.field = c.field AND ks.k = p.blob_key
    LEFT JOIN samples AS sm ON sm.source = c.source AND sm.conversation_id = c.conversation_id AND sm.field = c.field;

-- The harness's own parity check (dualwrite.parity_check), for every
-- conversation: the log's rebuild (whatever the policy) against the blob,
-- length first, then the last min(5, n, m) items by role:text projection.
CREATE OR REPLACE MACRO audit_harness_verdict(src := NULL) AS TABLE
    WITH conv AS (
        SELECT source, id AS conversation_id,
               json_type(harness_messages) = 'ARRAY' AS has_llm,
               json_type(data, '$.messages') = 'ARRAY' AS has_display
        FROM conversations WHERE src IS NULL OR source = src
    ),
    log_items AS (
        SELECT * FROM audit_log_items WHERE field <> 'pending' AND (src IS NULL OR source = src)
    ),
    blob_items AS (SELECT * FROM audit_blob_items WHERE field <> 'pending' AND (src IS NULL OR source = src)),
    compared AS (  -- only the sides the harness compares (a blob array to compare with)
        SELECT i.* FROM log_items AS i JOIN conv AS c USING (source, conversation_id)
        WHERE (i.field = 'llm' AND c.has_llm) OR (i.field = 'display' AND c.has_display)
    ),
    -- an item whose JSON text starts with '{' is an object: only the others are parsed for a null
    log_n AS (
        SELECT source, conversation_id, field, count(*) AS n,
               bool_or(CASE WHEN item IS NULL THEN true WHEN starts_with(item, '{') THEN false
                            ELSE json_type(item) = 'NULL' END) AS has_null
        FROM compared GROUP BY ALL
    ),
    blob_m AS (
        SELECT source, conversation_id, field, count(*) AS m,
               bool_or(CASE WHEN starts_with(item, '{') THEN false ELSE json_type(item) = 'NULL' END) AS has_null
        FROM blob_items GROUP BY ALL
    ),
    sizes AS (
        SELECT c.source, c.conversation_id, f.field, coalesce(l.n, 0) AS n, coalesce(b.m, 0) AS m,
               coalesce(l.has_null, false) OR coalesce(b.has_null, false) AS has_null
        FROM conv AS c CROSS JOIN (VALUES ('llm'), ('display')) AS f(field)
        LEFT JOIN log_n AS l ON l.source = c.source AND l.conversation_id = c.conversation_id AND l.field = f.field
        LEFT JOIN blob_m AS b ON b.source = c.source AND b.conversation_id = c.conversation_id AND b.field = f.field
        WHERE (f.field = 'llm' AND c.has_llm) OR (f.field = 'display' AND c.has_display)
    ),
    thrown AS (  -- what makes the harness's checker throw (then it logs and stops): a missing message
        SELECT c.source, c.conversation_id,
               CASE
                   WHEN coalesce(sl.has_null, false) THEN 'Cannot read properties of undefined (reading ''role'')'
                   WHEN c.has_display AND e.reason IS NOT NULL THEN e.reason
                   WHEN coalesce(sd.has_null, false) THEN 'Cannot read properties of undefined (reading ''role'')'
               END AS error
        FROM conv AS c
        LEFT JOIN sizes AS sl ON sl.source = c.source AND sl.conversation_id = c.conversation_id AND sl.field = 'llm'
        LEFT JOIN sizes AS sd ON sd.source = c.source AND sd.conversation_id = c.conversation_id
            AND sd.field = 'display'
        LEFT JOIN (  -- the first assistant_message without an object message, as JavaScript words it
            SELECT source, conversation_id,
                   arg_min('Cannot read properties of '
                           || CASE WHEN message_kind IS NULL THEN 'undefined' ELSE 'null' END
                           || ' (reading ''content'')', seq) AS reason
            FROM audit_entry_facts
            WHERE (src IS NULL OR source = src) AND type = 'assistant_message'
              AND message_kind IS DISTINCT FROM 'OBJECT'
            GROUP BY ALL
        ) AS e ON e.source = c.source AND e.conversation_id = c.conversation_id
    ),
    log_tail AS (  -- the last five items of each side, i = 1 being the last
        SELECT l.source, l.conversation_id, l.field, z.n - l.position AS i, l.item
        FROM compared AS l
        JOIN sizes AS z ON z.source = l.source AND z.conversation_id = l.conversation_id AND z.field = l.field
        WHERE z.n - l.position <= 5
    ),
    blob_tail AS (
        SELECT b.source, b.conversation_id, b.field, z.m - b.position AS i, b.item
        FROM blob_items AS b
        JOIN sizes AS z ON z.source = b.source AND z.conversation_id = b.conversation_id AND z.field = b.field
        WHERE z.m - b.position <= 5
    ),
    -- the last min(5, n, m) pairs; only pairs of different JSON text can differ in
    -- projection, and they are set apart first (MATERIALIZED) so only they are projected
    tail_pairs AS MATERIALIZED (
        SELECT l.source, l.conversation_id, l.field, l.i, l.item AS log_item, b.item AS blob_item
        FROM log_tail AS l JOIN blob_tail AS b USING (source, conversation_id, field, i)
        WHERE l.item::VARCHAR <> b.item::VARCHAR
    ),
    tails AS (
        SELECT source, conversation_id, field, i,
               message_projection(log_item) AS ep, message_projection(blob_item) AS bp
        FROM tail_pairs
    ),
    items AS (
        SELECT source, conversation_id, CASE field WHEN 'llm' THEN 0 ELSE 100 END AS k,
               CASE field WHEN 'llm' THEN 'llmContext' ELSE 'display' END
               || ' length ' || n || ' (entries) vs ' || m || ' (blob)' AS text
        FROM sizes WHERE n <> m
        UNION ALL
        SELECT source, conversation_id, CASE field WHEN 'llm' THEN 0 ELSE 100 END + i,
               CASE field WHEN 'llm' THEN 'llmContext' ELSE 'display' END
               || ' tail[-' || i || '] differs: entries=' || js_quote120(ep) || ' blob=' || js_quote120(bp)
        FROM tails WHERE ep <> bp
    )
    SELECT c.source, c.conversation_id,
           CASE WHEN t.error IS NOT NULL THEN 'threw'
                WHEN count(i.text) > 0 THEN 'MISMATCH' ELSE 'OK' END AS harness_verdict,
           CASE WHEN t.error IS NOT NULL THEN []::VARCHAR[]
                ELSE coalesce(list(i.text ORDER BY i.k) FILTER (WHERE i.text IS NOT NULL), []::VARCHAR[]) END
               AS harness_mismatches,
           '[entries-parity] ' || c.conversation_id || CASE
               WHEN t.error IS NOT NULL THEN ' checker threw (ignored): ' || t.error
               WHEN count(i.text) > 0 THEN ' MISMATCH (' || count(i.text) || '): '
                    || string_agg(i.text, ' | ' ORDER BY i.k)
               ELSE ' OK' END AS harness_log_line
    FROM conv AS c
    JOIN thrown AS t USING (source, conversation_id)
    LEFT JOIN items AS i USING (source, conversation_id)
    GROUP BY c.source, c.conversation_id, t.error;

-- The conversations whose cause facts are computed: every one, as a view.
-- Causes are found on few conversations (causes.sql: almost all need a
-- divergence), so parity_at shadows this view with a CTE of the same name
-- holding only those (a CTE of the calling query shadows a view a table macro
-- reads): the facts of the rest are never computed. The facts macros read
-- their inputs through it; called on their own they cover every conversation.
CREATE OR REPLACE VIEW audit_cause_scope AS SELECT source, id AS conversation_id FROM conversations;

-- Facts about each conversation's log that the causes below rest on.
CREATE OR REPLACE MACRO audit_log_facts(src := NULL) AS TABLE
    WITH e AS (SELECT * FROM audit_entry_facts SEMI JOIN audit_cause_scope USING (source, conversation_id)
               WHERE src IS NULL OR source = src),
    summary_ids AS (
        SELECT DISTINCT source, conversation_id, msg_id FROM e WHERE type = 'compaction' AND msg_id IS NOT NULL
    ),
    compacted_turns AS (  -- turns that logged a compaction summary as a harness message
        SELECT DISTINCT x.source, x.conversation_id, x.turn_id FROM e AS x
        LEFT JOIN summary_ids AS s ON s.source = x.source AND s.conversation_id = x.conversation_id
            AND s.msg_id = x.msg_id
        WHERE x.type = 'harness_message' AND (s.msg_id IS NOT NULL OR x.summary_flag)
    ),
    approx AS (  -- harness messages re-appended whole after a compaction (approximate finalize diff)
        SELECT h.source, h.conversation_id, h.turn_id, list(h.seq ORDER BY h.seq) AS seqs
        FROM e AS h
        SEMI JOIN compacted_turns AS t ON t.source = h.source AND t.conversation_id = h.conversation_id
            AND t.turn_id = h.turn_id
        WHERE h.type = 'harness_message'
        GROUP BY ALL
    ),
    users AS (SELECT source, conversation_id, seq, turn_id FROM e WHERE type = 'user_message' AND NOT hidden),
    compaction_turns AS (  -- each compaction with the user turn it happened in (the last one before it)
        SELECT c.source, c.conversation_id, c.seq, u.turn_id
        FROM e AS c
        ASOF JOIN users AS u ON u.source = c.source AND u.conversation_id = c.conversation_id AND u.seq < c.seq
        WHERE c.type = 'compaction'
    ),
    silent AS (  -- a compaction's turn whose finalize was logged with no summary among its harness messages:
                 -- the array did not shrink, so the length diff appended only its tail (maybe nothing), with
                 -- no warning (SPEC §5)
        SELECT h.source, h.conversation_id, h.turn_id,
               coalesce(list(h.seq ORDER BY h.seq) FILTER (WHERE h.type = 'harness_message'), []) AS seqs
        FROM e AS h
        SEMI JOIN compaction_turns AS c ON c.source = h.source AND c.conversation_id = h.conversation_id
            AND c.turn_id = h.turn_id
        ANTI JOIN compacted_turns AS t ON t.source = h.source AND t.conversation_id = h.conversation_id
            AND t.turn_id = h.turn_id
        WHERE h.type IN ('harness_message', 'assistant_message')
        GROUP BY ALL
    ),
    orphan_summaries AS (  -- a later turn re-appended a compaction summary, yet logged no compaction: the
                           -- compaction entry's append was lost (SPEC §5 fire-and-forget). (A thread's first
                           -- turn logs its copied context whole, a parent's summary included: not counted.)
        SELECT h.source, h.conversation_id, list(h.seq ORDER BY h.seq) AS seqs
        FROM e AS h
        ANTI JOIN compaction_turns AS c ON c.source = h.source AND c.conversation_id = h.conversation_id
            AND c.turn_id = h.turn_id
        SEMI JOIN users AS u ON u.source = h.source AND u.conversation_id = h.conversation_id
            AND u.seq < h.seq AND u.turn_id <> h.turn_id
        WHERE h.type = 'harness_message' AND h.summary_flag
        GROUP BY ALL
    ),
    keyed AS (  -- the entries that carry a message (or subagent result) identity, outside approximate turns:
                -- a whole re-appended context, or a silent length diff's tail, which re-appends what the log
                -- already holds when the blob's context lacked messages the log had (a lost blob write
                -- before the compaction); a duplicated finalize still shows in its assistant_message
        SELECT e.source, e.conversation_id, e.type, e.seq,
               CASE WHEN e.type = 'subagent_result' THEN e.result_key ELSE e.msg_id END AS k
        FROM e ANTI JOIN (SELECT source, conversation_id, turn_id FROM approx
                          UNION ALL SELECT source, conversation_id, turn_id FROM silent) AS a
            ON a.source = e.source AND a.conversation_id = e.conversation_id
            AND a.turn_id = e.turn_id AND e.type = 'harness_message'
        WHERE e.type IN ('user_message', 'assistant_message', 'harness_message', 'subagent_result')
    ),
    logged_twice AS (  -- but a harness message under a display message's id (SPEC §5 turn finalize): a turn
                       -- whose blob had no _harnessMessages (a thread's first turn, or every turn until one
                       -- finalize blob write lands: stale_blob) ran on the display `messages`, and its length
                       -- diff against no array appended all of them, again on each such turn; a duplicated
                       -- finalize of such a turn still shows in its own messages and its assistant_message
        SELECT t.* FROM (
            SELECT source, conversation_id, type, k, count(*) AS n FROM keyed WHERE k IS NOT NULL
            GROUP BY ALL HAVING count(*) > 1
        ) AS t
        WHERE NOT (t.type = 'harness_message' AND (
            EXISTS (SELECT 1 FROM e WHERE e.source = t.source AND e.conversation_id = t.conversation_id
                        AND e.type IN ('user_message', 'assistant_message') AND e.msg_id = t.k)
            OR EXISTS (SELECT 1 FROM audit_blob_items AS b WHERE b.source = t.source
                           AND b.conversation_id = t.conversation_id AND b.field = 'display' AND b.item_key = t.k)))
    ),
    dup AS (  -- the same message appended more often than the blob holds it (a message the blob itself holds
              -- twice, e.g. a thread's copy of a re-appended context, was written twice), or the same subagent
              -- result queued twice (one append per result, SPEC §5, §7: the blob's count says nothing, as
              -- 0.59.3+ delivers a queued result twice, result_delivered_twice): counted first, listed only
              -- when found
        SELECT x.source, x.conversation_id, x.type, x.k, list(x.seq ORDER BY x.seq) AS seqs
        FROM keyed AS x SEMI JOIN (
            SELECT d.source, d.conversation_id, d.type, d.k FROM logged_twice AS d
            LEFT JOIN (
                SELECT b.source, b.conversation_id, b.field, b.item_key, count(*) AS n
                FROM audit_blob_items AS b
                SEMI JOIN logged_twice AS t ON t.source = b.source AND t.conversation_id = b.conversation_id
                    AND t.k = b.item_key
                GROUP BY ALL
            ) AS b ON b.source = d.source AND b.conversation_id = d.conversation_id AND b.item_key = d.k
                AND b.field = CASE d.type WHEN 'harness_message' THEN 'llm' WHEN 'subagent_result' THEN 'pending'
                                          ELSE 'display' END
            WHERE d.type = 'subagent_result' OR d.n > coalesce(b.n, 0) OR coalesce(b.n, 0) < 2
        ) AS d ON d.source = x.source AND d.conversation_id = x.conversation_id AND d.type = x.type AND d.k = x.k
        GROUP BY ALL
    ),
    reordered AS (  -- a compaction logged after its own turn's finalize entries
        SELECT c.source, c.conversation_id, c.seq AS compaction_seq, u.turn_id
        FROM e AS c
        ASOF JOIN users AS u ON u.source = c.source AND u.conversation_id = c.conversation_id AND u.seq < c.seq
        WHERE c.type = 'compaction' AND EXISTS (
            SELECT 1 FROM e AS x WHERE x.source = c.source AND x.conversation_id = c.conversation_id
              AND x.seq > u.seq AND x.seq < c.seq AND x.turn_id = u.turn_id
              AND x.type IN ('harness_message', 'assistant_message'))
    ),
    amend AS (  -- each amendment, its target entry, and whether the blob's copy of that bubble holds its text
        SELECT a.source, a.conversation_id, a.seq, a.target,
               any_value(t.seq) AS target_seq, any_value(t.turn_id) AS target_turn,
               any_value(u.turn_id) AS expected_turn,
               bool_or(b.item IS NOT NULL) AS target_in_blob,
               bool_or(contains(coalesce(message_text(b.item), ''), a.append_text)) AS target_has_text
        FROM e AS a
        LEFT JOIN e AS t ON t.source = a.source AND t.conversation_id = a.conversation_id
            AND t.id = a.target AND t.type = 'assistant_message'
        ASOF LEFT JOIN users AS u ON u.source = a.source AND u.conversation_id = a.conversation_id AND u.seq < a.seq
        LEFT JOIN audit_blob_items AS b ON b.source = a.source AND b.conversation_id = a.conversation_id
            AND b.field = 'display' AND b.item_key = t.msg_id AND a.append_text IS NOT NULL AND a.append_text <> ''
        WHERE a.type = 'assistant_amendment'
        GROUP BY a.source, a.conversation_id, a.seq, a.target
    ),
    latest AS (
        SELECT source, conversation_id, seq, first_kept
        FROM e WHERE type = 'compaction'
        QUALIFY row_number() OVER (PARTITION BY source, conversation_id ORDER BY seq DESC) = 1
    ),
    -- each list is one aggregate per conversation, joined once (NULL when empty)
    per_entry AS (
        SELECT source, conversation_id,
               list(seq ORDER BY seq) FILTER (WHERE type = 'callback_started') AS callback_seqs,
               list({'seq': seq, 'turn_id': turn_id} ORDER BY seq) FILTER (WHERE hidden) AS hidden_users,
               list(seq ORDER BY seq) FILTER (WHERE type = 'assistant_message' AND starts_with(turn_id, 'resume-'))
                   AS resume_seqs,
               -- a 0.58 callback turn's reply bubble (turnId callback-<id>; 0.59.3+ logs none)
               list(seq ORDER BY seq) FILTER (WHERE type = 'assistant_message' AND starts_with(turn_id, 'callback-'))
                   AS callback_reply_seqs,
               -- bubbles logged without an id (a callback's reply, a resume's fresh bubble)
               count(*) FILTER (WHERE type = 'assistant_message' AND msg_id IS NULL) AS keyless_bubbles,
               arg_min(type, seq) AS first_type, max(created_at) AS last_entry_at
        FROM e GROUP BY ALL
    ),
    approx_l AS (
        SELECT source, conversation_id,
               list({'turn_id': turn_id, 'seqs': seqs, 'kind': kind} ORDER BY seqs[1] NULLS LAST) AS approx_turns
        FROM (SELECT *, 'whole_transcript' AS kind FROM approx UNION ALL SELECT *, 'length_diff' FROM silent)
        GROUP BY ALL
    ),
    dup_l AS (
        SELECT source, conversation_id, list({'type': type, 'seqs': seqs} ORDER BY seqs[1]) AS duplicates
        FROM dup GROUP BY ALL
    ),
    reordered_l AS (
        SELECT source, conversation_id,
               list({'compaction_seq': compaction_seq, 'turn_id': turn_id} ORDER BY compaction_seq) AS reordered
        FROM reordered GROUP BY ALL
    ),
    amend_l AS (
        SELECT source, conversation_id,
               list({'seq': seq, 'target': target, 'target_seq': target_seq, 'target_turn': target_turn,
                     'expected_turn': expected_turn, 'target_in_blob': coalesce(target_in_blob, false),
                     'target_has_text': coalesce(target_has_text, false)} ORDER BY seq) AS amendments
        FROM amend GROUP BY ALL
    )
    SELECT k.source, k.conversation_id, k.callback_seqs, k.hidden_users, ap.approx_turns, d.duplicates,
           os.seqs AS summaries_without_compaction,
           r.reordered, am.amendments, k.resume_seqs, k.callback_reply_seqs, k.keyless_bubbles,
           l.seq AS compaction_seq, l.first_kept AS first_kept_seq, k.first_type, k.last_entry_at
    FROM per_entry AS k
    LEFT JOIN latest AS l USING (source, conversation_id)
    LEFT JOIN approx_l AS ap USING (source, conversation_id)
    LEFT JOIN dup_l AS d USING (source, conversation_id)
    LEFT JOIN reordered_l AS r USING (source, conversation_id)
    LEFT JOIN amend_l AS am USING (source, conversation_id)
    LEFT JOIN orphan_summaries AS os USING (source, conversation_id);

-- Following items by identity between the blob and the log, per field.
CREATE OR REPLACE MACRO audit_item_facts(policy, src := NULL) AS TABLE
    WITH e AS (SELECT * FROM audit_entry_facts SEMI JOIN audit_cause_scope USING (source, conversation_id)
               WHERE src IS NULL OR source = src),
    log_keys AS (SELECT DISTINCT source, conversation_id, field, k FROM audit_log_keys
                 SEMI JOIN audit_cause_scope USING (source, conversation_id) WHERE src IS NULL OR source = src),
    blob_items AS (SELECT * FROM audit_blob_items SEMI JOIN audit_cause_scope USING (source, conversation_id)
                   WHERE src IS NULL OR source = src),
    entries AS (SELECT * FROM conversation_entries SEMI JOIN audit_cause_scope USING (source, conversation_id)
                WHERE src IS NULL OR source = src),
    compacted AS MATERIALIZED (  -- display messages the blob moved to compactedHistory (a non-array gives none)
        SELECT source, conversation_id, item, item -> 'metadata' ->> 'id' AS k
        FROM (SELECT source, id AS conversation_id, unnest(json_extract(data, '$.compactedHistory[*]')) AS item
              FROM conversations AS c
              SEMI JOIN audit_cause_scope AS sc ON sc.source = c.source AND sc.conversation_id = c.id
              WHERE src IS NULL OR c.source = src)
    ),
    moved_keys AS (SELECT DISTINCT source, conversation_id, k FROM compacted),
    log_runs AS (SELECT DISTINCT source, conversation_id, run_id FROM e WHERE run_id IS NOT NULL),
    log_start AS (  -- when the log's first turn was written
        SELECT source, conversation_id, min(message_ts) AS first_ts FROM e WHERE message_ts IS NOT NULL GROUP BY ALL
    ),
    pre_log AS (  -- display messages (kept or moved to compactedHistory) the log never saw, written before its
                  -- first turn (pre_log_messages) or before the source's first transcript entry
                  -- (pre_dual_write_messages, audit_source_facts): history from before the dual-write,
                  -- however a compaction moved it
        SELECT x.source, x.conversation_id,
               count(*) FILTER (WHERE x.ts < ls.first_ts) AS pre_log_messages,
               count(*) FILTER (WHERE x.ts < epoch_ms(sf.dual_write_from)) AS pre_dual_write_messages
        FROM (  -- (set apart first, so only the unlogged messages are parsed for their timestamp)
            SELECT y.source, y.conversation_id,
                   CASE WHEN NOT contains(y.item::VARCHAR, '[Subagent Result]')
                        THEN TRY_CAST(y.item -> 'metadata' ->> 'timestamp' AS BIGINT) END AS ts
            FROM (
                SELECT source, conversation_id, item, item_key AS k FROM blob_items
                WHERE field = 'display'
                UNION ALL
                SELECT source, conversation_id, item, k FROM compacted
            ) AS y
            ANTI JOIN log_keys AS lk ON lk.source = y.source AND lk.conversation_id = y.conversation_id
                AND lk.field = 'display' AND lk.k = y.k
        ) AS x
        LEFT JOIN log_start AS ls USING (source, conversation_id)
        LEFT JOIN audit_source_facts AS sf ON sf.source = x.source
        WHERE x.ts < greatest(ls.first_ts, epoch_ms(sf.dual_write_from))
        GROUP BY ALL
    ),
    resume_runs AS (  -- a resumed turn's fresh bubble carries the run's id (its turnId is resume-<id>)
        SELECT DISTINCT source, conversation_id, run_id FROM e
        WHERE type = 'assistant_message' AND starts_with(turn_id, 'resume-') AND run_id IS NOT NULL
    ),
    amended AS (SELECT DISTINCT source, conversation_id FROM e WHERE type = 'assistant_amendment'),
    blob0 AS (
        SELECT b.source, b.conversation_id, b.field, b.position, b.item_key AS k, b.item,
               -- (the text search only spares parsing the items that cannot match: CASE, unlike AND,
               -- evaluates its branch for the rows that reach it)
               CASE WHEN NOT contains(b.item::VARCHAR, '_subagentCallback')
                         AND NOT contains(b.item::VARCHAR, '[Subagent Result]') THEN false
                    ELSE coalesce((b.item -> 'metadata' ->> '_subagentCallback') = 'true'
                        OR starts_with(coalesce(message_text(b.item), ''), '[Subagent Result]'), false)
               END AS is_callback,
               lk.k IS NOT NULL AS in_log,
               -- an llm item that is a display message (logged, or the blob's own, e.g. written before
               -- the dual-write): the blob copied `messages` into _harnessMessages (a callback turn,
               -- SPEC §5), it is no lost harness_message
               b.field = 'llm' AND (dk.k IS NOT NULL OR bd.k IS NOT NULL) AS display_copy
        FROM blob_items AS b
        LEFT JOIN log_keys AS lk ON lk.source = b.source AND lk.conversation_id = b.conversation_id
            AND lk.field = b.field AND lk.k = b.item_key
        LEFT JOIN log_keys AS dk ON dk.source = b.source AND dk.conversation_id = b.conversation_id
            AND dk.field = 'display' AND dk.k = b.item_key
        LEFT JOIN (SELECT DISTINCT source, conversation_id, item_key AS k FROM blob_items
                   WHERE field = 'display' AND item_key IS NOT NULL) AS bd
            ON b.field = 'llm' AND bd.source = b.source AND bd.conversation_id = b.conversation_id
            AND bd.k = b.item_key
    ),
    blob1 AS MATERIALIZED (  -- what only the items the log never saw are read for
        SELECT *,
               CASE WHEN NOT in_log THEN item ->> 'role' END AS role,
               CASE WHEN NOT in_log AND field = 'llm' THEN item -> 'metadata' ->> 'runId' END AS run_id,
               -- SPEC §7: a 0.59.3+ callback message names the taskOutcome where 0.58's named the
               -- result's status (completed, error, stopped)
               CASE WHEN is_callback THEN NOT regexp_matches(coalesce(message_text(item), ''),
                   '^\[Subagent Result\] Subagent ".*" \([^)]*\) (completed|error|stopped):') ELSE false END
                   AS queue_callback,
               -- SPEC §7: in-flight draft bubbles carry metadata.incomplete since 0.59.1
               CASE WHEN in_log OR field <> 'display' THEN false WHEN NOT contains(item::VARCHAR, '"incomplete"') THEN false
                    ELSE coalesce(json_extract(item, '$.metadata.incomplete')::VARCHAR = 'true', false) END AS incomplete,
               -- (a summary carrying an id is found by it, below; one without is never in_log)
               CASE WHEN in_log OR field <> 'llm' THEN false WHEN NOT contains(item::VARCHAR, 'ompactionSummary') THEN false
                    ELSE coalesce(json_extract(item, '$.metadata.isCompactionSummary')::VARCHAR = 'true'
                                  OR json_extract(item, '$.metadata._compactionSummary')::VARCHAR = 'true', false)
               END AS is_summary,
               -- written after the source's last transcript entry (audit_source_facts): no release that
               -- dual-writes was running then (a fact for the rules only in a source 0.59.3+ wrote)
               -- (a message's metadata.timestamp; a pending result's own timestamp)
               CASE WHEN NOT in_log THEN TRY_CAST(CASE WHEN field = 'pending' THEN item ->> 'timestamp'
                                                      ELSE item -> 'metadata' ->> 'timestamp' END AS BIGINT) END AS ts,
               coalesce(ts > epoch_ms(sf.dual_write_until), false) AS after_dual_write,
               -- written before the source's first logged message: before any release dual-wrote
               coalesce(ts < epoch_ms(sf.dual_write_from), false) AS before_dual_write
        FROM blob0 LEFT JOIN (SELECT source, dual_write_from, dual_write_until FROM audit_source_facts) AS sf USING (source)
    ),
    blob AS MATERIALIZED (  -- (without the item's text: what the rules read of it is above)
        SELECT b.* EXCLUDE (item),
               -- an llm message a resumed turn added (SPEC §5: no harness_message entries for it): the run
               -- of a resume's fresh bubble, or (a merged resume, amendment logged) a lone assistant
               -- message of a run the log never saw
               b.field = 'llm' AND NOT b.in_log AND b.run_id IS NOT NULL AND (
                   rr.run_id IS NOT NULL
                   OR (am.conversation_id IS NOT NULL AND lr.run_id IS NULL AND b.role = 'assistant'
                       AND ro.n = 1)) AS resumed,
               -- the same lone message in a log with no amendment at all (resume_unlogged, below)
               b.field = 'llm' AND NOT b.in_log AND b.run_id IS NOT NULL AND rr.run_id IS NULL
                   AND am.conversation_id IS NULL AND lr.run_id IS NULL AND b.role = 'assistant'
                   AND ro.n = 1 AS lone_unseen_run
        FROM blob1 AS b
        LEFT JOIN (SELECT source, conversation_id, run_id, count(*) AS n FROM blob1
                   WHERE field = 'llm' AND NOT in_log AND run_id IS NOT NULL GROUP BY ALL) AS ro
            ON ro.source = b.source AND ro.conversation_id = b.conversation_id AND ro.run_id = b.run_id
        LEFT JOIN resume_runs AS rr ON rr.source = b.source AND rr.conversation_id = b.conversation_id
            AND rr.run_id = b.run_id
        LEFT JOIN log_runs AS lr ON lr.source = b.source AND lr.conversation_id = b.conversation_id
            AND lr.run_id = b.run_id
        LEFT JOIN amended AS am ON am.source = b.source AND am.conversation_id = b.conversation_id
    ),
    first_found AS (
        SELECT source, conversation_id, field, min(position) FILTER (WHERE in_log) AS first_in_log,
               max(position) FILTER (WHERE in_log) AS last_in_log,
               count(*) FILTER (WHERE is_callback AND NOT queue_callback) AS callback_items,
               count(*) FILTER (WHERE queue_callback) AS queue_callback_items,
               count(*) FILTER (WHERE display_copy) AS display_copies,
               count(*) FILTER (WHERE resumed) AS resumed_items,
               count(*) FILTER (WHERE incomplete) AS incomplete_items,
               min(position) FILTER (WHERE after_dual_write) AS first_after_dual_write
        FROM blob GROUP BY ALL
    ),
    resume_unlogged AS (  -- a merged resume whose amendment never reached the log (SPEC §5: only that
                          -- append records a merged resume): a lone assistant message of a run the log never
                          -- saw that finishes no unlogged user message's turn (a tool-less turn whose finalize
                          -- was lost leaves that pair); lost_or_reordered_append counts it as lost as well
        SELECT c.source, c.conversation_id, count(*) AS resumed_without_append
        FROM blob AS c JOIN blob AS p ON p.source = c.source AND p.conversation_id = c.conversation_id
            AND p.field = 'llm' AND p.position = c.position - 1
        JOIN first_found AS f ON f.source = c.source AND f.conversation_id = c.conversation_id AND f.field = 'llm'
        WHERE c.lone_unseen_run AND (p.in_log OR p.role IS DISTINCT FROM 'user')
          -- after the first message the log holds (a resume before the dual-write logged nothing either)
          AND c.position > coalesce(f.first_in_log, -1) AND NOT c.before_dual_write
        GROUP BY ALL
    ),
    keyless AS (  -- display bubbles without an id (a callback turn's reply, a resume's fresh bubble, SPEC §5):
                  -- no identity finds them, so they are only counted, after the first message the log holds
        SELECT b.source, b.conversation_id, count(*) AS keyless_bubbles
        FROM blob AS b JOIN first_found AS f USING (source, conversation_id, field)
        WHERE b.field = 'display' AND b.k IS NULL AND b.role = 'assistant' AND b.position > coalesce(f.first_in_log, -1)
        GROUP BY ALL
    ),
    own_prefix AS (  -- a thread's display messages before the first one its log holds, dated from the
                     -- thread's creation on: its own turn's, not the parent's it copied (thread_copy_not_captured)
        SELECT b.source, b.conversation_id, count(*) AS own_unlogged_prefix
        FROM blob AS b JOIN first_found AS f USING (source, conversation_id, field)
        JOIN conversations AS c ON c.source = b.source AND c.id = b.conversation_id
        WHERE b.field = 'display' AND NOT b.in_log AND b.position < f.first_in_log AND NOT b.after_dual_write
          AND c.parent_conversation_id IS NOT NULL AND b.ts >= epoch_ms(c.created_at)
        GROUP BY ALL
    ),
    tail AS (  -- blob messages after the last one the log knows, none of them logged
        SELECT b.source, b.conversation_id, b.field,
               count(*) FILTER (WHERE b.role = 'user' AND NOT b.is_callback) AS unlogged_tail_users,
               count(*) FILTER (WHERE b.role = 'assistant') AS unlogged_tail_bubbles,
               -- where the unlogged turns start: the items before it finish the last logged turn
               min(b.position) FILTER (WHERE b.role = 'user' AND NOT b.is_callback) AS first_unlogged_user,
               max(b.ts) FILTER (WHERE b.role = 'user' AND NOT b.is_callback) AS last_unlogged_user_ts,
               list(b.position ORDER BY b.position) FILTER (WHERE b.role = 'assistant') AS tail_bubble_positions
        FROM blob AS b JOIN first_found AS f USING (source, conversation_id, field)
        WHERE NOT b.in_log AND b.position > coalesce(f.last_in_log, -1)
        GROUP BY ALL
    ),
    lost AS (  -- blob items the log never saw, after the first one it did
        SELECT b.source, b.conversation_id, b.field, list(b.position ORDER BY b.position) AS lost_positions
        FROM blob AS b JOIN first_found AS f USING (source, conversation_id, field)
        WHERE NOT b.in_log AND NOT b.is_callback AND NOT b.display_copy AND NOT b.resumed AND b.k IS NOT NULL
          AND NOT b.before_dual_write AND (f.first_in_log IS NULL OR b.position > f.first_in_log)
        GROUP BY ALL
    ),
    blob_keys AS (SELECT DISTINCT source, conversation_id, field, k FROM blob WHERE k IS NOT NULL),
    amended_seqs AS (  -- bubbles a resume amended: the blob rewrote them (resume_not_captured explains it)
        SELECT DISTINCT t.source, t.conversation_id, t.seq
        FROM e AS t JOIN e AS a
            ON a.source = t.source AND a.conversation_id = t.conversation_id
            AND a.type = 'assistant_amendment' AND a.target = t.id
        WHERE t.type = 'assistant_message'
    ),
    served_log AS (  -- served items that came from the log, and whether the blob holds them
        SELECT s.source, s.conversation_id, s.field, s.seq,
               bk.k IS NOT NULL AS in_blob, mk.k IS NOT NULL AS moved,
               s.field = 'display' AND am.seq IS NOT NULL AS amended
        FROM audit_served_items(policy, src := src) AS s
        SEMI JOIN audit_cause_scope AS sc ON sc.source = s.source AND sc.conversation_id = s.conversation_id
        LEFT JOIN blob_keys AS bk ON bk.source = s.source AND bk.conversation_id = s.conversation_id
            AND bk.field = s.field AND bk.k = s.item_key
        LEFT JOIN moved_keys AS mk ON mk.source = s.source AND mk.conversation_id = s.conversation_id
            AND mk.k = s.item_key
        LEFT JOIN amended_seqs AS am ON am.source = s.source AND am.conversation_id = s.conversation_id
            AND am.seq = s.seq
        WHERE s.seq IS NOT NULL AND s.item_key IS NOT NULL
    ),
    log_side AS (  -- (one aggregate per field: the last seq the blob knows bounds the unseen ones afterwards)
        SELECT source, conversation_id, field,
               -- log items after the last one the blob knows are newer than the blob
               nullif(list_filter(unknown_seqs, lambda s_: s_ > last_seen_seq), []) AS unseen_seqs, moved_items
        FROM (SELECT source, conversation_id, field, max(seq) FILTER (WHERE in_blob) AS last_seen_seq,
                     list(seq ORDER BY seq) FILTER (WHERE NOT in_blob AND NOT moved AND NOT amended) AS unknown_seqs,
                     count(*) FILTER (WHERE NOT in_blob AND moved) AS moved_items
              FROM served_log GROUP BY ALL)
    ),
    known_keys AS (SELECT source, conversation_id, k FROM blob_keys
                   UNION SELECT source, conversation_id, k FROM moved_keys),
    turn_messages AS MATERIALIZED (  -- logged turn messages, and whether the blob (or its compactedHistory) holds each
        SELECT x.source, x.conversation_id, x.turn_id, x.type, x.seq, kk.k IS NOT NULL AS known
        FROM e AS x
        LEFT JOIN known_keys AS kk ON kk.source = x.source AND kk.conversation_id = x.conversation_id
            AND kk.k = x.msg_id
        WHERE x.type IN ('user_message', 'assistant_message', 'harness_message') AND NOT x.hidden
          AND x.msg_id IS NOT NULL
    ),
    turn_facts AS (  -- per logged user turn: whether its user message and its finalize messages reached the blob
        SELECT source, conversation_id, turn_id,
               bool_or(type = 'user_message' AND known) AS user_in_blob,
               bool_or(type <> 'user_message' AND known) AS finalize_in_blob,
               list(seq ORDER BY seq) FILTER (WHERE type <> 'user_message') AS finalize_seqs,
               max(seq) AS last_seq
        FROM turn_messages GROUP BY ALL
    ),
    known_turn_messages AS (  -- logged user messages and bubbles the blob holds (a compaction replaces
                              -- the display's tail by kept harness messages, so only these date the blob)
        SELECT source, conversation_id, seq FROM turn_messages
        WHERE known AND type IN ('user_message', 'assistant_message')
    ),
    compaction_bounds AS (  -- where each compaction's turn starts (its user message, logged before the
                            -- compaction entry): the display before it may be replaced by kept harness messages
        SELECT c.source, c.conversation_id, u.seq
        FROM e AS c
        ASOF JOIN (SELECT source, conversation_id, seq FROM e WHERE type = 'user_message' AND NOT hidden) AS u
            ON u.source = c.source AND u.conversation_id = c.conversation_id AND u.seq < c.seq
        WHERE c.type = 'compaction'
    ),
    compaction_turn_starts AS (  -- each compaction's turn start at its first user message (a duplicated
                                 -- user_message append logs it twice: the copy is no later turn's message);
                                 -- a compaction whose entry was lost shows by its turn's re-appended summary
        SELECT c.source, c.conversation_id, min(x.seq) AS seq
        FROM e AS c
        ASOF JOIN (SELECT source, conversation_id, seq, turn_id FROM e WHERE type = 'user_message' AND NOT hidden) AS u
            ON u.source = c.source AND u.conversation_id = c.conversation_id AND u.seq < c.seq
        JOIN e AS x ON x.source = u.source AND x.conversation_id = u.conversation_id AND x.turn_id = u.turn_id
            AND x.type = 'user_message' AND NOT x.hidden
        WHERE c.type = 'compaction'
        GROUP BY c.source, c.conversation_id, c.seq
        UNION ALL
        SELECT h.source, h.conversation_id, coalesce(min(x.seq), h.seq) AS seq
        FROM e AS h
        LEFT JOIN e AS x ON x.source = h.source AND x.conversation_id = h.conversation_id AND x.turn_id = h.turn_id
            AND x.type = 'user_message' AND NOT x.hidden
        WHERE h.type = 'harness_message' AND h.summary_flag
        GROUP BY h.source, h.conversation_id, h.seq
    ),
    stale_turns AS (  -- turns whose user message reached the blob while none of their finalize messages
                      -- did, though a later turn's message, before any later compaction's turn, did: the turn's
                      -- final blob write was lost and later writes went on from the blob (SPEC §5)
        SELECT t.source, t.conversation_id, list(t.finalize_seqs[1] ORDER BY t.finalize_seqs[1]) AS stale_turn_seqs
        FROM turn_facts AS t
        ASOF LEFT JOIN compaction_turn_starts AS c ON c.source = t.source AND c.conversation_id = t.conversation_id
            AND c.seq > t.last_seq
        ASOF JOIN known_turn_messages AS k ON k.source = t.source AND k.conversation_id = t.conversation_id
            AND k.seq > t.last_seq
        WHERE t.user_in_blob AND NOT t.finalize_in_blob AND len(t.finalize_seqs) > 0
          AND (c.seq IS NULL OR k.seq < c.seq)
        GROUP BY ALL
    ),
    compactions AS MATERIALIZED (  -- each compaction entry's summary message and its metadata.id
        SELECT source, conversation_id, seq, payload -> 'summaryMessage' AS summary,
               json_extract_string(payload, '$.summaryMessage.metadata.id') AS msg_id
        FROM entries WHERE type = 'compaction'
    ),
    newest_compaction AS (
        SELECT source, conversation_id, seq FROM compactions
        QUALIFY row_number() OVER (PARTITION BY source, conversation_id ORDER BY seq DESC) = 1
    ),
    summary_items AS MATERIALIZED (
        SELECT source, conversation_id, position, k, item FROM blob1
        WHERE field = 'llm' AND (is_summary OR k IN (SELECT msg_id FROM compactions))
    ),
    summaries AS (  -- the blob's compaction summaries (flagged isCompactionSummary, or the real harness's
                    -- _compactionSummary, or carrying a compaction summary's id), and which compaction logged each
        SELECT b.source, b.conversation_id, b.position,
               bool_or(c.seq IS NOT NULL) AS logged,
               bool_or(c.seq IS NOT NULL AND c.seq = n.seq) AS newest
        FROM summary_items AS b
        LEFT JOIN compactions AS c
            ON c.source = b.source AND c.conversation_id = b.conversation_id
            AND CASE WHEN c.msg_id IS NOT NULL THEN c.msg_id = b.k ELSE audit_eq('exact', 'llm', c.summary, b.item) END
        LEFT JOIN newest_compaction AS n ON n.source = b.source AND n.conversation_id = b.conversation_id
        GROUP BY ALL
    ),
    summary_facts AS (
        SELECT source, conversation_id, count(*) FILTER (WHERE NOT logged) AS unlogged_summaries,
               bool_or(newest) AS newest_summary_in_blob,
               -- the blob's context still starts with it: no later compaction (unlogged) summarized it
               bool_or(newest AND position = 0) AS newest_summary_first
        FROM summaries GROUP BY ALL
    ),
    compaction_turn_bubble AS (  -- the newest compaction's turn (the last user message before its entry) left
                                 -- its final bubble in the blob (or its compactedHistory): that turn's write landed
        SELECT DISTINCT n.source, n.conversation_id
        FROM newest_compaction AS n
        ASOF JOIN (SELECT source, conversation_id, seq, turn_id FROM e WHERE type = 'user_message' AND NOT hidden) AS u
            ON u.source = n.source AND u.conversation_id = n.conversation_id AND u.seq < n.seq
        JOIN turn_messages AS t ON t.source = n.source AND t.conversation_id = n.conversation_id
            AND t.turn_id = u.turn_id AND t.type = 'assistant_message' AND t.known
        WHERE src IS NULL OR n.source = src
    ),
    guess_at_kept AS (  -- the newest compaction's firstKeptSeq holds the blob's first kept message (position 1):
                        -- the guess points at a kept message, though it may be logged at other seqs too (a
                        -- duplicated append), so no rule of "its last occurrence" can say the guess is off
        SELECT DISTINCT n.source, n.conversation_id
        FROM newest_compaction AS n
        JOIN e AS c ON c.source = n.source AND c.conversation_id = n.conversation_id AND c.seq = n.seq
        JOIN e AS h ON h.source = n.source AND h.conversation_id = n.conversation_id
            AND h.type = 'harness_message' AND h.seq = TRY_CAST(c.first_kept AS BIGINT)
        JOIN entries AS p ON p.source = h.source AND p.conversation_id = h.conversation_id
            AND p.seq = h.seq
        JOIN blob_items AS b ON b.source = n.source AND b.conversation_id = n.conversation_id
            AND b.field = 'llm' AND b.position = 1
        WHERE (src IS NULL OR n.source = src)
          AND CASE WHEN b.item_key IS NOT NULL THEN h.msg_id = b.item_key
                   ELSE audit_eq('exact', 'llm', p.payload -> 'message', b.item) END
    ),
    first_kept AS (  -- the log seq of the blob's first kept llm message (position 1, after the summary):
                     -- by metadata.id, or by the whole message when it has no id (an earlier summary
                     -- re-appended); a message logged twice (a whole re-append) counts at its last
                     -- occurrence before the newest compaction's turn. Python twin, held equal by
                     -- tests/test_compare.py: display.frames.blob_first_kept_seq.
        SELECT x.source, x.conversation_id,
               coalesce(max(x.seq) FILTER (WHERE x.seq < n.turn_start), min(x.seq)) AS blob_first_kept_seq FROM (
            SELECT b.source, b.conversation_id, e.seq
            FROM blob_items AS b JOIN e ON e.source = b.source
                AND e.conversation_id = b.conversation_id AND e.type = 'harness_message' AND e.msg_id = b.item_key
            WHERE b.field = 'llm' AND b.position = 1
            UNION ALL
            SELECT b.source, b.conversation_id, e.seq
            FROM blob_items AS b JOIN entries AS e ON e.source = b.source
                AND e.conversation_id = b.conversation_id AND e.type = 'harness_message'
            WHERE b.field = 'llm' AND b.position = 1 AND b.item_key IS NULL
              AND audit_eq('exact', 'llm', e.payload -> 'message', b.item)
        ) AS x
        LEFT JOIN (  -- the newest compaction's turn start: a re-append by that turn's own finalize (or a
                     -- compaction entry reordered after it) is no kept message the guess could point at
            SELECT n.source, n.conversation_id, max(b.seq) AS turn_start
            FROM newest_compaction AS n JOIN compaction_bounds AS b USING (source, conversation_id)
            WHERE b.seq < n.seq GROUP BY ALL
        ) AS n USING (source, conversation_id)
        GROUP BY ALL
    )
    SELECT f.source, f.conversation_id, f.field, f.callback_items, f.queue_callback_items, f.display_copies,
           f.resumed_items, f.incomplete_items, f.last_in_log, f.first_after_dual_write,
           CASE WHEN f.field = 'display' THEN coalesce(kl.keyless_bubbles, 0) END AS keyless_bubbles,
           -- leading blob items the log never saw, followed by ones it did: history from before the dual-write
           CASE WHEN f.first_in_log > 0 THEN f.first_in_log ELSE 0 END AS missing_prefix,
           l.lost_positions, ls.unseen_seqs, coalesce(ls.moved_items, 0) AS moved_items,
           coalesce(t.unlogged_tail_users, 0) AS unlogged_tail_users,
           coalesce(t.unlogged_tail_bubbles, 0) AS unlogged_tail_bubbles, t.first_unlogged_user,
           t.last_unlogged_user_ts,
           -- unlogged bubbles before the first unlogged user message: they finish the last logged turn
           len(list_filter(coalesce(t.tail_bubble_positions, []),
                           lambda p_: p_ < coalesce(t.first_unlogged_user, p_ + 1))) AS leading_tail_bubbles,
           CASE WHEN f.field = 'display' THEN st.stale_turn_seqs END AS stale_turn_seqs,
           CASE WHEN f.field = 'display' THEN coalesce(pl.pre_log_messages, 0) END AS pre_log_messages,
           CASE WHEN f.field = 'display' THEN coalesce(pl.pre_dual_write_messages, 0) END AS pre_dual_write_messages,
           CASE WHEN f.field = 'display' THEN coalesce(op.own_unlogged_prefix, 0) END AS own_unlogged_prefix,
           CASE WHEN f.field = 'llm' THEN coalesce(ru.resumed_without_append, 0) END AS resumed_without_append,
           CASE WHEN f.field = 'llm' THEN fk.blob_first_kept_seq END AS blob_first_kept_seq,
           CASE WHEN f.field = 'llm' THEN coalesce(sf.unlogged_summaries, 0) END AS unlogged_summaries,
           CASE WHEN f.field = 'llm' THEN coalesce(sf.newest_summary_in_blob, false) END AS newest_summary_in_blob,
           CASE WHEN f.field = 'llm' THEN coalesce(sf.newest_summary_first, false) END AS newest_summary_first,
           CASE WHEN f.field = 'llm' THEN gk.conversation_id IS NOT NULL END AS guess_at_kept,
           CASE WHEN f.field = 'llm' THEN cb.conversation_id IS NOT NULL END AS compaction_turn_bubble_in_blob
    FROM first_found AS f
    LEFT JOIN lost AS l USING (source, conversation_id, field)
    LEFT JOIN log_side AS ls USING (source, conversation_id, field)
    LEFT JOIN tail AS t USING (source, conversation_id, field)
    LEFT JOIN stale_turns AS st USING (source, conversation_id)
    LEFT JOIN pre_log AS pl USING (source, conversation_id)
    LEFT JOIN first_kept AS fk USING (source, conversation_id)
    LEFT JOIN resume_unlogged AS ru USING (source, conversation_id)
    LEFT JOIN own_prefix AS op USING (source, conversation_id)
    LEFT JOIN keyless AS kl USING (source, conversation_id)
    LEFT JOIN summary_facts AS sf USING (source, conversation_id)
    LEFT JOIN guess_at_kept AS gk USING (source, conversation_id)
    LEFT JOIN compaction_turn_bubble AS cb USING (source, conversation_id);

-- Facts about the pending subagent results, the one field 0.59+ reads from
-- the log (SPEC §7), by result identity (subagentId@timestamp): results the
-- blob holds more than once, results the queue consumed (a callback_started
-- lists their seq) that the blob still holds, and results pending in the
-- queue that the blob lacks.
CREATE OR REPLACE MACRO audit_pending_facts(src := NULL) AS TABLE
    WITH consumed AS (
        SELECT DISTINCT source, conversation_id,
               TRY_CAST(unnest(json_extract(payload, '$.consumedSeqs[*]'))::VARCHAR AS DOUBLE) AS consumed_seq
        FROM conversation_entries WHERE type = 'callback_started' AND (src IS NULL OR source = src)
    ),
    queue_results AS (  -- per result identity: its seqs, and whether one of them is still pending
        SELECT r.source, r.conversation_id, r.result_key AS result, list(r.seq ORDER BY r.seq) AS seqs,
               bool_or(c.consumed_seq IS NULL) AS pending_in_queue
        FROM audit_entry_facts AS r
        LEFT JOIN consumed AS c ON c.source = r.source AND c.conversation_id = r.conversation_id
            AND c.consumed_seq = r.seq
        WHERE r.type = 'subagent_result' AND r.result_key IS NOT NULL AND (src IS NULL OR r.source = src)
        GROUP BY ALL
    ),
    blob_results AS (
        SELECT source, conversation_id, item_key AS result, list(position ORDER BY position) AS positions
        FROM audit_blob_items WHERE field = 'pending' AND item_key IS NOT NULL AND (src IS NULL OR source = src)
        GROUP BY ALL
    ),
    found AS (
        SELECT source, conversation_id, 'doubled' AS kind,
               {'result': result, 'blob_positions': positions, 'queue_seqs': NULL::BIGINT[]} AS fact
        FROM blob_results WHERE len(positions) > 1
        UNION ALL
        SELECT b.source, b.conversation_id, 'kept', {'result': b.result, 'blob_positions': b.positions, 'queue_seqs': q.seqs}
        FROM blob_results AS b JOIN queue_results AS q USING (source, conversation_id, result)
        WHERE NOT q.pending_in_queue
        UNION ALL
        SELECT q.source, q.conversation_id, 'missing', {'result': q.result, 'blob_positions': NULL::BIGINT[], 'queue_seqs': q.seqs}
        FROM queue_results AS q ANTI JOIN blob_results AS b USING (source, conversation_id, result)
        WHERE q.pending_in_queue
    )
    SELECT source, conversation_id,
           list(fact ORDER BY fact.result) FILTER (WHERE kind = 'doubled') AS doubled_results,
           list(fact ORDER BY fact.result) FILTER (WHERE kind = 'kept') AS consumed_results_in_blob,
           list(fact ORDER BY fact.result) FILTER (WHERE kind = 'missing') AS queued_results_not_in_blob
    FROM found GROUP BY ALL;

-- One row per conversation: verdicts, counts per field, causes with evidence.
-- Causes are SPEC §6's classes plus four the SPEC §5 write sites explain
-- (resume_not_captured, thread_copy_not_captured, compaction_moved_history,
-- stale_blob); `unexplained` when a divergence fits none, so nothing hides.
CREATE OR REPLACE MACRO parity_at(policy, mode, src := NULL) AS TABLE
    -- Each part is computed once, on its own (MATERIALIZED): planned as one
    -- query, the parts' shared subplans and joins blow up time and memory.
    WITH cmp AS MATERIALIZED (SELECT * FROM audit_compare(policy, mode, src := src)),
    plan AS MATERIALIZED (SELECT * FROM audit_plan(policy, src := src)),
    -- the conversations a cause can be found on, the only ones the facts macros read (see the view
    -- of this name): the diverged ones, and the matching ones cause_blob_overwritten_by_rebuild
    -- can name (llm served from the log, and a callback_started logged or the blob written after
    -- the last entry: that macro's own conditions, less the blob's callback messages)
    audit_cause_scope AS MATERIALIZED (
        SELECT source, conversation_id FROM cmp WHERE first_position IS NOT NULL
        UNION
        SELECT p.source, p.conversation_id FROM plan AS p
        JOIN conversations AS c ON c.source = p.source AND c.id = p.conversation_id
        WHERE p.llm_log AND (p.last_callback_seq IS NOT NULL
                             OR c.updated_at > p.last_entry_at + INTERVAL 1 SECOND)
    ),
    f AS MATERIALIZED (SELECT * FROM audit_item_facts(policy, src := src)),
    lf AS MATERIALIZED (SELECT * FROM audit_log_facts(src := src)),
    h AS MATERIALIZED (SELECT * FROM audit_harness_verdict(src := src)),
    pf AS MATERIALIZED (SELECT * FROM audit_pending_facts(src := src)),
    -- the source's facts (a TEMP table of the whole source's in a shard: see the view)
    sf AS MATERIALIZED (SELECT * FROM audit_source_facts WHERE src IS NULL OR source = src),
    wide AS (
        SELECT source, conversation_id,
            any_value(cmp) FILTER (WHERE field = 'llm') AS llm,
            any_value(cmp) FILTER (WHERE field = 'display') AS display,
            any_value(cmp) FILTER (WHERE field = 'pending') AS pending,
            list(field ORDER BY CASE field WHEN 'llm' THEN 0 WHEN 'display' THEN 1 ELSE 2 END)
                FILTER (WHERE first_position IS NOT NULL) AS diverged_fields,
            list(CASE WHEN first_position IS NOT NULL THEN
                     list_transform(samples, lambda x_: {'field': field, 'position': x_.position, 'seq': x_.seq,
                                                       'entries': x_.entries, 'blob': x_.blob}) END
                 ORDER BY CASE field WHEN 'llm' THEN 0 WHEN 'display' THEN 1 ELSE 2 END) AS sample_lists
        FROM cmp GROUP BY ALL
    ),
    per_field AS (  -- each field's item facts (audit_item_facts), one column per field
        SELECT source, conversation_id,
            any_value(f) FILTER (WHERE field = 'llm') AS llm_facts,
            any_value(f) FILTER (WHERE field = 'display') AS display_facts,
            any_value(f) FILTER (WHERE field = 'pending') AS pending_facts
        FROM f GROUP BY ALL
    ),
    base AS MATERIALIZED (
        SELECT c.source, c.id AS conversation_id, c.title, c.updated_at,
               p.n_entries, p.era, p.llm_log, p.display_log, p.pending_log, w.llm, w.display, w.pending,
               coalesce(w.diverged_fields, []) AS diverged_fields,
               flatten(list_filter(w.sample_lists, lambda x_: x_ IS NOT NULL)) AS samples,
               {'n_entries': p.n_entries, 'era': p.era, 'parent_conversation_id': c.parent_conversation_id,
                'updated_at': c.updated_at, 'llm_log': p.llm_log,
                'quarantined': coalesce(q.quarantined, []),
                'queue_writes_in_source': coalesce(sf.queue_writes_seen, false),
                'queue_writes_from': sf.queue_writes_from, 'dual_write_until': sf.dual_write_until,
                'created_at': c.created_at} AS conversation,
               lf AS log_facts, pf AS queue_facts, pfw.llm_facts, pfw.display_facts, pfw.pending_facts
        FROM conversations AS c
        JOIN plan AS p ON p.source = c.source AND p.conversation_id = c.id
        JOIN wide AS w ON w.source = c.source AND w.conversation_id = c.id
        LEFT JOIN per_field AS pfw ON pfw.source = c.source AND pfw.conversation_id = c.id
        LEFT JOIN lf ON lf.source = c.source AND lf.conversation_id = c.id
        LEFT JOIN pf ON pf.source = c.source AND pf.conversation_id = c.id
        LEFT JOIN sf ON sf.source = c.source
        LEFT JOIN (
            SELECT source, conversation_id, list({'seq': seq, 'reason': reason, 'field': detail} ORDER BY seq) AS quarantined
            FROM quarantine WHERE "table" = 'conversation_entries' AND (src IS NULL OR source = src) GROUP BY ALL
        ) AS q ON q.source = c.source AND q.conversation_id = c.id
        WHERE src IS NULL OR c.source = src
    ),
    causes AS MATERIALIZED (  -- one macro per cause (causes.sql), in the order the causes are listed
        SELECT b.source, b.conversation_id, list_filter([
            cause_pre_dual_write(b.diverged_fields, b.conversation, b.log_facts, b.llm_facts, b.display_facts,
                                 b.llm, b.display),
            cause_thread_copy_not_captured(b.diverged_fields, b.conversation, b.display_facts),
            cause_callback_turn_not_captured(b.diverged_fields, b.conversation, b.log_facts, b.llm_facts, b.display_facts),
            cause_approximate_finalize_diff(b.diverged_fields, b.log_facts),
            cause_guessed_first_kept_seq_off(b.diverged_fields, b.log_facts, b.llm_facts, b.llm),
            cause_compaction_moved_history(b.diverged_fields, b.log_facts, b.display_facts),
            cause_resume_not_captured(b.diverged_fields, b.conversation, b.log_facts, b.llm_facts, b.display_facts,
                                      b.llm, b.display),
            cause_amendment_wrong_target(b.diverged_fields, b.log_facts),
            cause_lost_or_reordered_append(b.diverged_fields, b.conversation, b.log_facts,
                                           b.llm_facts, b.display_facts, b.pending_facts),
            cause_stale_blob(b.diverged_fields, b.conversation, b.log_facts,
                             b.llm_facts, b.display_facts, b.pending_facts),
            cause_result_delivered_twice(b.diverged_fields, b.queue_facts),
            cause_consumed_result_kept_in_blob(b.diverged_fields, b.log_facts, b.queue_facts),
            cause_queued_result_not_in_blob(b.diverged_fields, b.conversation, b.log_facts, b.queue_facts),
            cause_dual_write_ended(b.diverged_fields, b.conversation, b.log_facts, b.llm_facts, b.display_facts),
            cause_quarantined_entries(b.diverged_fields, b.conversation),
            cause_blob_overwritten_by_rebuild(b.diverged_fields, b.conversation, b.log_facts, b.llm_facts)
        ], lambda x_: x_ IS NOT NULL) AS found
        FROM base AS b
    ),
    -- An unexplained divergence carries the aligned slice around its first divergent position in
    -- each diverged field (three items each side; served items with their log seq, blob items with
    -- the seq of the log entry holding the same message, if any), so a person can write the rule.
    unexplained AS MATERIALIZED (
        SELECT b.source, b.conversation_id, f.field,
               CASE f.field WHEN 'llm' THEN b.llm.first_position WHEN 'display' THEN b.display.first_position
                            ELSE b.pending.first_position END AS first_position
        FROM base AS b JOIN causes AS c USING (source, conversation_id)
        CROSS JOIN (VALUES ('llm'), ('display'), ('pending')) AS f(field)
        WHERE len(b.diverged_fields) > 0 AND len(c.found) = 0 AND list_contains(b.diverged_fields, f.field)
    ),
    slice_items AS (
        SELECT u.source, u.conversation_id, u.field, u.first_position, l.position, l.seq,
               audit_preview(u.field, l.item) AS entries, NULL::VARCHAR AS blob, NULL::BIGINT AS blob_seq
        FROM unexplained AS u JOIN audit_log_items AS l USING (source, conversation_id, field)
        WHERE l.position BETWEEN u.first_position - 3 AND u.first_position + 3
        UNION ALL
        SELECT u.source, u.conversation_id, u.field, u.first_position, x.position, NULL,
               NULL, audit_preview(u.field, x.item),
               (SELECT min(k.seq) FROM audit_log_keys AS k WHERE k.source = x.source
                   AND k.conversation_id = x.conversation_id AND k.k = x.item_key)
        FROM unexplained AS u JOIN audit_blob_items AS x USING (source, conversation_id, field)
        WHERE x.position BETWEEN u.first_position - 3 AND u.first_position + 3
    ),
    slices AS (
        SELECT source, conversation_id, json_object('slices', list(json_object(
                   'field', field, 'first_position', first_position, 'items', items)
                   ORDER BY CASE field WHEN 'llm' THEN 0 WHEN 'display' THEN 1 ELSE 2 END)) AS evidence
        FROM (
            SELECT source, conversation_id, field, first_position,
                   list({'position': position, 'entries_seq': seq, 'entries': entries, 'blob': blob,
                         'blob_seq': blob_seq} ORDER BY position) AS items
            FROM (SELECT source, conversation_id, field, first_position, position,
                         max(seq) AS seq, any_value(entries) AS entries, any_value(blob) AS blob,
                         max(blob_seq) AS blob_seq
                  FROM slice_items GROUP BY ALL)
            GROUP BY ALL)
        GROUP BY ALL
    )
    SELECT b.source, b.conversation_id, b.title, b.n_entries AS entries, b.era,
           list_filter(['llm', 'display', 'pending'], lambda f_: CASE f_ WHEN 'llm' THEN b.llm_log
               WHEN 'display' THEN b.display_log ELSE b.pending_log END) AS served_from_log,
           CASE WHEN len(b.diverged_fields) > 0 THEN 'diverged' ELSE 'match' END AS verdict,
           b.diverged_fields,
           h.harness_verdict, h.harness_mismatches, h.harness_log_line,
           CASE WHEN len(b.diverged_fields) > 0 AND len(c.found) = 0 THEN ['unexplained']
                ELSE list_transform(c.found, lambda x_: x_.cause) END AS causes,
           CASE WHEN len(b.diverged_fields) > 0 AND len(c.found) = 0
                THEN json_object('unexplained', coalesce(sl.evidence, json_object('slices', [])))
                ELSE to_json(map_from_entries(list_transform(c.found, lambda x_: {'key': x_.cause, 'value': x_.evidence})))
           END AS evidence,
           b.llm.served AS llm_entries, b.llm.blob AS llm_blob, b.llm.matching AS llm_matching,
           b.llm.changed AS llm_changed, b.llm.missing_in_entries AS llm_missing_in_entries,
           b.llm.extra_in_entries AS llm_extra_in_entries, b.llm.first_position AS llm_first_position,
           b.llm.first_seq_entries AS llm_first_seq_entries, b.llm.first_seq_blob AS llm_first_seq_blob,
           b.display.served AS display_entries, b.display.blob AS display_blob, b.display.matching AS display_matching,
           b.display.changed AS display_changed, b.display.missing_in_entries AS display_missing_in_entries,
           b.display.extra_in_entries AS display_extra_in_entries, b.display.first_position AS display_first_position,
           b.display.first_seq_entries AS display_first_seq_entries, b.display.first_seq_blob AS display_first_seq_blob,
           b.pending.served AS pending_entries, b.pending.blob AS pending_blob, b.pending.matching AS pending_matching,
           b.pending.changed AS pending_changed, b.pending.missing_in_entries AS pending_missing_in_entries,
           b.pending.extra_in_entries AS pending_extra_in_entries, b.pending.first_position AS pending_first_position,
           b.pending.first_seq_entries AS pending_first_seq_entries, b.pending.first_seq_blob AS pending_first_seq_blob,
           b.samples
    FROM base AS b
    JOIN causes AS c USING (source, conversation_id)
    JOIN h USING (source, conversation_id)
    LEFT JOIN slices AS sl USING (source, conversation_id);
