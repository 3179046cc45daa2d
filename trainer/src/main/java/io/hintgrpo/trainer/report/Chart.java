package io.hintgrpo.trainer.report;

import io.hintgrpo.trainer.data.AtomicFiles;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.AxesChartStyler;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.XYStyler;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.font.FontRenderContext;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * A PNG line chart (XChart, headless): named series of (x, y) points on shared axes, each
 * optionally with a translucent band around it (mean ± std over seeds, say).
 */
public final class Chart {
    static {
        // a training box has no display; XChart only paints into a BufferedImage
        System.setProperty("java.awt.headless", "true");
    }

    // Okabe–Ito, safe for the common colour blindnesses; its yellow is left out (unreadable on white)
    private static final Color[] COLORS = {
            new Color(0, 114, 178), new Color(213, 94, 0), new Color(0, 158, 115), new Color(204, 121, 167),
            new Color(230, 159, 0), new Color(86, 180, 233), new Color(0, 0, 0)};
    private static final int BAND_ALPHA = 56;

    private record Series(String name, double[] x, double[] y, double[] lower, double[] upper) {}

    private final String title, xLabel, yLabel;
    private final List<Series> series = new ArrayList<>();

    public Chart(String title, String xLabel, String yLabel) {
        this.title = title;
        this.xLabel = xLabel;
        this.yLabel = yLabel;
    }

    /** A line. */
    public Chart add(String name, double[] x, double[] y) {
        check(name, x, y, "y");
        series.add(new Series(name, x.clone(), y.clone(), null, null));
        return this;
    }

    /** A line with a translucent band from lower to upper in its colour; the band has no legend entry. */
    public Chart band(String name, double[] x, double[] y, double[] lower, double[] upper) {
        check(name, x, y, "y");
        check(name, x, lower, "lower");
        check(name, x, upper, "upper");
        series.add(new Series(name, x.clone(), y.clone(), lower.clone(), upper.clone()));
        return this;
    }

    private static void check(String name, double[] x, double[] v, String what) {
        if (x.length != v.length)
            throw new IllegalArgumentException(name + ": " + x.length + " x values, " + v.length + " " + what + " values");
    }

    /** Writes the chart atomically as a PNG of width × height pixels. */
    public void write(Path file, int width, int height) throws IOException {
        XYChart chart = new XYChartBuilder().width(width).height(height).title(title).xAxisTitle(xLabel).yAxisTitle(yLabel).build();
        XYStyler s = chart.getStyler();
        s.setChartBackgroundColor(Color.WHITE);
        s.setPlotBackgroundColor(Color.WHITE);
        s.setPlotBorderColor(Color.GRAY);
        s.setPlotGridLinesColor(new Color(225, 225, 225));
        s.setPlotGridLinesStroke(new BasicStroke(1f));
        s.setChartTitleBoxVisible(false);
        s.setLegendBorderColor(Color.WHITE);
        s.setLocale(Locale.ROOT); // 0.5, never 0,5
        s.setXAxisDecimalPattern(pattern(range(true)));
        s.setYAxisDecimalPattern(pattern(range(false)));
        s.setYAxisLabelAlignment(AxesChartStyler.TextAlignment.Right); // 1 next to its tick, as 1.2 is
        // outside the plot, so it never covers a line: one row below when the names fit, else a column to the right
        boolean row = legendRowWidth(s) <= width - 4 * s.getChartPadding(); // a margin: the width is an estimate
        s.setLegendPosition(row ? Styler.LegendPosition.OutsideS : Styler.LegendPosition.OutsideE);
        s.setLegendLayout(row ? Styler.LegendLayout.Horizontal : Styler.LegendLayout.Vertical);

        // XChart puts the ticks of an x axis whose values are all equally spaced (steps 1, 2, 3, …)
        // on every k-th value (1, 3, 5, … or 1, 8, 15, …); a hidden copy of one point, added first,
        // breaks that spacing, so x gets round ticks (10, 20, 30) as y does. Hidden series' names
        // start with NUL, so they never collide with a caller's
        for (Series d : series) {
            double[][] pts = finite(d.x, d.y);
            if (pts[0].length == 0) continue;
            int last = pts[0].length - 1;
            hide(chart.addSeries("\0ticks", new double[]{pts[0][last]}, new double[]{pts[1][last]}));
            break;
        }
        // bands before lines, so every line is drawn over them; a series keeps its colour slot even
        // when left out, so the same runs get the same colours on every chart
        for (int k = 0; k < series.size(); k++) {
            Series d = series.get(k);
            if (d.lower == null) continue;
            double[][] poly = bandPolygon(d);
            if (poly[0].length < 2) continue;
            Color c = COLORS[k % COLORS.length];
            XYSeries b = chart.addSeries("\0band " + k, poly[0], poly[1]);
            hide(b);
            b.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.PolygonArea);
            b.setFillColor(new Color(c.getRed(), c.getGreen(), c.getBlue(), BAND_ALPHA));
        }
        for (int k = 0; k < series.size(); k++) {
            Series d = series.get(k);
            double[][] pts = finite(d.x, d.y);
            if (pts[0].length == 0) continue;
            XYSeries l = chart.addSeries(d.name, pts[0], pts[1]);
            l.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
            l.setLineColor(COLORS[k % COLORS.length]);
            l.setLineWidth(1.8f);
            l.setMarkerColor(COLORS[k % COLORS.length]);
            // a lone point draws no line: it needs a marker to show at all
            l.setMarker(pts[0].length == 1 ? SeriesMarkers.CIRCLE : SeriesMarkers.NONE);
        }

