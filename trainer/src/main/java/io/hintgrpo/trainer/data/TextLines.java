package io.hintgrpo.trainer.data;

import io.hintgrpo.engine.BadInputException;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * A text file line by line, each line decoded as UTF-8 on its own, so a byte that is not UTF-8 is
 * reported with its line number ({@code file:line}); {@code \n} and {@code \r\n} end lines.
 */
public final class TextLines {
    private TextLines() {}

    public interface Sink {
        void accept(int lineNo, String line);
    }

    public static void forEach(Path file, Sink sink) {
        CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        try (InputStream in = new BufferedInputStream(Files.newInputStream(file), 1 << 16)) {
            ByteArrayOutputStream line = new ByteArrayOutputStream(256);
            int lineNo = 0;
            for (int b = in.read(); ; b = in.read()) {
                if (b != -1 && b != '\n') {
                    line.write(b);
                    continue;
                }
                if (b == -1 && line.size() == 0) return;
                lineNo++;
                byte[] bytes = line.toByteArray();
                int n = bytes.length > 0 && bytes[bytes.length - 1] == '\r' ? bytes.length - 1 : bytes.length;
                String text;
                try {
                    text = utf8.decode(ByteBuffer.wrap(bytes, 0, n)).toString();
                } catch (CharacterCodingException e) {
                    throw new BadInputException(file + ":" + lineNo, "not UTF-8 text (" + firstBadByte(bytes, n) + ")");
                }
                sink.accept(lineNo, text);
                line.reset();
                if (b == -1) return;
            }
        } catch (NoSuchFileException e) {
            throw new BadInputException(file.toString(), "file not found");
        } catch (IOException e) {
            throw BadInputException.io(file, "cannot read", e);
        }
    }

    /** Where the line stops being UTF-8, for the message: "byte 0xff at column 7". */
    private static String firstBadByte(byte[] bytes, int n) {
        CharsetDecoder d = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes, 0, n);
        java.nio.CharBuffer out = java.nio.CharBuffer.allocate(n + 1);
        d.decode(in, out, true);
        int at = in.position();
        return at < n ? String.format("byte 0x%02x at byte column %d", bytes[at] & 0xff, at + 1) : "truncated sequence at the end";
    }
}
