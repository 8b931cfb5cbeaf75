package io.github.tweetstream.connect;

import io.apicurio.registry.rest.client.exception.RestClientException;
import io.apicurio.registry.utils.converter.AvroConverter;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
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
 *
 * <p>And a time-out: Apicurio 2.6's HTTP client (java.net.http, built by its
 * JdkHttpClient) sets none and has no setting for one, so a request the registry
 * never answers would hold the sink task for ever. A conversion that takes longer
 * than {@code tweetstream.registry.timeout-ms} (default 10,000) has its thread
 * interrupted (the JDK client's send is interruptible) and fails as a
 * RetriableException, so Connect asks again.
 */
public class RetryingAvroConverter<T> extends AvroConverter<T> {

    public static final String TIMEOUT_CONFIG = "tweetstream.registry.timeout-ms";
    static final long DEFAULT_TIMEOUT_MS = 10_000;

    private static final ScheduledThreadPoolExecutor ALARMS = alarms();

    private long timeoutMs = DEFAULT_TIMEOUT_MS;

    @Override
    public void configure(Map<String, ?> configs, boolean isKey) {
        Object timeout = configs.get(TIMEOUT_CONFIG);
        if (timeout != null) {
            timeoutMs = Long.parseLong(timeout.toString().trim());
        }
        super.configure(configs, isKey);
    }

    @Override
    public SchemaAndValue toConnectData(String topic, byte[] value) {
        return bounded(() -> super.toConnectData(topic, value));
    }

    @Override
    public SchemaAndValue toConnectData(String topic, Headers headers, byte[] value) {
        return bounded(() -> super.toConnectData(topic, headers, value));
    }

    /** The call, interrupted after timeoutMs; failures as retriableIfUnavailable says. */
    private SchemaAndValue bounded(Supplier<SchemaAndValue> call) {
        Alarm alarm = new Alarm(Thread.currentThread());
        ScheduledFuture<?> scheduled = ALARMS.schedule(alarm, timeoutMs, TimeUnit.MILLISECONDS);
        try {
            return call.get();
        } catch (RuntimeException e) {
            if (alarm.end()) {
                throw new RetriableException("schema registry did not answer within " + timeoutMs + " ms; retrying", e);
            }
            throw retriableIfUnavailable(e);
        } finally {
            alarm.end();
            scheduled.cancel(false);
        }
    }

    /** Interrupts its thread unless the call ended first; the interrupt never outlives the call. */
    private static final class Alarm implements Runnable {
        private final Thread caller;
        private boolean ended;
        private boolean fired;

        Alarm(Thread caller) {
            this.caller = caller;
        }

        @Override
        public synchronized void run() {
            if (!ended) {
                fired = true;
                caller.interrupt();
            }
        }

        /** Marks the call ended (the caller's thread only); returns whether the alarm fired. */
        synchronized boolean end() {
            ended = true;
            if (fired) {
                Thread.interrupted(); // ours, not Connect's: clear it
            }
            return fired;
        }
    }

    private static ScheduledThreadPoolExecutor alarms() {
        ScheduledThreadPoolExecutor executor = new ScheduledThreadPoolExecutor(1, runnable -> {
            Thread thread = Executors.defaultThreadFactory().newThread(runnable);
            thread.setName("registry-timeout");
            thread.setDaemon(true);
            return thread;
        });
        executor.setRemoveOnCancelPolicy(true);
        return executor;
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
