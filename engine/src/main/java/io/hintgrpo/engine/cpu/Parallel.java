package io.hintgrpo.engine.cpu;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;

/**
 * The CPU backend's thread pool. Work is split into tasks whose boundaries never depend on the
 * thread count, and each output element is computed by exactly one task in a fixed order, so
 * results are bit-identical for any number of threads. Threads: system property
 * {@code hintgrpo.threads}, else the available processors.
 */
public final class Parallel {
    private static volatile int threads = Integer.getInteger("hintgrpo.threads", Runtime.getRuntime().availableProcessors());
    private static volatile ExecutorService pool;
    private static final ThreadLocal<Boolean> IN_WORKER = ThreadLocal.withInitial(() -> false);

    private Parallel() {}

    public static int threads() {
        return threads;
    }

    /** Changes the thread count (tests use it to show results do not depend on it). */
    public static synchronized void setThreads(int n) {
        if (n < 1) throw new IllegalArgumentException("threads must be ≥ 1, got " + n);
        threads = n;
        if (pool != null) {
            pool.shutdown();
            pool = null;
        }
    }

    private static synchronized ExecutorService pool() {
        if (pool == null) {
            pool = Executors.newFixedThreadPool(Math.max(1, threads - 1), r -> {
                Thread t = new Thread(() -> {
                    IN_WORKER.set(true);
                    r.run();
                }, "hintgrpo-cpu");
                t.setDaemon(true);
                return t;
            });
        }
        return pool;
    }

    /** Runs body(0 … tasks−1), each once, on up to {@link #threads()} threads; returns when all are done. */
    public static void forEach(int tasks, IntConsumer body) {
        int workers = Math.min(threads, tasks);
        if (workers <= 1 || IN_WORKER.get()) {
            for (int i = 0; i < tasks; i++) body.accept(i);
            return;
        }
        AtomicInteger next = new AtomicInteger();
        Runnable worker = () -> {
            for (int i; (i = next.getAndIncrement()) < tasks; ) body.accept(i);
        };
        ExecutorService p = pool();
        Future<?>[] helpers = new Future<?>[workers - 1];
        for (int j = 0; j < helpers.length; j++) helpers[j] = p.submit(worker);
        Throwable failure = null;
        IN_WORKER.set(true); // a task that calls forEach again runs it inline: the pool is busy with this one
        try {
            worker.run();
        } catch (Throwable t) {
            failure = t;
        } finally {
            IN_WORKER.set(false);
        }
        for (Future<?> f : helpers) {
            try {
                f.get();
            } catch (java.util.concurrent.ExecutionException e) {
                if (failure == null) failure = e.getCause();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                if (failure == null) failure = e;
            }
        }
        if (failure instanceof RuntimeException re) throw re;
        if (failure instanceof Error err) throw err;
        if (failure != null) throw new RuntimeException(failure);
    }

    /** Number of tasks that split n items into chunks of at least grain items. */
    public static int tasksFor(long n, long grain) {
        return (int) Math.max(1, Math.min(4096, (n + grain - 1) / grain));
    }
}
