package io.hintgrpo.trainer.data;

import io.hintgrpo.engine.BadInputException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * NumPy {@code .npy} files holding feature frames: a 2-D little-endian float32 array
 * ({@code '<f4'}, C order, shape frames × features). Reads format versions 1.0, 2.0 and 3.0
 * (they differ only in the header length field and its text encoding); writes 1.0.
 * Anything else is refused with the reason and how to convert it.
 */
public final class Npy {
    private Npy() {}

    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    /** Reads a T × D float32 array; errors name the file and the reason. */
    public static float[][] read(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new BadInputException(file.toString(), "file not found");
        } catch (IOException e) {
            throw new BadInputException(file.toString(), "cannot read: " + e.getMessage());
        }
        return parse(bytes, file.toString());
    }

    /** Parses the bytes of an .npy file; {@code where} names it in errors. */
    public static float[][] parse(byte[] bytes, String where) {
        if (bytes.length < 10 || !startsWithMagic(bytes))
            throw new BadInputException(where, "not an .npy file (no \\x93NUMPY magic)");
        int major = bytes[6] & 0xff, minor = bytes[7] & 0xff;
        ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        long headerLen;
        int headerStart;
        if (major == 1) {
            headerLen = buf.getShort(8) & 0xffff;
            headerStart = 10;
        } else if (major == 2 || major == 3) {
            if (bytes.length < 12) throw new BadInputException(where, "truncated .npy header");
            headerLen = buf.getInt(8) & 0xffffffffL;
            headerStart = 12;
        } else {
            throw new BadInputException(where, ".npy format version " + major + "." + minor + " is not supported (1.0, 2.0, 3.0 are)");
        }
        if (headerStart + headerLen > bytes.length) throw new BadInputException(where, "truncated .npy header");
        String header = new String(bytes, headerStart, (int) headerLen,
                major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);

        String descr = find(DESCR, header, where, "descr");
        if (!descr.equals("<f4"))
            throw new BadInputException(where, "dtype '" + descr + "' is not little-endian float32 '<f4' (convert with arr.astype('<f4'))");
        if (find(FORTRAN, header, where, "fortran_order").equals("True"))
            throw new BadInputException(where, "array is in Fortran order; write it in C order (np.ascontiguousarray)");
        long[] shape = parseShape(find(SHAPE, header, where, "shape"), where);
        if (shape.length != 2)
            throw new BadInputException(where, "shape " + shapeText(shape) + " is not 2-D (frames × features)");
        long frames = shape[0], dim = shape[1];
        long dataStart = headerStart + headerLen;
        long expected = frames * dim * 4;
        long actual = bytes.length - dataStart;
        if (actual != expected)
            throw new BadInputException(where, (actual < expected ? "truncated: " : "trailing bytes: ")
                    + "shape " + shapeText(shape) + " needs " + expected + " data bytes, the file has " + actual);
        if (frames > Integer.MAX_VALUE || dim > Integer.MAX_VALUE)
            throw new BadInputException(where, "shape " + shapeText(shape) + " is too large");
        buf.position((int) dataStart);
        float[][] out = new float[(int) frames][(int) dim];
        for (float[] row : out)
            for (int j = 0; j < row.length; j++) row[j] = buf.getFloat();
        return out;
    }

    /** Writes a T × D float32 array (version 1.0 header, C order) atomically. Rows must all have the same length. */
    public static void write(Path file, float[][] frames) throws IOException {
        AtomicFiles.write(file, encode(frames));
    }

    public static byte[] encode(float[][] frames) {
        int t = frames.length, d = t == 0 ? 0 : frames[0].length;
        for (float[] row : frames)
            if (row.length != d) throw new IllegalArgumentException("ragged rows: " + row.length + " vs " + d);
        StringBuilder header = new StringBuilder("{'descr': '<f4', 'fortran_order': False, 'shape': (" + t + ", " + d + "), }");
        // numpy pads with spaces and a final newline so the data starts at a multiple of 64 bytes
        while ((10 + header.length() + 1) % 64 != 0) header.append(' ');
        header.append('\n');
        ByteBuffer buf = ByteBuffer.allocate(10 + header.length() + t * d * 4).order(ByteOrder.LITTLE_ENDIAN);
        buf.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) header.length());
        buf.put(header.toString().getBytes(StandardCharsets.ISO_8859_1));
        for (float[] row : frames)
            for (float x : row) buf.putFloat(x);
        return buf.array();
    }

    private static boolean startsWithMagic(byte[] bytes) {
        for (int i = 0; i < MAGIC.length; i++) if (bytes[i] != MAGIC[i]) return false;
        return true;
    }

    private static String find(Pattern p, String header, String where, String key) {
        Matcher m = p.matcher(header);
        if (!m.find()) throw new BadInputException(where, ".npy header has no valid '" + key + "' entry: " + header.trim());
        return m.group(1);
    }

    private static long[] parseShape(String text, String where) {
        List<Long> dims = new ArrayList<>();
        for (String part : text.split(",")) {
            String s = part.trim();
            if (s.isEmpty()) continue;
            try {
                long d = Long.parseLong(s);
                if (d < 0) throw new NumberFormatException();
                dims.add(d);
            } catch (NumberFormatException e) {
                throw new BadInputException(where, ".npy shape (" + text + ") is not a tuple of non-negative integers");
            }
        }
        long[] out = new long[dims.size()];
        for (int i = 0; i < out.length; i++) out[i] = dims.get(i);
        return out;
    }

    private static String shapeText(long[] shape) {
        StringBuilder sb = new StringBuilder("(");
        for (int i = 0; i < shape.length; i++) sb.append(i > 0 ? ", " : "").append(shape[i]);
        return sb.append(shape.length == 1 ? ",)" : ")").toString();
    }
}
