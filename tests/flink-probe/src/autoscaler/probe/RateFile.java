package autoscaler.probe;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.BasicFileAttributes;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The rate schedule file the test appends to (atomically, by rename). Re-read at most every
 * {@link #RELOAD_MS}, and parsed again only when its modification time or size changed. A missing
 * or malformed file reads as "nothing produced yet", logged once per change of state.
 */
final class RateFile {
    private static final Logger LOG = LoggerFactory.getLogger(RateFile.class);
    static final long RELOAD_MS = 200;

    private final Path path;
    private long nextCheck; // epoch ms; 0 so that the first call reads the file
    private long mtime = -1;
    private long size = -1;
    private String problem; // the last logged problem, to log each once
    /** Read by the metrics thread too. */
    private volatile Schedule schedule = Schedule.EMPTY;

    RateFile(String path) {
        this.path = Paths.get(path);
    }

    /** The schedule as last read, without touching the file (for the metrics thread). */
    Schedule cached() {
        return schedule;
    }

    /** The schedule, re-reading the file if the last look is older than {@link #RELOAD_MS}. */
    Schedule current(long now) {
        if (now >= nextCheck) {
            nextCheck = now + RELOAD_MS;
            reload();
        }
        return schedule;
    }

    private void reload() {
        try {
            BasicFileAttributes attrs = Files.readAttributes(path, BasicFileAttributes.class);
            long m = attrs.lastModifiedTime().toMillis();
            if (m == mtime && attrs.size() == size) return;
            String text = new String(Files.readAllBytes(path), StandardCharsets.UTF_8);
            Schedule parsed = Schedule.parse(text);
            mtime = m;
            size = attrs.size();
            schedule = parsed;
            if (problem != null) LOG.info("rate file {} readable again: {} segments", path, parsed.segments());
            problem = null;
        } catch (NoSuchFileException e) {
            failed("missing");
        } catch (IOException | IllegalArgumentException e) {
            failed(e.toString());
        }
    }

    private void failed(String why) {
        schedule = Schedule.EMPTY;
        mtime = -1;
        size = -1;
        if (!why.equals(problem)) LOG.warn("rate file {}: {}; taking the rate as 0 so far", path, why);
        problem = why;
    }
}
