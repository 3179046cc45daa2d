package io.hintgrpo.engine.cuda;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The probe everywhere; the driver itself only where a usable GPU is (the GPU check runs this
 * class on one). Kernel launches are covered by the parity suite on {@code cuda}.
 */
class JCudaDriverTest {

    @Test
    void probeNeverThrowsAndGivesAReasonWhenUnusable() {
        JCudaDriver.Probe first = JCudaDriver.probe();
        JCudaDriver.Probe second = JCudaDriver.probe();
        if (first.usable()) {
            first.driver().close();
            second.driver().close();
            return;
        }
        assertTrue(first.reason().startsWith("no usable GPU: "), first.reason());
        // the library failure is caught once and remembered, not re-thrown as NoClassDefFoundError
        assertEquals(first.reason(), second.reason());
        IllegalStateException e = assertThrows(IllegalStateException.class, first::require);
        assertEquals(first.reason(), e.getMessage());
        // the constructor (what reflective callers use) throws the same reason
        JCudaDriver.NoUsableGpu ctor = assertThrows(JCudaDriver.NoUsableGpu.class, JCudaDriver::new);
        assertEquals(first.reason(), ctor.getMessage());
        System.out.println("JCudaDriver.probe(): " + first.reason());
    }

    @Test
    void probeWithoutLibcudaNamesIt() {
        assumeTrue(!new java.io.File("/usr/lib/x86_64-linux-gnu/libcuda.so.1").exists()
                && !new java.io.File("/usr/lib64/libcuda.so.1").exists()
                && System.getenv("LD_LIBRARY_PATH") == null, "a libcuda.so.1 may be present");
        String reason = JCudaDriver.probe().reason();
        assertNotNull(reason);
        assertTrue(reason.contains("libcuda.so.1: cannot open shared object file"), reason);
    }

    @Test
    void driverVersionsReadAsPeopleWriteThem() {
        assertEquals("CUDA 13.0, r580.159.04", JCudaDriver.describeDriver(13000, "580.159.04"));
        assertEquals("CUDA 12.4", JCudaDriver.describeDriver(12040, null));
        assertEquals("CUDA version unknown", JCudaDriver.describeDriver(0, null));
        assertEquals("580.159.04", JCudaDriver.parseKernelDriver(
                "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (dvs-builder@U16)\n"));
        assertEquals("550.54.15", JCudaDriver.parseKernelDriver("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024"));
        assertNull(JCudaDriver.parseKernelDriver("something else"));
    }

    @Test
    void linkFailuresKeepTheLoadersWords() {
        String jcudaStyle = "Error while loading native library \"JCudaDriver-12.6.0-linux-x86_64\"\n"
                + "java.lang.UnsatisfiedLinkError: no JCudaDriver-12.6.0-linux-x86_64 in java.library.path: /usr/lib\n\tat x.y(Z.java:1)\n"
                + "java.lang.UnsatisfiedLinkError: /tmp/libJCudaDriver-12.6.0-linux-x86_64.so: libcuda.so.1: cannot open shared object file: No such file or directory\n"
                + "\tat x.y(Z.java:2)\n";
        assertEquals("libcuda.so.1: cannot open shared object file: No such file or directory",
                JCudaDriver.linkProblem(new UnsatisfiedLinkError(jcudaStyle)));
        assertEquals("NoClassDefFoundError: jcuda/driver/JCudaDriver",
                JCudaDriver.linkProblem(new NoClassDefFoundError("jcuda/driver/JCudaDriver")));
    }

