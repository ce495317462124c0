-- The audit's causes: one macro per cause (STYLE item 11). Each takes the
-- facts parity_at (audit.sql) gathered for one conversation and returns
-- {'cause': name, 'evidence': JSON} when its rule fires, else NULL. Needs
-- nothing but DuckDB (audit.py runs it before audit.sql), so a test can feed
-- a hand-built fact row to any one of them.
--
-- The facts (every argument is one of these, NULL when there is none):
--   diverged_fields  the fields ('llm', 'display', 'pending') whose served
--                    value differs from the blob's
--   conversation     {n_entries, era, parent_conversation_id, updated_at,
--                     llm_log, quarantined, queue_writes_in_source,
--                     queue_writes_from, dual_write_until, created_at}: the conversation row, which
--                    harness wrote its log (audit_plan's era), whether the
--                    policy serves the LLM context from the log, and whether
--                    (and from when) any conversation of its source holds a
--                    write only 0.59.3+ makes (audit_source_facts: facts of
--                    the whole source, computed outside the shards)
--   log_facts        audit_log_facts: callback_seqs, hidden_users,
--                    callback_reply_seqs, keyless_bubbles, approx_turns,
--                    duplicates, reordered, amendments, resume_seqs,
--                    compaction_seq, first_kept_seq, first_type,
--                    last_entry_at
--   llm_facts, display_facts, pending_facts
--                    audit_item_facts of that field (items followed by
--                    identity between blob and log): callback_items,
--                    display_copies, last_in_log, missing_prefix,
--                    lost_positions, unseen_seqs, moved_items,
--                    blob_first_kept_seq, newest_summary_in_blob,
--                    newest_summary_first, guess_at_kept, unlogged_summaries,
--                    compaction_turn_bubble_in_blob, leading_tail_bubbles,
--                    resumed_without_append, keyless_bubbles,
--                    own_unlogged_prefix; and dated against the source's
--                    dual-write (audit_source_facts): pre_log_messages,
--                    pre_dual_write_messages, first_after_dual_write,
--                    last_unlogged_user_ts
--   llm_counts, display_counts, pending_counts
--                    audit_compare of that field: served, blob, matching,
--                    changed, missing_in_entries, extra_in_entries,
--                    first_position
--   queue_facts      audit_pending_facts: doubled_results,
--                    consumed_results_in_blob, queued_results_not_in_blob
--
-- The README's causes table and audit.CAUSES list the same names; a test
-- holds the three equal.

-- pre_dual_write (SPEC §6 "pre-dual-write history"; the dual-write began in
-- 0.57.0, SPEC §5). Reads conversation.n_entries, parent_conversation_id;
-- created_at, queue_writes_in_source, dual_write_until;
-- log_facts.compaction_seq, first_type; display_facts.missing_prefix,
-- moved_items, pre_log_messages, pre_dual_write_messages;
-- llm_facts.missing_prefix; llm_counts.blob, display_counts.blob. No entries
-- at all, or the display transcript starts before the log's first turn (an
-- llm-only gap is a lost finalize or a callback's copy; a gap the blob moved
-- to compactedHistory is a compaction), or display messages the log never
-- saw (kept, or moved to compactedHistory) are dated before its first turn,
-- or before the source's first transcript entry (audit_source_facts: a
-- release is deployed to the whole fleet, so nothing dual-wrote then; this
-- also dates the older turns of a log that holds only queue entries).
-- Ambiguous where the dates cannot help: a source whose releases coexisted
-- (the simulator's sequential fleet moves each conversation on at its own
-- point), where a queue-only log's older turns may be pre-dual-write or
-- 0.59.3+ and dated inside the dual-write's span; and a 0.58 first turn whose
-- user_message and finalize appends were both lost, which leaves the same
-- leading gap (no write only pre-0.57 releases make exists to give a source
-- fact, as audit_source_facts does for 0.59.3+). The deployment's dates, or
-- the harness's warning log of the failed appends, would decide.
-- (A log that does not start with a user message lost its start instead:
-- lost_or_reordered_append, unless the messages before it are dated before
-- the source's dual-write.)
CREATE OR REPLACE MACRO cause_pre_dual_write(diverged_fields, conversation, log_facts, llm_facts, display_facts,
                                             llm_counts, display_counts) AS
    CASE WHEN conversation.n_entries = 0
              -- (not one created after the source's dual-write ended, in a source 0.59.3+ wrote: that release's)
              AND NOT coalesce(conversation.queue_writes_in_source AND conversation.created_at > conversation.dual_write_until,
                               false)
         THEN {'cause': 'pre_dual_write', 'evidence': json_object(
            'entries', 0, 'blob_messages', coalesce(display_counts.blob, 0), 'blob_llm', coalesce(llm_counts.blob, 0))}
         WHEN len(diverged_fields) > 0 AND conversation.parent_conversation_id IS NULL
              AND log_facts.compaction_seq IS NULL AND log_facts.first_type = 'user_message'
              AND coalesce(display_facts.missing_prefix, 0) > 0 AND coalesce(display_facts.moved_items, 0) = 0
         THEN {'cause': 'pre_dual_write', 'evidence': json_object(
            'blob_messages_before_log', coalesce(display_facts.missing_prefix, 0),
            'blob_llm_before_log', coalesce(llm_facts.missing_prefix, 0),
            'messages_dated_before_log', coalesce(display_facts.pre_log_messages, 0))}
         WHEN len(diverged_fields) > 0 AND conversation.parent_conversation_id IS NULL
              AND log_facts.first_type = 'user_message' AND coalesce(display_facts.pre_log_messages, 0) > 0
         THEN {'cause': 'pre_dual_write', 'evidence': json_object(
            'blob_messages_before_log', coalesce(display_facts.missing_prefix, 0),
            'blob_llm_before_log', coalesce(llm_facts.missing_prefix, 0),
            'messages_dated_before_log', display_facts.pre_log_messages)}
         WHEN len(diverged_fields) > 0 AND conversation.parent_conversation_id IS NULL
              AND coalesce(display_facts.pre_dual_write_messages, 0) > 0
         THEN {'cause': 'pre_dual_write', 'evidence': json_object(
            'blob_messages_before_log', coalesce(display_facts.missing_prefix, 0),
            'messages_dated_before_dual_write', display_facts.pre_dual_write_messages)} END;

-- thread_copy_not_captured (SPEC §5: a thread copies its parent's messages
-- into the blob; nothing is logged for them). Reads diverged_fields,
-- conversation.parent_conversation_id, display_facts.missing_prefix.
CREATE OR REPLACE MACRO cause_thread_copy_not_captured(diverged_fields, conversation, display_facts) AS
    CASE WHEN list_contains(diverged_fields, 'display') AND conversation.parent_conversation_id IS NOT NULL
              AND coalesce(display_facts.missing_prefix, 0) > 0
         THEN {'cause': 'thread_copy_not_captured', 'evidence': json_object(
            'parent_conversation_id', conversation.parent_conversation_id,
            'copied_messages', display_facts.missing_prefix)} END;

-- callback_turn_not_captured (SPEC §5 "Subagent callback turn", §6). Reads
-- diverged_fields, log_facts.callback_seqs, hidden_users, callback_reply_seqs;
-- llm_facts/display_facts.callback_items, llm_facts.display_copies.
-- The diverged blob holds 0.58's injected [Subagent Result] messages (naming
-- the result's status; a 0.59.3+ callback names its taskOutcome instead and
-- is dual_write_ended), or, read with the cutover on (where they were
-- hidden), its _harnessMessages became a copy of `messages` in a log that
-- holds 0.58's hidden user messages or its callback reply bubble (0.59.3+
-- logs neither; either append may have been lost) or a callback_started and
-- blob items of a 0.58 callback.
CREATE OR REPLACE MACRO cause_callback_turn_not_captured(diverged_fields, conversation, log_facts, llm_facts, display_facts) AS
    list_transform([{
        'llm': CASE WHEN list_contains(diverged_fields, 'llm') THEN llm_facts END,
        'display': CASE WHEN list_contains(diverged_fields, 'display') THEN display_facts END}], lambda d_:
        CASE WHEN coalesce(d_.llm.callback_items, 0) + coalesce(d_.display.callback_items, 0) > 0
                  OR (coalesce(d_.llm.display_copies, 0) > 0
                      AND (len(coalesce(log_facts.hidden_users, [])) > 0
                           OR len(coalesce(log_facts.callback_reply_seqs, [])) > 0
                           OR (len(coalesce(log_facts.callback_seqs, [])) > 0
                               AND (coalesce(llm_facts.callback_items, 0) + coalesce(display_facts.callback_items, 0) > 0
                                    -- in a source 0.59.3+ never wrote, every callback_started is 0.58's
                                    OR NOT coalesce(conversation.queue_writes_in_source, false)))))
             THEN {'cause': 'callback_turn_not_captured', 'evidence': json_object(
                'callback_started_seqs', log_facts.callback_seqs, 'hidden_user_messages', log_facts.hidden_users,
                'blob_callback_messages', coalesce(d_.llm.callback_items, 0) + coalesce(d_.display.callback_items, 0))}
        END)[1];

