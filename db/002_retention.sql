-- Retention of the per-minute rows, measured back from the newest post's event
-- time (like the API's windows): default 25 hours, enough for the longest
-- window the API serves (24 h) and the page's timeline. To change it:
--   UPDATE retention SET keep = interval '3 days' WHERE name = 'minute_counts';
-- Rows are pruned whenever the sink updates post_stats (about once a checkpoint).

CREATE TABLE IF NOT EXISTS retention (
    name text     PRIMARY KEY,
    keep interval NOT NULL
);
INSERT INTO retention VALUES ('minute_counts', interval '25 hours') ON CONFLICT (name) DO NOTHING;

CREATE OR REPLACE FUNCTION prune_minute_counts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cutoff bigint;
BEGIN
    SELECT NEW.newest_event_ms - (extract(epoch FROM keep) * 1000)::bigint INTO cutoff
    FROM retention WHERE name = 'minute_counts';
    IF cutoff IS NOT NULL THEN
        DELETE FROM hashtag_minute_counts WHERE minute_ms < cutoff;
        DELETE FROM unigram_minute_counts WHERE minute_ms < cutoff;
        -- (created by 006_word_minute_tops.sql; its rows spread into unigram_minute_counts)
        DELETE FROM unigram_minute_tops WHERE minute_ms < cutoff;
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS post_stats_prune ON post_stats;
CREATE TRIGGER post_stats_prune AFTER INSERT OR UPDATE ON post_stats
    FOR EACH ROW EXECUTE FUNCTION prune_minute_counts();

GRANT SELECT ON retention TO api_reader;
