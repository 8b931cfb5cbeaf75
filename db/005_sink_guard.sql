-- Defence in depth at the sink. The pipeline never emits a key PostgreSQL
-- would refuse (hashtags and words longer than 100 characters are not counted),
-- but the count topics are open to any writer, and Debezium JDBC 3.6 stops its
-- task on a write PostgreSQL refuses (it sends no write failure to the
-- dead-letter topic), which would freeze every count. A key too long for a
-- btree index entry (2,704 bytes) would be one: such a row is set aside here,
-- with its reason, instead of written, and the sink goes on. Listed by
-- /api/rejects/sink, counted by /api/stats (rejected.sink).

CREATE TABLE IF NOT EXISTS sink_rejects (
    id          bigserial   PRIMARY KEY,
    table_name  text        NOT NULL,
    reason      text        NOT NULL,
    key_preview text        NOT NULL,  -- the first 200 characters of the key
    key_bytes   integer     NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now()
);

-- TG_ARGV[0]: the key column (hashtag or word). 2,000 bytes leaves room for the
-- other key columns and the index's own overhead under PostgreSQL's limit.
CREATE OR REPLACE FUNCTION guard_count_key() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    k text;
BEGIN
    -- (an IF, not a CASE expression: plpgsql resolves only the branch that runs,
    -- and each table has only one of the two columns)
    IF TG_ARGV[0] = 'hashtag' THEN
        k := NEW.hashtag;
    ELSE
        k := NEW.word;
    END IF;
    IF octet_length(k) > 2000 THEN
        INSERT INTO sink_rejects (table_name, reason, key_preview, key_bytes)
        VALUES (TG_TABLE_NAME, 'key longer than 2000 bytes (' || octet_length(k) || ')', left(k, 200), octet_length(k));
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;

DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('hashtag_counts', 'hashtag'), ('unigram_counts', 'word'),
                                   ('hashtag_minute_counts', 'hashtag'), ('unigram_minute_counts', 'word')) AS v (tbl, col)
    LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', t.tbl || '_guard', t.tbl);
        -- The WHEN condition is checked without calling the function: a row of
        -- normal size costs no PL/pgSQL call (the sink writes thousands a second).
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE ON %I FOR EACH ROW '
                       'WHEN (octet_length(NEW.%I) > 2000) EXECUTE FUNCTION guard_count_key(%L)',
                       t.tbl || '_guard', t.tbl, t.col, t.col);
    END LOOP;
END $$;

GRANT SELECT ON sink_rejects TO api_reader;
