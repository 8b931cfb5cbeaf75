package io.github.tweetstream.flink.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

import org.apache.flink.api.common.typeutils.SimpleTypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.functions.AggregateFunction;

/**
 * {@code top_words(words, k)}: over the word arrays of a group's posts (in the
 * pipeline: of one minute), the k most used words with their exact counts, as a JSON object
 * {@code {"word": count, ...}}, most used first, ties by word (code-point
 * order), at most k entries.
 *
 * <p>Why: a per-minute count of every word makes one state entry, one Kafka
 * record and one database row per (minute, word), and on text with a long-tail
 * vocabulary most words of a minute are used once: 5.5 new rows per post. Here
 * a minute is one state entry (its words and exact counts) and one record per
 * update, whose size is bounded by k: what the windows can show. It takes a
 * post's words as one array: one row per post reaches it, not one per word.
 */
// The accumulator is an opaque (RAW) Java object: as a structured type, Flink
// would convert the whole map to its internal format and back for every word.
// It is written to state by CountsSerializer (not Kryo, Flink's default).
@FunctionHint(accumulator = @DataTypeHint(value = "RAW", bridgedTo = TopWords.Counts.class,
        rawSerializer = TopWords.CountsSerializer.class),
        output = @DataTypeHint("STRING"))
public class TopWords extends AggregateFunction<String, TopWords.Counts> {

    /** The accumulator: every word of the group with its exact count. */
    public static class Counts extends CountMaps.Accumulator {
    }

    @Override
    public Counts createAccumulator() {
        return new Counts();
    }

    public void accumulate(Counts acc, String[] words, Integer k) {
        if (k != null) {
            acc.k = k;
        }
        if (words == null) {
            return;
        }
        for (String word : words) {
            if (word != null) {
                acc.counts.merge(word, 1L, Long::sum);
            }
        }
    }

    /** The deduplication's output is an updating table for the planner: a retracted row uncounts. */
    public void retract(Counts acc, String[] words, Integer k) {
        if (words == null) {
            return;
        }
        for (String word : words) {
            if (word != null) {
                acc.counts.computeIfPresent(word, (w, n) -> n > 1 ? n - 1 : null);
            }
        }
    }

    public void merge(Counts acc, Iterable<Counts> others) {
        for (Counts other : others) {
            other.counts.forEach((w, n) -> acc.counts.merge(w, n, Long::sum));
            acc.k = Math.max(acc.k, other.k);
        }
        acc.counts.values().removeIf(n -> n <= 0);
    }

    @Override
    public String getValue(Counts acc) {
        return toJson(top(acc.counts, acc.k));
    }

    /** The k entries with the highest counts, ties by word (code-point order), highest first. */
    static List<Map.Entry<String, Long>> top(Map<String, Long> counts, int k) {
        // a min-heap of the best k seen so far: its head is the weakest kept
        PriorityQueue<Map.Entry<String, Long>> best = new PriorityQueue<>(Math.max(1, k), TopWords::weaker);
        for (Map.Entry<String, Long> e : counts.entrySet()) {
            if (e.getValue() <= 0) {
                continue;
            }
            if (best.size() < k) {
                best.add(e);
            } else if (k > 0 && weaker(best.peek(), e) < 0) {
                best.poll();
                best.add(e);
            }
        }
        List<Map.Entry<String, Long>> out = new ArrayList<>(best);
        out.sort((a, b) -> weaker(b, a));
        return out;
    }

    /** Negative when a ranks below b: a lower count, or the same count and a later word. */
    private static int weaker(Map.Entry<String, Long> a, Map.Entry<String, Long> b) {
        int byCount = Long.compare(a.getValue(), b.getValue());
        return byCount != 0 ? byCount : compareCodePoints(b.getKey(), a.getKey());
    }

    /**
     * Code-point order. String.compareTo orders UTF-16 units, which differs above
     * U+FFFF: a surrogate (U+D800-DFFF) is below U+E000-FFFF as a unit, above it
     * as a code point. So the first units that differ are compared with the
     * surrogates moved above U+FFFF when both are U+D800 or higher.
     */
    static int compareCodePoints(String a, String b) {
        int n = Math.min(a.length(), b.length());
        for (int i = 0; i < n; i++) {
            char ca = a.charAt(i);
            char cb = b.charAt(i);
            if (ca != cb) {
                if (ca >= 0xD800 && cb >= 0xD800) {
                    return codePointRank(ca) - codePointRank(cb);
                }
                return ca - cb;
            }
        }
        return a.length() - b.length();
    }

    private static int codePointRank(char c) {
        return c >= 0xE000 ? c - 0x800 : c + 0x2000;
    }

    static String toJson(List<Map.Entry<String, Long>> entries) {
        StringBuilder sb = new StringBuilder(entries.size() * 16 + 2).append('{');
        for (Map.Entry<String, Long> e : entries) {
            if (sb.length() > 1) {
                sb.append(',');
            }
            quote(sb, e.getKey()).append(':').append(e.getValue());
        }
        return sb.append('}').toString();
    }

    private static StringBuilder quote(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                sb.append('\\').append(c);
            } else if (c < 0x20) {
                sb.append(String.format("\\u%04x", (int) c));
            } else {
                sb.append(c);
            }
        }
        return sb.append('"');
    }

    /** Writes a {@link Counts} into the job's state ({@link CountMaps}). */
    public static final class CountsSerializer extends CountMaps.Serializer<Counts> {
        @Override
        public Counts createInstance() {
            return new Counts();
        }

        @Override
        public TypeSerializerSnapshot<Counts> snapshotConfiguration() {
            return new Snapshot();
        }

        /** No configuration to remember: the format is fixed. */
        public static final class Snapshot extends SimpleTypeSerializerSnapshot<Counts> {
            public Snapshot() {
                super(CountsSerializer::new);
            }
        }
    }
}
