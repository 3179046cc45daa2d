package io.hintgrpo.trainer.sft;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The order of micro-batches, epoch by epoch, a pure function of (seed, epoch): examples are
 * shuffled, grouped into windows of 16 batches, sorted by length inside a window so a batch pads
 * little, cut into batches, and the batches shuffled. Resuming needs only (epoch, position).
 */
public final class BatchPlan {
    private static final int WINDOW_BATCHES = 16;
    private final int[] lengths;
    private final int batchSize;
    private final long seed;

    public BatchPlan(int[] lengths, int batchSize, long seed) {
        if (lengths.length == 0) throw new IllegalArgumentException("no examples to batch");
        if (batchSize < 1) throw new IllegalArgumentException("batch size must be ≥ 1, got " + batchSize);
        this.lengths = lengths.clone();
        this.batchSize = batchSize;
        this.seed = seed;
    }

    /** Micro-batches of epoch e, each a list of example indices. */
    public List<int[]> epoch(int e) {
        SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + e);
        Integer[] order = new Integer[lengths.length];
        for (int i = 0; i < order.length; i++) order[i] = i;
        for (int i = order.length - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            Integer t = order[i]; order[i] = order[j]; order[j] = t;
        }
        List<int[]> batches = new ArrayList<>();
        int window = batchSize * WINDOW_BATCHES;
        for (int w = 0; w < order.length; w += window) {
            Integer[] part = Arrays.copyOfRange(order, w, Math.min(order.length, w + window));
            Arrays.sort(part, Comparator.comparingInt(i -> lengths[i])); // stable: ties keep the shuffled order
            for (int b = 0; b < part.length; b += batchSize) {
                int n = Math.min(batchSize, part.length - b);
                int[] batch = new int[n];
                for (int i = 0; i < n; i++) batch[i] = part[b + i];
                batches.add(batch);
            }
        }
        for (int i = batches.size() - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int[] t = batches.get(i); batches.set(i, batches.get(j)); batches.set(j, t);
        }
        return batches;
    }
}