-- approximate_finalize_diff (SPEC §5 "Turn finalize": after a compaction the
-- whole new array is re-appended). Reads diverged_fields, log_facts.approx_turns.
CREATE OR REPLACE MACRO cause_approximate_finalize_diff(diverged_fields, log_facts) AS
    CASE WHEN list_contains(diverged_fields, 'llm') AND len(coalesce(log_facts.approx_turns, [])) > 0
         THEN {'cause': 'approximate_finalize_diff', 'evidence': json_object('turns', log_facts.approx_turns)} END;

-- guessed_first_kept_seq_off (SPEC §5 "Compaction during a turn": firstKeptSeq
-- is a guess). Reads diverged_fields, log_facts.compaction_seq,
-- first_kept_seq; llm_facts.blob_first_kept_seq, newest_summary_first,
-- guess_at_kept; llm_counts.first_position. Only when the blob's context
-- still starts with the newest compaction's summary: without it the
-- compaction turn's blob write was lost (stale_blob), or a later compaction
-- the log never saw (0.59.3+) summarized it, and the blob kept nothing to
-- compare the guess with. Not when the guessed seq holds the blob's first
-- kept message (logged twice, by a duplicated append, it also stands at
-- another seq).
CREATE OR REPLACE MACRO cause_guessed_first_kept_seq_off(diverged_fields, log_facts, llm_facts, llm_counts) AS
    CASE WHEN list_contains(diverged_fields, 'llm') AND log_facts.compaction_seq IS NOT NULL
              AND coalesce(llm_facts.newest_summary_first, false)
              AND NOT coalesce(llm_facts.guess_at_kept, false)
              AND llm_facts.blob_first_kept_seq IS DISTINCT FROM TRY_CAST(log_facts.first_kept_seq AS BIGINT)
              AND (llm_facts.blob_first_kept_seq IS NOT NULL OR llm_counts.first_position = 1)
         THEN {'cause': 'guessed_first_kept_seq_off', 'evidence': json_object(
            'compaction_seq', log_facts.compaction_seq, 'first_kept_seq', log_facts.first_kept_seq::JSON,
            'blob_first_kept_seq', llm_facts.blob_first_kept_seq)} END;

