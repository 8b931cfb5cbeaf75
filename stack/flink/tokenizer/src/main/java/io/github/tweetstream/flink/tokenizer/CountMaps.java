package io.github.tweetstream.flink.tokenizer;

import java.io.IOException;
import java.util.HashMap;
import java.util.Map;

import org.apache.flink.api.common.typeutils.base.TypeSerializerSingleton;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;
import org.apache.flink.types.StringValue;

/**
 * The accumulators of {@link TopWords} and {@link TopCounts} (a map of counts
 * and k) and how they are written into the job's state: the entry count, each
 * key and its count (7 bits a byte: most counts of a minute are 1 or 2), then k. They are rewritten whole at each update of their
 * group, and Flink's generic fallback (Kryo) wrote a class tag before every key
 * and every count (~9 % of the TaskManager's time on long-tail text).
 */
final class CountMaps {

    private CountMaps() {
    }

    /** A map of counts and the k of the function that keeps it. */
    public static class Accumulator {
        public Map<String, Long> counts = new HashMap<>();
        public int k;
    }

    /** Writes an {@link Accumulator} of type T; a subclass says how to make a T and gives its snapshot. */
    abstract static class Serializer<T extends Accumulator> extends TypeSerializerSingleton<T> {

        @Override
        public boolean isImmutableType() {
            return false;
        }

        @Override
        public T copy(T from) {
            T to = createInstance();
            to.counts = new HashMap<>(from.counts);
            to.k = from.k;
            return to;
        }

        @Override
        public T copy(T from, T reuse) {
            return copy(from);
        }

        @Override
        public int getLength() {
            return -1;
        }

        @Override
        public void serialize(T acc, DataOutputView out) throws IOException {
            out.writeInt(acc.counts.size());
            for (Map.Entry<String, Long> e : acc.counts.entrySet()) {
                StringValue.writeString(e.getKey(), out);
                writeCount(e.getValue(), out);
            }
            out.writeInt(acc.k);
        }

        @Override
        public T deserialize(DataInputView in) throws IOException {
            T acc = createInstance();
            int size = in.readInt();
            acc.counts = new HashMap<>((int) (size / 0.75f) + 1);
            for (int i = 0; i < size; i++) {
                acc.counts.put(StringValue.readString(in), readCount(in));
            }
            acc.k = in.readInt();
            return acc;
        }

        @Override
        public T deserialize(T reuse, DataInputView in) throws IOException {
            return deserialize(in);
        }

        @Override
        public void copy(DataInputView in, DataOutputView out) throws IOException {
            int size = in.readInt();
            out.writeInt(size);
            for (int i = 0; i < size; i++) {
                StringValue.copyString(in, out);
                writeCount(readCount(in), out);
            }
            out.writeInt(in.readInt());
        }
    }

    /** Low 7 bits first, the high bit set on every byte but the last. */
    static void writeCount(long n, DataOutputView out) throws IOException {
        while ((n & ~0x7FL) != 0) {
            out.writeByte((int) (n & 0x7F) | 0x80);
            n >>>= 7;
        }
        out.writeByte((int) n);
    }

    static long readCount(DataInputView in) throws IOException {
        long n = 0;
        for (int shift = 0; ; shift += 7) {
            byte b = in.readByte();
            n |= (long) (b & 0x7F) << shift;
            if (b >= 0) {
                return n;
            }
        }
    }
}
