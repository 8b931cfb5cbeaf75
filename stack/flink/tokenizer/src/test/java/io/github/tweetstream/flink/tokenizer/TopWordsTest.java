package io.github.tweetstream.flink.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;

/** The per-minute top words: exact counts, at most k, ties by code point, retraction, merge. */
class TopWordsTest {

    private static String run(int k, String... words) {
        TopWords f = new TopWords();
        TopWords.Counts acc = f.createAccumulator();
        for (String w : words) {
            f.accumulate(acc, new String[] {w}, k);  // one post per word
        }
        return f.getValue(acc);
    }

    @Test
    void mostUsedFirstTiesByWord() {
        assertEquals("{\"b\":3,\"a\":1,\"c\":1}", run(10, "c", "b", "a", "b", "b"));
    }

    @Test
    void atMostK() {
        assertEquals("{\"b\":3,\"a\":1}", run(2, "c", "b", "a", "b", "b"));
        assertEquals("{}", run(0, "a"));
        assertEquals("{}", run(3));
    }

    @Test
    void tiesInCodePointOrderAboveTheBmp() {
        // U+FF5A (fullwidth z) sorts before U+1D41A in code points, after it in UTF-16 units
        assertEquals("{\"\uFF5A\":1,\"\uD835\uDC1A\":1}", run(5, "\uD835\uDC1A", "\uFF5A"));
        assertEquals("{\"\uFF5A\":1}", run(1, "\uD835\uDC1A", "\uFF5A"));
    }

    @Test
    void compareCodePointsIsCodePointOrder() {
        // BMP letters, the private-use and fullwidth ranges above the surrogates, and pairs above U+FFFF
        String[] pieces = {"a", "z", "é", "\uE000", "\uFF5A", "\uFFFF", "\uD800\uDC00", "\uD835\uDC1A", "\uDBFF\uDFFF"};
        Random random = new Random(7);
        for (int i = 0; i < 20_000; i++) {
            String a = randomText(random, pieces);
            String b = randomText(random, pieces);
            int want = Integer.signum(Arrays.compare(a.codePoints().toArray(), b.codePoints().toArray()));
            assertEquals(want, Integer.signum(TopWords.compareCodePoints(a, b)), a + " vs " + b);
        }
    }

    private static String randomText(Random random, String[] pieces) {
        StringBuilder sb = new StringBuilder();
        for (int n = random.nextInt(4); n > 0; n--) {
            sb.append(pieces[random.nextInt(pieces.length)]);
        }
        return sb.toString();
    }

    @Test
    void retractAndMerge() {
        TopWords f = new TopWords();
        TopWords.Counts a = f.createAccumulator();
        f.accumulate(a, new String[] {"x", "y"}, 5);
        f.retract(a, new String[] {"y"}, 5);
        TopWords.Counts b = f.createAccumulator();
        f.accumulate(b, new String[] {"x", "z"}, 5);
        f.merge(a, List.of(b));
        assertEquals("{\"x\":2,\"z\":1}", f.getValue(a));
    }

    @Test
    void aPostsWordsCountOnceEachUse() {
        TopWords f = new TopWords();
        TopWords.Counts acc = f.createAccumulator();
        f.accumulate(acc, new String[] {"b", "a", "b"}, 10);
        f.accumulate(acc, new String[] {}, 10);
        f.accumulate(acc, null, 10);
        f.accumulate(acc, new String[] {"a", null, "c"}, 10);
        assertEquals("{\"a\":2,\"b\":2,\"c\":1}", f.getValue(acc));
        f.retract(acc, new String[] {"b", "a", "b"}, 10);
        assertEquals("{\"a\":1,\"c\":1}", f.getValue(acc));
    }

    @Test
    void jsonEscapes() {
        assertEquals("{\"\\u0001\":1,\"a\\\"b\\\\\":1}", run(5, "a\"b\\", "\u0001"));
    }
}