-- compaction_moved_history (SPEC §5 compaction: the blob moves earlier
-- messages to compactedHistory, the log keeps them). Reads diverged_fields,
-- display_facts.moved_items, log_facts.compaction_seq.
CREATE OR REPLACE MACRO cause_compaction_moved_history(diverged_fields, log_facts, display_facts) AS
    CASE WHEN list_contains(diverged_fields, 'display') AND coalesce(display_facts.moved_items, 0) > 0
         THEN {'cause': 'compaction_moved_history', 'evidence': json_object(
            'log_messages_in_compacted_history', display_facts.moved_items,
            'compaction_seq', log_facts.compaction_seq)} END;

-- resume_not_captured (SPEC §5 "Resume after an approval or a continuation":
-- no harness_message entries, only an amendment or a fresh bubble). Reads
-- diverged_fields, log_facts.amendments, resume_seqs;
-- llm_counts.missing_in_entries, display_counts.changed; llm_facts.resumed_items
-- (blob llm messages of a resumed run the log never saw), resumed_without_append
-- (a merged resume whose amendment was lost: the lone message of a run the log
-- never saw, in a log with no amendment), and what audit_written_after_dual_write
-- reads (0.59.3+ logs no resume at all: there such a message is its own).
-- Ambiguous: a 0.58 resume whose amendment was lost just before the upgrade
-- and a 0.59.3+ resume just after it, when nothing else dates the tail.
CREATE OR REPLACE MACRO cause_resume_not_captured(diverged_fields, conversation, log_facts, llm_facts, display_facts,
                                                  llm_counts, display_counts) AS
    CASE WHEN len(diverged_fields) > 0 AND (
              ((len(coalesce(log_facts.amendments, [])) > 0 OR len(coalesce(log_facts.resume_seqs, [])) > 0)
               AND (coalesce(llm_counts.missing_in_entries, 0) > 0 OR coalesce(display_counts.changed, 0) > 0
                    OR (list_contains(diverged_fields, 'llm') AND coalesce(llm_facts.resumed_items, 0) > 0)))
              OR (list_contains(diverged_fields, 'llm') AND coalesce(llm_facts.resumed_without_append, 0) > 0
                  AND NOT audit_written_after_dual_write(conversation, llm_facts, display_facts)))
         THEN {'cause': 'resume_not_captured', 'evidence': json_object(
            'amendment_seqs', list_transform(coalesce(log_facts.amendments, []), lambda am_: am_.seq),
            'resume_assistant_seqs', log_facts.resume_seqs,
            'blob_resumed_llm_messages', coalesce(llm_facts.resumed_items, 0),
            'blob_resumed_without_append', coalesce(llm_facts.resumed_without_append, 0))} END;

