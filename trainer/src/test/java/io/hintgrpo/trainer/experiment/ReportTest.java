package io.hintgrpo.trainer.experiment;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The curves' mean ± std over seeds on a shared completions axis. */
class ReportTest {
    /** Each seed is read as a step function; a point before a seed's first value is undefined. */
    @Test
    void seedsAreStepFunctionsOnTheSharedAxis() {
        double[] x = {0, 64, 128, 192};
        List<double[][]> seeds = List.of(
                new double[][]{{0, 64, 128, 192}, {1, 2, 3, 4}},
                new double[][]{{64, 192}, {4, 8}}); // a seed whose steps took more completions (refills)
        double[][] b = Report.band(x, seeds);
        assertTrue(Double.isNaN(b[0][0]), "the second seed has no point at 0");
        assertEquals(3, b[0][1], 1e-12); // (2 + 4) / 2
        assertEquals(1, b[2][1] - b[0][1], 1e-12); // population std of {2, 4}
        assertEquals(3.5, b[0][2], 1e-12); // (3 + 4) / 2: the second seed still at its last value
        assertEquals(6, b[0][3], 1e-12);
        assertEquals(4, b[1][3], 1e-12);
    }

    @Test
    void meanStdIsPopulationStd() {
        assertEquals("2.000 ± 1.000", Report.meanStd(new double[]{1, 3}, 3));
        assertEquals("0.50", Report.meanStd(new double[]{0.5}, 2));
        assertEquals("n/a", Report.meanStd(new double[]{Double.NaN, 1}, 2));
    }
}
