package purchasesync.joinbench;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryUsage;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.StreamJoined;

/**
 * The Kafka Streams peer of `purchasesync join` for deploy/local/bench-join.sh: an outer join of
 * the raw webhook and storefront topics per key site/order_number, on the ingest's received-at
 * stamps (ReceivedAtExtractor), in a window with a grace, exactly_once_v2, writing one joined
 * purchase per key (PurchaseJoiner) to an output topic. It is what a Kafka Streams user would write
 * for the same job, not a port of the join's rules: it keeps no 7-day dedupe state and does not
 * tell a repeat from a first event.
 *
 * <p>Arguments are key=value: bootstrap, application.id, webhooks, storefront, output, state.dir,
 * window.ms, grace.ms, threads, and streams.&lt;property&gt;=&lt;value&gt; for any other StreamsConfig
 * property. A line "stats" on stdin makes it print one line
 * {@code STATS {...}} on stdout: the live heap after a full GC and the join stores' estimated
 * keys, which the benchmark reads once the input is committed.
 */
public final class Main {
    public static void main(String[] args) throws Exception {
        Map<String, String> a = new HashMap<>();
        for (String arg : args) {
            int eq = arg.indexOf('=');
            if (eq < 1) {
                throw new IllegalArgumentException("argument " + arg + ": want key=value");
            }
            a.put(arg.substring(0, eq), arg.substring(eq + 1));
        }
        Duration window = Duration.ofMillis(Long.parseLong(need(a, "window.ms")));
        Duration grace = Duration.ofMillis(Long.parseLong(need(a, "grace.ms")));

        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, need(a, "application.id"));
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, need(a, "bootstrap"));
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(a.getOrDefault("threads", "2")));
        p.put(StreamsConfig.STATE_DIR_CONFIG, need(a, "state.dir"));
        p.put(StreamsConfig.DEFAULT_TIMESTAMP_EXTRACTOR_CLASS_CONFIG, ReceivedAtExtractor.class);
        // streams.<property>=<value> sets any other StreamsConfig property (to
        // try the peer tuned; the benchmark passes none: Kafka Streams' defaults).
        a.forEach((k, v) -> {
            if (k.startsWith("streams.")) {
                p.put(k.substring("streams.".length()), v);
            }
        });

        StreamsBuilder b = new StreamsBuilder();
        Consumed<String, byte[]> raw = Consumed.with(Serdes.String(), Serdes.ByteArray());
        KStream<String, byte[]> webhooks = b.stream(need(a, "webhooks"), raw);
        KStream<String, byte[]> storefront = b.stream(need(a, "storefront"), raw);
        webhooks.outerJoin(storefront, new PurchaseJoiner(),
                        JoinWindows.ofTimeDifferenceAndGrace(window, grace),
                        StreamJoined.with(Serdes.String(), Serdes.ByteArray(), Serdes.ByteArray()))
                .to(need(a, "output"), Produced.with(Serdes.String(), Serdes.ByteArray()));

        KafkaStreams streams = new KafkaStreams(b.build(), p);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            // Leave the group on the way out (Streams does not by default),
            // so that the benchmark can delete it at once.
            streams.close(CloseOptions.groupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP)
                    .withTimeout(Duration.ofSeconds(20)));
            stopped.countDown();
        }));
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("joinbench-kstreams: stream thread failed: " + e);
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();

        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            if (line.trim().equals("stats")) {
                System.out.println("STATS " + stats(streams));
                System.out.flush();
            }
        }
        stopped.await(); // stdin closed: run until the benchmark stops the process
    }

    /** The live heap (after a full GC) and the join stores' estimated key count. */
    static String stats(KafkaStreams streams) {
        System.gc();
        MemoryUsage heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage();
        double keys = 0;
        for (Map.Entry<MetricName, ? extends Metric> m : streams.metrics().entrySet()) {
            if (m.getKey().name().equals("estimate-num-keys") && m.getValue().metricValue() instanceof Number n) {
                keys += n.doubleValue();
            }
        }
        return String.format("{\"heap_used_bytes\":%d,\"heap_committed_bytes\":%d,\"state_keys\":%.0f,\"state\":\"%s\"}",
                heap.getUsed(), heap.getCommitted(), keys, streams.state());
    }

    private static String need(Map<String, String> a, String key) {
        String v = a.get(key);
        if (v == null || v.isEmpty()) {
            throw new IllegalArgumentException("missing argument " + key + "=...");
        }
        return v;
    }
}
