package io.hintgrpo.trainer.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.Presets;
import io.hintgrpo.trainer.data.Lexicon.Phrase;
import io.hintgrpo.trainer.data.SynthDomain.FeatureStyle;
import io.hintgrpo.trainer.data.TeacherChains.Cues;
import io.hintgrpo.trainer.format.DcFormat;
import io.hintgrpo.trainer.format.Polarity;
import io.hintgrpo.trainer.tokenizer.Tokenizer;
import io.hintgrpo.trainer.tokenizer.WordLevelTokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The embedded multimodal sentiment corpus. Per utterance a latent valence v in [-3, 3] (class
 * drawn evenly from negative / neutral / positive) drives the transcript (a lexicon phrase near v
 * in a domain template), audio-like frames (pitch, pitch range, energy, rate, warmth, tension +
 * noise dimensions) and vision-like frames (smile, brow, lip depressor, cheek raiser, eye
 * openness, gaze aversion + noise dimensions). A share of utterances is in conflict: the words say
 * one class and the face and voice another, and the label follows the latent (praise said flatly
 * with a frown is negative; neutral words with a broad smile are positive; a polar sentence said
 * deadpan is neutral), so a text-only model cannot reach the best error. The label is v rounded to
 * one decimal. A synthetic teacher writes a DC chain per utterance from the latents with a
 * controllable error rate, and {@link TeacherFilter} drops the chains that disagree with the label.
 *
 * <p>Deterministic: every utterance draws from its own stream keyed by (seed, domain, index), so
 * the same seed gives bit-identical files, and the teacher's draws never shift the utterances.
 */
public final class SynthCorpus {
    private SynthCorpus() {}

    public static final int AUDIO_DIM = 16, VISION_DIM = 16;
    public static final String TOKENIZER_FILE = "tokenizer.json", MANIFEST_FILE = "corpus.json";
    public static final List<String> SPLITS = List.of("train", "valid", "test");
    /** The embedded default model's vocabulary; the corpus tokenizer must fit in it. */
    public static final int MAX_VOCAB = 2048;

    private static final long STREAM_UTTERANCE = 1, STREAM_TEACHER = 2, STREAM_BLIND_SPOT = 3;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Generation settings; the CLI's flags. */
    /**
     * @param teacherBlindSpot share of the hard (conflict) training utterances on which the teacher
     *                         follows the words: its polarity is wrong there, so the correctness
     *                         filter drops those chains and SFT never sees good reasoning for them
     * @param evalSize         valid and test utterances per domain (0: 10 % of the domain's share of
     *                         size each); the training split stays 80 % of that share either way, so
     *                         a larger evaluation set leaves the training records unchanged
     */
    public record Options(long seed, int size, double teacherErrorRate, int framesAudio, int framesVision,
                          double conflictRate, double filterTolerance, double teacherBlindSpot, int evalSize) {
        public static final double DEFAULT_TEACHER_ERROR_RATE = 0.1, DEFAULT_CONFLICT_RATE = 0.25;
        public static final int DEFAULT_FRAMES = 6;

        public Options {
            if (size < 10 * SynthDomain.ALL.size())
                throw new BadInputException("--size", "must be at least " + 10 * SynthDomain.ALL.size() + " (every split of every domain non-empty), got " + size);
            rate("--teacher-error-rate", teacherErrorRate);
            rate("--conflict-rate", conflictRate);
            if (framesAudio < 1 || framesAudio > 256) throw new BadInputException("--frames-audio", "must be in [1, 256], got " + framesAudio);
            if (framesVision < 1 || framesVision > 256) throw new BadInputException("--frames-vision", "must be in [1, 256], got " + framesVision);
            if (!(filterTolerance >= 0) || !Double.isFinite(filterTolerance))
                throw new BadInputException("--filter-tolerance", "must be a non-negative number, got " + filterTolerance);
            rate("--teacher-blind-spot", teacherBlindSpot);
            if (evalSize < 0 || evalSize > 1_000_000) throw new BadInputException("--eval-size", "must be in [0, 1000000] (0 = 10 % of each domain), got " + evalSize);
        }

        /** With the default evaluation splits. */
        public Options(long seed, int size, double teacherErrorRate, int framesAudio, int framesVision, double conflictRate,
                       double filterTolerance, double teacherBlindSpot) {
            this(seed, size, teacherErrorRate, framesAudio, framesVision, conflictRate, filterTolerance, teacherBlindSpot, 0);
        }

        /** Without a teacher blind spot. */
        public Options(long seed, int size, double teacherErrorRate, int framesAudio, int framesVision, double conflictRate,
                       double filterTolerance) {
            this(seed, size, teacherErrorRate, framesAudio, framesVision, conflictRate, filterTolerance, 0, 0);
        }

        public static Options defaults(long seed, int size) {
            return new Options(seed, size, DEFAULT_TEACHER_ERROR_RATE, DEFAULT_FRAMES, DEFAULT_FRAMES,
                    DEFAULT_CONFLICT_RATE, TeacherFilter.DEFAULT_TOLERANCE);
        }

        private static void rate(String flag, double r) {
            if (!(r >= 0 && r <= 1)) throw new BadInputException(flag, "must be in [0, 1], got " + r);
        }
    }

