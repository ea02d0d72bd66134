package autoscaler.probe;

/** One record of the topic. A public POJO, so Flink serializes it without Kryo. */
public class Record {
    public int split;
    public long offset;
    /** When the offset became available (epoch ms), i.e. the record's event time. */
    public long eventTime;

    public Record() {}

    Record(int split, long offset, long eventTime) {
        this.split = split;
        this.offset = offset;
        this.eventTime = eventTime;
    }
}
