-- Pipeline version 4: deduplicated hashtag and word counts, all time and per
-- minute; records that are not valid posts are set aside in rejected_posts.
-- One Flink SQL job (one source read, one checkpoint), submitted by `make up`
-- / `make pipeline-apply`. Trending is computed from the per-minute counts by
-- the serving database (db/004_trending.sql), so it counts every post in
-- whatever order posts arrive.
--
-- These placeholders are filled in when the script is submitted:
--   ${KAFKA}         the brokers                     ${REGISTRY} the registry's Confluent API
--   ${TOPIC_PREFIX}  '' (tests use their own topics) ${JOB_NAME} the Flink job's name
--   ${STOPWORDS}     the words of sql/stopwords/*.txt, separated by spaces
-- The counting rules and the choices below are explained in the README
-- ("Counting rules", "The SQL pipeline").

SET 'pipeline.name' = '${JOB_NAME}';
-- Both cores: the topic tweets has two partitions, one per source reader.
SET 'parallelism.default' = '2';
-- Every output is an absolute count keyed by what it counts, written as soon as
-- it changes (at-least-once, no transactions): a record written twice, or again
-- after a restart from a checkpoint, carries the same value, and the newest
-- value per key wins. So the counts' freshness does not wait for checkpoints,
-- and checkpoints can be rare: each one flushes RocksDB's memory tables to new
-- files (every second, that made the state's reads 40 % dearer).
SET 'execution.checkpointing.interval' = '10s';
-- Fewer, larger updates from the aggregations (each key once per batch). A
-- task takes a checkpoint barrier only between batches, once the batch's
-- output has gone to the next tasks: batches of 250 ms (or 5,000 rows) keep
-- that wait near 0.4 s at full speed (with 500 ms it reached 1.4 s).
SET 'table.exec.mini-batch.enabled' = 'true';
SET 'table.exec.mini-batch.allow-latency' = '250ms';
SET 'table.exec.mini-batch.size' = '5000';
-- Plan the deduplication once for every output (each branch would otherwise
-- get its own copy: three deduplications per post).
SET 'table.optimizer.reuse-optimize-block-with-digest-enabled' = 'true';
-- No local pre-aggregation before the shuffle by key (Flink's default with
-- mini-batches): at each checkpoint, every pre-aggregating task first sent its
-- whole batch on, waiting for room downstream, and held every barrier behind it
-- up (checkpoints at full speed p99 2.1-2.7 s with it, 0.9-1.7 s without).
SET 'table.optimizer.agg-phase-strategy' = 'ONE_PHASE';
-- Default idle-state retention: what the deduplication remembers (post ids).
-- The aggregations below set their own with STATE_TTL hints.
SET 'table.exec.state.ttl' = '36 h';
-- Minutes are cut in UTC.
SET 'table.local-time-zone' = 'UTC';
-- Records pass between the chained steps of a task without a copy each time
-- (Flink's SQL operators do not keep references to their input rows).
SET 'pipeline.object-reuse' = 'true';

-- The counting rules in one pass over each post (stack/flink/tokenizer, Java):
-- tokens(text, stopwords) gives the post's hashtags and words as a row of two
-- arrays, (hashtags, words). It is computed once per post, in the view every
-- count reads; the counts by hashtag or word unnest the arrays.
CREATE TEMPORARY FUNCTION tokens AS 'io.github.tweetstream.flink.tokenizer.Tokens';
-- top_words(words, k): over the word arrays of a group's posts, the k most used
-- words with their exact counts, as a JSON object (the same jar).
CREATE TEMPORARY FUNCTION top_words AS 'io.github.tweetstream.flink.tokenizer.TopWords';
-- top_counts(word, count, k): the same, from a table of running counts.
CREATE TEMPORARY FUNCTION top_counts AS 'io.github.tweetstream.flink.tokenizer.TopCounts';

-- Posts as the producer writes them (schemas/post.avsc, subject tweets-value),
-- or any other writer: the rules below hold whoever wrote the record.
-- The lenient format (stack/flink/lenient-format) decodes them like
-- avro-confluent, but a record it cannot decode (wrong magic byte, unknown
-- schema id, corrupt Avro) becomes a row with every field NULL, the reason in
-- decode_error and its bytes in raw_value, instead of stopping the job. (A
-- registry it cannot reach still stops it: Flink retries until it is back.)
CREATE TABLE tweets (
  `id`            STRING,
  `text`          STRING,
  `created_at`    BIGINT,
  `decode_error`  STRING METADATA FROM 'value.error' VIRTUAL,
  `raw_value`     BYTES  METADATA FROM 'value.raw' VIRTUAL,
  `src_partition` INT    METADATA FROM 'partition' VIRTUAL,
  `src_offset`    BIGINT METADATA FROM 'offset' VIRTUAL,
  -- when the record was written to tweets (its Kafka timestamp)
  `record_time`   TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  `proc_time`     AS PROCTIME()
) WITH (
  'connector' = 'kafka',
  'topic' = '${TOPIC_PREFIX}tweets',
  'properties.bootstrap.servers' = '${KAFKA}',
  'properties.group.id' = '${TOPIC_PREFIX}tweetstream-flink',
  'properties.isolation.level' = 'read_committed',
  'scan.startup.mode' = 'earliest-offset',
  'value.format' = 'lenient-avro-confluent',
  'value.lenient-avro-confluent.url' = '${REGISTRY}',
  -- Every registry call has a time-out (here and in each table below): the
  -- registry client waits forever without one, and a request the registry
  -- never answered once stalled the whole job. A call that times out fails
  -- the job, which restarts from its last checkpoint and asks again.
  'value.lenient-avro-confluent.properties.http.read.timeout.ms' = '10000'
);

-- ---------------------------------------------------------------- output tables
-- Upsert topics keyed by their primary key; values without the key columns
-- (the sink reads those from the record key). At-least-once: see above.

CREATE TABLE hashtag_counts (
  `hashtag` STRING NOT NULL,
  `count`   BIGINT NOT NULL,
  PRIMARY KEY (`hashtag`) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${TOPIC_PREFIX}hashtag_counts',
  'properties.bootstrap.servers' = '${KAFKA}',
  'key.format' = 'avro-confluent',
  'key.avro-confluent.url' = '${REGISTRY}',
  'key.avro-confluent.properties.http.read.timeout.ms' = '10000',
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${REGISTRY}',
  'value.avro-confluent.properties.http.read.timeout.ms' = '10000',
  'value.fields-include' = 'EXCEPT_KEY',
  'sink.delivery-guarantee' = 'at-least-once',
  -- the sink keeps only the newest update of each key until it flushes (every
  -- second, at 20,000 keys, and at each checkpoint): fewer writes downstream
  'sink.buffer-flush.max-rows' = '20000',
  'sink.buffer-flush.interval' = '1s'
);

-- All-time words: the most used words (top_counts, below), one record:
-- {"word": count, ...}, at most 1,000 words, each with its exact count. The
-- serving database spreads it into the rows of unigram_counts
-- (db/007_word_tops.sql). (Writing every word's count as it changed was four
-- fifths of all the sink wrote on text with a long-tail vocabulary.)
CREATE TABLE unigram_tops (
  `scope` STRING NOT NULL,
  `words` STRING NOT NULL,
  PRIMARY KEY (`scope`) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${TOPIC_PREFIX}unigram_tops',
  'properties.bootstrap.servers' = '${KAFKA}',
  'key.format' = 'avro-confluent',
  'key.avro-confluent.url' = '${REGISTRY}',
  'key.avro-confluent.properties.http.read.timeout.ms' = '10000',
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${REGISTRY}',
  'value.avro-confluent.properties.http.read.timeout.ms' = '10000',
  'value.fields-include' = 'EXCEPT_KEY',
  'sink.delivery-guarantee' = 'at-least-once',
  'sink.buffer-flush.max-rows' = '20000',
  'sink.buffer-flush.interval' = '1s'
);

-- Per-minute counts in event time; minute_ms = the minute's start, epoch ms UTC.
CREATE TABLE hashtag_minute_counts (
  `minute_ms` BIGINT NOT NULL,
  `hashtag`   STRING NOT NULL,
  `count`     BIGINT NOT NULL,
  PRIMARY KEY (`minute_ms`, `hashtag`) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${TOPIC_PREFIX}hashtag_minute_counts',
  'properties.bootstrap.servers' = '${KAFKA}',
  'key.format' = 'avro-confluent',
  'key.avro-confluent.url' = '${REGISTRY}',
  'key.avro-confluent.properties.http.read.timeout.ms' = '10000',
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${REGISTRY}',
  'value.avro-confluent.properties.http.read.timeout.ms' = '10000',
  'value.fields-include' = 'EXCEPT_KEY',
  'sink.delivery-guarantee' = 'at-least-once',
  'sink.buffer-flush.max-rows' = '20000',
  'sink.buffer-flush.interval' = '1s'
);

-- Words per minute: the most used words of each minute (top_words, below),
-- one record per minute: {"word": count, ...}, at most 1,000 words, each with
-- its exact count. The serving database spreads each record into rows of
-- unigram_minute_counts (db/006_word_minute_tops.sql).
CREATE TABLE unigram_minute_tops (
  `minute_ms` BIGINT NOT NULL,
  `words`     STRING NOT NULL,
  PRIMARY KEY (`minute_ms`) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${TOPIC_PREFIX}unigram_minute_tops',
  'properties.bootstrap.servers' = '${KAFKA}',
  'key.format' = 'avro-confluent',
  'key.avro-confluent.url' = '${REGISTRY}',
  'key.avro-confluent.properties.http.read.timeout.ms' = '10000',
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${REGISTRY}',
  'value.avro-confluent.properties.http.read.timeout.ms' = '10000',
  'value.fields-include' = 'EXCEPT_KEY',
  'sink.delivery-guarantee' = 'at-least-once',
  'sink.buffer-flush.max-rows' = '20000',
  'sink.buffer-flush.interval' = '1s'
);

-- Posts counted (after deduplication) and the newest event time seen.
CREATE TABLE post_stats (
  `stat`            STRING NOT NULL,
  `posts`           BIGINT NOT NULL,
  `newest_event_ms` BIGINT,
  PRIMARY KEY (`stat`) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${TOPIC_PREFIX}post_stats',
  'properties.bootstrap.servers' = '${KAFKA}',
  'key.format' = 'avro-confluent',
  'key.avro-confluent.url' = '${REGISTRY}',
  'key.avro-confluent.properties.http.read.timeout.ms' = '10000',
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${REGISTRY}',
  'value.avro-confluent.properties.http.read.timeout.ms' = '10000',
  'value.fields-include' = 'EXCEPT_KEY',
  'sink.delivery-guarantee' = 'at-least-once',
  'sink.buffer-flush.max-rows' = '20000',
  'sink.buffer-flush.interval' = '1s'
);

-- Records that are not valid posts, set aside: keyed by where they are in the
-- topic tweets; raw_value holds the bytes of a record that could not be decoded.
CREATE TABLE rejected_posts (
  `tweets_partition` INT    NOT NULL,
  `tweets_offset`    BIGINT NOT NULL,
  `reason`           STRING NOT NULL,
  `post_id`          STRING,
  `text_preview`     STRING,
  `raw_value`        BYTES,
  PRIMARY KEY (`tweets_partition`, `tweets_offset`) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${TOPIC_PREFIX}rejected_posts',
  'properties.bootstrap.servers' = '${KAFKA}',
  'key.format' = 'avro-confluent',
  'key.avro-confluent.url' = '${REGISTRY}',
  'key.avro-confluent.properties.http.read.timeout.ms' = '10000',
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${REGISTRY}',
  'value.avro-confluent.properties.http.read.timeout.ms' = '10000',
  'value.fields-include' = 'EXCEPT_KEY',
  'sink.delivery-guarantee' = 'at-least-once',
  -- a rejected record may be as large as the topic tweets allows (4 MiB)
  'properties.max.request.size' = '8388608'
);

-- ---------------------------------------------------------------- views

-- Every record with the reason it is rejected, or NULL when it is a valid post,
-- and its event time in epoch ms: created_at, unless that is more than 5
-- minutes after the record was written (a poster's clock cannot move the
-- minutes, the windows or the retention into the future): then the record's time.
CREATE TEMPORARY VIEW checked_posts AS
SELECT *,
  CASE
    WHEN `decode_error` IS NOT NULL THEN `decode_error`
    WHEN `id` IS NULL OR CHAR_LENGTH(`id`) = 0 THEN 'no post id'
    WHEN `text` IS NULL THEN 'no text'
    WHEN `created_at` IS NULL THEN 'no created_at'
    -- 25,000 characters is X's longest post; anything longer is not a post
    WHEN CHAR_LENGTH(`text`) > 25000 THEN 'text longer than 25000 characters (' || CAST(CHAR_LENGTH(`text`) AS STRING) || ')'
  END AS reject_reason,
  CASE
    WHEN `created_at` > record_ms + 300000 THEN record_ms
    ELSE `created_at`
  END AS event_ms
FROM (
  SELECT *, EXTRACT(EPOCH FROM `record_time`) * 1000 + EXTRACT(MILLISECOND FROM `record_time`) AS record_ms
  FROM tweets
);

-- Each post id once: the first copy wins; later copies (reconnects, replays)
-- are dropped. The ids are remembered for 36 h (table.exec.state.ttl above).
-- Every output reads this one view (planned once, see above).
CREATE TEMPORARY VIEW unique_posts AS
SELECT `id`, `text`, event_ms,
       -- the start of the post's minute, epoch ms UTC (floor, also before 1970)
       event_ms - MOD(MOD(event_ms, 60000) + 60000, 60000) AS minute_ms
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY `id` ORDER BY `proc_time` ASC) AS copy_number
  FROM checked_posts
  WHERE reject_reason IS NULL
)
WHERE copy_number = 1;

-- Each post's hashtags and words, tokenized once: one row per post.
CREATE TEMPORARY VIEW post_token_lists AS
SELECT minute_ms, tokens(`text`, '${STOPWORDS}') AS toks FROM unique_posts;

-- One row per hashtag, one row per word.
CREATE TEMPORARY VIEW post_hashtags AS
SELECT p.minute_ms, h.hashtag
FROM post_token_lists p CROSS JOIN UNNEST(p.toks.hashtags) AS h (hashtag);

CREATE TEMPORARY VIEW post_words AS
SELECT w.word
FROM post_token_lists p CROSS JOIN UNNEST(p.toks.words) AS w (word);

-- Every word's all-time count (kept in the job's state, never expires; only
-- the most used are written out, below).
CREATE TEMPORARY VIEW word_counts AS
SELECT /*+ STATE_TTL('w' = '0') */ 'all' AS `scope`, word, COUNT(*) AS n
FROM post_words w GROUP BY word;

