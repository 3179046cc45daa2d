package io.hintgrpo.trainer.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.hintgrpo.engine.BadInputException;
import io.hintgrpo.engine.model.ModelConfig;
import io.hintgrpo.engine.model.Presets;
import io.hintgrpo.trainer.data.SynthCorpus.Conflict;
import io.hintgrpo.trainer.data.SynthCorpus.Options;
import io.hintgrpo.trainer.data.SynthCorpus.Sample;
import io.hintgrpo.trainer.data.SynthCorpus.TeacherError;
import io.hintgrpo.trainer.format.DcParser;
import io.hintgrpo.trainer.format.ParsedResponse;
import io.hintgrpo.trainer.format.Polarity;
import io.hintgrpo.trainer.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

class SynthCorpusTest {
    @TempDir
    Path dir;

    static final List<Sample> CORPUS = SynthCorpus.generate(Options.defaults(42, 2000));

    @Test
    void sameSeedGivesBitIdenticalFilesAndAnotherSeedDoesNot() throws Exception {
        Options o = Options.defaults(5, 60);
        SynthCorpus.write(dir.resolve("a"), o);
        SynthCorpus.write(dir.resolve("b"), o);
        SynthCorpus.write(dir.resolve("c"), Options.defaults(6, 60));
        Map<String, byte[]> a = files(dir.resolve("a")), b = files(dir.resolve("b")), c = files(dir.resolve("c"));
        assertEquals(a.keySet(), b.keySet());
        assertEquals(2 * 60 + 6 + 2, a.size(), "two .npy per utterance, six jsonl, tokenizer, manifest");
        for (String k : a.keySet()) assertArrayEquals(a.get(k), b.get(k), k);
        assertFalse(Arrays.equals(a.get("reviews/train.jsonl"), c.get("reviews/train.jsonl")));
        assertArrayEquals(a.get("tokenizer.json"), c.get("tokenizer.json"), "the tokenizer does not depend on the seed");
    }

