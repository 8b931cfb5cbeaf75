package io.github.tweetstream.flink.lenient;

import io.github.tweetstream.flink.lenient.LenientDecodingFormat.Metadata;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.util.Collector;

import java.io.IOException;
import java.util.List;

/**
 * Decodes with the inner schema and never lets a bad record fail the job.
 *
 * <ul>
 *   <li>decoded: the inner row, followed by the requested metadata, all null;
 *   <li>not decodable (wrong magic byte, unknown schema id, corrupt Avro, null value): one row
 *       with every physical field null, {@code error} = the reason, {@code raw} = the value bytes;
 *   <li>the schema registry unreachable or failing: the exception is rethrown, so the job fails
 *       and Flink's restart strategy retries later. Good records must not become rejects because
 *       of an outage. {@link Failures} tells the two apart.
 * </ul>
 *
 * <p>The rows are {@link GenericRowData}: the Kafka connector casts the value rows to it.
 */
public class LenientDeserializationSchema implements DeserializationSchema<RowData> {

    private static final long serialVersionUID = 1L;

    static final String NULL_VALUE = "empty record (null value)";
    static final String NO_ROW = "decoded to no row";

    private final DeserializationSchema<RowData> inner;
    private final TypeInformation<RowData> producedType;
    /** Copy the inner row's fields into the wider row, whatever RowData class it uses. */
    private final RowData.FieldGetter[] physicalGetters;
    private final int arity;
    /** Where each metadata field goes in the produced row; -1 when not requested. */
    private final int errorPos;
    private final int rawPos;

    LenientDeserializationSchema(
            DeserializationSchema<RowData> inner,
            DataType physicalDataType,
            List<Metadata> metadata,
            TypeInformation<RowData> producedType) {
        this.inner = inner;
        this.producedType = producedType;
        List<LogicalType> physical = physicalDataType.getLogicalType().getChildren();
        this.physicalGetters = new RowData.FieldGetter[physical.size()];
        for (int i = 0; i < physical.size(); i++) {
            physicalGetters[i] = RowData.createFieldGetter(physical.get(i), i);
        }
        this.arity = physical.size() + metadata.size();
        int index = metadata.indexOf(Metadata.ERROR);
        this.errorPos = index < 0 ? -1 : physical.size() + index;
        index = metadata.indexOf(Metadata.RAW);
        this.rawPos = index < 0 ? -1 : physical.size() + index;
    }

    @Override
    public void open(InitializationContext context) throws Exception {
        inner.open(context);
    }

    @Override
    public void deserialize(byte[] message, Collector<RowData> out) throws IOException {
        out.collect(deserialize(message));
    }

    /** Always one row, never null. */
    @Override
    public RowData deserialize(byte[] message) throws IOException {
        if (message == null) {
            // a tombstone: the inner schema would silently drop it
            return rejected(null, NULL_VALUE);
        }
        RowData decoded;
        try {
            decoded = inner.deserialize(message);
        } catch (Exception e) { // Errors (out of memory, missing classes) are never the record's
            if (Failures.isEnvironmentFailure(e)) {
                throw new IOException(
                        "The schema registry failed, not the record: failing so that the job"
                                + " restarts and retries. "
                                + Failures.reason(e),
                        e);
            }
            return rejected(message, Failures.reason(e));
        }
        return decoded == null ? rejected(message, NO_ROW) : accepted(decoded);
    }

    private RowData accepted(RowData decoded) {
        if (arity == physicalGetters.length && decoded instanceof GenericRowData) {
            return decoded; // no metadata requested: nothing to add
        }
        GenericRowData row = new GenericRowData(decoded.getRowKind(), arity);
        for (int i = 0; i < physicalGetters.length; i++) {
            row.setField(i, physicalGetters[i].getFieldOrNull(decoded));
        }
        return row; // metadata fields stay null
    }

    private RowData rejected(byte[] message, String reason) {
        GenericRowData row = new GenericRowData(arity); // physical fields all null
        if (errorPos >= 0) {
            row.setField(errorPos, StringData.fromString(reason));
        }
        if (rawPos >= 0 && message != null) {
            row.setField(rawPos, message.clone());
        }
        return row;
    }

    @Override
    public boolean isEndOfStream(RowData nextElement) {
        return false;
    }

    @Override
    public TypeInformation<RowData> getProducedType() {
        return producedType;
    }
}