        Path tmp = Files.createTempFile(file.toAbsolutePath().getParent(), ".chart-", ".png");
        try {
            AtomicFiles.readableByAll(tmp);
            try (OutputStream out = Files.newOutputStream(tmp)) {
                BitmapEncoder.saveBitmap(chart, out, BitmapEncoder.BitmapFormat.PNG);
            }
            AtomicFiles.moveIntoPlace(tmp, file);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** A series drawn without line, marker or legend entry (a band's fill is set afterwards). */
    private static void hide(XYSeries h) {
        h.setLineColor(new Color(0, 0, 0, 0));
        h.setMarker(SeriesMarkers.NONE);
        h.setShowInLegend(false);
    }

    /** About how wide XChart's one-row legend of the drawn series is: per name a line sample, the name and two paddings. */
    private double legendRowWidth(XYStyler s) {
        FontRenderContext frc = new FontRenderContext(null, true, true);
        double w = 2 * s.getLegendPadding();
        for (Series d : series)
            if (finite(d.x, d.y)[0].length > 0)
                w += s.getLegendSeriesLineLength() + s.getLegendFont().getStringBounds(d.name, frc).getWidth() + 2 * s.getLegendPadding();
        return w;
    }

    /** The points whose x and y are both finite. */
    private static double[][] finite(double[] x, double[] y) {
        int n = 0;
        double[] fx = new double[x.length], fy = new double[x.length];
        for (int i = 0; i < x.length; i++)
            if (Double.isFinite(x[i]) && Double.isFinite(y[i])) { fx[n] = x[i]; fy[n++] = y[i]; }
        return new double[][]{Arrays.copyOf(fx, n), Arrays.copyOf(fy, n)};
    }

    /** The band as one closed polygon: along upper left to right, back along lower; points with a non-finite bound skipped. */
    private static double[][] bandPolygon(Series d) {
        int n = 0;
        double[] x = new double[d.x.length], lo = new double[d.x.length], hi = new double[d.x.length];
        for (int i = 0; i < d.x.length; i++)
            if (Double.isFinite(d.x[i]) && Double.isFinite(d.lower[i]) && Double.isFinite(d.upper[i])) {
                x[n] = d.x[i]; lo[n] = d.lower[i]; hi[n++] = d.upper[i];
            }
        double[] px = new double[2 * n], py = new double[2 * n];
        for (int i = 0; i < n; i++) {
            px[i] = x[i]; py[i] = hi[i];
            px[2 * n - 1 - i] = x[i]; py[2 * n - 1 - i] = lo[i];
        }
        return new double[][]{px, py};
    }

    /** The span of the finite values on one axis (bands included), 0 when there are none. */
    private double range(boolean xAxis) {
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (Series d : series)
            for (double[] v : xAxis ? new double[][]{d.x} : new double[][]{d.y, d.lower, d.upper}) {
                if (v == null) continue;
                for (double a : v) if (Double.isFinite(a)) { lo = Math.min(lo, a); hi = Math.max(hi, a); }
            }
        return hi > lo ? hi - lo : 0;
    }

    /**
     * Tick labels with as many decimals as the span needs and no trailing zeros (5.75, not
     * 5.750): three significant digits of the span, enough for ticks 0.25 apart on a span of 1.
     */
    static String pattern(double span) {
        int decimals = span > 0 ? Math.max(0, Math.min(8, 2 - (int) Math.floor(Math.log10(span)))) : 2;
        return decimals == 0 ? "#,##0" : "#,##0." + "#".repeat(decimals);
    }
}