    /** How the words and the other modalities relate. */
    public enum Conflict {
        NONE, FLAT_PRAISE, FROWN_NEUTRAL_WORDS, SMILE_NEUTRAL_WORDS, JOKING_COMPLAINT, DEADPAN;

        public String key() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** What the teacher got wrong: nothing, a random polarity, a random score, or the words' polarity (the blind spot). */
    public enum TeacherError { NONE, POLARITY, SCORE, BLIND_SPOT }

    /**
     * One generated utterance (its cot is the teacher's unfiltered chain) with the latents behind it.
     *
     * @param textScore    the lexicon's reading of the transcript ({@link Lexicon#score})
     * @param teacherScore the score the teacher's chain answers
     */
    public record Sample(Utterance utterance, String split, float latent, Conflict conflict, String phrase,
                         float textScore, TeacherError teacherError, float teacherScore) {
        /** Whether the injected teacher error makes the chain disagree with the label, as the filter judges it. */
        public boolean teacherDisagrees(double tolerance) {
            Polarity truth = Polarity.of(utterance.label());
            return switch (teacherError) {
                case NONE -> false;
                case POLARITY -> true;
                case SCORE, BLIND_SPOT -> Polarity.of(teacherScore) != truth
                        || Math.abs(Math.round(teacherScore * 10) - Math.round(utterance.label() * 10)) / 10.0 > tolerance + 1e-9;
            };
        }
    }

    /** Where {@link #write} puts one split of one domain: {@code DIR/DOMAIN/SPLIT.jsonl}. */
    public static Path splitFile(Path corpusDir, String domain, String split) {
        return corpusDir.resolve(domain).resolve(split + ".jsonl");
    }

    /** The domains' names, in order. */
    public static List<String> domains() {
        return SynthDomain.ALL.stream().map(SynthDomain::name).toList();
    }

    /** Every utterance of every domain, in order (domain, then index); chains unfiltered. */
    public static List<Sample> generate(Options o) {
        List<Sample> out = new ArrayList<>(o.size());
        List<SynthDomain> domains = SynthDomain.ALL;
        for (int d = 0; d < domains.size(); d++) {
            SynthDomain domain = domains.get(d);
            List<Phrase> phrases = Lexicon.phrases(domain);
            int n = domainSize(o.size(), d, domains.size());
            int nTrain = n * 8 / 10, nValid = o.evalSize() > 0 ? o.evalSize() : n / 10;
            // utterance i always draws from stream (seed, domain, i): --eval-size moves indices past nTrain between valid and test only
            if (o.evalSize() > 0) n = nTrain + 2 * o.evalSize();
            for (int i = 0; i < n; i++) {
                String split = i < nTrain ? "train" : i < nTrain + nValid ? "valid" : "test";
                out.add(utterance(o, d, domain, i, split, phrases));
            }
        }
        return out;
    }

    private static int domainSize(int size, int d, int domains) {
        return size / domains + (d < size % domains ? 1 : 0);
    }

