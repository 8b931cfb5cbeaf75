package io.github.tweetstream.connect;

import io.apicurio.registry.rest.client.exception.RestClientException;
import io.apicurio.registry.utils.converter.AvroConverter;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.connect.data.SchemaAndValue;
import org.apache.kafka.connect.errors.RetriableException;

/**
 * Apicurio's Avro converter, except that a schema registry which cannot answer
 * (connection refused, timeout, 5xx, 429) fails the conversion with Connect's
 * {@link RetriableException} instead of a plain error.
 *
 * <p>Why: Apicurio 2.6's schema cache retries only rate-limited look-ups; any
 * other failure reaches Connect as a data error, and with
 * {@code errors.tolerance=all} Connect sends the record to the dead-letter topic.
 * A registry restart, or its database going away, while the sink meets a schema
 * id it has not cached yet (e.g. just after a Connect restart) thus moved good
 * records to the dead-letter topic. A retriable failure is instead retried by
 * Connect itself ({@code errors.retry.timeout}, {@code errors.retry.delay.max.ms}):
 * the sink waits for the registry, and only records that are really bad (unknown
 * schema id, corrupt bytes) still go to the dead-letter topic.
 */
public class RetryingAvroConverter<T> extends AvroConverter<T> {

    @Override
    public SchemaAndValue toConnectData(String topic, byte[] value) {
        try {
            return super.toConnectData(topic, value);
        } catch (RuntimeException e) {
            throw retriableIfUnavailable(e);
        }
    }

    @Override
    public SchemaAndValue toConnectData(String topic, Headers headers, byte[] value) {
        try {
            return super.toConnectData(topic, headers, value);
        } catch (RuntimeException e) {
            throw retriableIfUnavailable(e);
        }
    }

    /** The registry's failure as a RetriableException when it says "try again later"; anything else as it was. */
    static RuntimeException retriableIfUnavailable(RuntimeException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof RestClientException rest && registryUnavailable(rest)) {
                return new RetriableException("schema registry unavailable (" + describe(rest) + "); retrying", e);
            }
        }
        return e;
    }

    /**
     * The Apicurio client reports an answer from the registry with its HTTP status
     * as error code; a request that got no answer (refused, reset, timed out) has
     * no code at all.
     */
    static boolean registryUnavailable(RestClientException e) {
        Integer code = e.getError() == null ? null : e.getError().getErrorCode();
        return code == null || code >= 500 || code == 429 || code == 408;
    }

    private static String describe(RestClientException e) {
        if (e.getError() == null) {
            return "no answer";
        }
        Integer code = e.getError().getErrorCode();
        String what = e.getError().getName() + ": " + e.getError().getMessage();
        return code == null ? what : "HTTP " + code + " " + what;
    }
}
