package io.github.tweetstream.flink.lenient;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.connector.format.DecodingFormat;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DeserializationFormatFactory;
import org.apache.flink.table.factories.DynamicTableFactory;
import org.apache.flink.table.factories.FactoryUtil;

import java.util.Set;

/**
 * Format {@code lenient-avro-confluent}: Flink's {@code avro-confluent} decoder, with records it
 * cannot decode turned into rows flagged by the metadata {@code error} and {@code raw} (see
 * {@link LenientDeserializationSchema}) instead of failing the job.
 *
 * <p>It takes exactly the options of {@code avro-confluent} ({@code url}, {@code subject},
 * {@code properties.*}, ...), under its own prefix: {@code 'value.lenient-avro-confluent.url'}.
 * The inner factory is looked up at runtime rather than linked, because it ships in Flink's lib/
 * as a shaded jar that must not be bundled here.
 */
public class LenientAvroConfluentFormatFactory implements DeserializationFormatFactory {

    public static final String IDENTIFIER = "lenient-avro-confluent";
    static final String INNER_IDENTIFIER = "avro-confluent";

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public DecodingFormat<DeserializationSchema<RowData>> createDecodingFormat(
            DynamicTableFactory.Context context, ReadableConfig formatOptions) {
        // The inner factory validates the options itself, under our prefix.
        return new LenientDecodingFormat(
                inner(context.getClassLoader()).createDecodingFormat(context, formatOptions));
    }

    // The option sets are the inner factory's own, so Flink validates ours exactly like theirs.

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return inner(defaultClassLoader()).requiredOptions();
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return inner(defaultClassLoader()).optionalOptions();
    }

    @Override
    public Set<ConfigOption<?>> forwardOptions() {
        return inner(defaultClassLoader()).forwardOptions();
    }

    private static DeserializationFormatFactory inner(ClassLoader classLoader) {
        return FactoryUtil.discoverFactory(
                classLoader, DeserializationFormatFactory.class, INNER_IDENTIFIER);
    }

    /** The planner's class loader when called from it (it may hold ADD JAR jars), else ours. */
    private static ClassLoader defaultClassLoader() {
        ClassLoader loader = Thread.currentThread().getContextClassLoader();
        return loader != null ? loader : LenientAvroConfluentFormatFactory.class.getClassLoader();
    }
}
