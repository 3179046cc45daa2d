package io.hintgrpo.trainer.report;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** A small PNG line chart (Java2D, headless): a few named series of (x, y) points on shared axes. */
public final class LinePlot {
    private static final Color[] COLORS = {new Color(31, 119, 180), new Color(214, 39, 40), new Color(44, 160, 44), new Color(148, 103, 189), new Color(255, 127, 14)};

    public record Series(String name, double[] x, double[] y) {}

    private final String title, xLabel, yLabel;
    private final List<Series> series = new ArrayList<>();

    public LinePlot(String title, String xLabel, String yLabel) {
        this.title = title;
        this.xLabel = xLabel;
        this.yLabel = yLabel;
    }

    public LinePlot add(String name, double[] x, double[] y) {
        if (x.length != y.length) throw new IllegalArgumentException(name + ": " + x.length + " x values, " + y.length + " y values");
        series.add(new Series(name, x.clone(), y.clone()));
        return this;
    }

    /** Writes the chart atomically as a PNG of width × height pixels. */
    public void write(Path file, int width, int height) throws IOException {
        System.setProperty("java.awt.headless", "true");
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, width, height);
        int left = 70, right = 20, top = 40, bottom = 50;
        double x0 = Double.POSITIVE_INFINITY, x1 = Double.NEGATIVE_INFINITY, y0 = Double.POSITIVE_INFINITY, y1 = Double.NEGATIVE_INFINITY;
        for (Series s : series)
            for (int i = 0; i < s.x.length; i++) {
                if (!Double.isFinite(s.y[i])) continue;
                x0 = Math.min(x0, s.x[i]); x1 = Math.max(x1, s.x[i]);
                y0 = Math.min(y0, s.y[i]); y1 = Math.max(y1, s.y[i]);
            }
        if (!(x1 > x0)) { x0 = Double.isFinite(x0) ? x0 - 1 : 0; x1 = x0 + 2; }
        if (!(y1 > y0)) { y0 = Double.isFinite(y0) ? y0 - 1 : 0; y1 = y0 + 2; }
        double pad = 0.05 * (y1 - y0);
        y0 -= pad; y1 += pad;
        int pw = width - left - right, ph = height - top - bottom;
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
        g.drawString(title, left, 24);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
        g.drawRect(left, top, pw, ph);
        for (int t = 0; t <= 4; t++) {
            double yv = y0 + (y1 - y0) * t / 4, xv = x0 + (x1 - x0) * t / 4;
            int py = top + ph - (int) (ph * t / 4.0), px = left + (int) (pw * t / 4.0);
            g.setColor(new Color(230, 230, 230));
            g.drawLine(left + 1, py, left + pw - 1, py);
            g.setColor(Color.DARK_GRAY);
            g.drawString(String.format(Locale.ROOT, "%.3g", yv), 5, py + 4);
            g.drawString(String.format(Locale.ROOT, "%.4g", xv), px - 10, top + ph + 16);
        }
        g.drawString(xLabel, left + pw / 2 - 20, height - 10);
        g.drawString(yLabel, 5, top - 8);
        g.setStroke(new BasicStroke(1.6f));
        for (int k = 0; k < series.size(); k++) {
            Series s = series.get(k);
            g.setColor(COLORS[k % COLORS.length]);
            int prevX = -1, prevY = -1;
            for (int i = 0; i < s.x.length; i++) {
                if (!Double.isFinite(s.y[i])) { prevX = -1; continue; }
                int px = left + (int) Math.round((s.x[i] - x0) / (x1 - x0) * pw);
                int py = top + ph - (int) Math.round((s.y[i] - y0) / (y1 - y0) * ph);
                if (prevX >= 0) g.drawLine(prevX, prevY, px, py);
                else if (s.x.length == 1 || (i + 1 < s.x.length && !Double.isFinite(s.y[i + 1]))) g.fillOval(px - 2, py - 2, 5, 5);
                prevX = px;
                prevY = py;
            }
            g.drawString(s.name, left + pw - 150, top + 16 + 14 * k);
        }
        g.dispose();
        Path tmp = Files.createTempFile(file.toAbsolutePath().getParent(), ".plot-", ".png");
        io.hintgrpo.trainer.data.AtomicFiles.readableByAll(tmp);
        try {
            ImageIO.write(img, "png", tmp.toFile());
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
