package io.hintgrpo.engine;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;

/**
 * Bad input from outside (a file, a config, a flag): the message names the place and the reason,
 * and the command line turns it into one line on stderr and a non-zero exit.
 */
public class BadInputException extends RuntimeException {
    private final String reason;

    public BadInputException(String where, String reason) {
        super(where + ": " + reason);
        this.reason = reason;
    }

    public BadInputException(String where, String reason, Throwable cause) {
        super(where + ": " + reason, cause);
        this.reason = reason;
    }

    /**
     * A failed file operation as bad input from outside (a read-only folder, a full disk, a folder
     * where a file goes): the place is the path the OS names (else {@code path}), the reason what
     * was being done and the OS's words, e.g. "cannot write: No space left on device".
     */
    public static BadInputException io(Path path, String doing, IOException e) {
        Path where = e instanceof FileSystemException f && f.getFile() != null ? Path.of(f.getFile()) : path;
        return new BadInputException(String.valueOf(where), doing + ": " + osReason(e), e);
    }

    /** The operating system's reason for a failed file operation, in words. */
    public static String osReason(IOException e) {
        if (e instanceof FileSystemException f && f.getReason() != null) return f.getReason();
        if (e instanceof AccessDeniedException) return "Permission denied";
        if (e instanceof NoSuchFileException) return "No such file or directory";
        if (e instanceof FileAlreadyExistsException) return "File exists";
        if (e instanceof NotDirectoryException) return "Not a directory";
        if (e instanceof DirectoryNotEmptyException) return "Directory not empty";
        if (e instanceof FileSystemException) return e.getClass().getSimpleName();
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    /** The reason without the place, for a caller that knows the place better. */
    public String reason() {
        return reason;
    }
}
