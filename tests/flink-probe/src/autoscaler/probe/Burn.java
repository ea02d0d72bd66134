package autoscaler.probe;

import java.util.concurrent.locks.LockSupport;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;

/**
 * The work per record: spins {@code cpuMicros} of CPU (load that busy time sees) and parks
 * {@code sleepMicros} (caps a subtask's throughput without using CPU). The keyed count exists so
 * that savepoints carry keyed state that must be redistributed on rescale.
 */
final class Burn extends KeyedProcessFunction<Integer, Record, Record> {
    private static final long serialVersionUID = 1L;

    private final long cpuMicros;
    private final long sleepMicros;
    private transient ValueState<Long> count;

    Burn(long cpuMicros, long sleepMicros) {
        this.cpuMicros = cpuMicros;
        this.sleepMicros = sleepMicros;
    }

    @Override
    public void open(OpenContext context) {
        count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Long.class));
    }

    @Override
    public void processElement(Record record, Context context, Collector<Record> out) throws Exception {
        Long seen = count.value();
        count.update(seen == null ? 1L : seen + 1);
        if (cpuMicros > 0) {
            long until = System.nanoTime() + cpuMicros * 1_000;
            while (System.nanoTime() < until) {
                Thread.onSpinWait();
            }
        }
        if (sleepMicros > 0) {
            // parkNanos may return early; park again until the time is really up.
            long until = System.nanoTime() + sleepMicros * 1_000;
            for (long left = sleepMicros * 1_000; left > 0; left = until - System.nanoTime()) {
                LockSupport.parkNanos(left);
            }
        }
        out.collect(record);
    }
}
