package io.github.tweetstream.flink.lenient;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.format.DecodingFormat;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.DataType;
import org.apache.flink.types.RowKind;
import org.apache.flink.util.Collector;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.net.ConnectException;
import java.net.SocketTimeoutException;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;

/** The wrapper against a stub inner schema that fails the way Flink's avro-confluent does. */
class LenientDeserializationSchemaTest {

    private static final byte[] BYTES = {0, 0, 0, 0, 42, 2, 'h', 'i'};

    /** Flink's AvroRowDataDeserializationSchema wraps every failure like this. */
    private static IOException flinkWrapped(Throwable cause) {
        return new IOException("Failed to deserialize Avro record.", cause);
    }

    /** The coder's wrapping of any registry answer but the schema. */
    private static IOException registryAnswered(Throwable restClientException) {
        return flinkWrapped(
                new IOException("Could not find schema with id 42 in registry", restClientException));
    }

    // --------------------------------------------------------------------------------- decoded

    @Test
    void decodedRowGetsNullMetadataInRequestedOrder() throws Exception {
        GenericRowData inner = GenericRowData.ofKind(
                RowKind.INSERT, StringData.fromString("p1"), StringData.fromString("hi"), 7L);
        Contexts.SourceContext source = new Contexts.SourceContext();
        DeserializationSchema<RowData> schema =
                decoder(new StubInner(inner, null), source, "raw", "error");

        RowData row = only(schema, BYTES);
        assertEquals(5, row.getArity());
        assertEquals("p1", row.getString(0).toString());
        assertEquals("hi", row.getString(1).toString());
        assertEquals(7L, row.getLong(2));
        assertTrue(row.isNullAt(3));
        assertTrue(row.isNullAt(4));

        // produced type: physical fields, then the metadata in the order asked for
        DataType expected = DataTypes.ROW(
                DataTypes.FIELD("id", DataTypes.STRING()),
                DataTypes.FIELD("text", DataTypes.STRING()),
                DataTypes.FIELD("created_at", DataTypes.BIGINT()),
                DataTypes.FIELD("lenient.raw", DataTypes.BYTES()),
                DataTypes.FIELD("lenient.error", DataTypes.STRING()));
        assertEquals(expected, source.typeInfoRequestedFor);
        assertSame(Contexts.PRODUCED_TYPE, schema.getProducedType());
        assertFalse(schema.isEndOfStream(row));
    }

    @Test
    void notNullColumnsAreRefused() {
        LenientDecodingFormat format = new LenientDecodingFormat(new StubFormat(null));
        DataType notNullId = DataTypes.ROW(
                DataTypes.FIELD("id", DataTypes.STRING().notNull()),
                DataTypes.FIELD("text", DataTypes.STRING()));
        ValidationException e = assertThrows(ValidationException.class,
                () -> format.createRuntimeDecoder(new Contexts.SourceContext().proxy(), notNullId));
        assertTrue(e.getMessage().contains("`id`"), e.getMessage());
    }

    @Test
    void withoutMetadataTheInnerRowPassesThrough() throws Exception {
        GenericRowData inner = GenericRowData.of(StringData.fromString("p1"), null, 1L);
        DeserializationSchema<RowData> schema = decoder(new StubInner(inner, null));
        assertSame(inner, schema.deserialize(BYTES));
    }

    @Test
    void openOpensTheInnerSchema() throws Exception {
        StubInner inner = new StubInner(null, null);
        decoder(inner, new Contexts.SourceContext(), "error").open(Contexts.initContext());
        assertTrue(inner.opened);
    }

    // -------------------------------------------------------------------------- set aside

    @Test
    void nullValueIsAnErrorRowWithoutRaw() throws Exception {
        StubInner inner = new StubInner(null, new AssertionError("inner must not be called"));
        RowData row = only(decoder(inner, new Contexts.SourceContext(), "error", "raw"), null);
        assertRejected(row, "empty record (null value)", null);
    }

    @Test
    void innerReturningNothingIsAnError() throws Exception {
        RowData row = only(decoder(new StubInner(null, null), new Contexts.SourceContext(),
                "error", "raw"), BYTES);
        assertRejected(row, "decoded to no row", BYTES);
    }

    @Test
    void wrongMagicByte() throws Exception {
        assertRejected(
                flinkWrapped(new IOException("Unknown data format. Magic number does not match")),
                "IOException: Unknown data format. Magic number does not match");
    }

