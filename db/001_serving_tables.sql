-- Serving tables, written by the JDBC sink (role "pipeline", the owner) and
-- read by the API (role "api_reader", SELECT only). Applied by `make up` on
-- every start, so every statement is idempotent. Each table is named after
-- the upsert topic it mirrors (sql/v*_*.sql); its primary key is the topic's key.

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

CREATE TABLE IF NOT EXISTS trending_hashtags (
    rank          integer          PRIMARY KEY,
    hashtag       text             NOT NULL,
    window_end_ms bigint           NOT NULL,
    recent        bigint           NOT NULL,
    previous      bigint           NOT NULL,
    score         double precision NOT NULL
);

GRANT USAGE ON SCHEMA public TO api_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO api_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE pipeline IN SCHEMA public GRANT SELECT ON TABLES TO api_reader;
