-- Words per minute. The pipeline does not write a row per (minute, word): on
-- text with a long-tail vocabulary most words of a minute are used once, and
-- that was 5.5 new rows per post. It writes one row per minute instead,
-- unigram_minute_tops: the 1,000 most used words of that minute (ties by word)
-- as a JSON object {"word": count, ...}, each count exact (sql/v*_counts.sql,
-- top_words). The trigger below spreads each such row into the rows of
-- unigram_minute_counts that the API reads, writing only the rows that changed.
-- So a window's word counts are exact for every word among the 1,000 most used
-- of each minute it was used in; uses of rarer words are not kept per minute
-- (they are in the all-time unigram_counts).

CREATE TABLE IF NOT EXISTS unigram_minute_tops (
    minute_ms bigint PRIMARY KEY,
    words     text   NOT NULL  -- JSON object: word -> count
);

CREATE OR REPLACE FUNCTION spread_word_minute_top() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    top jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM unigram_minute_counts WHERE minute_ms = OLD.minute_ms;
        RETURN NULL;
    END IF;
    top := NEW.words::jsonb;  -- parsed once
    -- words that left the minute's top
    DELETE FROM unigram_minute_counts m
    WHERE m.minute_ms = NEW.minute_ms AND NOT (top ? m.word);
    -- new words and changed counts (an unchanged row is not written again)
    INSERT INTO unigram_minute_counts (minute_ms, word, count)
    SELECT NEW.minute_ms, w.key, w.value::bigint FROM jsonb_each_text(top) AS w
    ON CONFLICT (minute_ms, word) DO UPDATE SET count = EXCLUDED.count
    WHERE unigram_minute_counts.count IS DISTINCT FROM EXCLUDED.count;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS unigram_minute_tops_spread ON unigram_minute_tops;
CREATE TRIGGER unigram_minute_tops_spread AFTER INSERT OR UPDATE OR DELETE ON unigram_minute_tops
    FOR EACH ROW EXECUTE FUNCTION spread_word_minute_top();

GRANT SELECT ON unigram_minute_tops TO api_reader;
