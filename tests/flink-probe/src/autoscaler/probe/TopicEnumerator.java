package autoscaler.probe;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

import org.apache.flink.api.connector.source.SplitEnumerator;
import org.apache.flink.api.connector.source.SplitEnumeratorContext;

/**
 * Hands each split to reader {@code index % parallelism} once that reader registers. Its state is
 * only the splits not handed out yet: a split a reader holds lives in that reader's state, and
 * Flink redistributes those when the job is restored at another parallelism.
 */
final class TopicEnumerator implements SplitEnumerator<TopicSource.Split, List<TopicSource.Split>> {
    private final SplitEnumeratorContext<TopicSource.Split> context;
    private final List<TopicSource.Split> unassigned;

    TopicEnumerator(SplitEnumeratorContext<TopicSource.Split> context, List<TopicSource.Split> unassigned) {
        this.context = context;
        this.unassigned = new ArrayList<>(unassigned);
    }

    @Override
    public void start() {
        assignToRegistered();
    }

    @Override
    public void addReader(int subtask) {
        assignToRegistered();
    }

    /** Splits of a failed reader since its last checkpoint come back here; hand them out again. */
    @Override
    public void addSplitsBack(List<TopicSource.Split> splits, int subtask) {
        unassigned.addAll(splits);
        assignToRegistered();
    }

    @Override
    public void handleSplitRequest(int subtask, String requesterHostname) {
        // Push model: splits are assigned on registration, nothing to do on request.
    }

    @Override
    public List<TopicSource.Split> snapshotState(long checkpointId) {
        return new ArrayList<>(unassigned);
    }

    @Override
    public void close() {}

    private void assignToRegistered() {
        int parallelism = context.currentParallelism();
        Iterator<TopicSource.Split> it = unassigned.iterator();
        while (it.hasNext()) {
            TopicSource.Split split = it.next();
            int owner = split.index % parallelism;
            if (context.registeredReaders().containsKey(owner)) {
                context.assignSplit(split, owner);
                it.remove();
            }
        }
    }
}
