package io.hintgrpo.trainer.loop;

import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.trainer.data.AtomicFiles;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.Map;

/**
 * One process per run folder: an exclusive OS lock on {@code .lock} in the folder, held until
 * {@link #close} or the end of the process. The OS drops the lock of a killed process, so a lock
 * left behind never blocks. The file holds the holder's pid for the message a second process gets.
 * Within one JVM the lock is reentrant (the command line takes it before writing the effective
 * config, the run takes it again), counted per folder.
 */
public final class RunLock implements AutoCloseable {
    public static final String FILE = ".lock";
    private static final Map<Path, RunLock> HELD = new HashMap<>();

    private final Path key;
    private final FileChannel channel;
    private final FileLock lock;
    private int holds = 1;

    private RunLock(Path key, FileChannel channel, FileLock lock) {
        this.key = key;
        this.channel = channel;
        this.lock = lock;
    }

    /** Takes the folder (made, and probed for writing, if needed); another process holding it is one clear error. */
    public static synchronized RunLock acquire(Path dir) {
        AtomicFiles.probeFolder(dir);
        Path key;
        try {
            key = dir.toRealPath();
        } catch (IOException e) {
            throw BadInputException.io(dir, "cannot open the run folder", e);
        }
        RunLock mine = HELD.get(key);
        if (mine != null) {
            mine.holds++;
            return mine;
        }
        Path file = key.resolve(FILE);
        FileChannel ch = null;
        try {
            ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
            FileLock l;
            try {
                l = ch.tryLock();
            } catch (OverlappingFileLockException e) {
                l = null;
            }
            if (l == null) {
                ByteBuffer b = ByteBuffer.allocate(64);
                ch.read(b, 0);
                String pid = new String(b.array(), 0, b.position(), StandardCharsets.UTF_8).strip();
                ch.close();
                throw new BadInputException(dir.toString(), "run folder in use by another process (pid " + (pid.isEmpty() ? "?" : pid)
                        + "); wait for it or stop it (a killed process leaves no lock)");
            }
            ch.truncate(0);
            ch.write(ByteBuffer.wrap((ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.UTF_8)), 0);
            RunLock lock = new RunLock(key, ch, l);
            HELD.put(key, lock);
            return lock;
        } catch (IOException e) {
            if (ch != null) try {
                ch.close();
            } catch (IOException ignored) {
                // closing a channel we failed to use
            }
            throw BadInputException.io(file, "cannot lock the run folder", e);
        }
    }

    @Override
    public void close() {
        synchronized (RunLock.class) {
            if (--holds > 0) return;
            HELD.remove(key);
            try {
                lock.release();
                channel.close();
            } catch (IOException e) {
                // the process ends soon or the folder is gone; the OS drops the lock either way
            }
        }
    }
}