    @Test
    void unknownSchemaIdAnsweredByTheRegistry() throws Exception {
        assertRejected(
                registryAnswered(new WithCode.RestClientException(
                        "Schema not found; error code: 40403", 404, 40403)),
                "IOException: Could not find schema with id 42 in registry"
                        + " (RestClientException: Schema not found; error code: 40403)");
    }

    @Test
    void notFoundWithoutAnErrorCodeTrustsTheStatus() throws Exception {
        assertRejected(
                registryAnswered(new StatusOnly.RestClientException("Not Found", 404)),
                "IOException: Could not find schema with id 42 in registry"
                        + " (RestClientException: Not Found)");
    }

    @Test
    void truncatedOrCorruptAvro() throws Exception {
        assertRejected(flinkWrapped(new EOFException()), "EOFException");
        assertRejected(
                flinkWrapped(new AvroRuntimeException("Malformed data. Length is negative: -3")),
                "AvroRuntimeException: Malformed data. Length is negative: -3");
        assertRejected(
                flinkWrapped(new ArrayIndexOutOfBoundsException("Index 9 out of bounds for length 2")),
                "ArrayIndexOutOfBoundsException: Index 9 out of bounds for length 2");
        assertRejected(flinkWrapped(new NegativeArraySizeException("-1")),
                "NegativeArraySizeException: -1");
        // an inner schema that does not wrap
        assertRejected(new IllegalStateException("bad"), "IllegalStateException: bad");
    }

    @Test
    void reasonIsOneShortLine() throws Exception {
        String message = "line1\nline2\r\n\tend\u0000\u0007\u2028x\u202e" + "y".repeat(2000);
        RowData row = only(stubbed(flinkWrapped(new IOException(message))), BYTES);
        String reason = row.getString(3).toString();
        assertTrue(reason.startsWith("IOException: line1 line2 end x y"), reason);
        assertEquals(500, reason.length());
        assertTrue(reason.chars().noneMatch(c -> Character.isISOControl(c)
                || Character.getType(c) == Character.FORMAT
                || Character.getType(c) == Character.LINE_SEPARATOR), reason);
    }

    // ------------------------------------------------------------------------------ rethrown

    @Test
    void registryUnreachableIsRethrown() {
        assertRethrown(flinkWrapped(new ConnectException("Connection refused")));
        assertRethrown(flinkWrapped(new SocketTimeoutException("Read timed out")));
        assertRethrown(flinkWrapped(new UnknownHostException("registry")));
    }

    @Test
    void registryFailingIsRethrown() {
        assertRethrown(registryAnswered(new StatusOnly.RestClientException("Unavailable", 503)));
        assertRethrown(registryAnswered(
                new WithCode.RestClientException("Internal error", 500, 50001)));
        assertRethrown(registryAnswered(
                new WithCode.RestClientException("Unauthorized", 401, 401)));
        // a 404 the registry's API did not give (no JSON error body): a wrong URL, a proxy
        assertRethrown(registryAnswered(
                new WithCode.RestClientException("<html>Not Found</html>", 404, 50005)));
    }

    @Test
    void ioInsideTheRegistryClientIsRethrown() {
        // a cut HTTP response: an EOFException, like truncated Avro, but from the client
        EOFException cut = new EOFException();
        cut.setStackTrace(new StackTraceElement[] {
            new StackTraceElement("org.apache.flink.avro.registry.confluent.shaded.io.confluent"
                    + ".kafka.schemaregistry.client.rest.RestService", "sendHttpRequest",
                    "RestService.java", 300)
        });
        assertRethrown(flinkWrapped(cut));
    }

    @Test
    void jvmErrorsAreRethrown() {
        assertRethrown(flinkWrapped(new NoClassDefFoundError("org/apache/avro/Schema")));
    }

    // ------------------------------------------------------------------------- serializable

