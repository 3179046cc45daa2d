package io.hintgrpo.engine.cpu;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The spinning pool: every task once, failures reach the caller, nested and concurrent calls, thread-count changes. */
class ParallelTest {
    private final int saved = Parallel.threads();

    @AfterEach
    void restore() {
        Parallel.setThreads(saved);
    }

    @Test
    void everyTaskRunsExactlyOnceOverManyShortJobs() {
        Parallel.setThreads(3);
        for (int round = 0; round < 2000; round++) {
            int tasks = 1 + round % 37;
            AtomicIntegerArray seen = new AtomicIntegerArray(tasks);
            Parallel.forEach(tasks, seen::incrementAndGet);
            for (int i = 0; i < tasks; i++) assertEquals(1, seen.get(i), "round " + round + " task " + i);
        }
    }

    @Test
    void aFailingTaskReachesTheCallerAfterTheOthersFinish() {
        Parallel.setThreads(2);
        AtomicIntegerArray seen = new AtomicIntegerArray(64);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Parallel.forEach(64, i -> {
            seen.incrementAndGet(i);
            if (i == 13) throw new IllegalStateException("task 13");
        }));
        assertEquals("task 13", e.getMessage());
        for (int i = 0; i < 64; i++) assertEquals(1, seen.get(i));
        int[] after = new int[1];
        Parallel.forEach(4, i -> {
            synchronized (after) {
                after[0]++;
            }
        });
        assertEquals(4, after[0], "the pool still works after a failure");
    }

    @Test
    void nestedCallsRunInline() {
        Parallel.setThreads(2);
        AtomicIntegerArray seen = new AtomicIntegerArray(8 * 8);
        Parallel.forEach(8, i -> Parallel.forEach(8, j -> seen.incrementAndGet(i * 8 + j)));
        for (int i = 0; i < 64; i++) assertEquals(1, seen.get(i));
    }

    @Test
    void concurrentCallersEachGetTheirOwnTasksDone() throws InterruptedException {
        Parallel.setThreads(2);
        int callers = 4, tasks = 50, rounds = 300;
        AtomicIntegerArray seen = new AtomicIntegerArray(callers * tasks);
        Thread[] ts = new Thread[callers];
        for (int c = 0; c < callers; c++) {
            int base = c * tasks;
            ts[c] = new Thread(() -> {
                for (int r = 0; r < rounds; r++) Parallel.forEach(tasks, i -> seen.incrementAndGet(base + i));
            });
            ts[c].start();
        }
        for (Thread t : ts) t.join(60_000);
        for (int i = 0; i < callers * tasks; i++) assertEquals(rounds, seen.get(i), "slot " + i);
    }

    @Test
    void workersGoIdleWithoutWork() throws InterruptedException {
        Parallel.setThreads(2);
        Parallel.forEach(2, i -> {});
        long parked = 0;
        for (long deadline = System.nanoTime() + 5_000_000_000L; parked == 0 && System.nanoTime() < deadline; ) {
            Thread.sleep(Parallel.SPIN_NANOS / 1_000_000 + 10);
            parked = Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> t.getName().startsWith("hintgrpo-cpu-") && t.isAlive())
                    .filter(t -> t.getState() == Thread.State.WAITING || t.getState() == Thread.State.TIMED_WAITING).count();
        }
        assertTrue(parked >= 1, "an idle worker parks instead of spinning forever");
    }
}
