-- Set-based validation of harness rows, the SQL twin of poncho_replay.models.
--
-- A loader parses and checks a whole source in DuckDB instead of calling
-- pydantic once per row. pr_entry_problem() is the one list of fields per
-- entry type (SPEC §2) on the SQL side; tests/test_quarantine.py holds it
-- equal to models.parse_entry on generated samples. Strictness follows the models: no
-- coercion ("5" is not an int, 5.0 is not an int, true is not a number),
-- optional fields may be absent or null, required ones may be neither.

-- Speed: a payload is parsed once for the JSON type of every path its entry
-- type needs (json_type with a list of paths) and once for the few string
-- values the checks compare; arrays (content parts, toolActivity, sections,
-- consumedSeqs) are read element by element only in rows that hold one.

-- A message-holding entry's paths: slot 3 is the message, 4-14 its role,
-- content, metadata and the known metadata keys (SPEC §1); from 15 on, the
-- entry's other fields in model order (pr_entry_problem reads them).
CREATE OR REPLACE MACRO pr_message_paths(m) AS ['$', '$.type', m, m || '.role', m || '.content', m || '.metadata',
    m || '.metadata.id', m || '.metadata.timestamp', m || '.metadata.tokenCount', m || '.metadata.step',
    m || '.metadata.runId', m || '.metadata.toolActivity', m || '.metadata.sections',
    m || '.metadata.isCompactionSummary'];

-- The JSON type at each path of the entry's type (NULL: absent), slots 1-2
-- always the payload itself and its "type". ty is the row's type column:
-- a payload whose "type" differs is a type_mismatch before any field is read.
CREATE OR REPLACE MACRO pr_entry_json_types(p, ty) AS CASE ty
    WHEN 'user_message' THEN json_type(p, list_concat(pr_message_paths('$.message'), ['$.turnId', '$.hidden']))
    WHEN 'assistant_message' THEN json_type(p, list_concat(pr_message_paths('$.message'), ['$.turnId', '$.runId']))
    WHEN 'harness_message' THEN json_type(p, list_concat(pr_message_paths('$.message'), ['$.turnId']))
    WHEN 'compaction' THEN json_type(p, list_concat(pr_message_paths('$.summaryMessage'), ['$.firstKeptSeq', '$.tokensBefore', '$.tokensAfter']))
    WHEN 'assistant_amendment' THEN json_type(p, ['$', '$.type', '$.targetEntryId', '$.appendText'])
    WHEN 'subagent_result' THEN json_type(p, ['$', '$.type', '$.result', '$.result.subagentId',
        '$.result.task', '$.result.status', '$.result.timestamp'])
    WHEN 'callback_started' THEN json_type(p, ['$', '$.type', '$.consumedSeqs'])
    ELSE json_type(p, ['$', '$.type']) END;

-- The string values the checks compare: the payload's "type", then the
-- message's role (message types) or the result's status.
CREATE OR REPLACE MACRO pr_entry_json_strings(p, ty) AS CASE ty
    WHEN 'compaction' THEN json_extract_string(p, ['$.type', '$.summaryMessage.role'])
    WHEN 'subagent_result' THEN json_extract_string(p, ['$.type', '$.result.status'])
    WHEN 'user_message' THEN json_extract_string(p, ['$.type', '$.message.role'])
    WHEN 'assistant_message' THEN json_extract_string(p, ['$.type', '$.message.role'])
    WHEN 'harness_message' THEN json_extract_string(p, ['$.type', '$.message.role'])
    ELSE json_extract_string(p, ['$.type']) END;

CREATE OR REPLACE MACRO pr_entry_types() AS ['user_message', 'assistant_message', 'assistant_amendment',
    'harness_message', 'compaction', 'subagent_result', 'callback_started'];

