package autoscaler.probe;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;

import org.apache.flink.api.connector.source.ReaderOutput;
import org.apache.flink.api.connector.source.SourceReader;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.core.io.InputStatus;

/**
 * Reads its splits from their next offset up to the log end that the schedule gives for now. Each
 * record carries the instant its offset became available, so Flink's currentEmitEventTimeLag is
 * the true lag; pendingRecords is the true backlog of this reader's splits.
 */
final class TopicReader implements SourceReader<Record, TopicSource.Split> {
    /** Records per pollNext, so that the task thread gets back to checkpoints and mail. */
    private static final int BATCH = 256;
    /** How long to wait before looking again once caught up. */
    private static final Executor IDLE_TIMER = CompletableFuture.delayedExecutor(50, TimeUnit.MILLISECONDS);

    private final int splits;
    private final RateFile rateFile;
    /** Iterated by the metrics thread (pendingRecords) while the task thread adds splits. */
    private final List<TopicSource.Split> mine = new CopyOnWriteArrayList<>();
    private CompletableFuture<Void> available = CompletableFuture.completedFuture(null);
    private int rotation; // which split goes first, so every split gets a turn when busy

    TopicReader(SourceReaderContext context, int splits, String rateFile) {
        this.splits = splits;
        this.rateFile = new RateFile(rateFile);
        context.metricGroup().setPendingRecordsGauge(this::pending);
    }

    @Override
    public void start() {}

    @Override
    public InputStatus pollNext(ReaderOutput<Record> output) {
        long now = System.currentTimeMillis();
        Schedule schedule = rateFile.current(now);
        long total = schedule.total(now);
        int budget = BATCH;
        int n = mine.size();
        for (int k = 0; k < n && budget > 0; k++) {
            TopicSource.Split split = mine.get((rotation + k) % n);
            long end = Math.min(Schedule.owned(total, split.index, splits), split.next + budget);
            for (long offset = split.next; offset < end; offset++) {
                long eventTime = schedule.availableAt(offset, split.index, splits);
                output.collect(new Record(split.index, offset, eventTime), eventTime);
                split.next = offset + 1;
                budget--;
            }
        }
        rotation++;
        if (budget < BATCH) return InputStatus.MORE_AVAILABLE;
        // Caught up: let the task wait on a timer instead of spinning on pollNext.
        available = CompletableFuture.runAsync(() -> {}, IDLE_TIMER);
        return InputStatus.NOTHING_AVAILABLE;
    }

    @Override
    public CompletableFuture<Void> isAvailable() {
        return available;
    }

    @Override
    public void addSplits(List<TopicSource.Split> added) {
        mine.addAll(added);
        available.complete(null);
    }

    @Override
    public void notifyNoMoreSplits() {}

    /** Copies, so that the checkpointed state never shares objects with the splits still advancing. */
    @Override
    public List<TopicSource.Split> snapshotState(long checkpointId) {
        List<TopicSource.Split> copies = new ArrayList<>();
        for (TopicSource.Split s : mine) copies.add(new TopicSource.Split(s.index, s.next));
        return copies;
    }

    @Override
    public void close() {}

    /** Records produced into this reader's splits and not read yet. Runs on the metrics thread. */
    private long pending() {
        Schedule schedule = rateFile.cached();
        long total = schedule.total(System.currentTimeMillis());
        long sum = 0;
        for (TopicSource.Split s : mine) {
            sum += Math.max(0, Schedule.owned(total, s.index, splits) - s.next);
        }
        return sum;
    }
}
