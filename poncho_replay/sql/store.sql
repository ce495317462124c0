-- The DuckDBStore's queries over the tables of schema.sql (SPEC §4).
-- One statement per "-- name:" block; every value is a named parameter.
-- Every query is scoped to the store's $source; conversation queries also
-- to its $agent (conversations.agent_id), as the harness's SQL engine does.
-- Entry queries never filter on agent_id: the dual-write fills it with the
-- owner id (SPEC §5), so conversation_id is the only key.
-- Times are TIMESTAMP columns written from epoch ms and read back as epoch
-- ms; a missing timestamp reads as 0, as JavaScript's new Date(null) does.

-- name: fetch_row
SELECT id, agent_id, tenant_id, owner_id, title, data, message_count,
       epoch_ms(created_at) AS created_at, coalesce(epoch_ms(updated_at), 0) AS updated_at,
       CASE WHEN $with_archive THEN tool_result_archive END AS tool_result_archive,
       harness_messages, continuation_messages, parent_conversation_id,
       has_pending_approvals, channel_meta, parent_message_id
FROM conversations
WHERE source = $source AND id = $id AND agent_id = $agent;

-- name: insert_row
INSERT INTO conversations (source, id, agent_id, tenant_id, owner_id, title, data, message_count,
                           created_at, updated_at, tool_result_archive, harness_messages,
                           continuation_messages, parent_conversation_id, has_pending_approvals,
                           channel_meta, parent_message_id)
VALUES ($source, $id, $agent, $tenant_id, $owner_id, $title, $data, $message_count,
        make_timestamp($created_at::BIGINT * 1000), make_timestamp($updated_at::BIGINT * 1000),
        $tool_result_archive, $harness_messages, $continuation_messages, $parent_conversation_id,
        $has_pending_approvals, $channel_meta, $parent_message_id);

-- name: upsert_row
-- The archive is append-only from the caller's side: a conversation read
-- with the light get() has none, so an absent archive keeps the stored one.
INSERT INTO conversations (source, id, agent_id, tenant_id, owner_id, title, data, message_count,
                           created_at, updated_at, tool_result_archive, harness_messages,
                           continuation_messages, parent_conversation_id, has_pending_approvals,
                           channel_meta, parent_message_id)
VALUES ($source, $id, $agent, $tenant_id, $owner_id, $title, $data, $message_count,
        make_timestamp($created_at::BIGINT * 1000), make_timestamp($updated_at::BIGINT * 1000),
        $tool_result_archive, $harness_messages, $continuation_messages, $parent_conversation_id,
        $has_pending_approvals, $channel_meta, $parent_message_id)
ON CONFLICT (source, id) DO UPDATE SET
    data = excluded.data, title = excluded.title, message_count = excluded.message_count,
    updated_at = excluded.updated_at, tenant_id = excluded.tenant_id, owner_id = excluded.owner_id,
    tool_result_archive = COALESCE(excluded.tool_result_archive, conversations.tool_result_archive),
    harness_messages = excluded.harness_messages,
    continuation_messages = excluded.continuation_messages,
    parent_conversation_id = excluded.parent_conversation_id,
    has_pending_approvals = excluded.has_pending_approvals,
    channel_meta = excluded.channel_meta,
    parent_message_id = excluded.parent_message_id;

-- name: retitle_row
-- rename from 0.59.1 on (SPEC §7): one UPDATE of the title column and
-- updated_at; with $in_blob (0.59.3 on) also the blob's title, as the
-- harness's json_set(data, '$.title', ?). The blob's updatedAt stays.
UPDATE conversations
SET title = $title,
    updated_at = make_timestamp($now::BIGINT * 1000),
    data = CASE WHEN $in_blob THEN json_set(data, '$.title', to_json($title::VARCHAR)) ELSE data END
WHERE source = $source AND id = $id AND agent_id = $agent
RETURNING id;

-- name: delete_row
DELETE FROM conversations WHERE source = $source AND id = $id AND agent_id = $agent RETURNING id;