-- Every element's JSON type in types (a wildcard json_type) is one of ok
-- (an empty array passes).
CREATE OR REPLACE MACRO pr_all_of(types, ok) AS coalesce(list_bool_and(list_transform(types, lambda x: x IN ok)), true);
CREATE OR REPLACE MACRO pr_num_or_null(ty) AS coalesce(ty, 'NULL') IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'NULL');

-- A content part (SPEC §1): {type: "text", text} or {type: "file", data, mediaType, filename?}.
CREATE OR REPLACE MACRO pr_part_ok(x) AS list_transform(
    [json_type(x, ['$', '$.type', '$.text', '$.data', '$.mediaType', '$.filename'])], lambda t:
    coalesce(t[1] = 'OBJECT' AND t[2] = 'VARCHAR' AND CASE json_extract_string(x, '$.type')
        WHEN 'text' THEN t[3] = 'VARCHAR'
        WHEN 'file' THEN t[4] = 'VARCHAR' AND t[5] = 'VARCHAR' AND coalesce(t[6], 'NULL') IN ('VARCHAR', 'NULL')
        ELSE false END, false))[1];

-- A metadata section. Kept as the checks have always read it: a section
-- without a "type" key gives NULL, which list_bool_and (pr_sections_ok)
-- skips, so such a section passes (models.Section would refuse it).
CREATE OR REPLACE MACRO pr_section_ok(x) AS list_transform([json_type(x, ['$', '$.type', '$.content'])], lambda t:
    coalesce(t[1] = 'OBJECT', false) AND t[2] = 'VARCHAR'
    AND json_extract_string(x, '$.type') IN ('text', 'tools')
    AND (coalesce(t[3] = 'VARCHAR', false)
         OR (coalesce(t[3] = 'ARRAY', false) AND pr_all_of(json_type(x, '$.content[*]'), ['VARCHAR']))))[1];

-- The message at path m of payload p, given its slots (pr_message_paths)
-- and role: role, content (a string or a list of parts) and metadata (absent,
-- null, or an object whose known keys are absent, null or of their kind).
-- The arrays are read only when present (CASE evaluates lazily).
CREATE OR REPLACE MACRO pr_message_ok(p, m, t, role) AS coalesce(t[3] = 'OBJECT' AND t[4] = 'VARCHAR'
    AND role IN ('user', 'assistant', 'system', 'tool')
    AND CASE t[5] WHEN 'VARCHAR' THEN true
        WHEN 'ARRAY' THEN coalesce(list_bool_and(list_transform(json_extract(p, m || '.content[*]'),
            lambda x: pr_part_ok(x))), true)
        ELSE false END
    AND (t[6] IS NULL OR t[6] = 'NULL' OR (t[6] = 'OBJECT'
        AND coalesce(t[7], 'NULL') IN ('VARCHAR', 'NULL') AND pr_num_or_null(t[8])
        AND pr_num_or_null(t[9]) AND pr_num_or_null(t[10]) AND coalesce(t[11], 'NULL') IN ('VARCHAR', 'NULL')
        AND coalesce(t[14], 'NULL') IN ('BOOLEAN', 'NULL')
        AND CASE coalesce(t[12], 'NULL') WHEN 'NULL' THEN true
            WHEN 'ARRAY' THEN pr_all_of(json_type(p, m || '.metadata.toolActivity[*]'), ['VARCHAR'])
            ELSE false END
        AND CASE coalesce(t[13], 'NULL') WHEN 'NULL' THEN true
            WHEN 'ARRAY' THEN coalesce(list_bool_and(list_transform(json_extract(p, m || '.metadata.sections[*]'),
                lambda x: pr_section_ok(x))), true)
            ELSE false END)), false);

-- NULL when a field is fine, else its quarantine reason, from its JSON type
-- ty (NULL: absent) and whether its value is of its kind.
CREATE OR REPLACE MACRO pr_field_problem(ty, required, ok) AS CASE
    WHEN ty IS NULL THEN CASE WHEN required THEN 'missing_field' END
    WHEN ty = 'NULL' AND NOT required THEN NULL
    WHEN ok THEN NULL
    ELSE 'wrong_type' END;
