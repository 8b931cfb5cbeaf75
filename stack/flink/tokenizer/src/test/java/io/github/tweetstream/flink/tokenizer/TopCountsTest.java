package io.github.tweetstream.flink.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.HashMap;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.Test;

/** The top k of running counts: the same answer as the top k of every key's newest count. */
class TopCountsTest {

    @Test
    void newestCountsTiesByKey() {
        TopCounts f = new TopCounts();
        TopCounts.Best acc = f.createAccumulator();
        f.accumulate(acc, "c", 1L, 2);
        f.accumulate(acc, "b", 1L, 2);
        f.accumulate(acc, "a", 1L, 2);   // a ties with b and c and comes first: c leaves
        assertEquals("{\"a\":1,\"b\":1}", f.getValue(acc));
        f.retract(acc, "c", 1L, 2);      // a retraction changes nothing
        f.accumulate(acc, "c", 2L, 2);   // c comes back with its higher count
        assertEquals("{\"c\":2,\"a\":1}", f.getValue(acc));
        f.accumulate(acc, "z", 0L, 2);   // not a count
        f.accumulate(acc, null, 5L, 2);
        assertEquals("{\"c\":2,\"a\":1}", f.getValue(acc));
    }

    @Test
    void sameAsTheTopOfEveryCount() {
        Random random = new Random(42);
        for (int round = 0; round < 200; round++) {
            int k = 1 + random.nextInt(20);
            int keys = 1 + random.nextInt(200);
            TopCounts f = new TopCounts();
            TopCounts.Best acc = f.createAccumulator();
            Map<String, Long> all = new HashMap<>();
            for (int i = 0; i < 2_000; i++) {
                // a Zipf-like choice: low key numbers much more often
                String key = "k" + (int) Math.floor(Math.pow(random.nextDouble(), 3) * keys);
                long count = all.merge(key, 1L + random.nextInt(3), Long::sum);
                if (random.nextInt(4) == 0) {
                    f.retract(acc, key, count - 1, k);
                }
                f.accumulate(acc, key, count, k);
                if (random.nextInt(50) == 0) {
                    assertEquals(TopWords.toJson(TopWords.top(all, k)), f.getValue(acc));
                }
            }
            assertEquals(TopWords.toJson(TopWords.top(all, k)), f.getValue(acc));
        }
    }
}
