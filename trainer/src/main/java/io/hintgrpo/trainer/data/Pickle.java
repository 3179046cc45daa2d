package io.hintgrpo.trainer.data;

import io.hintgrpo.engine.BadInputException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A restricted reader of Python pickles, for MMSA feature files: dicts of numpy arrays, lists and
 * strings. It runs the pickle machine over the opcodes protocols 2–5 emit for such data and builds
 * plain Java values: None → null, bool → Boolean, int → Long, float → Double, str → String,
 * bytes/bytearray → {@link Bytes}, list → ArrayList, tuple → {@link Tuple}, dict → LinkedHashMap,
 * numpy arrays → {@link NdArray} (numpy 1's {@code numpy.core} and numpy 2's {@code numpy._core}
 * paths; protocol 5's in-band {@code _frombuffer} + BYTEARRAY8 as well as {@code _reconstruct}),
 * numpy scalars → their Java value.
 *
 * <p>Why our own reader (docs/data.md, "Bringing CMU-MOSI, CMU-MOSEI, CH-SIMS"): a pickle is a program,
 * and a general unpickler runs whatever callable it names. This one knows a short allow-list of
 * globals ({@link #ALLOWED}) and builds values itself, so it loads no class and calls nothing from
 * the file; any other global ({@code os.system}, a pandas frame, ...) is an error that names it.
 * It adds no dependency and needs no Python. Large byte strings (the feature arrays: MOSEI's are
 * gigabytes) are not read while parsing: they stay in the file as (offset, length) and an array's
 * rows are read from there when used, so the features pass through memory once.
 */
public final class Pickle implements AutoCloseable {
    /** Byte strings at least this long stay in the file and are read on use; shorter ones are read into memory. */
    static final int IN_FILE_MIN = 1 << 16;
    private static final int BUFFER = 1 << 16;

    /** The globals a feature pickle may name: numpy's array, dtype and scalar reconstructors (numpy 1 and 2 paths), and protocol 2's bytes. */
    static final Map<String, String> ALLOWED = Map.of(
            "numpy.core.multiarray._reconstruct", "_reconstruct", "numpy._core.multiarray._reconstruct", "_reconstruct",
            "numpy.core.numeric._frombuffer", "_frombuffer", "numpy._core.numeric._frombuffer", "_frombuffer",
            "numpy.core.multiarray.scalar", "scalar", "numpy._core.multiarray.scalar", "scalar",
            "numpy.dtype", "dtype", "numpy.ndarray", "ndarray",
            "_codecs.encode", "encode"); // protocol 2 writes bytes as _codecs.encode(str, 'latin1')

    private final Path file;
    private final FileChannel channel;
    private final long size;
    private int protocol;
    private String numpyModule; // "numpy.core" or "numpy._core", the first the file names
    private Object root;

    private Pickle(Path file, FileChannel channel, long size) {
        this.file = file;
        this.channel = channel;
        this.size = size;
    }

    /** Reads the pickle's structure (large byte strings stay in the file until used); errors name the file and byte. */
    public static Pickle open(Path file) {
        FileChannel ch;
        try {
            ch = FileChannel.open(file, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new BadInputException(file.toString(), "file not found");
        } catch (IOException e) {
            throw BadInputException.io(file, "cannot read", e);
        }
        try {
            Pickle p = new Pickle(file, ch, ch.size());
            p.root = p.new Machine().run();
            return p;
        } catch (IOException | RuntimeException e) {
            try {
                ch.close();
            } catch (IOException ignored) {
                // the first failure is the one to report
            }
            if (e instanceof IOException io) throw BadInputException.io(file, "cannot read", io);
            throw (RuntimeException) e;
        }
    }

    public Object root() {
        return root;
    }

    public int protocol() {
        return protocol;
    }

    /** "numpy.core" (numpy 1), "numpy._core" (numpy 2), or null when the file holds no numpy object. */
    public String numpyModule() {
        return numpyModule;
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }

    // ---- values

    /** A Python tuple. */
    public record Tuple(List<Object> items) {}

    /** A Python bytes or bytearray: in memory when short, else a range of the file read on use. */
    public final class Bytes {
        private final byte[] memory;
        private final long offset;
        public final long length;

        private Bytes(byte[] memory) {
            this.memory = memory;
            this.offset = -1;
            this.length = memory.length;
        }

        private Bytes(long offset, long length) {
            this.memory = null;
            this.offset = offset;
            this.length = length;
        }

        /** Fills dst's remaining space with the bytes from {@code from} on. */
        void read(long from, ByteBuffer dst) {
            if (from < 0 || from + dst.remaining() > length) throw new IndexOutOfBoundsException(from + "+" + dst.remaining() + " > " + length);
            if (memory != null) {
                dst.put(memory, (int) from, dst.remaining());
                return;
            }
            try {
                for (long at = offset + from; dst.hasRemaining(); ) {
                    int r = channel.read(dst, at);
                    if (r < 0) throw new BadInputException(file.toString(), "truncated pickle: the file ended while reading an array");
                    at += r;
                }
            } catch (IOException e) {
                throw BadInputException.io(file, "cannot read", e);
            }
        }

        byte[] all() {
            if (memory != null) return memory;
            if (length > Integer.MAX_VALUE - 8) throw new BadInputException(file.toString(), "a byte string of " + length + " bytes is too long to read whole");
            ByteBuffer b = ByteBuffer.allocate((int) length);
            read(0, b);
            return b.array();
        }
    }

    /** A numpy dtype: kind ('f', 'i', 'u', 'b', 'U', 'S', 'O'), bytes per element and byte order. */
    public static final class DType {
        public final char kind;
        public final int itemsize;
        ByteOrder order = ByteOrder.LITTLE_ENDIAN;
        private final String typestr;

        private DType(String typestr, String where) {
            this.typestr = typestr;
            char k = typestr.isEmpty() ? '?' : typestr.charAt(0);
            int n;
            try {
                n = Integer.parseInt(typestr.substring(1));
            } catch (NumberFormatException | IndexOutOfBoundsException e) {
                throw new BadInputException(where, "numpy dtype '" + typestr + "' is not supported");
            }
            switch (k) {
                case 'f', 'i', 'u', 'b', 'S', 'O' -> itemsize = n;
                case 'U' -> itemsize = 4 * n; // UCS-4: n characters
                default -> throw new BadInputException(where, "numpy dtype '" + typestr + "' is not supported (float, int, bool, str and object arrays are)");
            }
            if (k == 'f' && n != 4 && n != 8 || (k == 'i' || k == 'u') && n != 1 && n != 2 && n != 4 && n != 8
                    || k == 'b' && n != 1 || k == 'O' && n != 8)
                throw new BadInputException(where, "numpy dtype '" + typestr + "' is not supported");
            kind = k;
        }

        /** numpy's name of the dtype, e.g. '<f4'. */
        @Override
        public String toString() {
            return (itemsize == 1 || kind == 'O' || kind == 'S' ? "|" : order == ByteOrder.BIG_ENDIAN ? ">" : "<") + typestr;
        }
    }

    /** A numpy array: shape, dtype, and its elements as bytes in C order, or as objects for an object array. */
    public static final class NdArray {
        DType dtype;
        long[] shape;
        boolean fortran;
        Bytes data;
        List<Object> objects;

        public DType dtype() {
            return dtype;
        }

        public long[] shape() {
            return shape.clone();
        }

        public long size() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }

        /** numpy's way of writing the shape, e.g. (1284, 375, 5). */
        public String shapeText() {
            StringBuilder sb = new StringBuilder("(");
            for (int i = 0; i < shape.length; i++) sb.append(i > 0 ? ", " : "").append(shape[i]);
            return sb.append(shape.length == 1 ? ",)" : ")").toString();
        }

        /** Element order differs from C order only for a Fortran array with two axes longer than 1. */
        public boolean fortranOrder() {
            int longAxes = 0;
            for (long d : shape) if (d > 1) longAxes++;
            return fortran && longAxes > 1;
        }

        /** Elements [start, start + out.length) in C order as float32 (float32 or float64 arrays). */
        public void floats(long start, float[] out) {
            if (dtype.kind != 'f' || fortranOrder()) throw new IllegalStateException("not a C-order float array: " + dtype);
            ByteBuffer b = ByteBuffer.allocate(out.length * dtype.itemsize).order(dtype.order);
            data.read(start * dtype.itemsize, b);
            b.flip();
            if (dtype.itemsize == 4) {
                b.asFloatBuffer().get(out);
            } else {
                for (int i = 0; i < out.length; i++) out[i] = (float) b.getDouble();
            }
        }

        /**
         * Every element in C order as a Java value: Double, Long, Boolean, String (str and bytes
         * dtypes, trailing NULs dropped as numpy does), or the objects of an object array.
         */
        public List<Object> elements() {
            if (dtype.kind == 'O') return Collections.unmodifiableList(objects);
            if (fortranOrder()) throw new IllegalStateException("Fortran order");
            ByteBuffer b = ByteBuffer.wrap(data.all()).order(dtype.order);
            List<Object> out = new ArrayList<>((int) size());
            for (long i = size(); i > 0; i--) out.add(scalar(dtype, b));
            return out;
        }
    }

    /** The next element of b as a Java value. */
    private static Object scalar(DType t, ByteBuffer b) {
        switch (t.kind) {
            case 'f':
                return t.itemsize == 4 ? (double) b.getFloat() : b.getDouble();
            case 'i':
                return switch (t.itemsize) {
                    case 1 -> (long) b.get();
                    case 2 -> (long) b.getShort();
                    case 4 -> (long) b.getInt();
                    default -> b.getLong();
                };
            case 'u':
                return switch (t.itemsize) {
                    case 1 -> (long) (b.get() & 0xff);
                    case 2 -> (long) (b.getShort() & 0xffff);
                    case 4 -> b.getInt() & 0xffffffffL;
                    default -> b.getLong(); // beyond 2^63 wraps: no feature file holds such counts
                };
            case 'b':
                return b.get() != 0;
            case 'U': {
                int[] cps = new int[t.itemsize / 4];
                int n = 0;
                for (int i = 0; i < cps.length; i++) {
                    cps[i] = b.getInt();
                    if (cps[i] != 0) n = i + 1;
                }
                return new String(cps, 0, n); // an invalid code point throws IllegalArgumentException
            }
            case 'S': {
                byte[] s = new byte[t.itemsize];
                b.get(s);
                int n = s.length;
                while (n > 0 && s[n - 1] == 0) n--;
                return new String(s, 0, n, StandardCharsets.UTF_8);
            }
            default:
                throw new IllegalStateException("object elements are not in bytes");
        }
    }

    // ---- the machine

    private record Global(String module, String name, String op) {
        @Override
        public String toString() {
            return module + "." + name;
        }
    }

    /** The pickle machine: a stack, marks into it, a memo, and one opcode at a time from a buffered file reader. */
    private final class Machine {
        private final ByteBuffer buf = ByteBuffer.allocate(BUFFER).order(ByteOrder.LITTLE_ENDIAN);
        private long bufStart; // file offset of buf[0]
        private long opAt;     // file offset of the opcode being run, for errors
        private final ArrayList<Object> stack = new ArrayList<>();
        private final ArrayList<Integer> marks = new ArrayList<>();
        private final Map<Long, Object> memo = new HashMap<>();

        Machine() {
            buf.limit(0);
        }

        Object run() throws IOException {
            opAt = 0;
            int first = u8();
            if (first != 0x80)
                throw bad("not a pickle of protocol 2 to 5 (it starts with byte 0x" + Integer.toHexString(first)
                        + "; protocols 0 and 1 are not read): re-save it with pickle.dump(data, f, protocol=4)");
            protocol = u8();
            if (protocol < 2 || protocol > 5) throw bad("pickle protocol " + protocol + " is not read (2 to 5 are)");
            while (true) {
                opAt = pos();
                int op = u8();
                switch (op) {
                    case 0x95 -> i64(); // FRAME: a read-ahead hint; the opcodes inside read the same without it
                    case '.' -> {        // STOP
                        if (stack.size() != 1 || !marks.isEmpty()) throw bad("malformed pickle: STOP with " + stack.size() + " values on the stack");
                        return stack.get(0);
                    }
                    case '(' -> marks.add(stack.size());
                    case '0' -> pop();
                    case '1' -> popMark();
                    case '2' -> push(peek());
                    case '}' -> push(new LinkedHashMap<>());
                    case ']' -> push(new ArrayList<>());
                    case ')' -> push(new Tuple(List.of()));
                    case 's' -> {
                        Object v = pop(), k = pop();
                        dict(peek()).put(key(k), v);
                    }
                    case 'u' -> {
                        List<Object> items = popMark();
                        if (items.size() % 2 != 0) throw bad("malformed pickle: SETITEMS with an odd number of values");
                        Map<Object, Object> d = dict(peek());
                        for (int i = 0; i < items.size(); i += 2) d.put(key(items.get(i)), items.get(i + 1));
                    }
                    case 'a' -> {
                        Object v = pop();
                        list(peek()).add(v);
                    }
                    case 'e' -> {
                        List<Object> items = popMark();
                        list(peek()).addAll(items);
                    }
                    case 't' -> push(tuple(popMark()));
                    case 0x85 -> push(tuple(List.of(pop())));
                    case 0x86 -> {
                        Object b = pop(), a = pop();
                        push(tuple(Arrays.asList(a, b)));
                    }
                    case 0x87 -> {
                        Object c = pop(), b = pop(), a = pop();
                        push(tuple(Arrays.asList(a, b, c)));
                    }
                    case 'l' -> push(new ArrayList<>(popMark()));
                    case 'd' -> {
                        List<Object> items = popMark();
                        if (items.size() % 2 != 0) throw bad("malformed pickle: DICT with an odd number of values");
                        Map<Object, Object> d = new LinkedHashMap<>();
                        for (int i = 0; i < items.size(); i += 2) d.put(key(items.get(i)), items.get(i + 1));
                        push(d);
                    }
                    case 'J' -> push((long) i32());
                    case 'K' -> push((long) u8());
                    case 'M' -> push((long) (u8() | u8() << 8));
                    case 0x8a -> push(longLE(u8()));
                    case 0x8b -> push(longLE(length(i32() & 0xffffffffL)));
                    case 'N' -> push(null);
                    case 0x88 -> push(Boolean.TRUE);
                    case 0x89 -> push(Boolean.FALSE);
                    case 'G' -> push(Double.longBitsToDouble(Long.reverseBytes(i64()))); // big-endian
                    case 0x8c -> push(string(u8()));
                    case 'X' -> push(string(i32() & 0xffffffffL));
                    case 0x8d -> push(string(i64()));
                    case 'C' -> push(bytes(u8()));
                    case 'B' -> push(bytes(i32() & 0xffffffffL));
                    case 0x8e, 0x96 -> push(bytes(i64())); // BINBYTES8, BYTEARRAY8 (protocol 5's in-band buffers)
                    case 'c' -> push(global(line(), line()));
                    case 0x93 -> {
                        Object name = pop(), module = pop();
                        if (!(module instanceof String m) || !(name instanceof String n)) throw bad("malformed pickle: STACK_GLOBAL needs two strings");
                        push(global(m, n));
                    }
                    case 'R' -> {
                        Object args = pop(), f = pop();
                        if (!(f instanceof Global g)) throw bad("malformed pickle: REDUCE of a " + typeName(f));
                        if (!(args instanceof Tuple t)) throw bad("malformed pickle: REDUCE of " + f + " without an argument tuple");
                        push(call(g, t.items()));
                    }
                    case 'b' -> {
                        Object state = pop();
                        build(peek(), state);
                    }
                    case 0x94 -> memo.put((long) memo.size(), peek());
                    case 'q' -> memo.put((long) u8(), peek());
                    case 'r' -> memo.put(i32() & 0xffffffffL, peek());
                    case 'h' -> push(memoGet(u8()));
                    case 'j' -> push(memoGet(i32() & 0xffffffffL));
                    default -> throw bad("pickle opcode " + opcodeName(op) + " is not read: this reader builds only dicts, lists, "
                            + "tuples, strings, numbers and numpy arrays");
                }
            }
        }

        // -- building values

        private Object global(String module, String name) {
            String full = module + "." + name;
            String op = ALLOWED.get(full);
            if (op == null)
                throw bad("global " + full + " is not allowed: a feature pickle holds only dicts, lists, strings, numbers and numpy "
                        + "arrays, and this reader loads no other class and calls nothing from the file");
            if (module.startsWith("numpy.core") || module.startsWith("numpy._core")) {
                if (numpyModule == null) numpyModule = module.startsWith("numpy._core") ? "numpy._core" : "numpy.core";
            }
            return new Global(module, name, op);
        }

        private Object call(Global g, List<Object> a) {
            switch (g.op()) {
                case "_reconstruct" -> { // _reconstruct(ndarray, (0,), b'b'): an empty array that BUILD fills
                    if (a.size() != 3 || !(a.get(0) instanceof Global c) || !c.op().equals("ndarray"))
                        throw bad(g + " is read only for numpy.ndarray itself, got " + a);
                    return new NdArray();
                }
                case "_frombuffer" -> { // _frombuffer(buffer, dtype, shape, order): protocol 5's arrays
                    if (a.size() != 4 || !(a.get(0) instanceof Bytes data) || !(a.get(1) instanceof DType t)
                            || !(a.get(2) instanceof Tuple shape) || !(a.get(3) instanceof String order))
                        throw bad("malformed " + g + " arguments");
                    if (!order.equals("C") && !order.equals("F")) throw bad(g + ": order '" + order + "'");
                    NdArray x = new NdArray();
                    x.dtype = t;
                    x.shape = shape(shape);
                    x.fortran = order.equals("F");
                    x.data = data;
                    checkSize(x);
                    return x;
                }
                case "dtype" -> {
                    if (a.isEmpty() || !(a.get(0) instanceof String typestr)) throw bad("malformed numpy.dtype arguments " + a);
                    return new DType(typestr, where());
                }
                case "scalar" -> { // scalar(dtype, bytes): a numpy scalar such as np.float32(1.5) or np.str_('x')
                    if (a.size() == 2 && a.get(0) instanceof DType t && t.kind == 'O') return a.get(1);
                    if (a.size() != 2 || !(a.get(0) instanceof DType t) || !(a.get(1) instanceof Bytes b) || b.length != t.itemsize)
                        throw bad("malformed " + g + " arguments");
                    try {
                        return scalar(t, ByteBuffer.wrap(b.all()).order(t.order));
                    } catch (IllegalArgumentException e) {
                        throw bad("numpy str scalar holds an invalid character");
                    }
                }
                case "encode" -> { // protocol 2's bytes: _codecs.encode(str, 'latin1')
                    if (a.size() != 2 || !(a.get(0) instanceof String s) || !"latin1".equals(a.get(1)))
                        throw bad("_codecs.encode is read only as protocol 2 writes bytes (str, 'latin1')");
                    byte[] out = new byte[s.length()];
                    for (int i = 0; i < out.length; i++) {
                        char c = s.charAt(i);
                        if (c > 0xff) throw bad("_codecs.encode: a latin1 string holds '" + c + "'");
                        out[i] = (byte) c;
                    }
                    return new Bytes(out);
                }
                default -> throw bad("calling " + g + " is not allowed");
            }
        }

        /** BUILD: a dtype's byte order, or an array's shape, dtype, order and data. */
        private void build(Object target, Object state) {
            if (target instanceof DType t) {
                // (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
                if (!(state instanceof Tuple s) || s.items().size() < 5 || !(s.items().get(1) instanceof String order))
                    throw bad("malformed numpy dtype state " + state);
                if (s.items().get(2) != null || s.items().get(3) != null || s.items().get(4) != null)
                    throw bad("structured or sub-array numpy dtypes are not read");
                switch (order) {
                    case ">" -> t.order = ByteOrder.BIG_ENDIAN;
                    case "<", "|", "=" -> t.order = ByteOrder.LITTLE_ENDIAN;
                    default -> throw bad("numpy dtype byte order '" + order + "'");
                }
                return;
            }
            if (target instanceof NdArray x) {
                // (version, shape, dtype, is_fortran, data); numpy before 1.0 left out the version
                List<Object> s = state instanceof Tuple t ? t.items() : List.of();
                if (s.size() == 5) s = s.subList(1, 5);
                if (s.size() != 4 || !(s.get(0) instanceof Tuple shape) || !(s.get(1) instanceof DType t) || !(s.get(2) instanceof Boolean f))
                    throw bad("malformed numpy array state");
                x.shape = shape(shape);
                x.dtype = t;
                x.fortran = f;
                if (t.kind == 'O') {
                    if (!(s.get(3) instanceof List<?> items)) throw bad("an object array's state holds no list of elements");
                    x.objects = new ArrayList<>(items);
                } else {
                    if (!(s.get(3) instanceof Bytes b)) throw bad("a numpy array's state holds no data bytes");
                    x.data = b;
                }
                checkSize(x);
                return;
            }
            throw bad("BUILD of a " + typeName(target) + " is not read");
        }

        private void checkSize(NdArray x) {
            long n = x.size();
            if (x.dtype.kind == 'O') {
                if (x.objects == null || x.objects.size() != n) throw bad("object array of shape " + x.shapeText() + " holds "
                        + (x.objects == null ? "no" : x.objects.size()) + " elements");
                return;
            }
            if (x.data == null || x.data.length != n * x.dtype.itemsize)
                throw bad("numpy array of shape " + x.shapeText() + " and dtype " + x.dtype + " needs " + n * x.dtype.itemsize
                        + " bytes, the pickle holds " + (x.data == null ? 0 : x.data.length));
        }

        private long[] shape(Tuple t) {
            long[] out = new long[t.items().size()];
            for (int i = 0; i < out.length; i++) {
                if (!(t.items().get(i) instanceof Long d) || d < 0) throw bad("malformed numpy array shape " + t.items());
                out[i] = d;
            }
            return out;
        }

        private Tuple tuple(List<Object> items) {
            return new Tuple(Collections.unmodifiableList(new ArrayList<>(items)));
        }

        private Object key(Object k) {
            if (k instanceof List<?> || k instanceof Map<?, ?> || k instanceof NdArray) throw bad("unhashable dict key " + typeName(k));
            return k;
        }

        @SuppressWarnings("unchecked")
        private Map<Object, Object> dict(Object o) {
            if (o instanceof Map<?, ?> m) return (Map<Object, Object>) m;
            throw bad("malformed pickle: SETITEM on a " + typeName(o));
        }

        @SuppressWarnings("unchecked")
        private List<Object> list(Object o) {
            if (o instanceof ArrayList<?> l) return (List<Object>) l;
            throw bad("malformed pickle: APPEND to a " + typeName(o));
        }

        private Object memoGet(long i) {
            if (!memo.containsKey(i)) throw bad("malformed pickle: memo entry " + i + " is missing");
            return memo.get(i);
        }

        private long longLE(int n) throws IOException {
            if (n > 8) throw bad("an integer of " + n + " bytes is too large");
            byte[] b = bytesIn(n);
            long v = n > 0 && b[n - 1] < 0 ? -1 : 0; // sign-extend
            for (int i = n - 1; i >= 0; i--) v = v << 8 | (b[i] & 0xff);
            return v;
        }

        // -- the stack

        private void push(Object o) {
            stack.add(o);
        }

        private Object pop() {
            if (stack.size() <= (marks.isEmpty() ? 0 : marks.get(marks.size() - 1))) throw bad("malformed pickle: stack underflow");
            return stack.remove(stack.size() - 1);
        }

        private Object peek() {
            if (stack.isEmpty()) throw bad("malformed pickle: empty stack");
            return stack.get(stack.size() - 1);
        }

        private List<Object> popMark() {
            if (marks.isEmpty()) throw bad("malformed pickle: no MARK");
            int at = marks.remove(marks.size() - 1);
            List<Object> top = new ArrayList<>(stack.subList(at, stack.size()));
            stack.subList(at, stack.size()).clear();
            return top;
        }

        // -- reading the file

        private long pos() {
            return bufStart + buf.position();
        }

        /** Makes at least n (≤ BUFFER) unread bytes available in buf. */
        private void need(int n) throws IOException {
            if (buf.remaining() >= n) return;
            int consumed = buf.position();
            buf.compact();
            bufStart += consumed;
            while (buf.position() < n) {
                if (channel.read(buf, bufStart + buf.position()) < 0) {
                    buf.flip();
                    throw truncated();
                }
            }
            buf.flip();
        }

        private int u8() throws IOException {
            need(1);
            return buf.get() & 0xff;
        }

        private int i32() throws IOException {
            need(4);
            return buf.getInt();
        }

        private long i64() throws IOException {
            need(8);
            return buf.getLong();
        }

        private int length(long n) {
            if (n < 0 || n > Integer.MAX_VALUE - 8) throw bad("a string of " + Long.toUnsignedString(n) + " bytes is too long");
            return (int) n;
        }

        private byte[] bytesIn(int n) throws IOException {
            byte[] out = new byte[n];
            int have = Math.min(n, buf.remaining());
            buf.get(out, 0, have);
            if (have < n) {
                long at = pos();
                ByteBuffer rest = ByteBuffer.wrap(out, have, n - have);
                while (rest.hasRemaining()) {
                    int r = channel.read(rest, at);
                    if (r < 0) throw truncated();
                    at += r;
                }
                bufStart = at;
                buf.limit(0);
            }
            return out;
        }

        private String string(long n) throws IOException {
            return new String(bytesIn(length(n)), StandardCharsets.UTF_8);
        }

        /** A bytes object: read now when short, else left in the file (only checked to be there). */
        private Bytes bytes(long n) throws IOException {
            if (n < 0) throw bad("a byte string of " + Long.toUnsignedString(n) + " bytes");
            if (n < IN_FILE_MIN) return new Bytes(bytesIn((int) n));
            long at = pos();
            if (at + n > size) throw truncated();
            if (n <= buf.remaining()) {
                buf.position(buf.position() + (int) n);
            } else {
                bufStart = at + n;
                buf.limit(0);
            }
            return new Bytes(at, n);
        }

        private String line() throws IOException {
            StringBuilder sb = new StringBuilder();
            for (int c = u8(); c != '\n'; c = u8()) {
                if (sb.length() > 1000) throw bad("malformed pickle: a GLOBAL name longer than 1000 bytes");
                sb.append((char) c);
            }
            return sb.toString();
        }

        // -- errors

        private String where() {
            return file + ": byte " + opAt;
        }

        private BadInputException bad(String reason) {
            return new BadInputException(where(), reason);
        }

        private BadInputException truncated() {
            return new BadInputException(file.toString(), "truncated pickle: the file ends at byte " + size
                    + ", inside the value the opcode at byte " + opAt + " began");
        }
    }

    /** A value's Python type in words, for errors: "dict", "numpy array (6, 7, 5)", "None", ... */
    static String typeName(Object o) {
        if (o == null) return "None";
        if (o instanceof Tuple) return "tuple";
        if (o instanceof List<?>) return "list";
        if (o instanceof Map<?, ?>) return "dict";
        if (o instanceof String) return "str";
        if (o instanceof Double) return "float";
        if (o instanceof Long) return "int";
        if (o instanceof Boolean) return "bool";
        if (o instanceof NdArray x) return "numpy array " + x.shapeText();
        if (o instanceof Bytes) return "bytes";
        if (o instanceof DType t) return "numpy dtype " + t;
        if (o instanceof Global g) return "global " + g;
        return o.getClass().getSimpleName();
    }

    private static String opcodeName(int op) {
        String name = switch (op) {
            case 0x81 -> "NEWOBJ";
            case 0x92 -> "NEWOBJ_EX";
            case 'o' -> "OBJ";
            case 'i' -> "INST";
            case 'P' -> "PERSID";
            case 'Q' -> "BINPERSID";
            case 0x82, 0x83, 0x84 -> "EXT";
            case 0x97 -> "NEXT_BUFFER (out-of-band buffers)";
            case 0x98 -> "READONLY_BUFFER";
            case 0x8f, 0x90, 0x91 -> "set";
            case 'T', 'U', 'S' -> "Python 2 str";
            case 'I', 'L', 'F', 'V', 'p', 'g' -> "text (protocol 0)";
            default -> null;
        };
        String hex = "0x" + Integer.toHexString(op);
        return name == null ? hex : name + " (" + hex + ")";
    }
}
