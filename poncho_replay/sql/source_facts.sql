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
-- pass over the entries' type and created_at, parsing only the payloads of
-- subagent_result, user_message and assistant_message, outside the shards).
-- queue_writes_seen: some conversation of the source holds an entry only
-- 0.59.3+ writes (audit_written_by_queue_release, SPEC §7), so that release
-- wrote this database. Without one, no unlogged turn of the source can be
-- 0.59.3+'s (causes.sql, audit_written_after_dual_write).
-- queue_writes_from: when the first of those was written.
-- dual_write_from: the earliest message the source's log holds (the
-- metadata.timestamp of a user_message's or assistant_message's message: a
-- turn's bubble is dated at the turn's start, so one lost append of the
-- fleet's first logged turn still dates that turn inside the dual-write);
-- dual_write_until: when its last transcript entry (any type but the
-- queue's, SPEC §5, §7) was written. The dual-write ran between them. A release is deployed to a whole fleet,
-- so a blob message the log never saw, dated before dual_write_from, was
-- written before any release dual-wrote (pre_dual_write), and one dated
-- after dual_write_until, in a source 0.59.3+ wrote, after the dual-write
-- ended (dual_write_ended). In a source whose last transcript entry precedes
-- its first 0.59.3+ write (one release at a time, as a deployment runs), an
-- unlogged turn dated before queue_writes_from is taken for 0.58's lost
-- appends, not 0.59.3+'s (a 0.59.3+ release that ran long before it queued
-- its first result would be misread there). The
-- dual-write bounds are sound whatever the faults (a
-- lost append only narrows the span) and whether or not releases coexisted
-- for a while (a rolling deployment, or the simulator's sequential fleet,
-- which moves each conversation on at its own point): what falls inside
-- the span is left to the conversation's own evidence. A source with no
-- entry has no row here (read as false and NULL). The sharded audits
-- (shards.py, streamed.py, distributed.py) compute these over the whole
-- source first (audit.merge_source_facts combines their parts) and shadow
-- this view with a TEMP table of the same name holding those rows, so every
-- shard reads the fleet's facts.
CREATE OR REPLACE VIEW audit_source_facts AS
    SELECT source,
           coalesce(bool_or(audit_written_by_queue_release(type, payload)), false) AS queue_writes_seen,
           min(created_at) FILTER (WHERE audit_written_by_queue_release(type, payload)) AS queue_writes_from,
           make_timestamp(1000 * min(CASE WHEN type IN ('user_message', 'assistant_message')
               THEN TRY_CAST(json_extract_string(payload, '$.message.metadata.timestamp') AS BIGINT) END)) AS dual_write_from,
           max(created_at) FILTER (WHERE type NOT IN ('subagent_result', 'callback_started')) AS dual_write_until
    FROM conversation_entries
    GROUP BY ALL;