    private static Sample utterance(Options o, int domainIndex, SynthDomain domain, int index, String split, List<Phrase> phrases) {
        Rng rng = Rng.of(o.seed(), domainIndex, index, STREAM_UTTERANCE);
        Polarity cls = Polarity.values()[rng.below(3)];
        Conflict conflict = Conflict.NONE;
        if (rng.chance(o.conflictRate())) {
            conflict = switch (cls) {
                case NEGATIVE -> rng.chance(0.5) ? Conflict.FLAT_PRAISE : Conflict.FROWN_NEUTRAL_WORDS;
                case POSITIVE -> rng.chance(0.5) ? Conflict.SMILE_NEUTRAL_WORDS : Conflict.JOKING_COMPLAINT;
                case NEUTRAL -> Conflict.DEADPAN;
            };
        }
        // conflicts are clear cases (|v| ≥ 1) so the face and voice can carry them
        double minPolar = conflict == Conflict.NONE ? 0.6 : 1.0;
        double v = switch (cls) {
            case NEGATIVE -> -rng.uniform(minPolar, 3.0);
            case POSITIVE -> rng.uniform(minPolar, 3.0);
            case NEUTRAL -> rng.uniform(-0.5, 0.5);
        };
        int labelTenths = (int) Math.round(v * 10);
        float label = labelTenths / 10f;
        double surface = switch (conflict) {
            case NONE -> v;
            case FLAT_PRAISE -> rng.uniform(1.0, 2.8);
            case JOKING_COMPLAINT -> -rng.uniform(1.0, 2.8);
            case FROWN_NEUTRAL_WORDS, SMILE_NEUTRAL_WORDS -> 0.0;
            case DEADPAN -> (rng.chance(0.5) ? 1 : -1) * rng.uniform(1.0, 2.0);
        };
        Polarity textClass = Polarity.of(surface);
        // speakers do not pick the word that matches their valence exactly
        Phrase phrase = choosePhrase(rng, phrases, textClass, surface + 0.35 * rng.gaussian());
        String text = sentence(rng, domain, phrase.text());
        float fv = (float) v;
        Cues cues = switch (conflict) {
            case NONE, FROWN_NEUTRAL_WORDS, SMILE_NEUTRAL_WORDS -> Cues.congruent(fv);
            case FLAT_PRAISE -> new Cues(fv, 0.5f * fv, 0.4f * Math.abs(fv) / 3f, 0.08f);
            case JOKING_COMPLAINT -> new Cues(fv, fv, Math.abs(fv) / 3f, 0.95f);
            case DEADPAN -> new Cues(fv, fv, 0.05f, 0.08f);
        };
        float[][] audio = audioFrames(rng, domain.style(), cues, o.framesAudio());
        float[][] vision = visionFrames(rng, domain.style(), cues, o.framesVision());

        // the teacher: right, or wrong about the polarity (and so about everything after it), or off on the score
        Rng teacher = Rng.of(o.seed(), domainIndex, index, STREAM_TEACHER);
        TeacherError error = TeacherError.NONE;
        Polarity claimedClass = cls;
        int claimedTenths = labelTenths;
        Cues seen = cues;
        // the blind spot: its own random stream, so a corpus without one is the same as before
        boolean blind = conflict != Conflict.NONE && split.equals("train") && o.teacherBlindSpot() > 0
                && Rng.of(o.seed(), domainIndex, index, STREAM_BLIND_SPOT).chance(o.teacherBlindSpot());
        if (blind) {
            // the teacher reads the words alone: the words' class, a score where the words put it
            error = TeacherError.BLIND_SPOT;
            claimedClass = textClass;
            claimedTenths = (int) Math.max(-30, Math.min(30, Math.round(surface * 10)));
            if (Polarity.of(claimedTenths / 10f) != claimedClass)
                claimedTenths = switch (claimedClass) {
                    case NEGATIVE -> -6;
                    case POSITIVE -> 6;
                    case NEUTRAL -> 0;
                };
            seen = Cues.congruent(claimedTenths / 10f);
        } else if (teacher.chance(o.teacherErrorRate())) {
            if (teacher.chance(0.5)) {
                error = TeacherError.POLARITY;
                Polarity[] others = Stream.of(Polarity.values()).filter(p -> p != cls).toArray(Polarity[]::new);
                claimedClass = others[teacher.below(2)];
                claimedTenths = switch (claimedClass) {
                    case NEGATIVE -> -(6 + teacher.below(25));
                    case POSITIVE -> 6 + teacher.below(25);
                    case NEUTRAL -> -5 + teacher.below(11);
                };
                seen = Cues.congruent(claimedTenths / 10f);
            } else {
                error = TeacherError.SCORE;
                int delta = (2 + teacher.below(14)) * (teacher.chance(0.5) ? 1 : -1);
                claimedTenths = Math.max(-30, Math.min(30, labelTenths + delta));
                if (claimedTenths == labelTenths) claimedTenths = Math.max(-30, Math.min(30, labelTenths - delta));
            }
        }
        float claimed = claimedTenths / 10f;
        String cot = TeacherChains.render(claimedClass, claimed, phrase.text(), textClass, seen);
        String id = domain.name() + "-" + String.format(java.util.Locale.ROOT, "%05d", index);
        Utterance u = new Utterance(id, text, label, domain.name(), audio, vision, cot,
                conflict == Conflict.NONE ? Utterance.EASY : Utterance.HARD);
        return new Sample(u, split, fv, conflict, phrase.text(), Lexicon.score(text), error, claimed);
    }

