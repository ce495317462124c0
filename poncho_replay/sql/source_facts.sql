-- The checks of the audit that span a whole source rather than one
-- conversation (DESIGN "Shards": they run as one cheap pass over the table,
-- outside the shards, and every shard reads their result). Needs nothing but
-- the workbench tables (schema.sql); audit.py runs it before audit.sql, whose
-- audit_log_counts reads the macro below, and poncho_replay.audit.source_facts
-- runs it on its own to compute the facts a sharded audit hands its shards.

-- An entry only 0.59.3+ writes (SPEC §7, "A subagent result": results now
-- carry a taskOutcome; results queued by 0.58 have none): a subagent_result
-- whose result names its taskOutcome. The one release fingerprint of the log
-- that 0.58 cannot leave, whatever its faults (a callback_started after the
-- last transcript entry can be a 0.58 callback whose hidden user messages and
-- reply were lost; a log of queue entries only, a pre-0.57 conversation whose
-- one 0.58 write was a subagent result). Read by the era (audit_plan) and by
-- the source's facts (audit_source_facts).
CREATE OR REPLACE MACRO audit_written_by_queue_release(type_, payload_) AS
    CASE WHEN type_ = 'subagent_result' THEN json_exists(payload_, '$.result.taskOutcome') ELSE false END;

-- Facts about a whole source, not one conversation (DESIGN "Shards": a
-- cheap pass over one entry type, outside the shards). queue_writes_seen: some conversation of the
-- source holds an entry only 0.59.3+ writes (audit_written_by_queue_release,
-- SPEC §7), so that release wrote this database. Without one, no unlogged
-- turn of the source can be 0.59.3+'s (causes.sql,
-- audit_written_after_dual_write). Undated on purpose: releases may coexist in
-- one database while a deployment rolls over (the simulator moves each
-- conversation on at its own point), so "no 0.59.3+ write before this turn"
-- would not be sound. A source with no such entry has no row here (read as
-- false). The sharded audits (shards.py, streamed.py, distributed.py) compute
-- it over the whole source first and shadow this view with a TEMP table of
-- the same name holding those rows, so every shard reads the fleet's fact.
CREATE OR REPLACE VIEW audit_source_facts AS
    SELECT source, bool_or(audit_written_by_queue_release(type, payload)) AS queue_writes_seen
    FROM conversation_entries WHERE type = 'subagent_result'
    GROUP BY ALL;
