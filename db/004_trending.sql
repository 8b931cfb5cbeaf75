-- Trending hashtags, computed from the per-minute counts when asked (the API
-- reads this view), so they count every post whatever order posts arrive in.
-- The window: the 75 one-minute buckets ending with the newest post's minute
-- (event time, like every window the API serves). recent = uses in its last
-- 15 minutes, previous = uses in the 60 minutes before; score = (recent + 1) /
-- (previous / 4 + 1), the growth over the previous hour's 15-minute average;
-- at least 3 recent uses; the top 20, ties by more recent uses, then hashtag
-- (code-point order).

-- Up to pipeline version 2, trending_hashtags was a table the sink wrote.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_class WHERE relname = 'trending_hashtags' AND relkind = 'r'
               AND relnamespace = 'public'::regnamespace) THEN
        DROP TABLE trending_hashtags;
    END IF;
END $$;

CREATE OR REPLACE VIEW trending_hashtags AS
WITH trend_window AS (
    -- the end of the newest post's minute, epoch ms UTC
    SELECT newest_event_ms - ((newest_event_ms % 60000) + 60000) % 60000 + 60000 AS end_ms
    FROM post_stats WHERE stat = 'all' AND newest_event_ms IS NOT NULL
), uses AS (
    SELECT m.hashtag, w.end_ms,
           coalesce(sum(m.count) FILTER (WHERE m.minute_ms >= w.end_ms - 15 * 60000), 0)::bigint AS recent,
           coalesce(sum(m.count) FILTER (WHERE m.minute_ms <  w.end_ms - 15 * 60000), 0)::bigint AS previous
    FROM hashtag_minute_counts m, trend_window w
    WHERE m.minute_ms >= w.end_ms - 75 * 60000 AND m.minute_ms < w.end_ms
    GROUP BY m.hashtag, w.end_ms
), scored AS (
    SELECT hashtag, end_ms, recent, previous,
           (recent + 1)::double precision / (previous::double precision / 4 + 1) AS score
    FROM uses WHERE recent >= 3
)
SELECT (row_number() OVER (ORDER BY score DESC, recent DESC, hashtag COLLATE "C"))::integer AS rank,
       hashtag, end_ms AS window_end_ms, recent, previous, score
FROM scored
ORDER BY rank
LIMIT 20;

GRANT SELECT ON trending_hashtags TO api_reader;
