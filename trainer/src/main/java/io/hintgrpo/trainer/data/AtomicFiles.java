package io.hintgrpo.trainer.data;

import io.hintgrpo.engine.BadInputException;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Collection;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * Writes that either land whole or not at all: the bytes go to a temporary file beside the target
 * and the file is renamed over the target, so a reader never sees half a file. Data files are
 * regenerable, so they skip fsync (thousands of small feature files); checkpoints, which must
 * survive a power cut, fsync in {@code checkpoint.Checkpoints}.
 */
public final class AtomicFiles {
    private AtomicFiles() {}

    /** Produces the content of a file into a stream. */
    public interface Content {
        void writeTo(OutputStream out) throws IOException;
    }

    /**
     * Writes target whole or not at all. A failure (read-only folder, full disk, a folder where the
     * file goes) is a {@link BadInputException} naming the path and the OS's reason; the temporary
     * file is gone and an earlier target is intact.
     */
    public static void write(Path target, Content content) throws IOException {
        Path dir = folder(target);
        Path tmp;
        try {
            if (Files.isDirectory(target)) throw new BadInputException(target.toString(), "cannot write: it is a folder");
            tmp = Files.createTempFile(dir, "." + target.getFileName() + "-", ".tmp");
        } catch (IOException e) {
            throw BadInputException.io(target, "cannot write", e);
        }
        try {
            try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(tmp, StandardOpenOption.TRUNCATE_EXISTING))) {
                content.writeTo(out);
            }
            readableByAll(tmp);
            moveIntoPlace(tmp, target);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(tmp);
            if (e instanceof IOException io) throw BadInputException.io(target, "cannot write", io);
            throw e;
        }
    }

    /** The folder a file goes into, created when missing; a failure names it and the OS's reason. */
    static Path folder(Path target) {
        Path dir = target.toAbsolutePath().getParent();
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw BadInputException.io(dir, "cannot create the folder", e);
        }
        return dir;
    }

    /**
     * Before long work: the folder exists (made if missing) and a file can be created, written and
     * removed in it, so a run never dies at its first checkpoint for a reason known at the start.
     */
    public static void probeFolder(Path dir) {
        Path created = null; // the outermost folder this call makes, removed again when the probe fails
        for (Path p = dir.toAbsolutePath().normalize(); p != null && !Files.exists(p); p = p.getParent()) created = p;
        try {
            if (Files.exists(dir) && !Files.isDirectory(dir)) throw new BadInputException(dir.toString(), "is a file, not a folder");
            Files.createDirectories(dir);
        } catch (IOException e) {
            removeEmpty(dir, created);
            throw new BadInputException(dir.toString(), "cannot create the folder: " + BadInputException.osReason(e), e);
        }
        Path probe = null;
        try {
            probe = Files.createTempFile(dir, ".hintgrpo-probe-", ".tmp");
            Files.write(probe, new byte[4096]);
        } catch (IOException e) {
            deleteQuietly(probe);
            removeEmpty(dir, created);
            throw new BadInputException(dir.toString(), "cannot write in the folder: " + BadInputException.osReason(e), e);
        }
        deleteQuietly(probe);
    }

    /** Removes the empty folders from dir up to and including top (the ones a failed probe made). */
    private static void removeEmpty(Path dir, Path top) {
        if (top == null) return;
        for (Path p = dir.toAbsolutePath().normalize(); p != null && p.startsWith(top); p = p.getParent()) {
            try {
                Files.deleteIfExists(p);
            } catch (IOException e) {
                return; // not empty or not ours to remove
            }
        }
    }

    private static void deleteQuietly(Path p) {
        if (p == null) return;
        try {
            Files.deleteIfExists(p);
        } catch (IOException e) {
            // a hidden, uniquely named probe; a leftover harms nothing
        }
    }

    /** Before long work: the output file can be written (its folder probed; it is not itself a folder). */
    public static void probeFile(Path file) {
        if (Files.isDirectory(file)) throw new BadInputException(file.toString(), "cannot write: it is a folder");
        probeFolder(file.toAbsolutePath().getParent());
    }

    /**
     * An output that is one of the inputs (the same file after links: {@code ./F}, a symlink, a
     * hard link) is refused before any work, so an input is never replaced by what was made from it.
     */
    public static void refuseInput(Path output, String outputName, Collection<Path> inputs) {
        if (!Files.exists(output)) return;
        for (Path in : inputs) {
            try {
                if (Files.exists(in) && Files.isSameFile(output, in))
                    throw new BadInputException(outputName, output + " is the input " + in + "; write the output elsewhere");
            } catch (IOException e) {
                throw BadInputException.io(output, "cannot compare with the input " + in, e);
            }
        }
    }

    /** Produces a folder's files inside a temporary folder; returns what the caller wants back. */
    public interface FolderContent<T> {
        T writeInto(Path tmp) throws IOException;
    }

    /**
     * Refuses an output folder that exists and is not empty: a corpus is written as a new folder,
     * never over another. Cheap, so callers run it before long work too.
     */
    public static void refuseNonEmptyFolder(Path out) throws IOException {
        if (!Files.exists(out)) return;
        if (!Files.isDirectory(out)) throw new BadInputException(out.toString(), "exists and is not a folder");
        try (Stream<Path> entries = Files.list(out)) {
            if (entries.findAny().isPresent()) throw new BadInputException(out.toString(), "folder exists and is not empty; refusing to overwrite");
        }
    }

    /**
     * Writes a new folder whole or not at all: content fills a temporary folder beside out, which is
     * renamed onto out at the end (out must not exist or be empty). On failure the temporary folder
     * is removed and out is as it was.
     */
    public static <T> T writeFolder(Path out, FolderContent<T> content) throws IOException {
        refuseNonEmptyFolder(out);
        Path target = out.toAbsolutePath();
        probeFolder(target.getParent());
        Path tmp = Files.createTempDirectory(target.getParent(), "." + target.getFileName() + "-");
        readableByAll(tmp);
        try {
            T result = content.writeInto(tmp);
            if (Files.exists(target)) Files.delete(target); // empty, checked above
            moveIntoPlace(tmp, target);
            return result;
        } catch (IOException | RuntimeException e) {
            deleteTree(tmp);
            throw e;
        }
    }

    /** Removes a folder and everything in it (a temporary folder that did not become an output). */
    public static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) return;
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }

    public static void write(Path target, byte[] bytes) throws IOException {
        write(target, out -> out.write(bytes));
    }

    public static void writeString(Path target, String text) throws IOException {
        write(target, text.getBytes(StandardCharsets.UTF_8));
    }

    /**
     * Temporary files and folders are created owner-only (0600 / 0700); before one becomes an
     * output it gets the usual rw-r--r-- (rwxr-xr-x for a folder).
     */
    public static void readableByAll(Path file) throws IOException {
        try {
            Files.setPosixFilePermissions(file, java.nio.file.attribute.PosixFilePermissions.fromString(
                    Files.isDirectory(file) ? "rwxr-xr-x" : "rw-r--r--"));
        } catch (UnsupportedOperationException e) {
            // not a POSIX file system: its default permissions stand
        }
    }

    /** Renames a finished temporary file or folder onto its final name, atomically where the file system can. */
    public static void moveIntoPlace(Path tmp, Path target) throws IOException {
        try {
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }
}
