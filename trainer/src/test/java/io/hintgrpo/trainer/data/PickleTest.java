package io.hintgrpo.trainer.data;

import io.hintgrpo.engine.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The restricted pickle reader on hand-written opcode streams (MmsaImportTest runs it on what numpy writes). */
class PickleTest {
    @TempDir
    Path dir;

    private Object read(int... bytes) throws Exception {
        Path f = dir.resolve("x.pkl");
        byte[] b = new byte[bytes.length];
        for (int i = 0; i < b.length; i++) b[i] = (byte) bytes[i];
        Files.write(f, b);
        try (Pickle p = Pickle.open(f)) {
            return p.root();
        }
    }

    private String error(int... bytes) {
        return assertThrows(BadInputException.class, () -> read(bytes)).getMessage();
    }

    private static int[] concat(Object... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (Object p : parts) {
            if (p instanceof String s) out.writeBytes(s.getBytes(StandardCharsets.UTF_8));
            else for (int b : (int[]) p) out.write(b);
        }
        return toInts(out.toByteArray());
    }

    private static int[] toInts(byte[] b) {
        int[] out = new int[b.length];
        for (int i = 0; i < b.length; i++) out[i] = b[i] & 0xff;
        return out;
    }

    @Test
    void readsDictsListsTuplesNumbersStringsAndTheMemo() throws Exception {
        // {'a': 7, 'b': 1.5, 'c': [-32768, None, True], 'd': ('é', b'xy'), 'e': <memo 1: 'a'>}
        Object v = read(concat(new int[]{0x80, 4, 0x95, 0, 0, 0, 0, 0, 0, 0, 0, '}', 0x94, '('},
                new int[]{0x8c, 1}, "a", new int[]{0x94, 'K', 7},
                new int[]{0x8c, 1}, "b", new int[]{'G', 0x3f, 0xf8, 0, 0, 0, 0, 0, 0},
                new int[]{0x8c, 1}, "c", new int[]{']', '(', 0x8a, 2, 0x00, 0x80, 'N', 0x88, 'e'},
                new int[]{0x8c, 1}, "d", new int[]{'X', 2, 0, 0, 0}, "é", new int[]{'C', 2}, "xy", new int[]{0x86},
                new int[]{0x8c, 1}, "e", new int[]{'h', 1},
                new int[]{'u', '.'}));
        Map<?, ?> d = (Map<?, ?>) v;
        assertEquals(List.of("a", "b", "c", "d", "e"), List.copyOf(d.keySet()));
        assertEquals(7L, d.get("a"));
        assertEquals(1.5, d.get("b"));
        assertEquals(java.util.Arrays.asList(-32768L, null, true), d.get("c"));
        Pickle.Tuple t = (Pickle.Tuple) d.get("d");
        assertEquals("é", t.items().get(0));
        assertArrayEquals("xy".getBytes(StandardCharsets.US_ASCII), ((Pickle.Bytes) t.items().get(1)).all());
        assertEquals("a", d.get("e"));
    }

    /** A global outside the allow-list is refused where it is named, before anything could call it. */
    @Test
    void aDisallowedGlobalIsNamed() {
        String m = error(concat(new int[]{0x80, 2, 'c'}, "os\nsystem\n", new int[]{'X', 4, 0, 0, 0}, "echo", new int[]{0x85, 'R', '.'}));
        assertTrue(m.endsWith("x.pkl: byte 2: global os.system is not allowed: a feature pickle holds only dicts, lists, strings, "
                + "numbers and numpy arrays, and this reader loads no other class and calls nothing from the file"), m);
        m = error(concat(new int[]{0x80, 4, 0x8c, 8}, "builtins", new int[]{0x8c, 4}, "eval", new int[]{0x93, '.'}));
        assertTrue(m.contains("byte 18: global builtins.eval is not allowed"), m);
    }

    @Test
    void otherProtocolsAndOpcodesAreClearErrors() {
        assertTrue(error('(', 'd', 'p', '0', '\n', '.').contains("not a pickle of protocol 2 to 5 (it starts with byte 0x28; "
                + "protocols 0 and 1 are not read): re-save it with pickle.dump(data, f, protocol=4)"));
        assertTrue(error(0x80, 6, 'N', '.').contains("pickle protocol 6 is not read (2 to 5 are)"));
        String m = error(concat(new int[]{0x80, 4, 0x8c, 5}, "numpy", new int[]{0x8c, 7}, "ndarray", new int[]{0x93, ')', 0x81, '.'}));
        assertTrue(m.contains("byte 20: pickle opcode NEWOBJ (0x81) is not read"), m);
        assertTrue(error(0x80, 5, 0x97, '.').contains("NEXT_BUFFER (out-of-band buffers) (0x97) is not read"));
        assertTrue(error(0x80, 4, 'h', 5, '.').contains("memo entry 5 is missing"));
        assertTrue(error(0x80, 4, 'N', 'N', '.').contains("STOP with 2 values on the stack"));
        assertTrue(error(0x80, 4, 'X', 9, 0, 0, 0, 'a', 'b').contains("truncated pickle: the file ends at byte 9, inside the value the opcode at byte 2 began"));
        assertTrue(error().contains("truncated pickle: the file ends at byte 0"));
    }
}
