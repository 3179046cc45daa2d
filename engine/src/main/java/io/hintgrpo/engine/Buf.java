package io.hintgrpo.engine;

/**
 * A typed slice of backend memory: what every kernel takes. The backend that allocated it owns
 * {@code memory} (a float[], int[] or short[] on cpu, a device allocation on cuda); offsets and
 * lengths count elements, not bytes. BF16 elements are raw bf16 bit patterns ({@link Bf16}).
 */
public final class Buf {
    public enum Type {
        F32(4), I32(4), BF16(2);

        /** Bytes per element in device memory. */
        public final int bytes;

        Type(int bytes) {
            this.bytes = bytes;
        }
    }

    public final Object memory;
    public final Type type;
    public final long offset;
    public final long length;

    public Buf(Object memory, Type type, long offset, long length) {
        if (offset < 0 || length < 0) throw new IllegalArgumentException("negative offset or length");
        this.memory = memory;
        this.type = type;
        this.offset = offset;
        this.length = length;
    }

    /** Elements [from, from + n) of this slice. */
    public Buf slice(long from, long n) {
        if (from < 0 || n < 0 || from + n > length)
            throw new IndexOutOfBoundsException("slice [" + from + ", " + (from + n) + ") of a buffer of " + length);
        return new Buf(memory, type, offset + from, n);
    }

    /** Offset as an int, for backends whose memory is a Java array. */
    public int off() {
        return Math.toIntExact(offset);
    }

    @Override
    public String toString() {
        return type + "[" + offset + ", +" + length + ")";
    }
}
