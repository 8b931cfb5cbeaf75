package io.github.tweetstream.flink.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.text.Normalizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

import org.junit.jupiter.api.Test;

/** The rules on tricky text; tests/unit/test_tokenizer.py holds it to the reference on generated text. */
class TokenizerTest {

    private final Tokenizer tokenizer = new Tokenizer(Set.of("le", "et", "the"));

    private List<String> tokens(String text) {
        List<String> out = new ArrayList<>();
        tokenizer.tokenize(text, (kind, token) -> out.add(kind.charAt(0) + ":" + token));
        return out;
    }

    @Test
    void hashtagsAndWords() {
        assertEquals(List.of("w:vaccin", "h:covid", "w:arrive"), tokens("Le vaccin #COVID arrive"));
        assertEquals(List.of("h:covid"), tokens("#COVID-19"));
        assertEquals(List.of("h:2020s"), tokens("#2020 #2020s"));
        assertEquals(List.of("h:double"), tokens("##double"));
        assertEquals(List.of("w:mot", "w:non", "h:oui"), tokens("mot#non (#oui)"));
    }

    @Test
    void urlsAreBlankedUpToUnicodeWhiteSpace() {
        assertEquals(List.of(), tokens("https://example.org/a#fragment"));
        assertEquals(List.of("h:after"), tokens("https://example.org/\u00a0#after"));
        assertEquals(List.of("w:voir", "h:y"), tokens("voir www.x.fr/#a #y"));
    }

    @Test
    void decomposedTextCountsAsComposed() {
        assertEquals(List.of("h:santé", "w:élève"), tokens(Normalizer.normalize("#Santé Élève", Normalizer.Form.NFD)));
    }

    @Test
    void mentionsAndStopwordsAreNotWords() {
        assertEquals(List.of("w:merci"), tokens("@alice merci the et a"));
    }

    @Test
    void longTokensAreNotCounted() {
        String hundred = "a".repeat(100);
        String longer = "b".repeat(101);
        assertEquals(List.of("h:" + hundred, "w:" + hundred, "w:ok"),
                tokens("#" + hundred + " #" + longer + " " + hundred + " " + longer + " ok"));
    }

    @Test
    void finalSigmaFollowsUnicodesRule() {
        assertEquals("οδος", Tokenizer.lower("ΟΔΟΣ"));
        assertEquals("σα", Tokenizer.lower("ΣΑ"));
        // a letter that is not cased after the sigma: still final (Java's own mapping says σ)
        assertEquals("i̇ς\u0620a", Tokenizer.lower("İΣ\u0620a"));
    }

    @Test
    void lowerCasingIgnoresTheJvmLocale() {
        Locale before = Locale.getDefault();
        Locale.setDefault(new Locale("tr", "TR"));
        try {
            assertEquals(List.of("h:istanbul", "w:irmak"), tokens("#ISTANBUL IRMAK"));
        } finally {
            Locale.setDefault(before);
        }
    }
}
