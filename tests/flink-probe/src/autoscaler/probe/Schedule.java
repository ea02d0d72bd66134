package autoscaler.probe;

import java.util.ArrayList;
import java.util.List;

/**
 * The topic's rate schedule: from {@code starts[i]} (epoch ms) on, the whole topic receives
 * {@code rates[i]} records per second. All maths is on integers so that the Rust test
 * ({@code test_support::flink_probe}) computes exactly the same numbers.
 */
final class Schedule {
    static final Schedule EMPTY = new Schedule(new long[0], new long[0]);

    private final long[] starts;
    private final long[] rates;

    private Schedule(long[] starts, long[] rates) {
        this.starts = starts;
        this.rates = rates;
    }

    /** Lines {@code <epoch millis> <records per second>}, times non-decreasing; blank lines ignored. */
    static Schedule parse(String text) {
        List<long[]> rows = new ArrayList<>();
        String[] lines = text.split("\n", -1);
        for (int n = 0; n < lines.length; n++) {
            String line = lines[n].trim();
            if (line.isEmpty()) continue;
            String[] parts = line.split("\\s+");
            if (parts.length != 2) {
                throw new IllegalArgumentException("line " + (n + 1) + ": expected `<epoch ms> <rate>`, got `" + line + "`");
            }
            long start;
            long rate;
            try {
                start = Long.parseLong(parts[0]);
                rate = Long.parseLong(parts[1]);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("line " + (n + 1) + ": not two integers: `" + line + "`");
            }
            if (start < 0 || rate < 0) {
                throw new IllegalArgumentException("line " + (n + 1) + ": negative number: `" + line + "`");
            }
            if (!rows.isEmpty() && start < rows.get(rows.size() - 1)[0]) {
                throw new IllegalArgumentException("line " + (n + 1) + ": time goes backwards: `" + line + "`");
            }
            rows.add(new long[] {start, rate});
        }
        long[] starts = new long[rows.size()];
        long[] rates = new long[rows.size()];
        for (int i = 0; i < rows.size(); i++) {
            starts[i] = rows.get(i)[0];
            rates[i] = rows.get(i)[1];
        }
        return new Schedule(starts, rates);
    }

    /** Records produced into the whole topic before instant {@code t} (epoch ms). */
    long total(long t) {
        long milli = 0; // records x ms
        for (int i = 0; i < starts.length && starts[i] < t; i++) {
            long end = i + 1 < starts.length ? Math.min(t, starts[i + 1]) : t;
            milli += rates[i] * (end - starts[i]);
        }
        return milli / 1000;
    }

    /** Records split {@code split} of {@code splits} owns when the topic holds {@code total}. */
    static long owned(long total, int split, int splits) {
        return total / splits + (split < total % splits ? 1 : 0);
    }

    /**
     * The first instant (epoch ms) at which {@code offset} of {@code split} exists, or
     * {@code Long.MAX_VALUE} if the schedule never gets there. Offset o of split i is the topic's
     * record number {@code o * splits + i} (0-based), so it exists once total >= o * splits + i + 1.
     */
    long availableAt(long offset, int split, int splits) {
        long needMilli = (offset * splits + split + 1) * 1000;
        long milli = 0;
        for (int i = 0; i < starts.length; i++) {
            long rate = rates[i];
            boolean last = i + 1 == starts.length;
            if (rate > 0) {
                // Smallest t in this segment with milli + rate * (t - start) >= needMilli.
                long t = starts[i] + ceilDiv(needMilli - milli, rate);
                if (last || t <= starts[i + 1]) return t;
            }
            if (!last) milli += rate * (starts[i + 1] - starts[i]);
        }
        return Long.MAX_VALUE;
    }

    private static long ceilDiv(long a, long b) {
        return -Math.floorDiv(-a, b);
    }

    int segments() {
        return starts.length;
    }
}
