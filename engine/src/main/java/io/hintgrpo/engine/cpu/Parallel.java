package io.hintgrpo.engine.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.IntConsumer;

/**
 * The CPU backend's thread pool. Work is split into tasks whose boundaries never depend on the
 * thread count, and each output element is computed by exactly one task in a fixed order, so
 * results are bit-identical for any number of threads. Threads: system property
 * {@code hintgrpo.threads}, else the available processors.
 *
 * <p>Decode runs thousands of calls of 10–100 µs each; an executor's hand-off (a queue, then
 * park/unpark) costs tens of µs per call. So the workers are our own threads that, after a job,
 * spin for {@link #SPIN_NANOS} watching for the next one before they park; the caller publishes a
 * job in one volatile write, takes tasks itself, and waits for the stragglers the same way. A
 * call made while another thread's job is running, or from inside a task, runs its tasks inline.
 */
public final class Parallel {
    private static volatile int threads = Integer.getInteger("hintgrpo.threads", Runtime.getRuntime().availableProcessors());
    /** How long an idle worker (or a waiting caller) spins before it parks: longer than a decode step's gaps between calls. */
    static final long SPIN_NANOS = Long.getLong("hintgrpo.spinMicros", 200) * 1000;
    private static final ThreadLocal<Boolean> IN_WORKER = ThreadLocal.withInitial(() -> false);
    private static final ReentrantLock CALLER = new ReentrantLock();
    private static Pool pool; // guarded by Parallel.class
    private static long jobs; // guarded by CALLER

    private Parallel() {}

    public static int threads() {
        return threads;
    }

    /** Changes the thread count (tests use it to show results do not depend on it). */
    public static synchronized void setThreads(int n) {
        if (n < 1) throw new IllegalArgumentException("threads must be ≥ 1, got " + n);
        CALLER.lock(); // not while a job runs
        try {
            threads = n;
            if (pool != null) pool.stop();
            pool = null;
        } finally {
            CALLER.unlock();
        }
    }

    private static synchronized Pool pool() {
        if (pool == null) pool = new Pool(Math.max(1, threads - 1));
        return pool;
    }

    /** Runs body(0 … tasks−1), each once, on up to {@link #threads()} threads; returns when all are done. */
    public static void forEach(int tasks, IntConsumer body) {
        if (Math.min(threads, tasks) <= 1 || IN_WORKER.get() || !CALLER.tryLock()) {
            for (int i = 0; i < tasks; i++) body.accept(i);
            return;
        }
        try {
            Job job = new Job(body, tasks, Thread.currentThread(), ++jobs);
            Pool p = pool();
            p.publish(job);
            IN_WORKER.set(true); // a task that calls forEach again runs it inline: the workers are busy with this job
            try {
                job.work();
            } finally {
                IN_WORKER.set(false);
            }
            job.awaitDone();
            p.job = null; // the body's captured arrays are not kept alive by an idle pool
            Throwable failure = job.failure;
            if (failure instanceof RuntimeException re) throw re;
            if (failure instanceof Error err) throw err;
            if (failure != null) throw new RuntimeException(failure);
        } finally {
            CALLER.unlock();
        }
    }

    /** Number of tasks that split n items into chunks of at least grain items. */
    public static int tasksFor(long n, long grain) {
        return (int) Math.max(1, Math.min(4096, (n + grain - 1) / grain));
    }

    /** One forEach call: tasks are claimed from a counter; the caller waits until every claimed task has finished. */
    private static final class Job {
        final IntConsumer body;
        final int tasks;
        final Thread caller;
        final long seq;
        final AtomicInteger next = new AtomicInteger(), finished = new AtomicInteger();
        volatile Throwable failure;

        Job(IntConsumer body, int tasks, Thread caller, long seq) {
            this.body = body;
            this.tasks = tasks;
            this.caller = caller;
            this.seq = seq;
        }

        void work() {
            for (int i; (i = next.getAndIncrement()) < tasks; ) {
                try {
                    body.accept(i);
                } catch (Throwable t) {
                    if (failure == null) failure = t;
                }
                if (finished.incrementAndGet() == tasks && Thread.currentThread() != caller) LockSupport.unpark(caller);
            }
        }

        void awaitDone() {
            long start = System.nanoTime();
            while (finished.get() < tasks) {
                if (System.nanoTime() - start < SPIN_NANOS) Thread.onSpinWait();
                else LockSupport.parkNanos(this, 50_000);
            }
        }
    }

    private static final class Pool {
        final Thread[] workers;
        volatile Job job;
        volatile boolean stopped;

        Pool(int n) {
            workers = new Thread[n];
            for (int w = 0; w < n; w++) {
                workers[w] = new Thread(this::loop, "hintgrpo-cpu-" + w);
                workers[w].setDaemon(true);
                workers[w].start();
            }
        }

        void publish(Job j) {
            job = j;
            for (Thread w : workers) LockSupport.unpark(w); // cheap when the worker is spinning
        }

        void stop() {
            stopped = true;
            for (Thread w : workers) LockSupport.unpark(w);
        }

        private void loop() {
            IN_WORKER.set(true);
            long done = 0; // the last job this worker took part in
            long idleSince = System.nanoTime();
            while (!stopped) {
                Job j = job;
                if (j != null && j.seq != done) {
                    done = j.seq;
                    j.work();
                    idleSince = System.nanoTime();
                } else if (System.nanoTime() - idleSince < SPIN_NANOS) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.park(this);
                }
            }
        }
    }
}
