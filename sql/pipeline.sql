-- The counting pipeline, as one Flink SQL job (one source read, one checkpoint).
-- Submitted by `make up` with Flink's SQL client; edit it and resubmit to change
-- the pipeline. Counting rules: ARCHITECTURE.md ("Counting rules").

SET 'pipeline.name' = 'tweetstream-pipeline';
SET 'parallelism.default' = '1';
-- Output to the upsert topics becomes visible at each checkpoint (exactly-once
-- transactions), so this interval bounds the counts' freshness.
SET 'execution.checkpointing.interval' = '2s';
-- Fewer, larger updates from the aggregations.
SET 'table.exec.mini-batch.enabled' = 'true';
SET 'table.exec.mini-batch.allow-latency' = '500ms';
SET 'table.exec.mini-batch.size' = '5000';

-- Posts as the producer writes them (schemas/post.avsc, registry subject tweets-value).
CREATE TABLE tweets (
  `id`         STRING NOT NULL,
  `text`       STRING,
  `created_at` BIGINT,
  `author_id`  STRING,
  `lang`       STRING,
  `proc_time`  AS PROCTIME()
) WITH (
  'connector' = 'kafka',
  'topic' = 'tweets',
  'properties.bootstrap.servers' = '127.0.0.1:9092',
  'properties.group.id' = 'tweetstream-flink',
  'properties.isolation.level' = 'read_committed',
  'scan.startup.mode' = 'earliest-offset',
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = 'http://127.0.0.1:8081/apis/ccompat/v7'
);

-- All-time hashtag counts, an upsert topic keyed by hashtag.
CREATE TABLE hashtag_counts (
  `hashtag` STRING NOT NULL,
  `count`   BIGINT NOT NULL,
  PRIMARY KEY (`hashtag`) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = 'hashtag_counts',
  'properties.bootstrap.servers' = '127.0.0.1:9092',
  'key.format' = 'avro-confluent',
  'key.avro-confluent.url' = 'http://127.0.0.1:8081/apis/ccompat/v7',
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = 'http://127.0.0.1:8081/apis/ccompat/v7',
  -- the key columns are in the record key only: the sink must not see them twice
  'value.fields-include' = 'EXCEPT_KEY',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = 'tweetstream-hashtag-counts',
  -- at most the broker's transaction.max.timeout.ms (15 min)
  'properties.transaction.timeout.ms' = '900000'
);

-- Each post id once: the first copy wins, later copies (reconnects, replays) are dropped.
CREATE TEMPORARY VIEW unique_posts AS
SELECT `id`, `text`, `created_at`
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY `id` ORDER BY proc_time ASC) AS copy_number
  FROM tweets
)
WHERE copy_number = 1;

-- Hashtags: '#' at the start or after a character that is not a letter, digit
-- or '_'; the run of letters, combining marks, digits and '_' after it; at
-- least one letter; lower-cased. URLs are blanked first so that a '#fragment'
-- never counts. Java's \w is ASCII-only, hence the \p{...} classes.
CREATE TEMPORARY VIEW hashtags AS
SELECT LOWER(tag) AS hashtag
FROM unique_posts
CROSS JOIN UNNEST(
  REGEXP_EXTRACT_ALL(
    REGEXP_REPLACE(`text`, '(https?://|www\.)[^\p{IsWhite_Space}]*', ' '),
    '(?<![\p{L}\p{Nd}_])#([\p{L}\p{M}\p{Nd}_]+)',
    1)
) AS t (tag)
WHERE REGEXP(tag, '\p{L}');

EXECUTE STATEMENT SET
BEGIN
  INSERT INTO hashtag_counts
  SELECT hashtag, COUNT(*) AS `count` FROM hashtags GROUP BY hashtag;
END;
