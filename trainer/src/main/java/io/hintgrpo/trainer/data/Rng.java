package io.hintgrpo.trainer.data;

import java.util.List;

/**
 * SplitMix64: a tiny generator whose every output is fixed by its seed on every JVM and platform
 * (java.util.Random's Gaussian and Math's transcendental functions are not pinned down as tightly),
 * so a corpus is bit-identical for the same seed. {@link #of} derives independent streams from keys.
 */
public final class Rng {
    private long state;

    Rng(long seed) {
        state = seed;
    }

    /** A stream for a tuple of keys (seed, domain, index, purpose): changing one purpose's draws never shifts another's. */
    public static Rng of(long... keys) {
        long h = 0x9E3779B97F4A7C15L;
        for (long k : keys) h = mix(h ^ mix(k + 0x632BE59BD9B4E019L));
        return new Rng(h);
    }

    public long nextLong() {
        state += 0x9E3779B97F4A7C15L;
        return mix(state);
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** Uniform in [0, 1). */
    public double uniform() {
        return (nextLong() >>> 11) * 0x1.0p-53;
    }

    double uniform(double lo, double hi) {
        return lo + (hi - lo) * uniform();
    }

    public int below(int n) {
        return (int) (uniform() * n);
    }

    public boolean chance(double p) {
        return uniform() < p;
    }

    <T> T pick(List<T> items) {
        return items.get(below(items.size()));
    }

    /** Standard normal by Box-Muller, through StrictMath so the bits never depend on the platform. */
    double gaussian() {
        double u1 = 1.0 - uniform(); // (0, 1]: log stays finite
        double u2 = uniform();
        return StrictMath.sqrt(-2.0 * StrictMath.log(u1)) * StrictMath.cos(2.0 * StrictMath.PI * u2);
    }
}
