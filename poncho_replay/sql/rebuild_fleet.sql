-- The harness's rebuild rules (SPEC §3) in DuckDB SQL, for every conversation
-- at once: the set-based twin of poncho_replay/rebuild.py, held equal to it
-- message by message by tests/test_fleet_sql.py. Needs schema.sql first.
--
-- Each rebuild is a table macro with optional named arguments, plus a view
-- that calls it with none (the whole database, every seq):
--   src      a source name, or NULL for every source;
--   ids      a VARCHAR[] of conversation ids, or NULL for all;
--   upto     replay: only entries with seq <= upto (rebuild.state_at);
--   cutoffs  replay per conversation: a STRUCT(conversation_id, seq)[]; only
--            the listed conversations, each using its entries with seq <= its seq.
-- install() in poncho_replay/fleet.py first registers js_to_string and
-- js_to_number, Python scalar functions holding JavaScript's String()/Number()
-- coercions (poncho_replay._js); they only see malformed values (a non-string
-- appendText, a non-numeric firstKeptSeq), never the common path.
-- Outputs are keyed by (source, conversation_id); `position` is the 0-based
-- index in the list Python returns; `message` / `result` are JSON values
-- (SQL NULL where Python gives None because the key is absent).
--
-- Ordering: entries are taken in (seq, ordinal, dup) order, which is Python's
-- stable sort by seq over rows read in (ordinal, dup) order, so duplicate
-- seqs kept by a loader order the same way on both sides. The entry's type
-- is the `type` column (the harness writes it equal to the payload's), its id
-- the `id` column, as the harness's readEntries does.
--
-- Where Python raises (the read cutover's partial-rebuild quirk), the
-- conversation has no rows in that rebuild and a row in rebuild_errors.
-- Key order: a rebuilt assistant message keeps its keys where they were
-- (rebuild_with_content), as JavaScript's spread does, so equal values give
-- equal JSON text; only a message with duplicate keys is merge-patched.

-- JavaScript truthiness of a JSON value; SQL NULL stands for undefined.
CREATE OR REPLACE MACRO js_truthy(j) AS
    CASE
        WHEN j IS NULL THEN false
        WHEN json_type(j) = 'NULL' THEN false
        WHEN json_type(j) = 'BOOLEAN' THEN j::BOOLEAN
        WHEN json_type(j) IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN j::DOUBLE <> 0
        WHEN json_type(j) = 'VARCHAR' THEN (j ->> '$') <> ''
        ELSE true  -- [] and {} are truthy
    END;

-- `seq >= firstKeptSeq` as JavaScript compares them: an absent bound keeps
-- nothing; otherwise Number(bound) (null -> 0, true -> 1, "7" -> 7, [5] -> 5,
-- NaN keeps nothing). Numbers and booleans are compared here; the rare string,
-- list or object bound goes through js_to_number (poncho_replay._js.to_number).
CREATE OR REPLACE MACRO rebuild_seq_ge(seq, bound) AS
    CASE
        WHEN bound IS NULL THEN false
        WHEN json_type(bound) = 'NULL' THEN seq >= 0
        WHEN json_type(bound) IN ('BIGINT', 'UBIGINT') THEN seq::HUGEINT >= bound::HUGEINT
        WHEN json_type(bound) = 'DOUBLE' THEN seq::DOUBLE >= bound::DOUBLE
        WHEN json_type(bound) = 'BOOLEAN' THEN seq >= bound::BOOLEAN::INTEGER
        ELSE coalesce(NOT isnan(js_to_number(bound::VARCHAR))
                      AND seq::DOUBLE >= js_to_number(bound::VARCHAR), false)
    END;

-- The text an amendment appends: its appendText if truthy (JavaScript's
-- `text += appendText` coerces a non-string with String(), via js_to_string).
CREATE OR REPLACE MACRO rebuild_append_text(j) AS
    CASE
        WHEN NOT js_truthy(j) THEN NULL
        WHEN json_type(j) = 'VARCHAR' THEN j ->> '$'
        ELSE js_to_string(j::VARCHAR)
    END;

-- The entries a rebuild reads: filtered by source, ids and replay cutoffs.
CREATE OR REPLACE MACRO rebuild_input(src := NULL, ids := NULL, upto := NULL, cutoffs := NULL) AS TABLE
    SELECT e.source, e.conversation_id, e.seq, e.ordinal, e.dup, e.id, e.type, e.payload
    FROM conversation_entries AS e
    -- a join, not a correlated subquery: without cutoffs it joins an empty table
    LEFT JOIN (
        SELECT c.conversation_id, max(c.seq) AS seq
        FROM unnest(cutoffs::STRUCT(conversation_id VARCHAR, seq BIGINT)[]) AS u(c) GROUP BY ALL
    ) AS cut ON cut.conversation_id = e.conversation_id
    WHERE (src IS NULL OR e.source = src)
      AND (ids IS NULL OR e.conversation_id IN (SELECT unnest(ids::VARCHAR[])))
      AND (upto IS NULL OR e.seq <= upto)
      AND (cutoffs IS NULL OR e.seq <= cut.seq);

-- buildLlmContext: the latest compaction's summary, then every harness message
-- with seq >= its firstKeptSeq; with no compaction, every harness message.
CREATE OR REPLACE MACRO llm_context_at(src := NULL, ids := NULL, upto := NULL, cutoffs := NULL) AS TABLE
    WITH e AS (
        SELECT * FROM rebuild_input(src := src, ids := ids, upto := upto, cutoffs := cutoffs)
        WHERE type IN ('compaction', 'harness_message')
    ),
    latest AS (  -- greatest seq; the first of equal seqs
        SELECT source, conversation_id, seq, ordinal, dup,
               payload -> 'summaryMessage' AS summary, payload -> 'firstKeptSeq' AS first_kept
        FROM e
        WHERE type = 'compaction'
        QUALIFY row_number() OVER (
            PARTITION BY source, conversation_id
            ORDER BY seq DESC, ordinal ASC NULLS LAST, dup ASC) = 1
    ),
    items AS (
        SELECT source, conversation_id, 0 AS part, seq, ordinal, dup, summary AS message
        FROM latest
        UNION ALL
        SELECT h.source, h.conversation_id, 1 AS part, h.seq, h.ordinal, h.dup, h.payload -> 'message'
        FROM e AS h
        LEFT JOIN latest AS l ON l.source = h.source AND l.conversation_id = h.conversation_id
        WHERE h.type = 'harness_message'
          AND (l.conversation_id IS NULL OR rebuild_seq_ge(h.seq, l.first_kept))
    )
    SELECT source, conversation_id,
           row_number() OVER (
               PARTITION BY source, conversation_id
               ORDER BY part, seq, ordinal ASC NULLS LAST, dup) - 1 AS position,
           seq, message
    FROM items;

-- Why an entry makes Python's display rebuild raise (and so the harness's read
-- path fall back), or NULL: an assistant_message whose message is not an
-- object, an amendment whose targetEntryId is a list or an object (unhashable).
CREATE OR REPLACE MACRO rebuild_display_error(type, payload) AS
    CASE
        WHEN type = 'assistant_message' AND json_type(payload, '$.message') IS DISTINCT FROM 'OBJECT'
            THEN 'assistant_message without an object message'
        WHEN type = 'assistant_amendment' AND json_type(payload, '$.targetEntryId') IN ('ARRAY', 'OBJECT')
            THEN 'assistant_amendment whose targetEntryId is a list or an object'
    END;

-- Why an entry makes the pending-results rebuild raise, or NULL.
CREATE OR REPLACE MACRO rebuild_pending_error(type, payload) AS
    CASE
        WHEN type = 'callback_started'
             AND json_type(payload -> 'consumedSeqs') IS DISTINCT FROM 'ARRAY'
             AND json_type(payload -> 'consumedSeqs') IS DISTINCT FROM 'VARCHAR'
            THEN 'callback_started whose consumedSeqs is neither a list nor a string'
    END;

-- Every entry that makes a rebuild raise: one row per offending entry.
CREATE OR REPLACE MACRO rebuild_errors_at(src := NULL, ids := NULL, upto := NULL, cutoffs := NULL) AS TABLE
    SELECT source, conversation_id, field, seq, reason
    FROM (
        SELECT source, conversation_id, seq,
               rebuild_display_error(type, payload) AS display_reason,
               rebuild_pending_error(type, payload) AS pending_reason
        FROM rebuild_input(src := src, ids := ids, upto := upto, cutoffs := cutoffs)
        WHERE type IN ('assistant_message', 'assistant_amendment', 'callback_started')
    )
    UNPIVOT (reason FOR field IN (display_reason AS 'display', pending_reason AS 'pending'));

-- `{...message, content}` as JavaScript spreads it: every key keeps its place,
-- `content` is replaced where it stands (or appended when absent), so a
-- rebuilt message's JSON text equals the blob's when the values are equal.
-- A message with duplicate keys (no MAP of it) falls back to a merge patch.
CREATE OR REPLACE MACRO rebuild_with_content(msg_, content_) AS
    coalesce(
        CASE WHEN json_exists(msg_, '$.content') THEN to_json(map_from_entries(list_transform(
            map_entries(json_transform(msg_, '"MAP(VARCHAR, JSON)"')),
            lambda kv_: {'key': kv_.key,
                         'value': CASE WHEN kv_.key = 'content' THEN to_json(content_) ELSE kv_.value END})))
        END,
        json_merge_patch(msg_, json_object('content', content_)));

-- buildDisplaySnapshot (whole transcript): visible user messages, and
-- assistant messages with content = string content or "" (list content is
-- dropped) followed by the appendText of their amendments in seq order.
CREATE OR REPLACE MACRO display_messages_at(src := NULL, ids := NULL, upto := NULL, cutoffs := NULL) AS TABLE
    WITH e AS (
        SELECT * FROM rebuild_input(src := src, ids := ids, upto := upto, cutoffs := cutoffs)
        WHERE type IN ('user_message', 'assistant_message', 'assistant_amendment')
    ),
    amended AS (
        SELECT source, conversation_id, payload ->> 'targetEntryId' AS target,
               string_agg(
                   rebuild_append_text(payload -> 'appendText'),
                   '' ORDER BY seq, ordinal ASC NULLS LAST, dup) AS append_text
        FROM e
        WHERE type = 'assistant_amendment' AND json_type(payload -> 'targetEntryId') = 'VARCHAR'
        GROUP BY ALL
    ),
    failed AS (
        SELECT DISTINCT source, conversation_id FROM e WHERE rebuild_display_error(type, payload) IS NOT NULL
    ),
    shown AS (
        SELECT m.source, m.conversation_id, m.seq, m.ordinal, m.dup,
               CASE
                   WHEN m.type = 'user_message' THEN m.msg
                   -- string content and nothing appended: the message as logged (its keys unique,
                   -- else the spread below decides which duplicate wins)
                   WHEN a.append_text IS NULL AND json_type(m.msg, '$.content') = 'VARCHAR'
                        AND list_transform([json_keys(m.msg)], lambda ks_: len(ks_) = len(list_distinct(ks_)))[1]
                       THEN m.msg
                   ELSE rebuild_with_content(
                       m.msg,
                       CASE WHEN json_type(m.msg, '$.content') = 'VARCHAR' THEN m.msg ->> 'content' ELSE '' END
                       || coalesce(a.append_text, ''))
               END AS message
        FROM (SELECT *, payload -> 'message' AS msg FROM e) AS m
        LEFT JOIN amended AS a
            ON m.type = 'assistant_message'
            AND a.source = m.source AND a.conversation_id = m.conversation_id AND a.target = m.id
        ANTI JOIN failed AS f ON f.source = m.source AND f.conversation_id = m.conversation_id
        WHERE m.type = 'assistant_message'
           OR (m.type = 'user_message' AND NOT js_truthy(m.payload -> 'hidden'))
    )
    SELECT source, conversation_id,
           row_number() OVER (
               PARTITION BY source, conversation_id
               ORDER BY seq, ordinal ASC NULLS LAST, dup) - 1 AS position,
           seq, message
    FROM shown;

-- getPendingSubagentResults: results whose seq no callback_started consumed,
-- wherever that callback sits in the log. Booleans never consume a seq.
CREATE OR REPLACE MACRO pending_subagent_results_at(src := NULL, ids := NULL, upto := NULL, cutoffs := NULL) AS TABLE
    WITH e AS (
        SELECT * FROM rebuild_input(src := src, ids := ids, upto := upto, cutoffs := cutoffs)
        WHERE type IN ('subagent_result', 'callback_started')
    ),
    consumed AS (
        SELECT DISTINCT source, conversation_id, v::DOUBLE AS consumed_seq
        FROM (
            SELECT source, conversation_id,
                   unnest(json_extract(payload -> 'consumedSeqs', '$[*]')) AS v
            FROM e
            WHERE type = 'callback_started' AND json_type(payload -> 'consumedSeqs') = 'ARRAY'
        )
        WHERE json_type(v) IN ('BIGINT', 'UBIGINT', 'DOUBLE')
    ),
    failed AS (
        SELECT DISTINCT source, conversation_id FROM e WHERE rebuild_pending_error(type, payload) IS NOT NULL
    ),
    pending AS (
        SELECT r.source, r.conversation_id, r.seq, r.ordinal, r.dup, r.payload -> 'result' AS result
        FROM e AS r
        ANTI JOIN consumed AS c
            ON c.source = r.source AND c.conversation_id = r.conversation_id
            AND c.consumed_seq = r.seq::DOUBLE
        ANTI JOIN failed AS f ON f.source = r.source AND f.conversation_id = r.conversation_id
        WHERE r.type = 'subagent_result'
    )
    SELECT source, conversation_id,
           row_number() OVER (
               PARTITION BY source, conversation_id
               ORDER BY seq, ordinal ASC NULLS LAST, dup) - 1 AS position,
           seq, result
    FROM pending;

CREATE OR REPLACE VIEW llm_context AS SELECT * FROM llm_context_at();
CREATE OR REPLACE VIEW display_messages AS SELECT * FROM display_messages_at();
CREATE OR REPLACE VIEW pending_subagent_results AS SELECT * FROM pending_subagent_results_at();
CREATE OR REPLACE VIEW rebuild_errors AS SELECT * FROM rebuild_errors_at();
