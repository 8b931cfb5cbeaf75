-- Pipeline version 2: deduplicated hashtag and word counts, all time and per
-- minute, and trending hashtags; records that are not valid posts are set
-- aside in rejected_posts (v1 stopped on them). One Flink SQL job (one source
-- read, one checkpoint), submitted by `make up` / `make pipeline-apply`.
--
-- These placeholders are filled in when the script is submitted:
--   ${KAFKA}         the brokers                     ${REGISTRY} the registry's Confluent API
--   ${TOPIC_PREFIX}  '' (tests use their own topics) ${JOB_NAME} the Flink job's name
--   ${STOPWORDS}     the quoted words of sql/stopwords/*.txt
-- Counting rules: ARCHITECTURE.md. Choices are explained in README ("The SQL pipeline").

SET 'pipeline.name' = '${JOB_NAME}';
SET 'parallelism.default' = '1';
-- Output reaches the upsert topics in Kafka transactions committed at each
-- checkpoint: this interval bounds the counts' freshness.
SET 'execution.checkpointing.interval' = '2s';
-- Fewer, larger updates from the aggregations.
SET 'table.exec.mini-batch.enabled' = 'true';
SET 'table.exec.mini-batch.allow-latency' = '500ms';
SET 'table.exec.mini-batch.size' = '5000';
-- Default idle-state retention: what the deduplication remembers (post ids).
-- The aggregations below set their own with STATE_TTL hints.
SET 'table.exec.state.ttl' = '36 h';
-- A partition with no new posts must not hold back event time.
SET 'table.exec.source.idle-timeout' = '5 s';
-- Windows are cut in UTC minutes.
SET 'table.local-time-zone' = 'UTC';

-- Posts as the producer writes them (schemas/post.avsc, subject tweets-value).
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
  `proc_time`     AS PROCTIME(),
  -- a rejected record has no time: 0 never moves the watermark
  `event_time`    AS TO_TIMESTAMP_LTZ(COALESCE(`created_at`, 0), 3),
  -- posts may arrive up to 5 s out of order before trending windows close
  WATERMARK FOR `event_time` AS `event_time` - INTERVAL '5' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '${TOPIC_PREFIX}tweets',
  'properties.bootstrap.servers' = '${KAFKA}',
  'properties.group.id' = '${TOPIC_PREFIX}tweetstream-flink',
  'properties.isolation.level' = 'read_committed',
  'scan.startup.mode' = 'earliest-offset',
  'value.format' = 'lenient-avro-confluent',
  'value.lenient-avro-confluent.url' = '${REGISTRY}'
);

-- ---------------------------------------------------------------- output tables
-- Upsert topics keyed by their primary key; values without the key columns
-- (the sink reads those from the record key). Exactly-once: Kafka transactions.

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
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${REGISTRY}',
  'value.fields-include' = 'EXCEPT_KEY',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = '${TOPIC_PREFIX}hashtag_counts',
  -- at most the broker's transaction.max.timeout.ms (15 min)
  'properties.transaction.timeout.ms' = '900000'
);

CREATE TABLE unigram_counts (
  `word`  STRING NOT NULL,
  `count` BIGINT NOT NULL,
  PRIMARY KEY (`word`) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${TOPIC_PREFIX}unigram_counts',
  'properties.bootstrap.servers' = '${KAFKA}',
  'key.format' = 'avro-confluent',
  'key.avro-confluent.url' = '${REGISTRY}',
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${REGISTRY}',
  'value.fields-include' = 'EXCEPT_KEY',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = '${TOPIC_PREFIX}unigram_counts',
  'properties.transaction.timeout.ms' = '900000'
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
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${REGISTRY}',
  'value.fields-include' = 'EXCEPT_KEY',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = '${TOPIC_PREFIX}hashtag_minute_counts',
  'properties.transaction.timeout.ms' = '900000'
);

CREATE TABLE unigram_minute_counts (
  `minute_ms` BIGINT NOT NULL,
  `word`      STRING NOT NULL,
  `count`     BIGINT NOT NULL,
  PRIMARY KEY (`minute_ms`, `word`) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${TOPIC_PREFIX}unigram_minute_counts',
  'properties.bootstrap.servers' = '${KAFKA}',
  'key.format' = 'avro-confluent',
  'key.avro-confluent.url' = '${REGISTRY}',
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${REGISTRY}',
  'value.fields-include' = 'EXCEPT_KEY',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = '${TOPIC_PREFIX}unigram_minute_counts',
  'properties.transaction.timeout.ms' = '900000'
);

-- The top 20 trending hashtags of the latest closed 75-minute window.
CREATE TABLE trending_hashtags (
  `rank`          INT NOT NULL,
  `hashtag`       STRING NOT NULL,
  `window_end_ms` BIGINT NOT NULL,
  `recent`        BIGINT NOT NULL,
  `previous`      BIGINT NOT NULL,
  `score`         DOUBLE NOT NULL,
  PRIMARY KEY (`rank`) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = '${TOPIC_PREFIX}trending_hashtags',
  'properties.bootstrap.servers' = '${KAFKA}',
  'key.format' = 'avro-confluent',
  'key.avro-confluent.url' = '${REGISTRY}',
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${REGISTRY}',
  'value.fields-include' = 'EXCEPT_KEY',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = '${TOPIC_PREFIX}trending_hashtags',
  'properties.transaction.timeout.ms' = '900000'
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
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${REGISTRY}',
  'value.fields-include' = 'EXCEPT_KEY',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = '${TOPIC_PREFIX}post_stats',
  'properties.transaction.timeout.ms' = '900000'
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
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${REGISTRY}',
  'value.fields-include' = 'EXCEPT_KEY',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = '${TOPIC_PREFIX}rejected_posts',
  'properties.transaction.timeout.ms' = '900000',
  -- a rejected record may be as large as the topic tweets allows (4 MiB)
  'properties.max.request.size' = '8388608'
);

-- ---------------------------------------------------------------- views

-- Every record with the reason it is rejected, or NULL when it is a valid post.
-- 25,000 characters is X's longest post; anything longer is not a post.
CREATE TEMPORARY VIEW checked_posts AS
SELECT *,
  CASE
    WHEN `decode_error` IS NOT NULL THEN `decode_error`
    WHEN `id` IS NULL OR CHAR_LENGTH(`id`) = 0 THEN 'no post id'
    WHEN `text` IS NULL THEN 'no text'
    WHEN `created_at` IS NULL THEN 'no created_at'
    WHEN CHAR_LENGTH(`text`) > 25000 THEN 'text longer than 25000 characters (' || CAST(CHAR_LENGTH(`text`) AS STRING) || ')'
  END AS reject_reason
FROM tweets;

-- Each post id once: the first copy wins; later copies (reconnects, replays)
-- are dropped. The ids are remembered for 36 h (table.exec.state.ttl above).
CREATE TEMPORARY VIEW unique_posts AS
SELECT `id`, `text`, `created_at`, `event_time`
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY `id` ORDER BY `proc_time` ASC) AS copy_number
  FROM checked_posts
  WHERE reject_reason IS NULL
)
WHERE copy_number = 1;

-- The text with URLs blanked (http://, https://, www. up to the next Unicode
-- white space, no-break spaces included), so that a '#fragment' never counts.
-- Java's \s and \w are ASCII-only, hence the \p{...} classes throughout.
CREATE TEMPORARY VIEW posts_without_urls AS
SELECT `event_time`,
       -- the start of the post's minute, epoch ms (UTC, no time zone involved)
       `created_at` - MOD(`created_at`, 60000) AS minute_ms,
       REGEXP_REPLACE(`text`, '(https?://|www\.)[^\p{IsWhite_Space}]*', ' ') AS body
FROM unique_posts;

-- Hashtags: '#' at the start or after a character that is not a letter, digit
-- or '_', then the run of letters, combining marks, digits and '_'; it must
-- hold a letter; lower-cased (the JVM locale is pinned in stack/flink/config.yaml).
CREATE TEMPORARY VIEW hashtags AS
SELECT LOWER(tag) AS hashtag, minute_ms, `event_time`
FROM posts_without_urls
CROSS JOIN UNNEST(REGEXP_EXTRACT_ALL(body, '(?<![\p{L}\p{Nd}_])#([\p{L}\p{M}\p{Nd}_]+)', 1)) AS t (tag)
WHERE REGEXP(tag, '\p{L}');

-- Words: from the text without URLs, hashtags and @mentions (one pass, so both
-- are judged on the same text), a letter followed by letters and combining
-- marks; apostrophes and hyphens split words; lower-cased; at least two
-- letters; no stopword. The stopwords are a literal array: a stateless filter
-- (a literal NOT IN list is one too, but takes Flink's planner ~80 s to plan).
CREATE TEMPORARY VIEW words AS
SELECT word, minute_ms
FROM (
  SELECT LOWER(w) AS word, minute_ms
  FROM posts_without_urls
  CROSS JOIN UNNEST(REGEXP_EXTRACT_ALL(
      REGEXP_REPLACE(body, '(?<![\p{L}\p{Nd}_])[#@][\p{L}\p{M}\p{Nd}_]+', ' '),
      '(\p{L}[\p{L}\p{M}]*)', 1)) AS t (w)
)
WHERE CHAR_LENGTH(REGEXP_REPLACE(word, '\p{M}', '')) >= 2
  -- (typed STRING: as ARRAY<VARCHAR(n)> the word would be cut to n characters)
  AND NOT ARRAY_CONTAINS(CAST(ARRAY[${STOPWORDS}] AS ARRAY<STRING>), word);

-- ---------------------------------------------------------------- the job
-- All-time counts never expire (STATE_TTL 0). Per-minute counts keep a
-- minute's state 7 days after its last update: a post is counted in its
-- minute whenever it arrives within that time.
EXECUTE STATEMENT SET
BEGIN
  -- 'all': posts counted; 'rejected': records set aside. (One INSERT per sink
  -- table: two would share its transactional ids.)
  INSERT INTO post_stats
  SELECT /*+ STATE_TTL('p' = '0') */ stat, COUNT(*), MAX(`created_at`)
  FROM (
    SELECT 'all' AS stat, `created_at` FROM unique_posts
    UNION ALL
    SELECT 'rejected' AS stat, CAST(NULL AS BIGINT) FROM checked_posts WHERE reject_reason IS NOT NULL
  ) p
  GROUP BY stat;

  -- Rejected records, each one set aside.
  INSERT INTO rejected_posts
  SELECT `src_partition`, `src_offset`, reject_reason, `id`,
         -- the start of the text, without control characters (PostgreSQL refuses NUL)
         REGEXP_REPLACE(SUBSTRING(`text`, 1, 280), '\p{Cc}', ' '), `raw_value`
  FROM checked_posts
  WHERE reject_reason IS NOT NULL;

  INSERT INTO hashtag_counts
  SELECT /*+ STATE_TTL('h' = '0') */ hashtag, COUNT(*) FROM hashtags h GROUP BY hashtag;

  INSERT INTO unigram_counts
  SELECT /*+ STATE_TTL('w' = '0') */ word, COUNT(*) FROM words w GROUP BY word;

  INSERT INTO hashtag_minute_counts
  SELECT /*+ STATE_TTL('h' = '7 d') */ minute_ms, hashtag, COUNT(*)
  FROM hashtags h
  GROUP BY minute_ms, hashtag;

  INSERT INTO unigram_minute_counts
  SELECT /*+ STATE_TTL('w' = '7 d') */ minute_ms, word, COUNT(*)
  FROM words w
  GROUP BY minute_ms, word;

  -- Trending: per 75-minute window sliding by 1 minute (event time), `recent`
  -- = uses in its last 15 minutes, `previous` = uses in the 60 minutes before;
  -- score = (recent + 1) / (previous / 4 + 1), the growth over the previous
  -- hour's 15-minute average. At least 3 recent uses. Ties: more recent uses,
  -- then hashtag. A window closes when event time passes its end.
  INSERT INTO trending_hashtags
  SELECT CAST(rn AS INT), hashtag, window_end_ms, recent, previous, score
  FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end
                                 ORDER BY score DESC, recent DESC, hashtag ASC) AS rn
    FROM (
      SELECT window_start, window_end, hashtag,
             UNIX_TIMESTAMP(CAST(window_end AS STRING)) * 1000 AS window_end_ms,
             recent, previous,
             (CAST(recent AS DOUBLE) + 1) / (CAST(previous AS DOUBLE) / 4 + 1) AS score
      FROM (
        SELECT window_start, window_end, hashtag,
               SUM(CAST(CASE WHEN `event_time` >= window_end - INTERVAL '15' MINUTE THEN 1 ELSE 0 END AS BIGINT)) AS recent,
               SUM(CAST(CASE WHEN `event_time` <  window_end - INTERVAL '15' MINUTE THEN 1 ELSE 0 END AS BIGINT)) AS previous
        FROM TABLE(HOP(TABLE hashtags, DESCRIPTOR(`event_time`), INTERVAL '1' MINUTE, INTERVAL '75' MINUTE))
        GROUP BY window_start, window_end, hashtag
      )
      WHERE recent >= 3
    )
  )
  WHERE rn <= 20;
END;
