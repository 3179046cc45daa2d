package io.hintgrpo.trainer.serve;

import io.hintgrpo.engine.Kernels;
import io.hintgrpo.engine.model.Generator;
import io.hintgrpo.engine.model.Model;
import io.hintgrpo.engine.model.Sequence;
import io.hintgrpo.trainer.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * The one thread that owns the model. Requests arrive as {@link Job}s (n rows each: choice i of a
 * request draws from stream {@code Kernels.streamKey(seed, i)}); rows wait in FIFO order until a
 * decode batch ({@link Generator.DecodeBatch}) of their sampling setting has a free slot, join it
 * between steps (continuous batching), and every loop steps each batch that has active rows once
 * (round robin). A row's tokens depend only on its prompt, key and setting, never on the batch,
 * slot or the other rows, so a request's answer is the same alone or under load.
 *
 * <p>Tokens become text here (the stop strings need it): each token is one {@link Event} on its
 * job's queue, with the text it added. A streamed row's text is held back while it may still turn
 * into a stop string or ends inside a multi-byte character, so the pieces a client receives add
 * up to the final text. A cancelled job's rows are retired from their batches at the next loop.
 */
public final class Scheduler {
    /** The error of the event that ends a request still waiting or running when the server stops. */
    public static final String SHUTTING_DOWN = "the server is shutting down";

    /** The settings a decode batch shares; greedy ignores top-k and top-p, so those are normalised away. */
    public record Sampling(float temperature, int topK, float topP, boolean logprobs) {
        public static Sampling of(float temperature, int topK, float topP, boolean logprobs) {
            return temperature == 0f ? new Sampling(0f, 0, 1f, logprobs) : new Sampling(temperature, topK, topP, logprobs);
        }
    }

    /**
     * One token of a choice and the text it added (maybe empty, held back); finish is "stop" or
     * "length" on the choice's last token, else null. An event with error non-null ends the whole job.
     */
    public record Event(int choice, String text, int token, float logprob, String finish, String error) {
        static Event failed(String message) {
            return new Event(-1, "", -1, Float.NaN, null, message);
        }
    }

    /** A request in the scheduler: what to generate and the queue its events go to. */
    public static final class Job {
        final ChatRequest request;
        final BlockingQueue<Event> events = new LinkedBlockingQueue<>();
        private volatile boolean cancelled;
        private int rowsLeft; // scheduler thread only
        private boolean released;

        public Job(ChatRequest request) {
            this.request = request;
            this.rowsLeft = request.n();
        }

        /** The client went away: its rows are retired at the scheduler's next loop. */
        public void cancel() {
            cancelled = true;
        }

        /** The next event, or null after timeoutMs. */
        public Event next(long timeoutMs) throws InterruptedException {
            return events.poll(timeoutMs, TimeUnit.MILLISECONDS);
        }
    }

    /** One choice of a job: its tokens so far and the text already handed out. */
    private static final class Row {
        final Job job;
        final int choice;
        int[] tokens = new int[16];
        int count;
        String sent = "";

        Row(Job job, int choice) {
            this.job = job;
            this.choice = choice;
        }
    }

    /** A decode batch of one sampling setting and the row in each of its slots. */
    private static final class Lane {
        final Sampling sampling;
        final Generator.DecodeBatch batch;
        final Row[] rows;
        boolean draining; // takes no new rows, so it empties and its place goes to a setting that waits
        long idleSince = -1; // System.nanoTime when its last row ended, −1 while rows run

        Lane(Sampling sampling, Generator.DecodeBatch batch) {
            this.sampling = sampling;
            this.batch = batch;
            this.rows = new Row[batch.capacity()];
        }
    }

    /** How long a batch without rows stays open. */
    static final long IDLE_CLOSE_NANOS = TimeUnit.SECONDS.toNanos(2);

    private final Tokenizer tok;
    private final Generator generator;
    private final int batchSize, maxContext, maxBatches, maxQueue;
    private final int[] stopTokens;
    private final Consumer<String> log;
    private final BlockingQueue<Job> incoming = new LinkedBlockingQueue<>();
    private final List<Row> pending = new ArrayList<>();
    private final List<Lane> lanes = new ArrayList<>();
    private final Thread thread;
    private final AtomicLong cancelledRows = new AtomicLong();
    private int jobs; // submitted and not yet released; guarded by this
    private boolean intakeClosed; // guarded by this
    private volatile boolean abandon;
    private volatile int running, waiting, batches;

    /**
     * batchSize rows per decode batch, maxContext positions (prompt + response) per row, at most
     * maxBatches batches open at once, at most maxQueue requests waiting or running.
     */
    public Scheduler(Model model, Tokenizer tok, int batchSize, int maxContext, int maxBatches, int maxQueue, Consumer<String> log) {
        this.tok = tok;
        this.generator = new Generator(model);
        this.batchSize = batchSize;
        this.maxContext = maxContext;
        this.maxBatches = maxBatches;
        this.maxQueue = maxQueue;
        this.log = log;
        this.stopTokens = tok.specials().responseStops(); // as hintgrpo generate stops
        thread = new Thread(this::loop, "hintgrpo-scheduler");
        thread.setDaemon(true);
        thread.start();
    }