CREATE OR REPLACE MACRO pr_named(field, reason) AS CASE WHEN reason IS NOT NULL THEN {'reason': reason, 'field': field} END;

-- The first field problem (in model order) of an entry whose payload is an
-- object of a known type; t and v from pr_entry_json_types/_strings. The
-- fields per entry type, besides id/seq/createdAt (SPEC §2), are these.
CREATE OR REPLACE MACRO pr_entry_problem(p, ty, t, v) AS CASE ty
    WHEN 'user_message' THEN coalesce(
        pr_named('message', pr_field_problem(t[3], true, pr_message_ok(p, '$.message', t, v[2]))),
        pr_named('turnId', pr_field_problem(t[15], true, t[15] = 'VARCHAR')),
        pr_named('hidden', pr_field_problem(t[16], false, t[16] = 'BOOLEAN')))
    WHEN 'assistant_message' THEN coalesce(
        pr_named('message', pr_field_problem(t[3], true, pr_message_ok(p, '$.message', t, v[2]))),
        pr_named('turnId', pr_field_problem(t[15], true, t[15] = 'VARCHAR')),
        pr_named('runId', pr_field_problem(t[16], true, t[16] = 'VARCHAR')))
    WHEN 'harness_message' THEN coalesce(
        pr_named('message', pr_field_problem(t[3], true, pr_message_ok(p, '$.message', t, v[2]))),
        pr_named('turnId', pr_field_problem(t[15], true, t[15] = 'VARCHAR')))
    WHEN 'compaction' THEN coalesce(
        pr_named('summaryMessage', pr_field_problem(t[3], true, pr_message_ok(p, '$.summaryMessage', t, v[2]))),
        pr_named('firstKeptSeq', pr_field_problem(t[15], true, t[15] IN ('BIGINT', 'UBIGINT'))),
        pr_named('tokensBefore', pr_field_problem(t[16], false, t[16] IN ('BIGINT', 'UBIGINT', 'DOUBLE'))),
        pr_named('tokensAfter', pr_field_problem(t[17], false, t[17] IN ('BIGINT', 'UBIGINT', 'DOUBLE'))))
    WHEN 'assistant_amendment' THEN coalesce(
        pr_named('targetEntryId', pr_field_problem(t[3], true, t[3] = 'VARCHAR')),
        pr_named('appendText', pr_field_problem(t[4], false, t[4] = 'VARCHAR')))
    WHEN 'subagent_result' THEN pr_named('result', pr_field_problem(t[3], true, coalesce(t[3] = 'OBJECT'
        AND t[4] = 'VARCHAR' AND t[5] = 'VARCHAR' AND t[6] = 'VARCHAR'
        AND v[2] IN ('completed', 'error', 'stopped') AND t[7] IN ('BIGINT', 'UBIGINT', 'DOUBLE'), false)))
    WHEN 'callback_started' THEN pr_named('consumedSeqs', pr_field_problem(t[3], true,
        t[3] = 'ARRAY' AND pr_all_of(json_type(p, '$.consumedSeqs[*]'), ['BIGINT', 'UBIGINT'])))
    END;

-- Timestamps as the harness stores them: ISO-8601 text ('...T...Z'),
-- SQLite's datetime('now') text, or epoch milliseconds written as digits.
CREATE OR REPLACE MACRO pr_ts(x) AS CASE
    WHEN x IS NULL THEN NULL
    WHEN regexp_full_match(x, '-?[0-9]{1,15}') THEN make_timestamp(CAST(x AS BIGINT) * 1000)
    ELSE TRY_CAST(x AS TIMESTAMP) END;

CREATE OR REPLACE MACRO pr_is_int_text(x) AS x IS NOT NULL AND regexp_full_match(x, '-?[0-9]{1,18}');
