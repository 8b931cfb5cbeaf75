package io.github.tweetstream.flink.tokenizer;

import java.util.Map;

import org.apache.flink.api.common.typeutils.SimpleTypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.functions.AggregateFunction;

/**
 * {@code top_counts(key, count, k)}: over a table of running counts (one row
 * per key, its newest count), the k keys with the highest counts and those
 * counts, as a JSON object {@code {"key": count, ...}}: highest first, ties by
 * key (code-point order), at most k entries. The same output as
 * {@link TopWords}, but its input is counts that were already added up.
 *
 * <p>Why: the all-time count of every word is one database write per word that
 * changed in each flush: on text with a long-tail vocabulary ~4 writes per post,
 * four fifths of everything the sink wrote. The API shows at most the 1,000
 * most used words, so the pipeline writes those: one record of at most k
 * entries per update.
 *
 * <p>It keeps only the k best keys, which is exact because a running count only
 * grows (posts are deduplicated, never uncounted): when a key's count rises it
 * either stays below the k-th best (the kept set does not change) or takes the
 * place of the k-th best; a key that left the set comes back with its next,
 * higher count. An update's retraction of the previous count changes nothing:
 * the new count follows it.
 */
// The accumulator is an opaque (RAW) Java object written by BestSerializer (see TopWords).
@FunctionHint(accumulator = @DataTypeHint(value = "RAW", bridgedTo = TopCounts.Best.class,
        rawSerializer = TopCounts.BestSerializer.class),
        output = @DataTypeHint("STRING"))
public class TopCounts extends AggregateFunction<String, TopCounts.Best> {

    /** The accumulator: the k best keys with their counts. */
    public static class Best extends CountMaps.Accumulator {
        /** The weakest kept key, or null when unknown (found again on demand; not written to state). */
        public String weakest;
    }

    @Override
    public Best createAccumulator() {
        return new Best();
    }

    public void accumulate(Best acc, String key, Long count, Integer k) {
        if (key == null || count == null || count <= 0) {
            return;
        }
        if (k != null) {
            acc.k = k;
        }
        Long kept = acc.counts.get(key);
        if (kept != null) {
            acc.counts.put(key, Math.max(kept, count));
            if (key.equals(acc.weakest)) {
                acc.weakest = null;  // it grew: another key may be the weakest now
            }
            return;
        }
        if (acc.counts.size() < acc.k) {
            acc.counts.put(key, count);
            acc.weakest = null;
            return;
        }
        if (acc.k <= 0) {
            return;
        }
        String weakest = weakest(acc);
        if (weaker(weakest, acc.counts.get(weakest), key, count) < 0) {
            acc.counts.remove(weakest);
            acc.counts.put(key, count);
            acc.weakest = null;
        }
    }

    /** A retracted count is followed by the key's new count (counts only grow): nothing to undo. */
    public void retract(Best acc, String key, Long count, Integer k) {
    }

    @Override
    public String getValue(Best acc) {
        return TopWords.toJson(TopWords.top(acc.counts, acc.k));
    }

    private static String weakest(Best acc) {
        if (acc.weakest == null) {
            String w = null;
            long n = 0;
            for (Map.Entry<String, Long> e : acc.counts.entrySet()) {
                if (w == null || weaker(e.getKey(), e.getValue(), w, n) < 0) {
                    w = e.getKey();
                    n = e.getValue();
                }
            }
            acc.weakest = w;
        }
        return acc.weakest;
    }

    /** Negative when (a, na) ranks below (b, nb): a lower count, or the same count and a later key. */
    private static int weaker(String a, long na, String b, long nb) {
        int byCount = Long.compare(na, nb);
        return byCount != 0 ? byCount : TopWords.compareCodePoints(b, a);
    }

    /** Writes a {@link Best} into the job's state ({@link CountMaps}). */
    public static final class BestSerializer extends CountMaps.Serializer<Best> {
        @Override
        public Best createInstance() {
            return new Best();
        }

        @Override
        public TypeSerializerSnapshot<Best> snapshotConfiguration() {
            return new Snapshot();
        }

        /** No configuration to remember: the format is fixed. */
        public static final class Snapshot extends SimpleTypeSerializerSnapshot<Best> {
            public Snapshot() {
                super(BestSerializer::new);
            }
        }
    }
}
