package io.hintgrpo.trainer.format;

import io.hintgrpo.trainer.tokenizer.SpecialTokens;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static io.hintgrpo.trainer.tokenizer.SpecialTokens.*;

/**
 * Reads a model's response against the DC grammar of {@link DcFormat}. Never throws: any text,
 * however broken, gives a {@link ParsedResponse} saying what was found and, if the response is not
 * valid, the first reason why. Leading/trailing whitespace and one trailing end-of-turn (or
 * end-of-text) token are allowed; anything else outside the three segments makes it invalid.
 */
public final class DcParser {
    private DcParser() {}

    /** Read leniently (whitespace) so a sloppy response still reports its polarity; validity needs the exact form. */
    private static final Pattern POLARITY = Pattern.compile("^\\s*polarity:\\s*(negative|neutral|positive)\\s*\\.");
    private static final Pattern EXACT_POLARITY = Pattern.compile("^polarity: (negative|neutral|positive)\\.");
    private static final Pattern NUMBER = Pattern.compile("-?\\d+(\\.\\d+)?");
    private static final List<String> NON_DC_SPECIALS = List.of(PAD, IM_START, IM_END, AUDIO, VISION, UNK);

    /** A tagged segment: its text (to the end of input when unterminated) and where it lies. */
    private record Segment(String text, int open, int close) {
        boolean terminated() { return close >= 0; }
    }

    public static ParsedResponse parse(String response) {
        String s = stripEnd(response == null ? "" : response);
        Segment disc = segment(s, DISC_OPEN, DISC_CLOSE);
        Segment calib = segment(s, CALIB_OPEN, CALIB_CLOSE);
        Segment answer = segment(s, ANSWER_OPEN, ANSWER_CLOSE);

        Polarity polarity = null;
        if (disc != null) {
            Matcher m = POLARITY.matcher(disc.text());
            if (m.find()) polarity = Polarity.fromWord(m.group(1));
        }
        float score = Float.NaN;
        String scoreProblem = null;
        if (answer == null) scoreProblem = "missing " + ANSWER_OPEN;
        else if (!answer.terminated()) scoreProblem = "missing " + ANSWER_CLOSE;
        else {
            String a = answer.text().trim();
            if (!NUMBER.matcher(a).matches()) scoreProblem = "answer \"" + a + "\" is not a number";
            else {
                double y = Double.parseDouble(a);
                if (y < -3 || y > 3) scoreProblem = "answer " + a + " is outside [-3, 3]";
                else score = (float) y;
            }
        }
        String problem = structureProblem(s, disc, calib, answer);
        if (problem == null && !EXACT_POLARITY.matcher(disc.text()).find())
            problem = DISC_OPEN + " does not start with \"" + DcFormat.POLARITY_LABEL + "<negative|neutral|positive>.\"";
        if (problem == null) problem = scoreProblem;
        return new ParsedResponse(problem == null, problem, polarity, score,
                disc == null ? null : disc.text(), calib == null ? null : calib.text(), answer == null ? null : answer.text());
    }

    /** Drops surrounding whitespace and one trailing end-of-turn or end-of-text token. */
    private static String stripEnd(String s) {
        s = s.strip();
        for (String end : List.of(IM_END, PAD))
            if (s.endsWith(end)) return s.substring(0, s.length() - end.length()).strip();
        return s;
    }

    private static Segment segment(String s, String open, String close) {
        int o = s.indexOf(open);
        if (o < 0) return null;
        int from = o + open.length();
        int c = s.indexOf(close, from);
        return new Segment(c < 0 ? s.substring(from) : s.substring(from, c), o, c);
    }

    /** First reason the text is not exactly disc, calib, answer in order with nothing around them; null if it is. */
    private static String structureProblem(String s, Segment disc, Segment calib, Segment answer) {
        if (s.isEmpty()) return "empty response";
        for (String tag : SpecialTokens.DC_TAGS) {
            int n = count(s, tag);
            if (n > 1) return tag + " appears " + n + " times";
        }
        Segment[] segs = {disc, calib, answer};
        String[][] tags = {{DISC_OPEN, DISC_CLOSE}, {CALIB_OPEN, CALIB_CLOSE}, {ANSWER_OPEN, ANSWER_CLOSE}};
        for (int i = 0; i < 3; i++) {
            if (segs[i] == null)
                return s.contains(tags[i][1]) ? tags[i][1] + " without " + tags[i][0] : "missing " + tags[i][0];
            if (!segs[i].terminated())
                return "missing " + tags[i][1] + " (truncated or unterminated)";
        }
        for (int i = 0; i < 3; i++)
            for (String[] other : tags)
                if (other != tags[i] && (segs[i].text().contains(other[0]) || segs[i].text().contains(other[1])))
                    return "tag " + (segs[i].text().contains(other[0]) ? other[0] : other[1]) + " inside " + tags[i][0] + "…" + tags[i][1];
        if (!(disc.open() < calib.open() && calib.open() < answer.open()))
            return "segments out of order (expected " + DISC_OPEN + ", " + CALIB_OPEN + ", " + ANSWER_OPEN + ")";
        if (disc.open() != 0) return "text before " + DISC_OPEN;
        if (calib.open() != disc.close() + DISC_CLOSE.length()) return "text between " + DISC_CLOSE + " and " + CALIB_OPEN;
        if (answer.open() != calib.close() + CALIB_CLOSE.length()) return "text between " + CALIB_CLOSE + " and " + ANSWER_OPEN;
        if (answer.close() + ANSWER_CLOSE.length() != s.length()) return "text after " + ANSWER_CLOSE;
        for (String special : NON_DC_SPECIALS)
            if (s.contains(special)) return "special token " + special + " inside the response";
        return null;
    }

    private static int count(String s, String sub) {
        int n = 0;
        for (int i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + sub.length())) n++;
        return n;
    }
}