    /** A phrase of the wanted class whose score is near the target, chosen among the near ones for variety. */
    private static Phrase choosePhrase(Rng rng, List<Phrase> phrases, Polarity wanted, double target) {
        List<Phrase> ofClass = phrases.stream().filter(p -> p.polarity() == wanted).toList();
        double best = ofClass.stream().mapToDouble(p -> Math.abs(p.score() - target)).min().orElseThrow();
        List<Phrase> near = ofClass.stream().filter(p -> Math.abs(p.score() - target) <= best + 0.15).toList();
        return rng.pick(near);
    }

    private static String sentence(Rng rng, SynthDomain d, String phrase) {
        StringBuilder sb = new StringBuilder();
        if (rng.chance(0.35)) sb.append(rng.pick(d.openers())).append(", ");
        sb.append(rng.pick(d.templates()).replace("{aspect}", rng.pick(d.aspects())).replace("{phrase}", phrase));
        if (rng.chance(0.3)) {
            List<String> neutral = new ArrayList<>(Lexicon.SHARED_NEUTRAL);
            neutral.addAll(d.neutralWords());
            sb.append(", ").append(d.extraClause().replace("{aspect}", rng.pick(d.aspects())).replace("{phrase}", rng.pick(neutral)));
        }
        if (rng.chance(0.3)) sb.append(", ").append(rng.pick(d.closers()));
        return sb.append('.').toString();
    }

    /** Rise-and-fall over the utterance: expressions and pitch peak mid-way. */
    private static double contour(int f, int frames) {
        return frames == 1 ? 1.0 : StrictMath.sin(StrictMath.PI * f / (frames - 1));
    }

    private static float[][] audioFrames(Rng rng, FeatureStyle st, Cues c, int frames) {
        double[] speaker = speaker(rng, st, AUDIO_DIM);
        double neg = Math.max(-c.voiceValence(), 0) / 3.0;
        float[][] out = new float[frames][AUDIO_DIM];
        for (int f = 0; f < frames; f++) {
            double k = contour(f, frames);
            double[] mean = new double[AUDIO_DIM];
            mean[0] = st.pitchOffset() + 0.4 * c.arousal() + 0.15 * c.voiceValence() / 3 + 0.2 * c.expressiveness() * k; // pitch
            mean[1] = 0.2 + 0.8 * c.expressiveness();                                                               // pitch range
            mean[2] = st.energyOffset() + st.energyScale() * c.arousal() + 0.1 * k;                                 // energy
            mean[3] = 0.5 + 0.3 * c.arousal();                                                                      // speaking rate
            mean[4] = c.voiceValence() / 3;                                                                         // warmth
            mean[5] = neg;                                                                                          // tension
            for (int j = 0; j < AUDIO_DIM; j++) out[f][j] = (float) (mean[j] + speaker[j] + st.frameNoise() * rng.gaussian());
        }
        return out;
    }

    private static float[][] visionFrames(Rng rng, FeatureStyle st, Cues c, int frames) {
        double[] speaker = speaker(rng, st, VISION_DIM);
        double pos = Math.max(c.faceValence(), 0) / 3.0, neg = Math.max(-c.faceValence(), 0) / 3.0;
        float[][] out = new float[frames][VISION_DIM];
        for (int f = 0; f < frames; f++) {
            double show = 0.7 + 0.3 * contour(f, frames);
            double[] mean = new double[VISION_DIM];
            mean[0] = st.smileScale() * pos * show;      // smile (lip corner puller)
            mean[1] = st.browOffset() + neg * show;      // brow lowerer (frown)
            mean[2] = 0.7 * neg * show;                  // lip corner depressor
            mean[3] = 0.7 * st.smileScale() * pos * show; // cheek raiser
            mean[4] = 0.5 + 0.3 * c.arousal();           // eye openness
            mean[5] = 0.4 * neg;                         // gaze aversion
            for (int j = 0; j < VISION_DIM; j++) out[f][j] = (float) (mean[j] + speaker[j] + st.frameNoise() * rng.gaussian());
        }
        return out;
    }

