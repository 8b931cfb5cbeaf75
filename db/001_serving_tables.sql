-- Serving tables, written by the JDBC sink (role "pipeline", the owner) and
-- read by the API (role "api_reader", SELECT only). Applied by `make up` on
-- every start, so every statement is idempotent.

CREATE TABLE IF NOT EXISTS hashtag_counts (
    hashtag text   PRIMARY KEY,
    count   bigint NOT NULL
);
-- The API's query: ORDER BY count DESC, hashtag LIMIT n.
CREATE INDEX IF NOT EXISTS hashtag_counts_top ON hashtag_counts (count DESC, hashtag COLLATE "C");

CREATE TABLE IF NOT EXISTS unigram_counts (
    word  text   PRIMARY KEY,
    count bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS unigram_counts_top ON unigram_counts (count DESC, word COLLATE "C");

GRANT USAGE ON SCHEMA public TO api_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO api_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE pipeline IN SCHEMA public GRANT SELECT ON TABLES TO api_reader;
