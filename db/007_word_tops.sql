-- All-time words. The pipeline does not write every word's count as it
-- changes: on text with a long-tail vocabulary that was ~4 writes per post,
-- four fifths of all the sink wrote. It writes one row instead, unigram_tops
-- (scope 'all'): the 1,000 most used words of all time (ties by word) as a JSON
-- object {"word": count, ...}, each count exact (sql/v*_counts.sql,
-- top_counts). The trigger below spreads it into the rows of unigram_counts
-- that the API reads, writing only the rows that changed. So unigram_counts
-- holds the 1,000 most used words (the most /api/unigrams serves).

CREATE TABLE IF NOT EXISTS unigram_tops (
    scope text PRIMARY KEY,
    words text NOT NULL  -- JSON object: word -> count
);

CREATE OR REPLACE FUNCTION spread_word_top() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    top jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM unigram_counts;
        RETURN NULL;
    END IF;
    top := NEW.words::jsonb;  -- parsed once
    -- words that left the top
    DELETE FROM unigram_counts c WHERE NOT (top ? c.word);
    -- new words and changed counts (an unchanged row is not written again)
    INSERT INTO unigram_counts (word, count)
    SELECT w.key, w.value::bigint FROM jsonb_each_text(top) AS w
    ON CONFLICT (word) DO UPDATE SET count = EXCLUDED.count
    WHERE unigram_counts.count IS DISTINCT FROM EXCLUDED.count;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS unigram_tops_spread ON unigram_tops;
CREATE TRIGGER unigram_tops_spread AFTER INSERT OR UPDATE OR DELETE ON unigram_tops
    FOR EACH ROW EXECUTE FUNCTION spread_word_top();

GRANT SELECT ON unigram_tops TO api_reader;