    /** Per-utterance offsets: small on the informative dimensions (first 6), a domain-specific mean on the noise ones. */
    private static double[] speaker(Rng rng, FeatureStyle st, int dims) {
        double[] s = new double[dims];
        for (int j = 0; j < dims; j++)
            s[j] = j < 6 ? st.speakerSpread() * rng.gaussian() : st.noiseDimMean() + 0.3 * rng.gaussian();
        return s;
    }

    // ---- the tokenizer and the model shape for this corpus

    /** Every text the generator can emit, for the vocabulary (prompt, transcripts, chains). */
    static List<String> vocabularyTexts() {
        List<String> texts = new ArrayList<>();
        texts.add(DcFormat.prompt(0, 0, ""));
        texts.add(DcFormat.INSTRUCTION);
        for (Polarity p : Polarity.values()) texts.add(p.word());
        texts.addAll(Lexicon.MODIFIERS.keySet());
        texts.add(Lexicon.NEGATION);
        texts.addAll(Lexicon.SHARED_WORDS.keySet());
        texts.addAll(Lexicon.SHARED_NEUTRAL);
        for (SynthDomain d : SynthDomain.ALL) {
            texts.add(d.name());
            texts.addAll(d.aspects());
            texts.addAll(d.templates());
            texts.add(d.extraClause());
            texts.addAll(d.openers());
            texts.addAll(d.closers());
            texts.addAll(d.sentimentWords().keySet());
            texts.addAll(d.neutralWords());
        }
        texts.addAll(TeacherChains.vocabularyTexts());
        // the slot markers are not words
        return texts.stream().map(t -> t.replace("{aspect}", " ").replace("{phrase}", " ")).toList();
    }

    /** The corpus tokenizer's vocabulary (token → id); the same for every seed and size. */
    public static Map<String, Integer> vocabulary() {
        return WordLevelTokenizer.vocabulary(vocabularyTexts());
    }

    public static String tokenizerJson() {
        return WordLevelTokenizer.json(vocabulary());
    }

    /**
     * The embedded default model's shape for this corpus: Presets.embeddedDefault with the
     * tokenizer's vocabulary (rounded up to a multiple of 64), the corpus's feature widths and the
     * tokenizer's placeholder ids.
     */
    public static ModelConfig modelConfig(Tokenizer tok) {
        ModelConfig base = Presets.embeddedDefault();
        int vocab = (tok.vocabSize() + 63) / 64 * 64;
        if (vocab > MAX_VOCAB) throw new IllegalStateException("corpus vocabulary " + tok.vocabSize() + " exceeds " + MAX_VOCAB);
        Tokenizer.Specials sp = tok.specials();
        return new ModelConfig(base.hiddenSize(), base.intermediateSize(), base.numHeads(), base.numKvHeads(),
                base.numLayers(), vocab, base.rmsNormEps(), base.ropeTheta(), base.tieWordEmbeddings(),
                base.maxPositionEmbeddings(), AUDIO_DIM, VISION_DIM, sp.audio(), sp.vision(), base.projectorType());
    }

    // ---- writing

    /** What {@link #write} produced: the manifest (also written as corpus.json). */
    public record Summary(ObjectNode manifest) {
        public int dropped() {
            return manifest.path("teacher").path("dropped").asInt();
        }