    /** Queues a job; 429 when maxQueue requests are already in, 503 once the server stops taking requests. */
    public synchronized void submit(Job job) {
        if (intakeClosed || !thread.isAlive())
            throw new ApiError(503, "server_error", null, "shutting_down", SHUTTING_DOWN);
        if (jobs >= maxQueue)
            throw new ApiError(429, "rate_limit_error", null, "queue_full", "the server has " + jobs
                    + " requests in (its --max-queue); retry later");
        jobs++;
        incoming.add(job);
    }

    /** Rows decoding now. */
    public int running() {
        return running;
    }

    /** Rows waiting for a slot. */
    public int waiting() {
        return waiting;
    }

    /** Decode batches open (busy, or idle for less than {@link #IDLE_CLOSE_NANOS}). */
    public int batches() {
        return batches;
    }

    /** Rows retired or dropped because their request was cancelled (its client went away, or it failed). */
    public long cancelledRows() {
        return cancelledRows.get();
    }

    /** Requests in (waiting or running). */
    public synchronized int requests() {
        return jobs;
    }

    /**
     * Takes no more jobs, lets those in finish until deadlineNanos (System.nanoTime), then ends the
     * rest with an error event and stops the thread. Returns whether everything finished in time.
     */
    public boolean stop(long deadlineNanos) throws InterruptedException {
        synchronized (this) {
            intakeClosed = true;
        }
        long left = deadlineNanos - System.nanoTime();
        if (left > 0) thread.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
        boolean finished = !thread.isAlive();
        abandon = true;
        thread.join();
        return finished;
    }

    private void loop() {
        try {
            while (true) {
                boolean idle = pending.isEmpty() && running == 0;
                synchronized (this) {
                    if (idle && intakeClosed && incoming.isEmpty()) break;
                }
                if (abandon) break;
                Job j = idle ? incoming.poll(50, TimeUnit.MILLISECONDS) : incoming.poll();
                for (; j != null; j = incoming.poll()) for (int i = 0; i < j.request.n(); i++) pending.add(new Row(j, i));
                dropCancelled();
                admit();
                for (Lane lane : new ArrayList<>(lanes)) if (lane.batch.active() > 0) step(lane);
                closeIdleLanes();
                count();
            }
        } catch (Throwable e) { // InterruptedException included: nothing else stops this thread
            log.accept("scheduler stopped: " + e);
        } finally {
            // what is still in ends with an error event; the model is left for its owner to close
            for (Lane lane : lanes) {
                for (Row r : lane.rows) if (r != null) fail(r.job, SHUTTING_DOWN);
                lane.batch.close();
            }
            lanes.clear();
            for (Row r : pending) fail(r.job, SHUTTING_DOWN);
            pending.clear();
            synchronized (this) {
                intakeClosed = true;
                for (Job j = incoming.poll(); j != null; j = incoming.poll()) fail(j, SHUTTING_DOWN);
            }
            count();
        }
    }

    /** Rows of cancelled jobs leave their slots and the queue. */
    private void dropCancelled() {
        for (Iterator<Row> it = pending.iterator(); it.hasNext(); ) {
            Row r = it.next();
            if (r.job.cancelled) { it.remove(); cancelledRows.incrementAndGet(); rowDone(r.job); }
        }
        for (Lane lane : lanes) {
            for (int s = 0; s < lane.rows.length; s++) {
                Row r = lane.rows[s];
                if (r == null || !r.job.cancelled) continue;
                lane.batch.retire(s);
                lane.rows[s] = null;
                cancelledRows.incrementAndGet();
                rowDone(r.job);
            }
        }
    }

    /** Waiting rows into free slots, oldest first; a setting without a batch gets one, or waits for one to drain. */
    private void admit() {
        for (Iterator<Row> it = pending.iterator(); it.hasNext(); ) {
            Row r = it.next();
            Sampling want = r.job.request.sampling();
            Lane lane = null;
            boolean hasLane = false;
            for (Lane l : lanes) {
                if (!l.sampling.equals(want) || l.draining) continue;
                hasLane = true;
                if (l.batch.freeSlot() >= 0) { lane = l; break; }
            }
            if (lane == null) lane = newLane(want, hasLane);
            if (lane == null) continue;
            it.remove();
            int slot = lane.batch.freeSlot();
            ChatRequest q = r.job.request;
            Generator.Token t;
            try {
                t = lane.batch.admit(q.prompt(), Kernels.streamKey(q.seed(), r.choice), q.maxTokens(), stopTokens);
            } catch (RuntimeException e) {
                log.accept("admitting a request failed: " + e);
                fail(r.job, "generation failed: " + e.getMessage());
                continue;
            }
            lane.rows[slot] = r;
            deliver(lane, r, t);
        }
    }