-- name: summary_rows
-- $all_tenants: the caller passed no tenant (JavaScript undefined).
SELECT id, agent_id, tenant_id, owner_id, title, message_count,
       epoch_ms(created_at) AS created_at, coalesce(epoch_ms(updated_at), 0) AS updated_at,
       parent_conversation_id, has_pending_approvals, channel_meta, parent_message_id
FROM conversations
WHERE source = $source AND agent_id = $agent
  AND ($all_tenants OR tenant_id = $tenant_id)
  AND ($owner_id::VARCHAR IS NULL OR owner_id = $owner_id)
ORDER BY updated_at DESC, id;

-- name: thread_rows
SELECT id, agent_id, tenant_id, owner_id, title, message_count,
       epoch_ms(created_at) AS created_at, coalesce(epoch_ms(updated_at), 0) AS updated_at,
       parent_conversation_id, has_pending_approvals, channel_meta, parent_message_id
FROM conversations
WHERE source = $source AND agent_id = $agent
  AND parent_conversation_id = $parent AND parent_message_id IS NOT NULL
ORDER BY updated_at DESC, id;

-- name: status_row
SELECT id, agent_id, tenant_id, owner_id, title, message_count,
       epoch_ms(created_at) AS created_at, coalesce(epoch_ms(updated_at), 0) AS updated_at,
       parent_conversation_id, has_pending_approvals, channel_meta, parent_message_id,
       data ->> '$.runStatus' AS run_status,
       continuation_messages IS NOT NULL AS has_continuation_messages
FROM conversations
WHERE source = $source AND id = $id AND agent_id = $agent;

-- name: used_ids
SELECT id FROM conversation_entries WHERE source = $source AND list_contains($ids::VARCHAR[], id);

-- name: log_state
-- The conversation's max seq (0 for an empty log) and the rows of the whole
-- table (every source): the store remembers both after its own appends.
SELECT (SELECT coalesce(max(seq), 0) FROM conversation_entries
        WHERE source = $source AND conversation_id = $conversation_id),
       (SELECT count(*) FROM conversation_entries);

-- name: insert_entries
-- One statement for the whole batch (atomic on its own): the lists are
-- zipped by unnest. With $rows set, nothing is inserted unless the table
-- still holds exactly $rows rows, i.e. nobody wrote or deleted entries
-- since this store last looked; the count is answered from the table's
-- metadata, not by a scan. Returns the number of rows inserted.
INSERT INTO conversation_entries (source, seq, id, agent_id, tenant_id, conversation_id, type,
                                  payload, created_at, dup)
SELECT $source, unnest($seqs::BIGINT[]), unnest($ids::VARCHAR[]), $agent_id, $tenant_id,
       $conversation_id, unnest($types::VARCHAR[]), unnest($payloads::JSON[]),
       make_timestamp($now::BIGINT * 1000), 0
WHERE $rows::BIGINT IS NULL OR (SELECT count(*) FROM conversation_entries) = $rows::BIGINT;

-- name: insert_entry
-- insert_entries for a batch of one, without lists (cheaper to plan).
INSERT INTO conversation_entries (source, seq, id, agent_id, tenant_id, conversation_id, type,
                                  payload, created_at, dup)
SELECT $source, $seq, $id, $agent_id, $tenant_id, $conversation_id, $type, $payload::JSON,
       make_timestamp($now::BIGINT * 1000), 0
WHERE $rows::BIGINT IS NULL OR (SELECT count(*) FROM conversation_entries) = $rows::BIGINT;

-- name: read_entries
SELECT seq, id, payload, coalesce(epoch_ms(created_at), 0) AS created_at
FROM conversation_entries
WHERE source = $source AND conversation_id = $conversation_id
  AND ($types::VARCHAR[] IS NULL OR list_contains($types::VARCHAR[], type))
  AND ($after_seq::BIGINT IS NULL OR seq > $after_seq::BIGINT)
ORDER BY seq, dup
LIMIT $limit;
