package autoscaler.probe;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import org.apache.flink.api.connector.source.Boundedness;
import org.apache.flink.api.connector.source.Source;
import org.apache.flink.api.connector.source.SourceReader;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.api.connector.source.SourceSplit;
import org.apache.flink.api.connector.source.SplitEnumerator;
import org.apache.flink.api.connector.source.SplitEnumeratorContext;
import org.apache.flink.core.io.SimpleVersionedSerializer;

/**
 * A FLIP-27 source that behaves like a topic with {@code splits} partitions whose log end grows
 * with wall time, following the rate schedule in {@code rateFile} (see {@link Schedule}). Since the
 * log end depends only on the clock and the file, records keep arriving while the job is stopped,
 * and a job restored from a savepoint finds the backlog, as with Kafka.
 */
final class TopicSource implements Source<Record, TopicSource.Split, List<TopicSource.Split>> {
    private static final long serialVersionUID = 1L;

    private final int splits;
    private final String rateFile;

    TopicSource(int splits, String rateFile) {
        this.splits = splits;
        this.rateFile = rateFile;
    }

    @Override
    public Boundedness getBoundedness() {
        return Boundedness.CONTINUOUS_UNBOUNDED;
    }

    @Override
    public SourceReader<Record, Split> createReader(SourceReaderContext context) {
        return new TopicReader(context, splits, rateFile);
    }

    @Override
    public SplitEnumerator<Split, List<Split>> createEnumerator(SplitEnumeratorContext<Split> context) {
        List<Split> all = new ArrayList<>();
        for (int i = 0; i < splits; i++) all.add(new Split(i, 0));
        return new TopicEnumerator(context, all);
    }

    @Override
    public SplitEnumerator<Split, List<Split>> restoreEnumerator(SplitEnumeratorContext<Split> context, List<Split> unassigned) {
        return new TopicEnumerator(context, unassigned);
    }

    @Override
    public SimpleVersionedSerializer<Split> getSplitSerializer() {
        return new SplitSerializer();
    }

    @Override
    public SimpleVersionedSerializer<List<Split>> getEnumeratorCheckpointSerializer() {
        return new SplitListSerializer();
    }

    /** A partition and the next offset to read from it: exactly what a savepoint must carry. */
    static final class Split implements SourceSplit {
        final int index;
        /** Written by the task thread, read by the metrics thread (pendingRecords). */
        volatile long next;

        Split(int index, long next) {
            this.index = index;
            this.next = next;
        }

        @Override
        public String splitId() {
            return "split-" + index;
        }

        @Override
        public String toString() {
            return splitId() + "@" + next;
        }
    }

    static final class SplitSerializer implements SimpleVersionedSerializer<Split> {
        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(Split split) throws IOException {
            List<Split> one = new ArrayList<>();
            one.add(split);
            return SplitListSerializer.write(one);
        }

        @Override
        public Split deserialize(int version, byte[] bytes) throws IOException {
            List<Split> one = SplitListSerializer.read(version, bytes);
            if (one.size() != 1) throw new IOException("expected one split, found " + one.size());
            return one.get(0);
        }
    }

    /** The enumerator's state: the splits no reader holds yet. */
    static final class SplitListSerializer implements SimpleVersionedSerializer<List<Split>> {
        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(List<Split> splits) throws IOException {
            return write(splits);
        }

        @Override
        public List<Split> deserialize(int version, byte[] bytes) throws IOException {
            return read(version, bytes);
        }

        static byte[] write(List<Split> splits) throws IOException {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            try (DataOutputStream out = new DataOutputStream(bytes)) {
                out.writeInt(splits.size());
                for (Split s : splits) {
                    out.writeInt(s.index);
                    out.writeLong(s.next);
                }
            }
            return bytes.toByteArray();
        }

        static List<Split> read(int version, byte[] bytes) throws IOException {
            if (version != 1) throw new IOException("unknown split serializer version " + version);
            try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(bytes))) {
                int n = in.readInt();
                List<Split> splits = new ArrayList<>(n);
                for (int i = 0; i < n; i++) splits.add(new Split(in.readInt(), in.readLong()));
                return splits;
            }
        }
    }
}
