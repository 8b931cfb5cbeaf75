package io.github.tweetstream.flink.lenient;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.format.DecodingFormat;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.utils.DataTypeUtils;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Wraps the inner format's {@link DecodingFormat} and adds two readable metadata keys, which the
 * Kafka connector exposes as {@code value.error} and {@code value.raw}.
 *
 * <p>As for every format with metadata (Flink's debezium-json, for one), the decoder produces the
 * physical fields followed by the requested metadata fields, in the order the planner requested
 * them in {@link #applyReadableMetadata}.
 */
class LenientDecodingFormat implements DecodingFormat<DeserializationSchema<RowData>> {

    /** The metadata this format can read; both are null for a record that decoded. */
    enum Metadata {
        /** One-line reason the record could not be decoded. */
        ERROR("error", DataTypes.STRING().nullable()),
        /** The record's value bytes, unchanged. */
        RAW("raw", DataTypes.BYTES().nullable());

        final String key;
        final DataType dataType;

        Metadata(String key, DataType dataType) {
            this.key = key;
            this.dataType = dataType;
        }

        static Metadata of(String key) {
            return Arrays.stream(values())
                    .filter(m -> m.key.equals(key))
                    .findFirst()
                    .orElseThrow(
                            () -> new IllegalArgumentException("Unknown metadata key: " + key));
        }
    }

    private final DecodingFormat<DeserializationSchema<RowData>> inner;

    /** Set by the planner (mutable, as in Flink's own formats). */
    private List<Metadata> metadata = Collections.emptyList();

    LenientDecodingFormat(DecodingFormat<DeserializationSchema<RowData>> inner) {
        this.inner = inner;
    }

    @Override
    public DeserializationSchema<RowData> createRuntimeDecoder(
            DynamicTableSource.Context context, DataType physicalDataType) {
        requireNullable(physicalDataType);
        // The inner decoder sees only the physical fields; the metadata fields are ours.
        DeserializationSchema<RowData> innerDecoder =
                inner.createRuntimeDecoder(context, physicalDataType);

        // The appended field names only have to be unique within the row (the connector
        // addresses them by position): a prefix keeps them clear of any physical column.
        List<DataTypes.Field> metadataFields = new ArrayList<>();
        for (Metadata m : metadata) {
            metadataFields.add(DataTypes.FIELD("lenient." + m.key, m.dataType));
        }
        DataType producedDataType = DataTypeUtils.appendRowFields(physicalDataType, metadataFields);
        TypeInformation<RowData> producedType = context.createTypeInformation(producedDataType);

        return new LenientDeserializationSchema(
                innerDecoder, physicalDataType, metadata, producedType);
    }

    /**
     * A set-aside record has every physical column NULL, so none may be declared NOT NULL: the
     * planner would trust the declaration and the first poison record would fail the job anyway.
     */
    private static void requireNullable(DataType physicalDataType) {
        List<String> names = DataType.getFieldNames(physicalDataType);
        List<DataType> types = DataType.getFieldDataTypes(physicalDataType);
        for (int i = 0; i < names.size(); i++) {
            if (!types.get(i).getLogicalType().isNullable()) {
                throw new ValidationException(String.format(
                        "Format '%s' sets every column it reads to NULL for a record it cannot"
                                + " decode, so these columns must be nullable: declare `%s`"
                                + " without NOT NULL (and filter on the error metadata).",
                        LenientAvroConfluentFormatFactory.IDENTIFIER, names.get(i)));
            }
        }
    }

    @Override
    public Map<String, DataType> listReadableMetadata() {
        Map<String, DataType> map = new LinkedHashMap<>();
        for (Metadata m : Metadata.values()) {
            map.put(m.key, m.dataType);
        }
        return map;
    }

    @Override
    public void applyReadableMetadata(List<String> metadataKeys) {
        List<Metadata> requested = new ArrayList<>();
        for (String key : metadataKeys) {
            requested.add(Metadata.of(key));
        }
        this.metadata = requested;
    }

    @Override
    public ChangelogMode getChangelogMode() {
        return inner.getChangelogMode();
    }
}