    private static Map<String, byte[]> files(Path root) throws Exception {
        Map<String, byte[]> out = new TreeMap<>();
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.filter(Files::isRegularFile).toList())
                out.put(root.relativize(p).toString().replace('\\', '/'), Files.readAllBytes(p));
        }
        return out;
    }

    @Test
    void theTeacherErrorRateChangesOnlyTheChains() {
        List<Sample> other = SynthCorpus.generate(new Options(42, 2000, 0.5, 6, 6, 0.25, 0.5));
        int changedChains = 0;
        for (int i = 0; i < CORPUS.size(); i++) {
            Utterance a = CORPUS.get(i).utterance(), b = other.get(i).utterance();
            assertEquals(a.text(), b.text());
            assertEquals(a.label(), b.label());
            assertTrue(Arrays.deepEquals(a.audio(), b.audio()));
            assertTrue(Arrays.deepEquals(a.vision(), b.vision()));
            if (!a.cot().equals(b.cot())) changedChains++;
        }
        assertTrue(changedChains > 600, "about (0.5 - 0.1) of 2000 chains differ, got " + changedChains);
    }

    @Test
    void labelsAreTheLatentRoundedAndClassesAreBalanced() {
        Map<Polarity, Integer> classes = new EnumMap<>(Polarity.class);
        for (Sample s : CORPUS) {
            float y = s.utterance().label();
            assertTrue(y >= -3 && y <= 3);
            assertEquals(Math.round(s.latent() * 10) / 10.0, y, 1e-6);
            assertEquals(Polarity.of(s.latent()), Polarity.of(y), "rounding never moves a latent across a class bound");
            classes.merge(Polarity.of(y), 1, Integer::sum);
        }
        for (Polarity p : Polarity.values())
            assertEquals(2000 / 3.0, classes.get(p), 80, "class " + p + ": " + classes);
    }

    @Test
    void theConflictShareCannotBeScoredFromTheWords() {
        int conflicts = 0;
        for (Sample s : CORPUS) {
            Polarity truth = Polarity.of(s.utterance().label());
            Polarity words = Polarity.of(Lexicon.score(s.utterance().text()));
            assertEquals(s.textScore(), Lexicon.score(s.utterance().text()));
            if (s.conflict() == Conflict.NONE) {
                assertEquals(truth, words, s.utterance().text());
            } else {
                conflicts++;
                assertNotEquals(truth, words, "conflict " + s.conflict() + ": " + s.utterance().text());
            }
        }
        assertEquals(0.25, conflicts / 2000.0, 0.03);
    }

    @Test
    void theFaceCarriesTheLatentEvenWhenTheWordsDisagree() {
        // smile minus brow (vision dims 0 and 1, averaged over frames) mostly has the label's sign on conflicts
        int conflicts = 0, agree = 0;
        for (Sample s : CORPUS) {
            if (s.conflict() == Conflict.NONE || s.conflict() == Conflict.DEADPAN) continue;
            double smile = 0, brow = 0;
            for (float[] f : s.utterance().vision()) { smile += f[0]; brow += f[1]; }
            double face = (smile - brow) / s.utterance().vision().length;
            conflicts++;
            if (Math.signum(face) == Math.signum(s.utterance().label())) agree++;
        }
        assertTrue(agree > 0.75 * conflicts, agree + " of " + conflicts);
    }

    @Test
    void domainsDifferInVocabularyAndFeatureStatistics() {
        double[] pitch = new double[2];
        int[] n = new int[2];
        java.util.Set<String> reviewWords = new java.util.HashSet<>(), interviewWords = new java.util.HashSet<>();
        for (Sample s : CORPUS) {
            int d = s.utterance().domain().equals("reviews") ? 0 : 1;
            for (float[] f : s.utterance().audio()) pitch[d] += f[0];
            n[d] += s.utterance().audio().length;
            (d == 0 ? reviewWords : interviewWords).addAll(List.of(s.utterance().text().split("[^a-z]+")));
        }
        assertTrue(pitch[1] / n[1] - pitch[0] / n[0] > 0.4, "interviews have a higher pitch baseline");
        assertTrue(reviewWords.contains("plot") && !interviewWords.contains("plot"));
        assertTrue(interviewWords.contains("workload") && !reviewWords.contains("workload"));
    }

    @Test
    void correctChainsFollowTheGrammarAndAgreeWithTheLabel() {
        for (Sample s : CORPUS) {
            ParsedResponse r = DcParser.parse(s.utterance().cot());
            assertTrue(r.formatValid(), r.problem() + ": " + s.utterance().cot());
            assertEquals(s.teacherScore(), r.score());
            if (s.teacherError() == TeacherError.NONE) {
                assertEquals(s.utterance().label(), r.score());
                assertEquals(Polarity.of(s.utterance().label()), r.polarity());
                assertTrue(r.dcConsistent());
            }
        }
    }

    /** Every record says its subset: hard exactly where the words disagree with the face and voice. */
    @Test
    void theHardSubsetIsTheConflictUtterances() {
        for (Sample s : CORPUS)
            assertEquals(s.conflict() == Conflict.NONE ? Utterance.EASY : Utterance.HARD, s.utterance().subset(), s.utterance().id());
        long hard = CORPUS.stream().filter(s -> Utterance.HARD.equals(s.utterance().subset())).count();
        assertEquals(0.25 * 2000, hard, 60);
    }

    /**
     * The teacher's blind spot: on that share of the hard training utterances the teacher follows
     * the words, so its polarity is wrong and the filter drops every such chain; nothing else
     * changes (a rate of 0 is the corpus without a blind spot, bit for bit).
     */
    @Test
    void aBlindSpotTeacherFailsOnHardTrainingUtterancesOnly() throws Exception {
        List<Sample> blind = SynthCorpus.generate(new Options(42, 2000, 0.1, 6, 6, 0.25, 0.5, 0.8));
        int hardTrain = 0, blinded = 0;
        for (int i = 0; i < CORPUS.size(); i++) {
            Sample a = CORPUS.get(i), b = blind.get(i);
            assertEquals(a.utterance().text(), b.utterance().text());
            assertEquals(a.utterance().label(), b.utterance().label());
            assertArrayEquals(a.utterance().audio()[0], b.utterance().audio()[0]);
            boolean hardTrainItem = a.conflict() != Conflict.NONE && a.split().equals("train");
            if (hardTrainItem) hardTrain++;
            if (b.teacherError() == TeacherError.BLIND_SPOT) {
                blinded++;
                assertTrue(hardTrainItem, "only hard training utterances: " + b.utterance().id());
                assertTrue(b.teacherDisagrees(0.5), "a blind-spot chain is wrong about the polarity");
                assertNotEquals(Polarity.of(b.utterance().label()), DcParser.parse(b.utterance().cot()).polarity());
            } else {
                assertEquals(a.utterance().cot(), b.utterance().cot(), "every other chain is as before");
            }
        }
        assertEquals(0.8 * hardTrain, blinded, 0.1 * hardTrain);
        List<Utterance> kept = TeacherFilter.apply(blind.stream().map(Sample::utterance).toList(), 0.5).utterances();
        for (int i = 0; i < kept.size(); i++)
            if (blind.get(i).teacherError() == TeacherError.BLIND_SPOT) assertNull(kept.get(i).cot(), "filtered out");

        Path a = dir.resolve("a"), b = dir.resolve("b");
        SynthCorpus.write(a, new Options(7, 200, 0.1, 6, 6, 0.25, 0.5));
        SynthCorpus.write(b, new Options(7, 200, 0.1, 6, 6, 0.25, 0.5, 0.0));
        for (String domain : SynthCorpus.domains())
            for (String split : SynthCorpus.SPLITS)
                assertArrayEquals(Files.readAllBytes(SynthCorpus.splitFile(a, domain, split)),
                        Files.readAllBytes(SynthCorpus.splitFile(b, domain, split)), domain + "/" + split);
    }

    /** --eval-size: that many valid and test utterances per domain, the training records exactly those of the same --size. */
    @Test
    void aLargerEvaluationSetLeavesTheTrainingSplitAlone() {
        List<Sample> small = SynthCorpus.generate(Options.defaults(8, 200));
        List<Sample> big = SynthCorpus.generate(new Options(8, 200, 0.1, 6, 6, 0.25, 0.5, 0.0, 70));
        for (String domain : SynthCorpus.domains()) {
            List<Sample> a = small.stream().filter(s -> s.utterance().domain().equals(domain)).toList();
            List<Sample> b = big.stream().filter(s -> s.utterance().domain().equals(domain)).toList();
            List<Sample> trainA = a.stream().filter(s -> s.split().equals("train")).toList();
            List<Sample> trainB = b.stream().filter(s -> s.split().equals("train")).toList();
            assertEquals(80, trainA.size());
            assertEquals(trainA.size(), trainB.size());
            for (int i = 0; i < trainA.size(); i++) {
                assertEquals(trainA.get(i).utterance().id(), trainB.get(i).utterance().id());
                assertEquals(trainA.get(i).utterance().text(), trainB.get(i).utterance().text());
                assertEquals(trainA.get(i).utterance().cot(), trainB.get(i).utterance().cot());
            }
            assertEquals(70, b.stream().filter(s -> s.split().equals("valid")).count(), domain);
            assertEquals(70, b.stream().filter(s -> s.split().equals("test")).count(), domain);
        }
        assertThrows(BadInputException.class, () -> new Options(8, 200, 0.1, 6, 6, 0.25, 0.5, 0.0, -1));
    }

    @Test
    void theFilterDropsExactlyTheInjectedErrorsThatDisagreeWithTheLabel() {
        for (double tolerance : new double[]{0.0, 0.3, 0.5, 1.0}) {
            List<Utterance> utts = CORPUS.stream().map(Sample::utterance).toList();
            TeacherFilter.Result r = TeacherFilter.apply(utts, tolerance);
            long injected = CORPUS.stream().filter(s -> s.teacherError() != TeacherError.NONE).count();
            long disagreeing = CORPUS.stream().filter(s -> s.teacherDisagrees(tolerance)).count();
            assertEquals(0.1 * 2000, injected, 40);
            if (tolerance >= 0.3) assertTrue(disagreeing < injected, "some score errors stay within tolerance " + tolerance);
            else assertEquals(injected, disagreeing, "every score error is at least 0.2 off");
            assertEquals(disagreeing, r.dropped(), "tolerance " + tolerance);
            assertEquals(utts.size() - disagreeing, r.kept());
            for (int i = 0; i < utts.size(); i++)
                assertEquals(CORPUS.get(i).teacherDisagrees(tolerance), r.utterances().get(i).cot() == null);
            assertEquals(0, r.counts().get(TeacherFilter.Verdict.INVALID_FORMAT));
        }
    }

    @Test
    void writtenCorpusReadsBackWithTheModelsFeatureWidthsAndMatchesTheManifest() throws Exception {
        Path out = dir.resolve("corpus");
        SynthCorpus.Summary summary = SynthCorpus.write(out, Options.defaults(3, 200));
        assertEquals(summary.toJson(), Files.readString(out.resolve("corpus.json")));
        JsonNode m = new ObjectMapper().readTree(Files.readString(out.resolve("corpus.json")));
        try (Tokenizer tok = Tokenizer.load(out.resolve("tokenizer.json"))) {
            ModelConfig cfg = SynthCorpus.modelConfig(tok);
            int total = 0, withCot = 0;
            for (String domain : SynthCorpus.domains())
                for (String split : SynthCorpus.SPLITS) {
                    List<Utterance> utts = Jsonl.read(SynthCorpus.splitFile(out, domain, split), Jsonl.Expect.of(cfg));
                    assertEquals(m.path("splits").path(domain).path(split).asInt(), utts.size());
                    assertEquals(m.path("teacher").path("by_split").path(domain + "/" + split).path("kept").asInt(),
                            utts.stream().filter(u -> u.cot() != null).count());
                    total += utts.size();
                    withCot += (int) utts.stream().filter(u -> u.cot() != null).count();
                    for (Utterance u : utts) {
                        assertEquals(6, u.audio().length);
                        assertEquals(domain, u.domain());
                    }
                }
            assertEquals(200, total);
            assertEquals(m.path("teacher").path("kept").asInt(), withCot);
            assertEquals(200, m.path("teacher").path("kept").asInt() + summary.dropped());
            assertEquals(m.path("teacher").path("injected_disagreeing").asInt(), summary.dropped());
        }
        assertEquals(80, m.path("splits").path("reviews").path("train").asInt());
    }

    @Test
    void textOnlyPredictionIsClearlyWorseThanUsingTheFeatures() {
        CorpusStats.TextOnly t = CorpusStats.compute(CORPUS);
        assertTrue(t.lexiconClassAgreement() > 0.7 && t.lexiconClassAgreement() < 0.8, "" + t);
        assertTrue(t.multimodalProbeTestMae() < t.textOnlyTestMae() - 0.2, "" + t);
        assertTrue(t.textOnlyTestMaeOnConflicts() > 1.0, "" + t);
    }

    @Test
    void modelConfigIsTheEmbeddedDefaultShapeWithTheCorpusVocabulary() throws Exception {
        Path f = dir.resolve("tokenizer.json");
        Files.writeString(f, SynthCorpus.tokenizerJson());
        try (Tokenizer tok = Tokenizer.load(f)) {
            ModelConfig cfg = SynthCorpus.modelConfig(tok);
            ModelConfig base = Presets.embeddedDefault();
            assertEquals(0, cfg.vocabSize() % 64);
            assertTrue(cfg.vocabSize() >= tok.vocabSize() && cfg.vocabSize() - tok.vocabSize() < 64);
            assertTrue(cfg.vocabSize() <= SynthCorpus.MAX_VOCAB);
            assertEquals(base.hiddenSize(), cfg.hiddenSize());
            assertEquals(base.numLayers(), cfg.numLayers());
            assertEquals(SynthCorpus.AUDIO_DIM, cfg.audioFeatureSize());
            assertEquals(tok.specials().audio(), cfg.audioTokenId());
            assertEquals(tok.specials().vision(), cfg.visionTokenId());
        }
    }

    @Test
    void refusesToOverwriteAndBadOptions() throws Exception {
        Path out = dir.resolve("full");
        Files.createDirectories(out);
        Files.writeString(out.resolve("keep.txt"), "mine");
        BadInputException e = assertThrows(BadInputException.class, () -> SynthCorpus.write(out, Options.defaults(1, 40)));
        assertTrue(e.getMessage().contains("not empty"));
        assertEquals("mine", Files.readString(out.resolve("keep.txt")));
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(1, s.count(), "no temporary folder left behind");
        }
        assertThrows(BadInputException.class, () -> Options.defaults(1, 5));
        assertThrows(BadInputException.class, () -> new Options(1, 100, 1.5, 6, 6, 0.25, 0.5));
        assertThrows(BadInputException.class, () -> new Options(1, 100, 0.1, 0, 6, 0.25, 0.5));
        assertThrows(BadInputException.class, () -> new Options(1, 100, 0.1, 6, 6, Double.NaN, 0.5));
        Path empty = dir.resolve("empty");
        Files.createDirectories(empty);
        SynthCorpus.write(empty, Options.defaults(1, 40));
        assertTrue(Files.exists(empty.resolve("corpus.json")), "an existing empty folder is fine");
    }
}
