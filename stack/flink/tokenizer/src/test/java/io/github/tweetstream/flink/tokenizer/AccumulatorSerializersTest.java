package io.github.tweetstream.flink.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.io.IOException;
import java.util.Map;

import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.core.memory.DataInputDeserializer;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.junit.jupiter.api.Test;

/** The accumulators' serializers: what is written is read back the same, and copied byte for byte. */
class AccumulatorSerializersTest {

    private static final Map<String, Long> COUNTS = Map.of(
            "vaccin", 3L, "élève", 1L, "\uD835\uDC1A", 2L, "", 7L, "a\"b\\", Long.MAX_VALUE);

    private static <T> byte[] write(TypeSerializer<T> serializer, T value) throws IOException {
        DataOutputSerializer out = new DataOutputSerializer(64);
        serializer.serialize(value, out);
        return out.getCopyOfBuffer();
    }

    private static <T> T read(TypeSerializer<T> serializer, byte[] bytes) throws IOException {
        DataInputDeserializer in = new DataInputDeserializer(bytes);
        T value = serializer.deserialize(in);
        assertEquals(0, in.available(), "every byte read");
        return value;
    }

    /** Written, read back (the result), and copied serialized byte for byte. */
    private static <T> T roundTrip(TypeSerializer<T> serializer, T value) throws IOException {
        byte[] bytes = write(serializer, value);
        DataOutputSerializer copied = new DataOutputSerializer(64);
        serializer.copy(new DataInputDeserializer(bytes), copied);
        assertArrayEquals(bytes, copied.getCopyOfBuffer());
        return read(serializer, bytes);
    }

    @Test
    void topWordsCounts() throws IOException {
        TopWords.CountsSerializer serializer = new TopWords.CountsSerializer();
        TopWords.Counts acc = new TopWords.Counts();
        acc.counts.putAll(COUNTS);
        acc.k = 1000;
        TopWords.Counts back = roundTrip(serializer, acc);
        assertEquals(COUNTS, back.counts);
        assertEquals(1000, back.k);
        TopWords.Counts copy = serializer.copy(acc);
        acc.counts.put("vaccin", 4L);
        assertEquals(3L, copy.counts.get("vaccin"), "a copy does not share the map");

        TopWords.Counts empty = roundTrip(serializer, new TopWords.Counts());
        assertEquals(Map.of(), empty.counts);
        assertEquals(0, empty.k);
    }

    @Test
    void topCountsBest() throws IOException {
        TopCounts.BestSerializer serializer = new TopCounts.BestSerializer();
        TopCounts.Best acc = new TopCounts.Best();
        acc.counts.putAll(COUNTS);
        acc.k = 5;
        acc.weakest = "élève";
        TopCounts.Best back = roundTrip(serializer, acc);
        assertEquals(COUNTS, back.counts);
        assertEquals(5, back.k);
        assertNull(back.weakest, "the weakest key is found again when needed, not stored");

        // a read-back accumulator goes on ranking as before: a stronger key takes the weakest's place
        TopCounts f = new TopCounts();
        f.accumulate(back, "neuf", 2L, 5);
        assertEquals("{\"a\\\"b\\\\\":" + Long.MAX_VALUE + ",\"\":7,\"vaccin\":3,\"neuf\":2,\"\uD835\uDC1A\":2}",
                f.getValue(back));
    }
}
