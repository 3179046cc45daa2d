package io.hintgrpo.trainer.data;

import io.hintgrpo.engine.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class NpyTest {
    @TempDir
    Path dir;

    static final float[][] FRAMES = {{1.5f, -2f, 0.25f}, {3e-8f, Float.MAX_VALUE, -0f}};

    @Test
    void writeThenReadGivesTheSameFloatsAndAnAlignedHeader() throws Exception {
        Path f = dir.resolve("a.npy");
        Npy.write(f, FRAMES);
        byte[] bytes = Files.readAllBytes(f);
        int headerLen = ByteBuffer.wrap(bytes, 8, 2).order(ByteOrder.LITTLE_ENDIAN).getShort();
        assertEquals(0, (10 + headerLen) % 64, "numpy aligns the data to 64 bytes");
        assertEquals('\n', bytes[10 + headerLen - 1]);
        assertTrue(new String(bytes, 10, headerLen, StandardCharsets.ISO_8859_1).contains("'shape': (2, 3)"));
        float[][] back = Npy.read(f);
        assertEquals(2, back.length);
        for (int t = 0; t < 2; t++) assertArrayEquals(FRAMES[t], back[t]);
        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(back[1][2]));
    }

    @Test
    void readsVersion2HeadersAndPythonSpacing() {
        byte[] bytes = npy(2, "{'descr':'<f4','fortran_order':False,'shape':(1,2)}", 8);
        ByteBuffer.wrap(bytes, bytes.length - 8, 8).order(ByteOrder.LITTLE_ENDIAN).putFloat(1f).putFloat(-1f);
        float[][] got = Npy.parse(bytes, "x.npy");
        assertArrayEquals(new float[]{1f, -1f}, got[0]);
    }

    @Test
    void emptyArrayOfZeroFramesReads() {
        assertEquals(0, Npy.parse(Npy.encode(new float[0][]), "e.npy").length);
    }

    @Test
    void refusesWhatIsNotA2dLittleEndianFloat32CArray() {
        assertBad(new byte[]{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, "no \\x93NUMPY magic");
        assertBad(npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 48), "dtype '<f8' is not little-endian float32");
        assertBad(npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24), "dtype '>f4'");
        assertBad(npy(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", 24), "dtype '<i4'");
        assertBad(npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24), "Fortran order");
        assertBad(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 24), "shape (6,) is not 2-D");
        assertBad(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }", 24), "shape (1, 2, 3) is not 2-D");
        assertBad(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20), "truncated: shape (2, 3) needs 24 data bytes, the file has 20");
        assertBad(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 28), "trailing bytes");
        assertBad(npy(4, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24), "version 4.0 is not supported");
        assertBad(npy(1, "{'fortran_order': False, 'shape': (2, 3), }", 24), "no valid 'descr'");
        assertBad(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 24), "not a tuple");
        byte[] shortHeader = npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0);
        assertBad(java.util.Arrays.copyOf(shortHeader, 30), "truncated .npy header");
    }

    @Test
    void missingFileNamesThePath() {
        BadInputException e = assertThrows(BadInputException.class, () -> Npy.read(dir.resolve("nope.npy")));
        assertEquals(dir.resolve("nope.npy") + ": file not found", e.getMessage());
    }

    private static void assertBad(byte[] bytes, String reason) {
        BadInputException e = assertThrows(BadInputException.class, () -> Npy.parse(bytes, "f.npy"));
        assertTrue(e.getMessage().startsWith("f.npy: "), e.getMessage());
        assertTrue(e.getMessage().contains(reason), e.getMessage());
    }

    /** An .npy file of the given major version and header with dataBytes zero bytes of data. */
    static byte[] npy(int major, String header, int dataBytes) {
        byte[] h = (header + "\n").getBytes(StandardCharsets.ISO_8859_1);
        int lenField = major == 1 ? 2 : 4;
        ByteBuffer b = ByteBuffer.allocate(8 + lenField + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[]{(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', (byte) major, 0});
        if (major == 1) b.putShort((short) h.length);
        else b.putInt(h.length);
        b.put(h);
        return b.array();
    }
}
