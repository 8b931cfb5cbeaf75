package io.github.tweetstream.flink.lenient;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.table.connector.format.DecodingFormat;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DeserializationFormatFactory;
import org.apache.flink.table.factories.FactoryUtil;

import com.sun.net.httpserver.HttpServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The format end to end with Flink's real avro-confluent decoder (the shaded jar installed in
 * Flink's lib/), found through the factories as in a job, against a fake registry: a JDK HTTP
 * server answering the Confluent API's GET /schemas/ids/{id}.
 */
class RealAvroConfluentTest {

    /** Schema id 1: the writer schema of the posts. Id 9: the registry fails. Others: 404. */
    private static final String POST_SCHEMA =
            "{\"type\":\"record\",\"name\":\"Post\",\"namespace\":\"tweetstream\",\"fields\":["
                    + "{\"name\":\"id\",\"type\":\"string\"},"
                    + "{\"name\":\"text\",\"type\":[\"null\",\"string\"],\"default\":null},"
                    + "{\"name\":\"created_at\",\"type\":[\"null\",\"long\"],\"default\":null}]}";

    /** Confluent wire format, schema id 1, then Avro: id "p1", text "hi", created_at 7. */
    private static final byte[] GOOD = {0, 0, 0, 0, 1, 4, 'p', '1', 2, 4, 'h', 'i', 2, 14};

    private static HttpServer registry;
    private static final AtomicInteger requests = new AtomicInteger();

    @BeforeAll
    static void startRegistry() throws IOException {
        registry = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        Pattern byId = Pattern.compile("/schemas/ids/(\\d+)");
        registry.createContext("/", exchange -> {
            requests.incrementAndGet();
            Matcher m = byId.matcher(exchange.getRequestURI().getPath());
            String id = m.find() ? m.group(1) : "";
            int status;
            String body;
            if (id.equals("1")) {
                status = 200;
                body = "{\"schema\":\"" + POST_SCHEMA.replace("\"", "\\\"") + "\"}";
            } else if (id.equals("9")) {
                status = 503;
                body = "{\"error_code\":50301,\"message\":\"Registry unavailable\"}";
            } else {
                status = 404;
                body = "{\"error_code\":40403,\"message\":\"Schema not found\"}";
            }
            byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().add("Content-Type", "application/json");
            exchange.sendResponseHeaders(status, bytes.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        });
        registry.start();
    }

    @AfterAll
    static void stopRegistry() {
        registry.stop(0);
    }

    @Test
    void factoryIsDiscoveredAndTakesTheInnerOptions() {
        DeserializationFormatFactory lenient = factory(LenientAvroConfluentFormatFactory.IDENTIFIER);
        DeserializationFormatFactory inner = factory("avro-confluent");
        assertInstanceOf(LenientAvroConfluentFormatFactory.class, lenient);
        assertEquals(inner.requiredOptions(), lenient.requiredOptions());
        assertEquals(inner.optionalOptions(), lenient.optionalOptions());
        assertTrue(lenient.requiredOptions().stream().anyMatch(o -> o.key().equals("url")));
    }

    @Test
    void goodRecordDecodes() throws Exception {
        RowData row = decoder(registryUrl()).deserialize(GOOD);
        assertEquals(5, row.getArity());
        assertEquals("p1", row.getString(0).toString());
        assertEquals("hi", row.getString(1).toString());
        assertEquals(7L, row.getLong(2));
        assertTrue(row.isNullAt(3) && row.isNullAt(4));
    }

    @Test
    void wrongMagicByteIsSetAside() throws Exception {
        byte[] value = GOOD.clone();
        value[0] = 1;
        int before = requests.get();
        assertRejected(decoder(registryUrl()).deserialize(value),
                "IOException: Unknown data format. Magic number does not match", value);
        assertEquals(before, requests.get(), "the registry is not asked");
    }

    @Test
    void unknownSchemaIdIsSetAside() throws Exception {
        byte[] value = GOOD.clone();
        value[4] = 7;
        RowData row = decoder(registryUrl()).deserialize(value);
        assertRejected(row, null, value);
        String reason = row.getString(3).toString();
        assertTrue(reason.startsWith(
                "IOException: Could not find schema with id 7 in registry (RestClientException: "),
                reason);
        assertTrue(reason.contains("40403"), reason);
    }

    @Test
    void truncatedRecordsAreSetAside() throws Exception {
        DeserializationSchema<RowData> decoder = decoder(registryUrl());
        byte[] header = {0, 0, 0};
        assertRejected(decoder.deserialize(header), "EOFException", header);
        byte[] cut = Arrays.copyOf(GOOD, 10); // "hi" announced, cut after 'h'
        RowData row = decoder.deserialize(cut);
        assertRejected(row, null, cut);
    }

    @Test
    void failingRegistryFailsTheJob() throws Exception {
        byte[] value = GOOD.clone();
        value[4] = 9;
        DeserializationSchema<RowData> decoder = decoder(registryUrl());
        IOException e = assertThrows(IOException.class, () -> decoder.deserialize(value));
        assertTrue(e.getMessage().contains("Registry unavailable"), e.getMessage());
    }

    @Test
    void unreachableRegistryFailsTheJob() throws Exception {
        int closedPort;
        try (ServerSocket socket = new ServerSocket(0)) {
            closedPort = socket.getLocalPort();
        }
        DeserializationSchema<RowData> decoder = decoder("http://127.0.0.1:" + closedPort);
        IOException e = assertThrows(IOException.class, () -> decoder.deserialize(GOOD));
        assertTrue(Failures.chain(e).stream().anyMatch(t -> t instanceof ConnectException),
                () -> "expected a ConnectException in " + Failures.chain(e));
    }

    // -------------------------------------------------------------------------------- helpers

    private static String registryUrl() {
        return "http://127.0.0.1:" + registry.getAddress().getPort();
    }

    private static DeserializationFormatFactory factory(String identifier) {
        return FactoryUtil.discoverFactory(RealAvroConfluentTest.class.getClassLoader(),
                DeserializationFormatFactory.class, identifier);
    }

    /** As the Kafka connector builds it for `value.format` and the `value.error/raw` columns. */
    private static DeserializationSchema<RowData> decoder(String url) throws Exception {
        DecodingFormat<DeserializationSchema<RowData>> format =
                factory(LenientAvroConfluentFormatFactory.IDENTIFIER).createDecodingFormat(
                        Contexts.factoryContext(), Configuration.fromMap(Map.of("url", url)));
        format.applyReadableMetadata(List.of("error", "raw"));
        DeserializationSchema<RowData> schema =
                format.createRuntimeDecoder(new Contexts.SourceContext().proxy(), Contexts.PHYSICAL);
        schema.open(Contexts.initContext());
        return schema;
    }

    /** Physical fields null; error at 3 (checked when a reason is given), raw at 4. */
    private static void assertRejected(RowData row, String reason, byte[] raw) {
        assertEquals(5, row.getArity());
        for (int i = 0; i < 3; i++) {
            assertTrue(row.isNullAt(i), "physical field " + i);
        }
        assertTrue(!row.isNullAt(3), "error set");
        if (reason != null) {
            assertEquals(reason, row.getString(3).toString());
        }
        assertArrayEquals(raw, row.getBinary(4));
    }
}
