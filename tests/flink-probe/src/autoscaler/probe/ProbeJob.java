package autoscaler.probe;

import java.util.HashMap;
import java.util.Map;
import java.util.Set;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.streaming.api.datastream.DataStreamSink;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * The probe job: {@code Source: <source name>} (a topic of {@code --splits} partitions fed by the
 * rate file) → keyBy → {@code burn} → a sink writing {@code <split> <offset>} lines. Every number
 * a metric should show is computable from the rate file and the sink's files. See README.md.
 */
public final class ProbeJob {
    private static final Set<String> KEYS = Set.of(
            "name", "splits", "rate-file", "source-name", "sink-name", "sink-dir",
            "cpu-us", "sleep-us", "checkpoint-ms", "max-parallelism");

    public static void main(String[] args) throws Exception {
        Map<String, String> opts = parse(args);
        int splits = Integer.parseInt(opts.getOrDefault("splits", "8"));
        if (splits < 1) throw new IllegalArgumentException("--splits must be at least 1");
        String rateFile = required(opts, "rate-file");
        String sinkDir = required(opts, "sink-dir");

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.enableCheckpointing(Long.parseLong(opts.getOrDefault("checkpoint-ms", "2000")));
        env.setMaxParallelism(Integer.parseInt(opts.getOrDefault("max-parallelism", "128")));

        // Fixed uids, so that a savepoint maps onto the resubmitted job whatever the names.
        DataStreamSink<Record> sink = env
                .fromSource(new TopicSource(splits, rateFile), WatermarkStrategy.noWatermarks(),
                        opts.getOrDefault("source-name", "orders"))
                .uid("source")
                .keyBy(new ByOffset())
                .process(new Burn(
                        Long.parseLong(opts.getOrDefault("cpu-us", "0")),
                        Long.parseLong(opts.getOrDefault("sleep-us", "0"))))
                .name("burn")
                .uid("burn")
                .sinkTo(new LineSink(sinkDir))
                .uid("sink");
        // Unnamed, Flink calls the writer "Sink: Writer"; named, "<name>: Writer".
        if (opts.containsKey("sink-name")) sink.name(opts.get("sink-name"));

        env.execute(opts.getOrDefault("name", "probe"));
    }

    /** Spreads records over 64 keys, so keyed state spans many key groups. */
    static final class ByOffset implements KeySelector<Record, Integer> {
        private static final long serialVersionUID = 1L;

        @Override
        public Integer getKey(Record record) {
            return (int) (record.offset % 64);
        }
    }

    /** {@code --key value} pairs; an unknown key or a missing value is an error, not ignored. */
    static Map<String, String> parse(String[] args) {
        Map<String, String> opts = new HashMap<>();
        for (int i = 0; i < args.length; i += 2) {
            if (!args[i].startsWith("--") || !KEYS.contains(args[i].substring(2))) {
                throw new IllegalArgumentException("unknown option `" + args[i] + "`; known: " + KEYS);
            }
            if (i + 1 >= args.length) throw new IllegalArgumentException("option `" + args[i] + "` needs a value");
            opts.put(args[i].substring(2), args[i + 1]);
        }
        return opts;
    }

    private static String required(Map<String, String> opts, String key) {
        String value = opts.get(key);
        if (value == null) throw new IllegalArgumentException("--" + key + " is required");
        return value;
    }
}
