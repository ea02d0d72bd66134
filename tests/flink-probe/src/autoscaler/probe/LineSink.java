package autoscaler.probe;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.UUID;

import org.apache.flink.api.common.TaskInfo;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;

/**
 * Writes {@code <split> <offset>} lines, one file per subtask attempt. {@code flush} runs before
 * every checkpoint barrier, so everything before a completed checkpoint (or savepoint) is on disk;
 * what comes after is replayed from the restored offsets. At least once: duplicates, never gaps.
 */
final class LineSink implements Sink<Record> {
    private static final long serialVersionUID = 1L;

    private final String dir;

    LineSink(String dir) {
        this.dir = dir;
    }

    @Override
    public SinkWriter<Record> createWriter(WriterInitContext context) throws IOException {
        TaskInfo task = context.getTaskInfo();
        // Unique per attempt: a restarted or rescaled subtask must never truncate an earlier file.
        String name = task.getIndexOfThisSubtask() + "-" + task.getAttemptNumber() + "-" + UUID.randomUUID() + ".txt";
        Path path = Paths.get(dir, name);
        Files.createDirectories(path.getParent());
        return new Writer(Files.newBufferedWriter(path, StandardCharsets.US_ASCII, StandardOpenOption.CREATE_NEW));
    }

    private static final class Writer implements SinkWriter<Record> {
        private final BufferedWriter out;

        Writer(BufferedWriter out) {
            this.out = out;
        }

        @Override
        public void write(Record record, Context context) throws IOException {
            out.write(record.split + " " + record.offset + "\n");
        }

        @Override
        public void flush(boolean endOfInput) throws IOException {
            out.flush();
        }

        @Override
        public void close() throws IOException {
            out.close();
        }
    }
}
