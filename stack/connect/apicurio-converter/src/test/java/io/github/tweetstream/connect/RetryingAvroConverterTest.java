package io.github.tweetstream.connect;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.kafka.connect.errors.RetriableException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The real Apicurio client against a local registry stand-in that answers the
 * v2 content-by-id look-up the way the registry does: the schema, a 500 (its
 * database away), a 404 (no such id), or nothing at all (not running).
 */
class RetryingAvroConverterTest {

    private static final int CONTENT_ID = 7;
    /** Confluent wire format: magic byte 0, content id, then Avro: the string "bonjour". */
    private static final byte[] RECORD = ByteBuffer.allocate(13)
            .put((byte) 0).putInt(CONTENT_ID).put((byte) 14).put("bonjour".getBytes(StandardCharsets.UTF_8)).array();

    private HttpServer registry;
    private final AtomicInteger status = new AtomicInteger(200);

    @BeforeEach
    void startRegistry() throws IOException {
        registry = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        registry.createContext("/apis/registry/v2/ids/contentIds/", exchange -> {
            String path = exchange.getRequestURI().getPath();
            boolean references = path.endsWith("/references");
            boolean known = path.contains("/contentIds/" + CONTENT_ID + "/") || path.endsWith("/contentIds/" + CONTENT_ID);
            if (status.get() == 0) { // a registry that never answers
                try {
                    Thread.sleep(30_000);
                } catch (InterruptedException e) {
                    return;
                }
            }
            int code = status.get() == 200 && !known ? 404 : status.get();
            String body = switch (code) {
                case 200 -> references ? "[]" : "\"string\"";
                case 404 -> "{\"error_code\":404,\"name\":\"ContentNotFoundException\",\"message\":\"No content with ID\"}";
                default -> "{\"error_code\":" + code + ",\"name\":\"RuntimeException\",\"message\":\"storage unavailable\"}";
            };
            byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().add("Content-Type", "application/json");
            exchange.sendResponseHeaders(code, bytes.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        });
        registry.setExecutor(java.util.concurrent.Executors.newCachedThreadPool());
        registry.start();
    }

    @AfterEach
    void stopRegistry() {
        registry.stop(0);
    }

    private static RetryingAvroConverter<Object> converter(int port) {
        RetryingAvroConverter<Object> converter = new RetryingAvroConverter<>();
        converter.configure(Map.of(
                RetryingAvroConverter.TIMEOUT_CONFIG, "1000",
                "apicurio.registry.url", "http://127.0.0.1:" + port + "/apis/registry/v2",
                "apicurio.registry.as-confluent", "true",
                "apicurio.registry.use-id", "contentId",
                "apicurio.registry.headers.enabled", "false"), false);
        return converter;
    }

    @Test
    void decodesWhenTheRegistryAnswers() {
        assertEquals("bonjour", String.valueOf(converter(registry.getAddress().getPort()).toConnectData("t", RECORD).value()));
    }

    @Test
    void registryServerErrorIsRetriableAndTheRetrySucceeds() {
        RetryingAvroConverter<Object> converter = converter(registry.getAddress().getPort());
        status.set(500);
        RetriableException e = assertThrows(RetriableException.class, () -> converter.toConnectData("t", RECORD));
        assertTrue(e.getMessage().contains("HTTP 500"), e.getMessage());
        status.set(200);  // the registry is back: Connect's retry of the same record decodes it
        assertEquals("bonjour", String.valueOf(converter.toConnectData("t", RECORD).value()));
    }

    @Test
    void registryNotRunningIsRetriable() throws IOException {
        int closedPort;
        try (ServerSocket socket = new ServerSocket(0)) {
            closedPort = socket.getLocalPort();
        }
        RetriableException e = assertThrows(RetriableException.class,
                () -> converter(closedPort).toConnectData("t", RECORD));
        assertTrue(e.getMessage().contains("schema registry unavailable"), e.getMessage());
    }

    @Test
    void registryThatNeverAnswersTimesOutAsRetriableAndTheRetrySucceeds() {
        RetryingAvroConverter<Object> converter = converter(registry.getAddress().getPort());
        status.set(0);
        long start = System.nanoTime();
        RetriableException e = assertThrows(RetriableException.class, () -> converter.toConnectData("t", RECORD));
        long tookMs = (System.nanoTime() - start) / 1_000_000;
        assertEquals("schema registry did not answer within 1000 ms; retrying", e.getMessage());
        assertTrue(tookMs < 5_000, "took " + tookMs + " ms");
        assertFalse(Thread.currentThread().isInterrupted(), "the interrupt must not outlive the call");
        status.set(200);
        assertEquals("bonjour", String.valueOf(converter.toConnectData("t", RECORD).value()));
        assertFalse(Thread.currentThread().isInterrupted());
    }

    @Test
    void unknownSchemaIdIsABadRecordNotAnOutage() {
        byte[] unknownId = RECORD.clone();
        unknownId[4] = 9;
        RuntimeException e = assertThrows(RuntimeException.class,
                () -> converter(registry.getAddress().getPort()).toConnectData("t", unknownId));
        assertFalse(e instanceof RetriableException, e.toString());
        assertTrue(e.getMessage().contains("No content with ID"), e.getMessage());
    }

    @Test
    void wrongMagicByteIsABadRecordNotAnOutage() {
        byte[] wrongMagic = RECORD.clone();
        wrongMagic[0] = 42;
        RuntimeException e = assertThrows(RuntimeException.class,
                () -> converter(registry.getAddress().getPort()).toConnectData("t", wrongMagic));
        assertFalse(e instanceof RetriableException, e.toString());
    }
}
