package io.github.tweetstream.flink.lenient;

import javax.net.ssl.SSLException;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.lang.reflect.Method;
import java.net.SocketException;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * Tells a bad record from a failing environment, and words the reason.
 *
 * <p>How Flink 2.2's avro-confluent decoder fails (AvroRowDataDeserializationSchema wraps every
 * exception in {@code IOException("Failed to deserialize Avro record.")}):
 *
 * <ul>
 *   <li>wrong magic byte: {@code IOException("Unknown data format. Magic number does not match")},
 *       thrown by ConfluentSchemaRegistryCoder without asking the registry;
 *   <li>value shorter than the 5-byte header, truncated or corrupt Avro: EOFException,
 *       AvroRuntimeException, ArrayIndexOutOfBoundsException, NegativeArraySizeException, ...;
 *   <li>any answer of the registry other than the schema: the coder wraps the registry client's
 *       RestClientException in {@code IOException("Could not find schema with id N in registry")},
 *       whatever its HTTP status (404 as well as 503);
 *   <li>registry unreachable: the client's own IOException (ConnectException,
 *       SocketTimeoutException, ...), not wrapped by the coder.
 * </ul>
 */
final class Failures {

    /** The Confluent API's error code for "schema not found" (Apicurio's ccompat API uses it). */
    static final int SCHEMA_NOT_FOUND = 40403;

    static final int MAX_REASON = 500;

    private Failures() {}

    /**
     * True when decoding failed for a reason other than the record (registry unreachable or
     * failing, interrupted task, JVM error): decoding the same record later may work, so the job
     * must fail rather than set the record aside.
     */
    static boolean isEnvironmentFailure(Throwable failure) {
        if (Thread.currentThread().isInterrupted()) {
            return true; // the task is being cancelled: nothing to say about the record
        }
        for (Throwable t : chain(failure)) {
            if (t instanceof Error || t instanceof InterruptedException || isNetworkIo(t)) {
                return true;
            }
            if (isRestClientException(t)) {
                // The registry answered: only its "no such schema" blames the record. A 5xx,
                // 401/403, 429, or a 404 without the registry's error code (a wrong URL or a
                // proxy answering) is the registry's or the configuration's trouble.
                return !isSchemaNotFound(t);
            }
            if (t instanceof IOException && thrownByRegistryClient(t)) {
                // I/O inside the registry client, e.g. a cut or unparsable HTTP response: its
                // EOFException must not pass for truncated Avro.
                return true;
            }
        }
        return false;
    }

    /**
     * One line: {@code SimpleName: message} of the root cause, which names the actual fault
     * (Flink's wrappers only say "Failed to deserialize Avro record."). For the registry's answer
     * the wrapper is shown too, as it names the schema id. No control characters, at most 500.
     */
    static String reason(Throwable failure) {
        List<Throwable> chain = chain(failure);
        Throwable root = chain.get(chain.size() - 1);
        String text = describe(root);
        if (isRestClientException(root) && chain.size() >= 2) {
            text = describe(chain.get(chain.size() - 2)) + " (" + text + ")";
        }
        return oneLine(text);
    }

    // ------------------------------------------------------------------------------------------

    /** The exception and its causes, outermost first; stops on a cycle. */
    static List<Throwable> chain(Throwable failure) {
        Set<Throwable> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        List<Throwable> chain = new ArrayList<>();
        for (Throwable t = failure; t != null && seen.add(t); t = t.getCause()) {
            chain.add(t);
        }
        return chain;
    }

    private static boolean isNetworkIo(Throwable t) {
        if (!(t instanceof IOException)) {
            return false;
        }
        // connection refused/reset (SocketException), timeouts (InterruptedIOException),
        // DNS, TLS, and the rest of java.net's I/O failures (HTTP protocol errors, ...)
        String pkg = t.getClass().getPackageName();
        return t instanceof SocketException
                || t instanceof InterruptedIOException
                || t instanceof UnknownHostException
                || t instanceof SSLException
                || pkg.equals("java.net")
                || pkg.equals("java.net.http");
    }

    /**
     * The registry client's exception, matched by name: flink-sql-avro-confluent-registry shades
     * it (org.apache.flink.avro.registry.confluent.shaded.io.confluent...), so it can't be linked.
     */
    private static boolean isRestClientException(Throwable t) {
        for (Class<?> c = t.getClass(); c != null; c = c.getSuperclass()) {
            if (c.getSimpleName().equals("RestClientException")) {
                return true;
            }
        }
        return false;
    }

    private static boolean isSchemaNotFound(Throwable restError) {
        Integer status = intGetter(restError, "getStatus");
        if (status == null || status != 404) {
            return false;
        }
        Integer code = intGetter(restError, "getErrorCode");
        return code == null || code == SCHEMA_NOT_FOUND; // no code to read: trust the status
    }

    private static Integer intGetter(Object target, String name) {
        try {
            Method getter = target.getClass().getMethod(name);
            getter.trySetAccessible(); // public method, but perhaps of a non-public class
            Object value = getter.invoke(target);
            return value instanceof Integer ? (Integer) value : null;
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null;
        }
    }

    /** Thrown from the registry client's code (Confluent's package, shaded or not). */
    private static boolean thrownByRegistryClient(Throwable t) {
        for (StackTraceElement frame : t.getStackTrace()) {
            if (frame.getClassName().contains(".schemaregistry.client.")) {
                return true;
            }
        }
        return false;
    }

    private static String describe(Throwable t) {
        String name = t.getClass().getSimpleName();
        if (name.isEmpty()) {
            name = t.getClass().getName(); // anonymous class
        }
        String message = t.getMessage();
        return message == null || message.isBlank() ? name : name + ": " + message;
    }

    /** Control, format and line-separator characters become spaces; runs of spaces collapse. */
    static String oneLine(String text) {
        StringBuilder out = new StringBuilder(text.length());
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            int type = Character.getType(c);
            boolean blank =
                    Character.isWhitespace(c)
                            || Character.isISOControl(c)
                            || type == Character.FORMAT
                            || type == Character.LINE_SEPARATOR
                            || type == Character.PARAGRAPH_SEPARATOR;
            out.append(blank ? ' ' : c);
        }
        String line = out.toString().replaceAll(" {2,}", " ").trim();
        if (line.length() > MAX_REASON) {
            int end = MAX_REASON;
            if (Character.isHighSurrogate(line.charAt(end - 1))) {
                end--; // do not end on half a surrogate pair
            }
            line = line.substring(0, end).trim();
        }
        return line;
    }
}
