-- Serving tables, written by the JDBC sink (role "pipeline", the owner) and
-- read by the API (role "api_reader", SELECT only). Applied by `make up` on
-- every start, so every statement is idempotent. Each table is named after
-- the upsert topic it mirrors (sql/v*_*.sql); its primary key is the topic's key.
-- Trending hashtags are a view over the per-minute counts: 004_trending.sql.

CREATE TABLE IF NOT EXISTS hashtag_counts (
    hashtag text   PRIMARY KEY,
    count   bigint NOT NULL
);
-- the API's query: ORDER BY count DESC, hashtag LIMIT n
CREATE INDEX IF NOT EXISTS hashtag_counts_top ON hashtag_counts (count DESC, hashtag COLLATE "C");

CREATE TABLE IF NOT EXISTS unigram_counts (
    word  text   PRIMARY KEY,
    count bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS unigram_counts_top ON unigram_counts (count DESC, word COLLATE "C");

-- minute_ms: the start of the minute, epoch milliseconds UTC (event time)
CREATE TABLE IF NOT EXISTS hashtag_minute_counts (
    minute_ms bigint NOT NULL,
    hashtag   text   NOT NULL,
    count     bigint NOT NULL,
    PRIMARY KEY (minute_ms, hashtag)
);
-- timelines of chosen hashtags
CREATE INDEX IF NOT EXISTS hashtag_minute_counts_by_tag ON hashtag_minute_counts (hashtag, minute_ms);

CREATE TABLE IF NOT EXISTS unigram_minute_counts (
    minute_ms bigint NOT NULL,
    word      text   NOT NULL,
    count     bigint NOT NULL,
    PRIMARY KEY (minute_ms, word)
);

-- posts counted and the newest event time; updated_at: when the sink last wrote
CREATE TABLE IF NOT EXISTS post_stats (
    stat            text        PRIMARY KEY,
    posts           bigint      NOT NULL,
    newest_event_ms bigint,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS post_stats_touch ON post_stats;
CREATE TRIGGER post_stats_touch BEFORE INSERT OR UPDATE ON post_stats
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

GRANT USAGE ON SCHEMA public TO api_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO api_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE pipeline IN SCHEMA public GRANT SELECT ON TABLES TO api_reader;