    /**
     * A batch for a setting: a new one while fewer than maxBatches are open (also a second one of a
     * setting whose batch is full), else an idle one replaced; else one batch is marked draining.
     */
    private Lane newLane(Sampling want, boolean hasLane) {
        if (lanes.size() >= maxBatches) {
            Lane idle = null;
            for (Lane l : lanes) if (l.batch.active() == 0) idle = l;
            if (idle == null) {
                if (!hasLane && lanes.stream().noneMatch(l -> l.draining)) {
                    Lane least = lanes.get(0);
                    for (Lane l : lanes) if (l.batch.active() < least.batch.active()) least = l;
                    least.draining = true;
                }
                return null;
            }
            idle.batch.close();
            lanes.remove(idle);
        }
        Lane lane = new Lane(want, generator.new DecodeBatch(batchSize, maxContext,
                new Generator.Options(1, want.temperature(), want.topK(), want.topP(), 0, null, want.logprobs())));
        lanes.add(lane);
        return lane;
    }

    private void step(Lane lane) {
        List<Generator.Token> tokens;
        try {
            tokens = lane.batch.step();
        } catch (RuntimeException e) { // the batch's rows fail; the server goes on
            log.accept("a decode step failed: " + e);
            for (Row r : lane.rows) if (r != null) fail(r.job, "generation failed: " + e.getMessage());
            lane.batch.close();
            lanes.remove(lane);
            return;
        }
        for (Generator.Token t : tokens) {
            Row r = lane.rows[t.slot()];
            if (r != null) deliver(lane, r, t);
        }
    }

    /**
     * Batches idle for {@link #IDLE_CLOSE_NANOS} go (their caches are the memory); a client's next
     * request within that time finds its batch (and on a GPU its captured graph) still there.
     */
    private void closeIdleLanes() {
        long now = System.nanoTime();
        for (Iterator<Lane> it = lanes.iterator(); it.hasNext(); ) {
            Lane l = it.next();
            if (l.batch.active() > 0) {
                l.idleSince = -1;
                continue;
            }
            if (l.idleSince < 0) l.idleSince = now;
            if (!l.draining && now - l.idleSince < IDLE_CLOSE_NANOS) continue;
            l.batch.close();
            it.remove();
        }
    }

    /** One token of a row to its job: the text it adds, and the row's end (stop token, budget or stop string). */
    private void deliver(Lane lane, Row r, Generator.Token t) {
        if (r.count == r.tokens.length) r.tokens = Arrays.copyOf(r.tokens, 2 * r.count);
        r.tokens[r.count++] = t.token();
        ChatRequest q = r.job.request;
        String finish = t.last() ? (t.stopped() ? "stop" : "length") : null;
        String delta = "";
        // text is decoded per token only where someone reads it early (streaming) or stop strings need it
        if (finish != null || q.stream() || !q.stop().isEmpty()) {
            String text;
            synchronized (tok) {
                text = tok.responseText(r.tokens, r.count);
            }
            int cut = firstStop(text, q.stop());
            if (cut >= 0) {
                text = text.substring(0, cut);
                if (finish == null) lane.batch.retire(t.slot());
                finish = "stop";
            }
            String ready = finish != null ? text : heldBack(text, q.stop());
            if (ready.startsWith(r.sent)) {
                delta = ready.substring(r.sent.length());
                r.sent = ready;
            }
        }
        r.job.events.add(new Event(r.choice, delta, t.token(), t.logprob(), finish, null));
        if (finish != null) {
            lane.rows[t.slot()] = null;
            rowDone(r.job);
        }
    }

    /** Where the first stop string starts in text, or −1. */
    static int firstStop(String text, List<String> stops) {
        int at = -1;
        for (String s : stops) {
            int i = text.indexOf(s);
            if (i >= 0 && (at < 0 || i < at)) at = i;
        }
        return at;
    }

    /**
     * The part of a row's text that is safe to send: without a trailing replacement character (a
     * token that ends inside a multi-byte character) and without an ending that may still grow
     * into a stop string.
     */
    static String heldBack(String text, List<String> stops) {
        int end = text.length();
        while (end > 0 && text.charAt(end - 1) == '\uFFFD') end--;
        int keep = end;
        for (String s : stops)
            for (int k = Math.min(s.length() - 1, end); k > 0; k--)
                if (text.startsWith(s.substring(0, k), end - k)) { keep = Math.min(keep, end - k); break; }
        return text.substring(0, keep);
    }

    /** The job ends with an error event; its other rows are retired at the next loop. */
    private void fail(Job job, String message) {
        job.cancelled = true;
        if (job.released) return;
        job.events.add(Event.failed(message));
        release(job);
    }

    private void rowDone(Job job) {
        if (--job.rowsLeft == 0) release(job);
    }

    private void release(Job job) {
        if (job.released) return;
        job.released = true;
        synchronized (this) {
            jobs--;
        }
    }

    private void count() {
        int r = 0;
        for (Lane l : lanes) r += l.batch.active();
        running = r;
        batches = lanes.size();
        waiting = pending.size() + incoming.size();
    }
}