-- ---------------------------------------------------------------- the job
-- All-time counts never expire (STATE_TTL 0). A per-minute count keeps its
-- state 25 hours after its last update (the longest window the API serves is
-- 24 hours): a post counts in its minute whenever it arrives within that time.
EXECUTE STATEMENT SET
BEGIN
  -- 'all': posts counted and the newest event time; 'rejected': records set
  -- aside. (One INSERT per sink table: each table is one keyed count.)
  INSERT INTO post_stats
  SELECT /*+ STATE_TTL('p' = '0') */ stat, COUNT(*), MAX(event_ms)
  FROM (
    SELECT 'all' AS stat, event_ms FROM unique_posts
    UNION ALL
    SELECT 'rejected' AS stat, CAST(NULL AS BIGINT) FROM checked_posts WHERE reject_reason IS NOT NULL
  ) p
  GROUP BY stat;

  -- Rejected records, each one set aside.
  -- Text fields are cut and cleaned of control characters: PostgreSQL refuses
  -- NUL, and a refused write would stop the sink.
  INSERT INTO rejected_posts
  SELECT `src_partition`, `src_offset`,
         REGEXP_REPLACE(SUBSTRING(reject_reason, 1, 1000), '\p{Cc}', ' '),
         REGEXP_REPLACE(SUBSTRING(`id`, 1, 200), '\p{Cc}', ' '),
         REGEXP_REPLACE(SUBSTRING(`text`, 1, 280), '\p{Cc}', ' '), `raw_value`
  FROM checked_posts
  WHERE reject_reason IS NOT NULL;

  INSERT INTO hashtag_counts
  SELECT /*+ STATE_TTL('h' = '0') */ hashtag, COUNT(*) FROM post_hashtags h GROUP BY hashtag;

  -- The 1,000 most used words of all time (ties by word), exact counts.
  INSERT INTO unigram_tops
  SELECT /*+ STATE_TTL('c' = '0') */ `scope`, top_counts(word, n, 1000)
  FROM word_counts c GROUP BY `scope`;

  INSERT INTO hashtag_minute_counts
  SELECT /*+ STATE_TTL('h' = '25 h') */ minute_ms, hashtag, COUNT(*)
  FROM post_hashtags h GROUP BY minute_ms, hashtag;

  -- The 1,000 most used words of each minute (ties by word), exact counts,
  -- from each post's word array whole. Change the 1000 here to keep more or fewer.
  INSERT INTO unigram_minute_tops
  SELECT /*+ STATE_TTL('p' = '25 h') */ minute_ms, top_words(p.toks.words, 1000)
  FROM post_token_lists p GROUP BY minute_ms;
END;