    @Test
    void roundTripsOnARealGpu() {
        JCudaDriver.Probe probe = JCudaDriver.probe();
        assumeTrue(probe.usable(), probe.reason());
        try (JCudaDriver d = probe.driver()) {
            System.out.println("JCudaDriver: " + d.describe());
            assertTrue(d.totalMemory() > 0 && d.freeMemory() > 0);
            int n = 1 << 20;
            float[] x = new float[n];
            SplittableRandom rng = new SplittableRandom(1);
            for (int i = 0; i < n; i++) x[i] = (float) rng.nextGaussian();
            long a = d.malloc(4L * n), b = d.malloc(4L * n);

            // sync copies, with offsets on both sides
            d.copyHostToDevice(a, x, 0, n);
            d.copyDeviceToDevice(b, a + 4L * 10, 4L * (n - 10));
            float[] y = new float[n];
            d.copyDeviceToHost(y, 5, b, n - 10);
            d.synchronize();
            for (int i = 0; i < n - 10; i++) assertEquals(x[i + 10], y[i + 5]);
            int[] ints = {1, -2, 3, Integer.MAX_VALUE};
            int[] back = new int[4];
            d.copyHostToDevice(a, ints, 0, 4);
            d.copyDeviceToHost(back, 0, a, 4);
            assertArrayEquals(ints, back);

            // async through pinned buffers on a stream, timed with events; then a stream refused once destroyed
            long s = d.newStream();
            ByteBuffer in = d.allocPinned(4L * n), out = d.allocPinned(4L * n);
            in.asFloatBuffer().put(x);
            long start = d.recordEvent(s);
            d.copyHostToDeviceAsync(b, in, 0, 4L * n, s);
            d.copyDeviceToHostAsync(out, 0, b, 4L * n, s);
            long end = d.recordEvent(s);
            d.synchronizeStream(s);
            FloatBuffer fout = out.asFloatBuffer();
            for (int i = 0; i < n; i++) assertEquals(x[i], fout.get(i));
            float ms = d.elapsedMillis(start, end);
            assertTrue(ms >= 0, "elapsed " + ms);
            System.out.printf("JCudaDriver: 2 x 4 MiB pinned copies in %.3f ms%n", ms);
            d.destroyEvent(start);
            d.destroyEvent(end);
            d.freePinned(in);
            assertThrows(IllegalArgumentException.class, () -> d.copyHostToDeviceAsync(b, in, 0, 4, s));
            d.destroyStream(s);
            assertThrows(IllegalArgumentException.class, () -> d.synchronizeStream(s));
            assertThrows(IllegalArgumentException.class, () -> d.setStream(s));
            assertThrows(IllegalArgumentException.class, () -> d.destroyStream(Driver.DEFAULT_STREAM));
            // out stays allocated: close() frees it
            d.free(a);
            d.free(b);

            assertThrows(IllegalArgumentException.class, () -> d.launch("no_such_kernel", 1, 1, 1, 1, 1, 1, 0));
            IllegalStateException oom = assertThrows(IllegalStateException.class, () -> d.malloc(d.totalMemory() * 2));
            assertTrue(oom.getMessage().contains("cuMemAlloc"), oom.getMessage());
        }
    }

    /** Capture and replay on the device: a captured fill runs only when launched, and a refused op ends the capture cleanly. */
    @Test
    void graphsCaptureAndReplayOnARealGpu() {
        JCudaDriver.Probe probe = JCudaDriver.probe();
        assumeTrue(probe.usable(), probe.reason());
        try (JCudaDriver d = probe.driver()) {
            int n = 1 << 16;
            long a = d.malloc(4L * n);
            d.copyHostToDevice(a, new float[n], 0, n);
            long s = d.newStream();
            d.setStream(s);
            long g = d.captureGraph(s, () -> d.launch("fill_f32", 64, 1, 1, 256, 1, 1, 0, a, 2.5f, (long) n));
            d.setStream(Driver.DEFAULT_STREAM);
            float[] back = new float[n];
            d.copyDeviceToHost(back, 0, a, n);
            assertEquals(0f, back[n - 1], "captured, not run");
            d.launchGraph(g, Driver.DEFAULT_STREAM);
            d.copyDeviceToHost(back, 0, a, n);
            for (float f : back) assertEquals(2.5f, f);

            d.setStream(s);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> d.captureGraph(s, () -> d.malloc(64)));
            assertTrue(e.getMessage().startsWith("malloc during the graph capture"), e.getMessage());
            d.setStream(Driver.DEFAULT_STREAM);
            // the stream left capture mode: it takes ordinary work again
            d.setStream(s);
            d.launch("fill_f32", 64, 1, 1, 256, 1, 1, 0, a, 1f, (long) n);
            d.synchronizeStream(s);
            d.setStream(Driver.DEFAULT_STREAM);
            d.copyDeviceToHost(back, 0, a, n);
            assertEquals(1f, back[0]);
            assertThrows(IllegalArgumentException.class, () -> d.captureGraph(Driver.DEFAULT_STREAM, () -> {}));
            d.destroyGraph(g);
            assertThrows(IllegalArgumentException.class, () -> d.launchGraph(g, Driver.DEFAULT_STREAM));
            d.free(a);
        }
    }
}