        public String toJson() {
            try {
                return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(manifest) + "\n";
            } catch (JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    /**
     * Writes the corpus into {@code out} (which must not exist or be empty): per domain
     * {@code DOMAIN/{train,valid,test}.jsonl} with {@code DOMAIN/features/*.npy}, the filtered
     * teacher chains as {@code cot}, {@code tokenizer.json} and the {@code corpus.json} manifest.
     * Everything is built in a temporary folder beside {@code out} and renamed into place at the end.
     */
    public static Summary write(Path out, Options o) throws IOException {
        AtomicFiles.refuseNonEmptyFolder(out);
        AtomicFiles.probeFolder(out.toAbsolutePath().getParent());
        List<Sample> samples = generate(o);
        return AtomicFiles.writeFolder(out, tmp -> {
            ObjectNode manifest = manifest(o, samples);
            ObjectNode splitFilter = ((ObjectNode) manifest.get("teacher")).putObject("by_split");
            int kept = 0, dropped = 0;
            for (String domain : domains()) {
                for (String split : SPLITS) {
                    List<Utterance> utts = samples.stream()
                            .filter(s -> s.utterance().domain().equals(domain) && s.split().equals(split))
                            .map(Sample::utterance).toList();
                    TeacherFilter.Result r = TeacherFilter.apply(utts, o.filterTolerance());
                    kept += r.kept();
                    dropped += r.dropped();
                    ObjectNode f = splitFilter.putObject(domain + "/" + split);
                    f.put("kept", r.kept());
                    f.put("dropped", r.dropped());
                    Jsonl.write(splitFile(tmp, domain, split), r.utterances(), Jsonl.Features.NPY);
                }
            }
            ObjectNode teacher = (ObjectNode) manifest.get("teacher");
            teacher.put("kept", kept);
            teacher.put("dropped", dropped);
            Summary summary = new Summary(manifest);
            AtomicFiles.writeString(tmp.resolve(TOKENIZER_FILE), tokenizerJson());
            AtomicFiles.writeString(tmp.resolve(MANIFEST_FILE), summary.toJson());
            return summary;
        });
    }

    private static ObjectNode manifest(Options o, List<Sample> samples) {
        ObjectNode m = JSON.createObjectNode();
        m.put("generator", "hintgrpo synth 1");
        m.put("seed", o.seed());
        m.put("size", o.size());
        m.put("conflict_rate", o.conflictRate());
        m.put("teacher_error_rate", o.teacherErrorRate());
        m.put("filter_tolerance", o.filterTolerance());
        m.put("teacher_blind_spot", o.teacherBlindSpot());
        m.put("eval_size", o.evalSize());
        ObjectNode features = m.putObject("features");
        features.putObject("audio").put("frames", o.framesAudio()).put("dim", AUDIO_DIM);
        features.putObject("vision").put("frames", o.framesVision()).put("dim", VISION_DIM);
        m.put("vocab_size", vocabulary().size());
        ObjectNode splits = m.putObject("splits"), subsets = m.putObject("hard_subset");
        for (String domain : domains()) {
            ObjectNode d = splits.putObject(domain), h = subsets.putObject(domain);
            for (String split : SPLITS) {
                d.put(split, samples.stream().filter(s -> s.utterance().domain().equals(domain) && s.split().equals(split)).count());
                h.put(split, samples.stream().filter(s -> s.utterance().domain().equals(domain) && s.split().equals(split)
                        && Utterance.HARD.equals(s.utterance().subset())).count());
            }
        }
        Map<Polarity, Integer> classes = new EnumMap<>(Polarity.class);
        Map<Conflict, Integer> conflicts = new EnumMap<>(Conflict.class);
        for (Conflict c : Conflict.values()) conflicts.put(c, 0);
        int injectedPolarity = 0, injectedScore = 0, blindSpot = 0, disagreeing = 0;
        for (Sample s : samples) {
            classes.merge(Polarity.of(s.utterance().label()), 1, Integer::sum);
            conflicts.merge(s.conflict(), 1, Integer::sum);
            if (s.teacherError() == TeacherError.POLARITY) injectedPolarity++;
            if (s.teacherError() == TeacherError.SCORE) injectedScore++;
            if (s.teacherError() == TeacherError.BLIND_SPOT) blindSpot++;
            if (s.teacherDisagrees(o.filterTolerance())) disagreeing++;
        }
        ObjectNode cls = m.putObject("classes");
        for (Polarity p : Polarity.values()) cls.put(p.word(), classes.getOrDefault(p, 0));
        ObjectNode conf = m.putObject("conflicts");
        conflicts.forEach((c, n) -> conf.put(c.key(), n));
        ObjectNode teacher = m.putObject("teacher");
        teacher.put("injected_errors", injectedPolarity + injectedScore);
        teacher.put("injected_polarity_errors", injectedPolarity);
        teacher.put("injected_score_errors", injectedScore);
        teacher.put("blind_spot_chains", blindSpot);
        teacher.put("injected_disagreeing", disagreeing);
        m.set("text_only", CorpusStats.compute(samples).toJson(JSON));
        return m;
    }}
