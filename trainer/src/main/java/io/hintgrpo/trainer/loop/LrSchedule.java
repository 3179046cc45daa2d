package io.hintgrpo.trainer.loop;

/** Linear warmup to the peak rate, then cosine decay to minRatio·peak at totalSteps. */
public record LrSchedule(float peak, int warmupSteps, int totalSteps, float minRatio) {
    /** Learning rate of optimizer step {@code step} (0-based). */
    public float at(int step) {
        if (warmupSteps > 0 && step < warmupSteps) return peak * (step + 1) / warmupSteps;
        int decay = Math.max(1, totalSteps - warmupSteps);
        double progress = Math.min(1.0, (double) (step - warmupSteps) / decay);
        double cosine = 0.5 * (1 + Math.cos(Math.PI * progress));
        return (float) (peak * (minRatio + (1 - minRatio) * cosine));
    }
}
