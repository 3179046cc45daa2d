package io.hintgrpo.trainer.rl;

import io.hintgrpo.trainer.rl.GrpoObjective.Aggregation;
import io.hintgrpo.trainer.rl.GrpoObjective.Row;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Which positions carry loss and with what scale; the values against PyTorch are in tests' GrpoOracleTest. */
class GrpoObjectiveTest {

    // row 0: prompt 2, no hint, completion 3; row 1: prompt 1, hint 2, completion 1; width 6
    private final List<Row> rows = List.of(new Row(2, 0, 3, 0.5f), new Row(1, 2, 1, -2f));

    @Test
    void onlyPositionsPredictingCompletionTokensCarryLoss() {
        GrpoObjective.TokenInputs in = GrpoObjective.tokenInputs(rows, 6, Aggregation.TOKEN_MEAN, 8);
        assertEquals(4, in.completionTokens());
        float q = 0.25f;
        // position p predicts token p + 1: row 0's completion tokens 2..4 are predicted at 1..3,
        // row 1's completion token 3 (after prompt 0 and hint 1..2) at position 2
        assertArrayEquals(new float[]{0, q, q, q, 0, 0, 0, 0, q, 0, 0, 0}, in.scale());
        assertArrayEquals(new float[]{0, .5f, .5f, .5f, 0, 0, 0, 0, -2f, 0, 0, 0}, in.advantage());
    }

    @Test
    void sequenceMeanAndDrGrpoScales() {
        float[] s = GrpoObjective.tokenInputs(rows, 6, Aggregation.SEQUENCE_MEAN, 8).scale();
        assertEquals(1f / 6, s[1]);
        assertEquals(1f / 2, s[8]);
        float[] d = GrpoObjective.tokenInputs(rows, 6, Aggregation.DR_GRPO, 8).scale();
        assertEquals(1f / 16, d[1]);
        assertEquals(1f / 16, d[8]);
    }

    @Test
    void rejectsRowsThatDoNotFit() {
        assertThrows(IllegalArgumentException.class, () -> GrpoObjective.tokenInputs(rows, 4, Aggregation.TOKEN_MEAN, 8));
        assertThrows(IllegalArgumentException.class, () -> GrpoObjective.tokenInputs(rows, 6, Aggregation.DR_GRPO, 2));
        assertThrows(IllegalArgumentException.class, () -> new Row(0, 0, 3, 1f));
    }
}
