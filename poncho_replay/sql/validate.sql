-- Set-based validation of harness rows, the SQL twin of poncho_replay.models.
--
-- A loader parses and checks a whole source in DuckDB instead of calling
-- pydantic once per row. pr_entry_rules() is the one list of fields per entry
-- type (SPEC §2) on the SQL side; tests/test_quarantine.py holds it equal to
-- models.parse_entry on generated samples. Strictness follows the models: no
-- coercion ("5" is not an int, 5.0 is not an int, true is not a number),
-- optional fields may be absent or null, required ones may be neither.

CREATE OR REPLACE MACRO pr_is_int(v) AS coalesce(json_type(v) IN ('BIGINT', 'UBIGINT'), false);
CREATE OR REPLACE MACRO pr_is_num(v) AS coalesce(json_type(v) IN ('BIGINT', 'UBIGINT', 'DOUBLE'), false);
CREATE OR REPLACE MACRO pr_is_str(v) AS coalesce(json_type(v) = 'VARCHAR', false);
CREATE OR REPLACE MACRO pr_all(v, ok) AS coalesce(json_type(v) = 'ARRAY', false)
    AND coalesce(list_bool_and(list_transform(json_extract(v, '$[*]'), ok)), true);
-- An optional key: absent, null, or of the right kind.
CREATE OR REPLACE MACRO pr_opt(v, ok) AS v IS NULL OR json_type(v) = 'NULL' OR ok;

CREATE OR REPLACE MACRO pr_part_ok(p) AS coalesce(json_type(p) = 'OBJECT', false) AND CASE
    WHEN json_type(p, '$.type') IS DISTINCT FROM 'VARCHAR' THEN false
    WHEN json_extract_string(p, '$.type') = 'text' THEN pr_is_str(json_extract(p, '$.text'))
    WHEN json_extract_string(p, '$.type') = 'file' THEN pr_is_str(json_extract(p, '$.data'))
        AND pr_is_str(json_extract(p, '$.mediaType'))
        AND pr_opt(json_extract(p, '$.filename'), pr_is_str(json_extract(p, '$.filename')))
    ELSE false END;

CREATE OR REPLACE MACRO pr_section_ok(s) AS coalesce(json_type(s) = 'OBJECT', false)
    AND json_type(s, '$.type') = 'VARCHAR'
    AND json_extract_string(s, '$.type') IN ('text', 'tools')
    AND (pr_is_str(json_extract(s, '$.content'))
         OR pr_all(json_extract(s, '$.content'), lambda x: pr_is_str(x)));

-- The known metadata keys, read in one pass (f = their values, in this order);
-- each is absent, null, or of its kind. A macro argument is pasted wherever it
-- appears, so the values are bound once through a one-element list_transform.
CREATE OR REPLACE MACRO pr_metadata_ok(m) AS m IS NULL OR json_type(m) = 'NULL'
    OR (json_type(m) = 'OBJECT' AND list_transform(
        [json_extract(m, ['$.id', '$.timestamp', '$.tokenCount', '$.step', '$.runId',
                          '$.toolActivity', '$.sections', '$.isCompactionSummary'])],
        lambda f: list_transform([list_transform(f, lambda x: coalesce(json_type(x), 'NULL'))], lambda t:
            t[1] IN ('VARCHAR', 'NULL') AND t[2] IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'NULL')
            AND t[3] IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'NULL') AND t[4] IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'NULL')
            AND t[5] IN ('VARCHAR', 'NULL') AND t[8] IN ('BOOLEAN', 'NULL')
            AND (t[6] = 'NULL' OR pr_all(f[6], lambda x: pr_is_str(x)))
            AND (t[7] = 'NULL' OR pr_all(f[7], lambda x: pr_section_ok(x))))[1])[1]);

-- A message's role, content and metadata, parsed once (see pr_message_ok).
CREATE OR REPLACE MACRO pr_message_parts(m) AS CASE WHEN json_type(m) = 'OBJECT'
    THEN json_extract(m, ['$.role', '$.content', '$.metadata']) END;

