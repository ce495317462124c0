-- anomalies: rows that parse and load, but break a rule a correct harness store keeps.
--
-- One row per finding, per source (rules hold per source, see schema.sql):
--   duplicate_seq   one row per (conversation_id, seq) held by more than one entry
--   duplicate_id    one row per entry id held by more than one entry
--   seq_gap         one row per missing run of seqs (the log must be 1, 2, 3, ...)
--   orphan_entries  one row per conversation id that has entries but no conversation row
--   no_entries      one row per conversation that has no entries (blob only: before
--                   the dual-write, or a lost log)
-- Entries are joined on conversation_id only, never on agent_id (SPEC §5).

CREATE OR REPLACE VIEW anomalies AS
WITH shared_seqs AS (
    SELECT source, conversation_id, seq, count(*) AS n
    FROM conversation_entries GROUP BY source, conversation_id, seq HAVING count(*) > 1
),
gapped AS (
    -- A log without a repeated seq whose seqs run from 1 to its row count is
    -- 1, 2, 3, ... with no gap: only the others need their seqs ranked.
    SELECT source, conversation_id FROM conversation_entries
    GROUP BY source, conversation_id HAVING min(seq) <> 1 OR max(seq) <> count(*)
    UNION
    SELECT source, conversation_id FROM shared_seqs
),
seqs AS (
    SELECT DISTINCT e.source, e.conversation_id, e.seq
    FROM conversation_entries e SEMI JOIN gapped g ON g.source = e.source AND g.conversation_id = e.conversation_id
),
gaps AS (
    SELECT source, conversation_id, seq,
        coalesce(lag(seq) OVER (PARTITION BY source, conversation_id ORDER BY seq), 0) AS prev
    FROM seqs
)
SELECT source, 'duplicate_seq' AS kind, conversation_id, seq, NULL AS entry_id,
    n || ' entries share this seq' AS detail
FROM shared_seqs
UNION ALL
SELECT source, 'duplicate_id', min(conversation_id), min(seq), id,
    count(*) || ' entries share this id'
FROM conversation_entries GROUP BY source, id HAVING count(*) > 1
UNION ALL
SELECT source, 'seq_gap', conversation_id, prev + 1, NULL,
    CASE WHEN seq - prev = 2 THEN 'seq ' || (prev + 1) || ' missing'
         ELSE 'seqs ' || (prev + 1) || '..' || (seq - 1) || ' missing' END
FROM gaps WHERE seq > prev + 1
UNION ALL
SELECT e.source, 'orphan_entries', e.conversation_id, NULL, NULL,
    count(*) || ' entries, no conversation row'
FROM conversation_entries e ANTI JOIN conversations c ON c.source = e.source AND c.id = e.conversation_id
GROUP BY e.source, e.conversation_id
UNION ALL
SELECT c.source, 'no_entries', c.id, NULL, NULL, 'conversation has no entries'
FROM conversations c ANTI JOIN conversation_entries e ON e.source = c.source AND e.conversation_id = c.id;