-- amendment_wrong_target (SPEC §5 resume: the amendment targets the latest
-- assistant_message entry, best-effort; SPEC §6). Reads diverged_fields,
-- log_facts.amendments (target_seq, target_in_blob, target_has_text).
-- Wrong: the target is no logged assistant_message, or the blob's copy of the
-- targeted bubble lacks the appended text (the text went to another bubble).
-- A target the blob no longer holds (compacted, stale) cannot be judged, and
-- the turn ids cannot either (a callback's reply is a legitimate target).
CREATE OR REPLACE MACRO cause_amendment_wrong_target(diverged_fields, log_facts) AS
    list_transform([list_filter(coalesce(log_facts.amendments, []),
        lambda am_: am_.target_seq IS NULL OR (am_.target_in_blob AND NOT am_.target_has_text))], lambda wrong_:
        CASE WHEN len(diverged_fields) > 0 AND len(wrong_) > 0
             THEN {'cause': 'amendment_wrong_target', 'evidence': json_object('amendments', wrong_)} END)[1];

-- Whether 0.59.3+ wrote part of the blob (SPEC §7), shared by the rules that
-- must tell its unlogged turns from lost appends. Reads conversation.era,
-- queue_writes_in_source, queue_writes_from; display_facts.unlogged_tail_users,
-- last_unlogged_user_ts; llm/display_facts.first_after_dual_write,
-- queue_callback_items, incomplete_items. The conversation's own blob shows
-- that release: a callback message naming a taskOutcome, a draft bubble's
-- metadata.incomplete (0.59.1+). Or, only in a source some write of 0.59.3+
-- shows (audit_source_facts, SPEC §7; in a database 0.59.3+ never wrote,
-- queue entries and unlogged turns are 0.58's): a queue-era log (audit_plan;
-- a 0.58 callback whose hidden messages and reply were lost leaves one too),
-- blob items dated after the source's last transcript entry, or a user message
-- after everything the log holds (one lost append cannot leave it there: a
-- lost user_message is followed by its turn's logged bubble, a lost finalize
-- leaves only the bubble unlogged) unless all such are dated before the
-- source's first 0.59.3+ write in a source whose dual-write ended before that
-- write (one release at a time: then a 0.58 turn that lost both its
-- user_message and finalize appends). Ambiguous still, inside the span where
-- the source shows both releases writing (a rolling deployment, or the
-- simulator's sequential fleet): there the two look the same, and only the
-- harness's warning log of the failed appends would decide. A source whose
-- 0.59.3+ release never queued a subagent result shows no such write: its
-- 0.59.3+ tails read as lost.
CREATE OR REPLACE MACRO audit_written_after_dual_write(conversation, llm_facts, display_facts) AS
    (coalesce(conversation.queue_writes_in_source, false) AND (
        coalesce(conversation.era IN ('queue', 'mixed'), false)
        OR (coalesce(display_facts.unlogged_tail_users, 0) > 0
            -- (in a source that shows one release at a time: its dual-write ended before its first 0.59.3+ write)
            AND NOT coalesce(conversation.dual_write_until < conversation.queue_writes_from
                             AND display_facts.last_unlogged_user_ts < epoch_ms(conversation.queue_writes_from), false))
        OR llm_facts.first_after_dual_write IS NOT NULL OR display_facts.first_after_dual_write IS NOT NULL))
    OR coalesce(llm_facts.queue_callback_items, 0) + coalesce(display_facts.queue_callback_items, 0) > 0
    OR coalesce(llm_facts.incomplete_items, 0) + coalesce(display_facts.incomplete_items, 0) > 0;

-- Whether a callback turned the blob's llm context into a copy of `messages`
-- (SPEC §5 "Subagent callback turn", §7), shared by the rules that read the
-- context's summary or dates. Reads llm_facts.display_copies; any trace of
-- the callback: log_facts.callback_seqs, hidden_users, callback_reply_seqs
-- (a 0.58 callback's entries, any one of which may be lost) or
-- llm/display_facts.callback_items, queue_callback_items (its injected
-- messages in the blob).
CREATE OR REPLACE MACRO audit_llm_copied(log_facts, llm_facts, display_facts) AS
    coalesce(llm_facts.display_copies, 0) > 0 AND (
        len(coalesce(log_facts.callback_seqs, [])) > 0 OR len(coalesce(log_facts.hidden_users, [])) > 0
        OR len(coalesce(log_facts.callback_reply_seqs, [])) > 0
        OR coalesce(llm_facts.callback_items, 0) + coalesce(llm_facts.queue_callback_items, 0)
           + coalesce(display_facts.callback_items, 0) + coalesce(display_facts.queue_callback_items, 0) > 0);

-- Whether the log's newest compaction entry belongs to an earlier turn than
-- the one it is logged in (SPEC §5: nothing orders the appends): the blob's
-- context lacks its summary (and holds no unlogged one of its own, and is no
-- callback's copy) while it holds the bubble of the turn the entry is logged
-- in, so that turn's write landed; the entry was held back past a later read
-- that wrote the log's older context back. Reads log_facts.compaction_seq,
-- llm_facts.newest_summary_in_blob, unlogged_summaries,
-- compaction_turn_bubble_in_blob, and what audit_llm_copied reads.
CREATE OR REPLACE MACRO audit_compaction_landed_late(log_facts, llm_facts, display_facts) AS
    log_facts.compaction_seq IS NOT NULL AND llm_facts IS NOT NULL
    AND NOT coalesce(llm_facts.newest_summary_in_blob, false)
    AND coalesce(llm_facts.unlogged_summaries, 0) = 0
    AND coalesce(llm_facts.compaction_turn_bubble_in_blob, false)
    AND NOT audit_llm_copied(log_facts, llm_facts, display_facts);

-- lost_or_reordered_append (SPEC §5: every write is fire-and-forget, nothing
-- orders it; SPEC §6). Reads diverged_fields, conversation (era,
-- parent_conversation_id, queue_writes_in_source); log_facts.reordered, duplicates,
-- summaries_without_compaction, amendments, resume_seqs, approx_turns,
-- compaction_seq, first_type;
-- llm/display/pending_facts.lost_positions, last_in_log, first_unlogged_user;
-- llm/display_facts.unlogged_tail_users; display_facts.leading_tail_bubbles;
-- missing_prefix and what audit_written_after_dual_write and
-- audit_compaction_landed_late read (a compaction entry held back past a
-- later turn's read, which wrote the older context back). Blob-only items it does not
-- count: a resumed turn's message (llm_facts leaves those out), a callback's
-- copy, the tail of a silent length diff (after a compaction that did not
-- shrink the array, the finalize logged only the array's last messages:
-- approximate_finalize_diff), and the blob's unlogged tail of a conversation
-- 0.59.3+ went on writing (dual_write_ended; audit_written_after_dual_write,
-- where a tail alone counts only in a source that release wrote, so in a
-- database 0.59.3+ never wrote a last turn that lost both its appends is
-- counted here), from its first unlogged user
-- message on (what precedes it finishes the last logged turn: a lost
-- finalize or resume append), and in the context all of it when the
-- display's unlogged tail starts with a user message the context lacks
-- (display_facts.leading_tail_bubbles = 0 and more unlogged tail users than
-- the context's: a 0.59.3+ turn whose final write was lost, so a context
-- message before the first unlogged user is a later 0.59.3+ resume's, which
-- logs nothing). Ambiguous: a lost append inside those stretches, and a 0.58
-- resume whose append was lost, just before the upgrade, against a 0.59.3+
-- resume right after it (both leave an unlogged context message after the
-- last logged turn; counted as lost); only a record of the write itself (the
-- harness's warning log) or the upgrade date would decide it.
CREATE OR REPLACE MACRO cause_lost_or_reordered_append(diverged_fields, conversation, log_facts,
                                                       llm_facts, display_facts, pending_facts) AS
    list_transform([{
        'llm': CASE WHEN list_contains(diverged_fields, 'llm') THEN llm_facts END,
        'display': CASE WHEN list_contains(diverged_fields, 'display') THEN display_facts END,
        'pending': CASE WHEN list_contains(diverged_fields, 'pending') THEN pending_facts END,
        'resumed': len(coalesce(log_facts.amendments, [])) > 0 OR len(coalesce(log_facts.resume_seqs, [])) > 0,
        'silent_diff': len(list_filter(coalesce(log_facts.approx_turns, []), lambda t_: t_.kind = 'length_diff')) > 0,
        'after_dual_write': audit_written_after_dual_write(conversation, llm_facts, display_facts),
        'dated_after': coalesce(conversation.queue_writes_in_source, false)}], lambda d_:
        list_transform([{
            'llm': list_filter(coalesce(d_.llm.lost_positions, []), lambda pos_: NOT (
                -- a resumed turn's harness messages are never logged (resume_not_captured)
                (d_.resumed AND pos_ > coalesce(d_.llm.last_in_log, -1))
                OR (d_.silent_diff AND pos_ > 0)
                OR (d_.after_dual_write AND pos_ >= coalesce(d_.llm.first_unlogged_user, pos_ + 1))
                -- dated after the source's last transcript entry, in a source 0.59.3+ wrote
                OR (d_.dated_after AND pos_ >= coalesce(d_.llm.first_after_dual_write, pos_ + 1))
                -- the display's unlogged tail starts with a user message the context lacks (a 0.59.3+
                -- turn whose final write was lost, right after the last logged turn, no unlogged bubble
                -- finishing that one): the context's whole unlogged tail is 0.59.3+'s (its resume logs nothing)
                OR (d_.after_dual_write AND pos_ > coalesce(d_.llm.last_in_log, -1)
                    AND coalesce(display_facts.leading_tail_bubbles, 0) = 0
                    AND coalesce(display_facts.unlogged_tail_users, 0) > coalesce(d_.llm.unlogged_tail_users, 0)))),
            'display': list_filter(coalesce(d_.display.lost_positions, []), lambda pos_: NOT (
                (d_.after_dual_write AND pos_ >= coalesce(d_.display.first_unlogged_user, pos_ + 1))
                OR (d_.dated_after AND pos_ >= coalesce(d_.display.first_after_dual_write, pos_ + 1)))),
            'pending': coalesce(d_.pending.lost_positions, [])}], lambda lost_:
        CASE WHEN len(diverged_fields) > 0 AND (
                  len(coalesce(log_facts.reordered, [])) > 0 OR len(coalesce(log_facts.duplicates, [])) > 0
                  -- a logged re-appended summary with no compaction entry: that entry's append was lost
                  OR len(coalesce(log_facts.summaries_without_compaction, [])) > 0
                  OR len(lost_.llm) + len(lost_.display) + len(lost_.pending) > 0
                  -- the newest compaction entry landed after a later turn's read (audit_compaction_landed_late)
                  OR (list_contains(diverged_fields, 'llm') AND audit_compaction_landed_late(log_facts, llm_facts, display_facts))
                  -- a 0.58 callback's reply bubble (it has no id, so no identity finds it) in the blob and
                  -- not in the log: the blob's display holds more id-less bubbles than the log (a reply, a
                  -- resume's fresh bubble), in a log with a 0.58 callback (its hidden messages, or any
                  -- callback_started in a source 0.59.3+ never wrote; 0.59.3+ logs no reply at all)
                  OR (d_.display IS NOT NULL AND NOT d_.after_dual_write
                      AND len(coalesce(log_facts.hidden_users, [])) + CASE WHEN coalesce(conversation.queue_writes_in_source, false)
                          THEN 0 ELSE len(coalesce(log_facts.callback_seqs, [])) END > 0
                      AND coalesce(d_.display.keyless_bubbles, 0) > coalesce(log_facts.keyless_bubbles, 0))
                  -- more callback replies than callback_started entries: a reply logged twice or a
                  -- callback_started lost (a callback turn appends one of each, SPEC §5)
                  OR len(coalesce(log_facts.callback_reply_seqs, [])) > len(coalesce(log_facts.callback_seqs, []))
                  -- a thread's own messages before its first logged one (dated from its creation on)
                  OR coalesce(d_.display.own_unlogged_prefix, 0) > 0
                  -- blob messages older than the log, but the log does not start with a turn: its start was lost
                  OR (conversation.parent_conversation_id IS NULL AND log_facts.compaction_seq IS NULL
                      AND log_facts.first_type IS DISTINCT FROM 'user_message'
                      AND coalesce(display_facts.pre_dual_write_messages, 0) = 0
                      AND greatest(coalesce(d_.display.missing_prefix, 0), coalesce(d_.llm.missing_prefix, 0)) > 0))
             THEN {'cause': 'lost_or_reordered_append', 'evidence': json_object(
                'reordered', log_facts.reordered, 'duplicated', log_facts.duplicates,
                'summaries_without_compaction', log_facts.summaries_without_compaction,
                'blob_only_llm_positions', nullif(lost_.llm, []),
                'blob_only_display_positions', nullif(lost_.display, []),
                'blob_only_pending_positions', nullif(lost_.pending, []),
                'first_entry_type', log_facts.first_type,
                'blob_messages_before_log', coalesce(display_facts.missing_prefix, 0),
                'compaction_landed_late', CASE WHEN list_contains(diverged_fields, 'llm')
                    AND audit_compaction_landed_late(log_facts, llm_facts, display_facts) THEN log_facts.compaction_seq END,
                'thread_own_messages_unlogged', nullif(coalesce(d_.display.own_unlogged_prefix, 0), 0),
                'blob_keyless_bubbles', CASE WHEN coalesce(d_.display.keyless_bubbles, 0) > coalesce(log_facts.keyless_bubbles, 0)
                    THEN d_.display.keyless_bubbles END,
                'logged_keyless_bubbles', CASE WHEN coalesce(d_.display.keyless_bubbles, 0) > coalesce(log_facts.keyless_bubbles, 0)
                    THEN log_facts.keyless_bubbles END,
                'callback_replies', CASE WHEN len(coalesce(log_facts.callback_reply_seqs, [])) > len(coalesce(log_facts.callback_seqs, []))
                    THEN log_facts.callback_reply_seqs END
                )} END)[1])[1];

-- stale_blob (SPEC §5: the blob write at a turn's end is not ordered against
-- the log's appends, and may be lost). Reads diverged_fields, conversation.updated_at;
-- log_facts.compaction_seq, last_entry_at; llm/display/pending_facts.unseen_seqs;
-- llm_facts.newest_summary_in_blob, unlogged_summaries;
-- display_facts.stale_turn_seqs; what audit_llm_copied and
-- audit_compaction_landed_late read.
-- Any of: log items newer than everything the blob knows (an llm context a
-- callback turned into a copy of `messages` excepted: callback_turn_not_captured);
-- a turn whose user message is in the blob and whose logged final bubble is
-- not (its final write was lost and later turns went on from the blob); a
-- logged newest compaction whose summary the blob lacks (the compaction
-- turn's write was lost; unless the blob holds an unlogged summary of its own,
-- written after the dual-write ended, or its llm context is a callback's copy
-- of `messages`, which never holds the summary after a write-back, or the
-- blob holds the bubble of the turn the compaction entry is logged in: that
-- turn's write landed, so the entry is an earlier turn's, reordered past a
-- later read: lost_or_reordered_append).
CREATE OR REPLACE MACRO cause_stale_blob(diverged_fields, conversation, log_facts,
                                         llm_facts, display_facts, pending_facts) AS
    list_transform([{
        -- a callback turned the llm context into a copy of `messages`: it dates nothing
        'llm_copied': audit_llm_copied(log_facts, llm_facts, display_facts)}],
        lambda c_:
    list_transform([{
        'llm': CASE WHEN list_contains(diverged_fields, 'llm') AND NOT c_.llm_copied THEN llm_facts.unseen_seqs END,
        'display': CASE WHEN list_contains(diverged_fields, 'display') THEN display_facts.unseen_seqs END,
        'pending': CASE WHEN list_contains(diverged_fields, 'pending') THEN pending_facts.unseen_seqs END,
        'turns': CASE WHEN list_contains(diverged_fields, 'display') OR list_contains(diverged_fields, 'llm')
                      THEN display_facts.stale_turn_seqs END,
        'summary_missing': list_contains(diverged_fields, 'llm') AND log_facts.compaction_seq IS NOT NULL
                           AND llm_facts IS NOT NULL AND NOT c_.llm_copied
                           AND NOT coalesce(llm_facts.newest_summary_in_blob, false)
                           AND coalesce(llm_facts.unlogged_summaries, 0) = 0
                           AND NOT audit_compaction_landed_late(log_facts, llm_facts, display_facts)}], lambda u_:
        CASE WHEN len(coalesce(u_.llm, [])) + len(coalesce(u_.display, [])) + len(coalesce(u_.pending, []))
                  + len(coalesce(u_.turns, [])) > 0 OR u_.summary_missing
             THEN {'cause': 'stale_blob', 'evidence': json_object(
                'log_only_llm_seqs', u_.llm, 'log_only_display_seqs', u_.display, 'log_only_pending_seqs', u_.pending,
                'turns_without_final_write', u_.turns,
                'newest_compaction_not_in_blob', CASE WHEN u_.summary_missing THEN log_facts.compaction_seq END,
                'blob_updated_at', conversation.updated_at, 'last_entry_at', log_facts.last_entry_at)} END)[1])[1];

-- result_delivered_twice (SPEC §7 "A subagent result": 0.59+ appends the
-- entry, then get() (which serves the queued result) -> push -> update, so
-- the blob holds it twice). Reads diverged_fields, queue_facts.doubled_results.
CREATE OR REPLACE MACRO cause_result_delivered_twice(diverged_fields, queue_facts) AS
    CASE WHEN list_contains(diverged_fields, 'pending') AND len(coalesce(queue_facts.doubled_results, [])) > 0
         THEN {'cause': 'result_delivered_twice', 'evidence': json_object('results', queue_facts.doubled_results)} END;

-- consumed_result_kept_in_blob (SPEC §3 pending results, §7 callback turn: a
-- callback_started consumed the result; the blob still lists it). Reads
-- diverged_fields, queue_facts.consumed_results_in_blob, log_facts.callback_seqs.
CREATE OR REPLACE MACRO cause_consumed_result_kept_in_blob(diverged_fields, log_facts, queue_facts) AS
    CASE WHEN list_contains(diverged_fields, 'pending') AND len(coalesce(queue_facts.consumed_results_in_blob, [])) > 0
         THEN {'cause': 'consumed_result_kept_in_blob', 'evidence': json_object(
            'results', queue_facts.consumed_results_in_blob, 'callback_started_seqs', log_facts.callback_seqs)} END;

-- queued_result_not_in_blob (SPEC §7 "A subagent result": the entry is
-- appended first, the blob's append may fail or be overwritten). Reads
-- diverged_fields, queue_facts.queued_results_not_in_blob,
-- conversation.updated_at, log_facts.last_entry_at.
CREATE OR REPLACE MACRO cause_queued_result_not_in_blob(diverged_fields, conversation, log_facts, queue_facts) AS
    CASE WHEN list_contains(diverged_fields, 'pending') AND len(coalesce(queue_facts.queued_results_not_in_blob, [])) > 0
         THEN {'cause': 'queued_result_not_in_blob', 'evidence': json_object(
            'results', queue_facts.queued_results_not_in_blob, 'blob_updated_at', conversation.updated_at,
            'last_entry_at', log_facts.last_entry_at)} END;

-- dual_write_ended (SPEC §7: 0.59.3+ logs no transcript, so a full-cutover
-- read of its log misses those turns). Reads diverged_fields,
-- conversation.era, updated_at, log_facts.first_type, last_entry_at, and
-- what audit_written_after_dual_write reads (the log's era, release
-- fingerprints in blob items the log never saw, or unlogged turns after the
-- log's end in a source 0.59.3+ wrote).
CREATE OR REPLACE MACRO cause_dual_write_ended(diverged_fields, conversation, log_facts, llm_facts, display_facts) AS
    CASE WHEN audit_written_after_dual_write(conversation, llm_facts, display_facts)
              AND (list_contains(diverged_fields, 'llm') OR list_contains(diverged_fields, 'display'))
         THEN {'cause': 'dual_write_ended', 'evidence': json_object(
            'era', conversation.era, 'first_entry_type', log_facts.first_type,
            'last_entry_at', log_facts.last_entry_at, 'blob_updated_at', conversation.updated_at)} END;

-- quarantined_entries (the load's quarantine; SPEC §3: the harness read those
-- rows, e.g. a partial rebuild). Reads diverged_fields, conversation.quarantined.
CREATE OR REPLACE MACRO cause_quarantined_entries(diverged_fields, conversation) AS
    CASE WHEN len(diverged_fields) > 0 AND len(coalesce(conversation.quarantined, [])) > 0
         THEN {'cause': 'quarantined_entries', 'evidence': json_object('entries', conversation.quarantined)} END;

-- blob_overwritten_by_rebuild (SPEC §6: 0.58.0's get -> modify -> update
-- paths wrote the rebuilt transcript back). A write-back copies the
-- transcript, so only a policy that serves it from the log can tell, and only
-- on a conversation that matches. Reads diverged_fields, conversation.n_entries,
-- llm_log, updated_at; log_facts.callback_seqs, last_entry_at; llm_facts.callback_items.
-- (The one cause found on matching conversations: parity_at's audit_cause_scope
-- repeats its conditions on the log, so keep the two in step.)
CREATE OR REPLACE MACRO cause_blob_overwritten_by_rebuild(diverged_fields, conversation, log_facts, llm_facts) AS
    CASE WHEN len(diverged_fields) = 0 AND conversation.n_entries > 0 AND conversation.llm_log AND (
              (len(coalesce(log_facts.callback_seqs, [])) > 0 AND coalesce(llm_facts.callback_items, 0) = 0)
              OR conversation.updated_at > log_facts.last_entry_at + INTERVAL 1 SECOND)
         THEN {'cause': 'blob_overwritten_by_rebuild', 'evidence': json_object(
            'callback_started_seqs', log_facts.callback_seqs,
            'blob_updated_at', conversation.updated_at, 'last_entry_at', log_facts.last_entry_at)} END;