-- p = pr_message_parts(message): the checks then only touch small values.
CREATE OR REPLACE MACRO pr_message_ok(p) AS p IS NOT NULL
    AND coalesce(json_type(p[1]) = 'VARCHAR', false)
    AND json_extract_string(p[1], '$') IN ('user', 'assistant', 'system', 'tool')
    AND (coalesce(json_type(p[2]) = 'VARCHAR', false)
         OR pr_all(p[2], lambda x: pr_part_ok(x)))
    AND pr_metadata_ok(p[3]);

CREATE OR REPLACE MACRO pr_subagent_result_ok(r) AS coalesce(json_type(r) = 'OBJECT', false)
    AND pr_is_str(json_extract(r, '$.subagentId'))
    AND pr_is_str(json_extract(r, '$.task'))
    AND json_type(r, '$.status') = 'VARCHAR'
    AND json_extract_string(r, '$.status') IN ('completed', 'error', 'stopped')
    AND pr_is_num(json_extract(r, '$.timestamp'));

-- mp: pr_message_parts(v), computed once by the caller when kind = 'message'.
CREATE OR REPLACE MACRO pr_kind_ok(v, kind, mp) AS CASE kind
    WHEN 'string' THEN pr_is_str(v)
    WHEN 'int' THEN pr_is_int(v)
    WHEN 'number' THEN pr_is_num(v)
    WHEN 'bool' THEN coalesce(json_type(v) = 'BOOLEAN', false)
    WHEN 'message' THEN pr_message_ok(mp)
    WHEN 'subagent_result' THEN pr_subagent_result_ok(v)
    WHEN 'int_list' THEN pr_all(v, lambda x: pr_is_int(x))
    END;

-- Fields besides id/seq/createdAt per entry type (SPEC §2), in model order.
CREATE OR REPLACE MACRO pr_entry_rules() AS TABLE
    SELECT * FROM (VALUES
        ('user_message', 1, 'message', 'message', true),
        ('user_message', 2, 'turnId', 'string', true),
        ('user_message', 3, 'hidden', 'bool', false),
        ('assistant_message', 1, 'message', 'message', true),
        ('assistant_message', 2, 'turnId', 'string', true),
        ('assistant_message', 3, 'runId', 'string', true),
        ('assistant_amendment', 1, 'targetEntryId', 'string', true),
        ('assistant_amendment', 2, 'appendText', 'string', false),
        ('harness_message', 1, 'message', 'message', true),
        ('harness_message', 2, 'turnId', 'string', true),
        ('compaction', 1, 'summaryMessage', 'message', true),
        ('compaction', 2, 'firstKeptSeq', 'int', true),
        ('compaction', 3, 'tokensBefore', 'number', false),
        ('compaction', 4, 'tokensAfter', 'number', false),
        ('subagent_result', 1, 'result', 'subagent_result', true),
        ('callback_started', 1, 'consumedSeqs', 'int_list', true)
    ) AS t(type, pos, field, kind, required);

-- NULL when the field is fine, else the quarantine reason.
CREATE OR REPLACE MACRO pr_field_problem(v, kind, required, mp) AS CASE
    WHEN v IS NULL THEN CASE WHEN required THEN 'missing_field' END
    WHEN json_type(v) = 'NULL' AND NOT required THEN NULL
    WHEN pr_kind_ok(v, kind, mp) THEN NULL
    ELSE 'wrong_type' END;

-- Timestamps as the harness stores them: ISO-8601 text ('...T...Z'),
-- SQLite's datetime('now') text, or epoch milliseconds written as digits.
CREATE OR REPLACE MACRO pr_ts(x) AS CASE
    WHEN x IS NULL THEN NULL
    WHEN regexp_full_match(x, '-?[0-9]{1,15}') THEN make_timestamp(CAST(x AS BIGINT) * 1000)
    ELSE TRY_CAST(x AS TIMESTAMP) END;

CREATE OR REPLACE MACRO pr_is_int_text(x) AS x IS NOT NULL AND regexp_full_match(x, '-?[0-9]{1,18}');