    @Test
    void survivesJavaSerialization() throws Exception {
        DeserializationSchema<RowData> schema = stubbed(
                flinkWrapped(new IOException("Unknown data format. Magic number does not match")));
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(schema);
        }
        @SuppressWarnings("unchecked")
        DeserializationSchema<RowData> copy = (DeserializationSchema<RowData>)
                new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray())).readObject();
        assertRejected(only(copy, BYTES),
                "IOException: Unknown data format. Magic number does not match", BYTES);
    }

    // -------------------------------------------------------------------------------- helpers

    private static void assertRejected(Throwable thrown, String reason) throws IOException {
        assertRejected(only(stubbed(thrown), BYTES), reason, BYTES);
    }

    /** Physical fields null, error (pos 3) and raw (pos 4) as expected. */
    private static void assertRejected(RowData row, String reason, byte[] raw) {
        assertEquals(5, row.getArity());
        for (int i = 0; i < 3; i++) {
            assertTrue(row.isNullAt(i), "physical field " + i);
        }
        assertEquals(reason, row.getString(3).toString());
        if (raw == null) {
            assertTrue(row.isNullAt(4));
        } else {
            assertArrayEquals(raw, row.getBinary(4));
        }
        assertEquals(RowKind.INSERT, row.getRowKind());
    }

    private static void assertRethrown(Throwable thrown) {
        IOException e = assertThrows(IOException.class, () -> stubbed(thrown).deserialize(BYTES));
        assertSame(thrown, e.getCause());
    }

    private static DeserializationSchema<RowData> stubbed(Throwable thrown) {
        return decoder(new StubInner(null, thrown), new Contexts.SourceContext(), "error", "raw");
    }

    private static DeserializationSchema<RowData> decoder(StubInner inner) {
        return decoder(inner, new Contexts.SourceContext());
    }

    /** Goes through LenientDecodingFormat, the way the Kafka connector does. */
    private static DeserializationSchema<RowData> decoder(
            StubInner inner, Contexts.SourceContext source, String... metadataKeys) {
        LenientDecodingFormat format = new LenientDecodingFormat(new StubFormat(inner));
        if (metadataKeys.length > 0) {
            format.applyReadableMetadata(List.of(metadataKeys));
        }
        return format.createRuntimeDecoder(source.proxy(), Contexts.PHYSICAL);
    }

    /** The one row the collector-based deserialize emits. */
    private static RowData only(DeserializationSchema<RowData> schema, byte[] message)
            throws IOException {
        List<RowData> rows = new ArrayList<>();
        schema.deserialize(message, new Collector<>() {
            @Override
            public void collect(RowData record) {
                rows.add(record);
            }

            @Override
            public void close() {}
        });
        assertEquals(1, rows.size());
        return rows.get(0);
    }

    /** The inner format: hands out the stub schema for exactly the physical columns. */
    static final class StubFormat implements DecodingFormat<DeserializationSchema<RowData>> {
        private final StubInner inner;

        StubFormat(StubInner inner) {
            this.inner = inner;
        }

        @Override
        public DeserializationSchema<RowData> createRuntimeDecoder(
                DynamicTableSource.Context context, DataType physicalDataType) {
            assertEquals(Contexts.PHYSICAL, physicalDataType);
            return inner;
        }

        @Override
        public ChangelogMode getChangelogMode() {
            return ChangelogMode.insertOnly();
        }
    }

    /** Returns a fixed row or throws a fixed exception. */
    static final class StubInner implements DeserializationSchema<RowData> {
        private final RowData row;
        private final Throwable thrown;
        boolean opened;

        StubInner(RowData row, Throwable thrown) {
            this.row = row;
            this.thrown = thrown;
        }

        @Override
        public void open(InitializationContext context) {
            opened = true;
        }

        @Override
        public RowData deserialize(byte[] message) throws IOException {
            if (thrown instanceof IOException) {
                throw (IOException) thrown;
            } else if (thrown instanceof RuntimeException) {
                throw (RuntimeException) thrown;
            } else if (thrown instanceof Error) {
                throw (Error) thrown;
            }
            return row;
        }

        @Override
        public boolean isEndOfStream(RowData nextElement) {
            return false;
        }

        @Override
        public TypeInformation<RowData> getProducedType() {
            return Contexts.PRODUCED_TYPE;
        }
    }

    /** Named like Avro's, which flink-sql-avro-confluent-registry shades. */
    static final class AvroRuntimeException extends RuntimeException {
        AvroRuntimeException(String message) {
            super(message);
        }
    }

    /** Fakes of the registry client's exception, matched by simple name like the shaded one. */
    static final class StatusOnly {
        static final class RestClientException extends Exception {
            private final int status;

            RestClientException(String message, int status) {
                super(message);
                this.status = status;
            }

            public int getStatus() {
                return status;
            }
        }
    }

    static final class WithCode {
        static final class RestClientException extends Exception {
            private final int status;
            private final int errorCode;

            RestClientException(String message, int status, int errorCode) {
                super(message);
                this.status = status;
                this.errorCode = errorCode;
            }

            public int getStatus() {
                return status;
            }

            public int getErrorCode() {
                return errorCode;
            }
        }
    }
}
