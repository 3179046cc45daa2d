package io.hintgrpo.trainer.report;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.text.DecimalFormat;
import java.text.DecimalFormatSymbols;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ChartTest {
    @TempDir
    Path dir;

    static double[] steps(int n) {
        double[] x = new double[n];
        for (int i = 0; i < n; i++) x[i] = i + 1;
        return x;
    }

    /** Two lines and one band, the band's mean having a NaN the line must skip. */
    static Chart sample() {
        int n = 40;
        double[] x = steps(n), a = new double[n], b = new double[n], m = new double[n], lo = new double[n], hi = new double[n];
        for (int i = 0; i < n; i++) {
            a[i] = 5 + Math.sin(i / 5.0);
            b[i] = 5.75 - i / 40.0;
            m[i] = 4.5 + i / 80.0;
            lo[i] = m[i] - 0.3;
            hi[i] = m[i] + 0.3;
        }
        m[7] = Double.NaN;
        a[0] = Double.NaN;
        return new Chart("reward", "step", "reward").add("hint-grpo", x, a).add("grpo", x, b).band("sft (3 seeds)", x, m, lo, hi);
    }

    static BufferedImage read(Path png) throws IOException {
        BufferedImage img = ImageIO.read(png.toFile());
        assertNotNull(img, png + " is not an image");
        return img;
    }

    @Test
    void writesAPngOfTheAskedSizeWithSomethingDrawn() throws IOException {
        Path png = dir.resolve("chart.png");
        sample().write(png, 760, 440);
        assertTrue(java.awt.GraphicsEnvironment.isHeadless(), "the chart draws without a display");
        BufferedImage img = read(png);
        assertEquals(760, img.getWidth());
        assertEquals(440, img.getHeight());
        int first = img.getRGB(0, 0), other = 0, band = 0;
        for (int y = 0; y < img.getHeight(); y++)
            for (int x = 0; x < img.getWidth(); x++) {
                int rgb = img.getRGB(x, y);
                if (rgb != first) other++;
                if (near(rgb, 199, 234, 224)) band++;
            }
        assertEquals(0xFFFFFFFF, first, "white background");
        assertTrue(other > 2000, "only " + other + " pixels differ from the background");
        // the third series' colour (0, 158, 115) at the band's alpha over white
        assertTrue(band > 1000, "only " + band + " pixels of the translucent band");
        assertEquals(List.of("chart.png"), names(), "no temporary file is left");
        if (!System.getProperty("os.name").startsWith("Windows"))
            assertEquals("rw-r--r--", PosixFilePermissions.toString(Files.getPosixFilePermissions(png)));
    }

    @Test
    void nonFiniteValuesAndEmptySeriesDoNotBreakIt() throws IOException {
        double[] x = steps(5), nan = {Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN};
        double[] one = {Double.NaN, Double.NaN, 0.7, Double.NaN, Double.NaN};
        Path png = dir.resolve("nan.png");
        new Chart("t", "step", "v").add("all NaN", x, nan).add("one point", x, one).band("band of NaN", x, one, nan, nan)
                .add("infinite", x, new double[]{1, Double.POSITIVE_INFINITY, 2, 3, Double.NEGATIVE_INFINITY}).write(png, 400, 300);
        assertEquals(400, read(png).getWidth());
        // nothing at all to draw still gives a (blank) chart, as a run with no steps yet asks
        Path empty = dir.resolve("empty.png");
        new Chart("t", "step", "v").add("none", new double[0], new double[0]).write(empty, 300, 200);
        assertEquals(200, read(empty).getHeight());
    }

    @Test
    void mismatchedLengthsNameTheSeries() {
        Chart c = new Chart("t", "x", "y");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> c.add("loss", steps(3), new double[2]));
        assertTrue(e.getMessage().contains("loss"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> c.band("reward", steps(3), new double[3], new double[3], new double[4]));
        assertTrue(e.getMessage().contains("reward") && e.getMessage().contains("upper"), e.getMessage());
    }

    @Test
    void aMissingFolderIsAnIOExceptionAndLeavesNothing() throws IOException {
        Path png = dir.resolve("no-such-folder").resolve("chart.png");
        assertThrows(IOException.class, () -> sample().write(png, 300, 200));
        assertFalse(Files.exists(png.getParent()));
        assertEquals(List.of(), names());
    }

    @Test
    void anExistingFileIsReplacedWhole() throws IOException {
        Path png = dir.resolve("chart.png");
        Files.writeString(png, "an older chart");
        sample().write(png, 320, 240);
        byte[] head = Files.readAllBytes(png);
        assertArrayEquals(new byte[]{(byte) 0x89, 'P', 'N', 'G'}, Arrays.copyOf(head, 4));
        assertEquals(320, read(png).getWidth());
        assertEquals(List.of("chart.png"), names());
    }

    @Test
    void tickPatternsHaveNoTrailingZeros() {
        assertEquals("#,##0.##", Chart.pattern(5));
        assertEquals("#,##0.###", Chart.pattern(0.3));
        assertEquals("#,##0", Chart.pattern(1000));
        assertEquals("5.75", new DecimalFormat(Chart.pattern(2), DecimalFormatSymbols.getInstance(Locale.ROOT)).format(5.750));
    }

    static boolean near(int rgb, int r, int g, int b) {
        return Math.abs((rgb >> 16 & 255) - r) <= 3 && Math.abs((rgb >> 8 & 255) - g) <= 3 && Math.abs((rgb & 255) - b) <= 3;
    }

    private List<String> names() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
