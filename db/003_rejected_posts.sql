-- Records of the topic tweets that are not valid posts (undecodable, no id,
-- oversized text ...), set aside by the pipeline (sql/v*_*.sql, rejected_posts)
-- instead of counted. Where the record is in the topic is its key; raw_value is
-- a copy of a record that could not be decoded. Also counted in post_stats
-- (stat 'rejected') and shown by the API (/api/stats, /api/rejects).
CREATE TABLE IF NOT EXISTS rejected_posts (
    tweets_partition integer     NOT NULL,
    tweets_offset    bigint      NOT NULL,
    reason           text        NOT NULL,
    post_id          text,
    text_preview     text,
    raw_value        bytea,
    rejected_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tweets_partition, tweets_offset)
);
-- the API lists the newest first
CREATE INDEX IF NOT EXISTS rejected_posts_newest ON rejected_posts (rejected_at DESC);

GRANT SELECT ON rejected_posts TO api_reader;
