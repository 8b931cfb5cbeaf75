package io.github.tweetstream.flink.tokenizer;

import java.text.Normalizer;
import java.util.HashSet;
import java.util.Locale;
import java.util.Set;
import java.util.function.BiConsumer;

/**
 * The project's counting rules in one pass over a post's text (the README's
 * "Counting rules"; reference/__init__.py is the independent implementation the
 * tests hold this to):
 *
 * <ol>
 *   <li>the text is normalised to Unicode NFC;
 *   <li>URLs ({@code http://}, {@code https://}, {@code www.} up to the next
 *       Unicode White_Space, no-break spaces included) are blanked;
 *   <li>a hashtag is {@code #} at the start or after a code point that is not
 *       a letter, digit or {@code _}, then a run of letters, combining marks,
 *       digits and {@code _} that holds a letter; key: the run lower-cased;
 *   <li>words come from the text without URLs, hashtags and {@code @}mentions
 *       (a mention is shaped like a hashtag); a word is a letter followed by
 *       letters and combining marks, lower-cased; fewer than two letters, or a
 *       stopword, and it is dropped;
 *   <li>a hashtag or word longer than {@link #MAX_TOKEN} code points (as
 *       written, after NFC) is not counted;
 *   <li>lower-casing is Unicode's default case mapping ({@link Locale#ROOT}),
 *       whatever the JVM's locale.
 * </ol>
 *
 * A hand-written scanner rather than regexes: one pass per post, no
 * intermediate strings but the tokens themselves.
 */
public final class Tokenizer {

    public static final int MAX_TOKEN = 100;
    public static final String HASHTAG = "hashtag";
    public static final String WORD = "word";

    private final Set<String> stopwords;

    public Tokenizer(Set<String> stopwords) {
        this.stopwords = stopwords;
    }

    /** Stopwords from one string, separated by white space (as the SQL passes them). */
    public static Set<String> parseStopwords(String list) {
        Set<String> words = new HashSet<>();
        if (list != null) {
            for (String w : list.trim().split("\\s+")) {
                if (!w.isEmpty()) {
                    words.add(Normalizer.normalize(w, Normalizer.Form.NFC).toLowerCase(Locale.ROOT));
                }
            }
        }
        return words;
    }

    /** Calls {@code out} with (kind, token) for every hashtag and word of the text, in text order. */
    public void tokenize(String text, BiConsumer<String, String> out) {
        if (text == null || text.isEmpty()) {
            return;
        }
        if (!Normalizer.isNormalized(text, Normalizer.Form.NFC)) {
            text = Normalizer.normalize(text, Normalizer.Form.NFC);
        }
        String body = withoutUrls(text);
        int n = body.length();
        int prev = -1; // the code point before i (-1 at the start)
        int wordStart = -1; // where the current word began, or -1
        int wordLetters = 0;
        int wordLength = 0; // in code points
        int i = 0;
        while (i < n) {
            int cp = body.codePointAt(i);
            int size = Character.charCount(cp);
            if ((cp == '#' || cp == '@') && !isLetterDigitOrUnderscore(prev)) {
                // a hashtag or mention: the run after it
                int j = i + size;
                int runLength = 0;
                boolean hasLetter = false;
                int last = cp;
                while (j < n) {
                    int c = body.codePointAt(j);
                    if (!isRunChar(c)) {
                        break;
                    }
                    hasLetter |= Character.isLetter(c);
                    runLength++;
                    last = c;
                    j += Character.charCount(c);
                }
                if (runLength > 0) {
                    if (wordStart >= 0) {
                        emitWord(body, wordStart, i, wordLetters, wordLength, out);
                        wordStart = -1;
                    }
                    if (cp == '#' && hasLetter && runLength <= MAX_TOKEN) {
                        out.accept(HASHTAG, lower(body.substring(i + size, j)));
                    }
                    // hashtags and mentions are not words: skip the run
                    prev = last;
                    i = j;
                    continue;
                }
            }
            if (Character.isLetter(cp)) {
                if (wordStart < 0) {
                    wordStart = i;
                    wordLetters = 0;
                    wordLength = 0;
                }
                wordLetters++;
                wordLength++;
            } else if (wordStart >= 0 && isMark(cp)) {
                wordLength++;
            } else if (wordStart >= 0) {
                emitWord(body, wordStart, i, wordLetters, wordLength, out);
                wordStart = -1;
            }
            prev = cp;
            i += size;
        }
        if (wordStart >= 0) {
            emitWord(body, wordStart, n, wordLetters, wordLength, out);
        }
    }

    private void emitWord(String body, int start, int end, int letters, int length, BiConsumer<String, String> out) {
        if (letters < 2 || length > MAX_TOKEN) {
            return;
        }
        String word = lower(body.substring(start, end));
        if (!stopwords.contains(word)) {
            out.accept(WORD, word);
        }
    }

    /**
     * Unicode's default full lower-case mapping. Java's own (String.toLowerCase)
     * decides whether a capital sigma ends a word by looking at word
     * boundaries; Unicode's Final_Sigma condition (and the reference) looks at
     * cased and case-ignorable neighbours only, so sigmas are mapped here.
     */
    static String lower(String token) {
        if (token.indexOf('\u03A3') < 0) {
            return token.toLowerCase(Locale.ROOT);
        }
        StringBuilder out = new StringBuilder(token.length() + 1);
        for (int i = 0; i < token.length(); ) {
            int cp = token.codePointAt(i);
            if (cp == 0x03A3) {
                out.append(isFinalSigma(token, i) ? '\u03C2' : '\u03C3');
            } else {
                out.append(new String(Character.toChars(cp)).toLowerCase(Locale.ROOT));
            }
            i += Character.charCount(cp);
        }
        return out.toString();
    }

    /** Final_Sigma: a cased letter before (case-ignorables skipped) and none after. */
    private static boolean isFinalSigma(String s, int at) {
        int j = at;
        int before = -1;
        while (j > 0) {
            before = s.codePointBefore(j);
            if (!isCaseIgnorable(before)) {
                break;
            }
            j -= Character.charCount(before);
            before = -1;
        }
        if (before < 0 || !isCased(before)) {
            return false;
        }
        j = at + 1;
        while (j < s.length()) {
            int after = s.codePointAt(j);
            if (!isCaseIgnorable(after)) {
                return !isCased(after);
            }
            j += Character.charCount(after);
        }
        return true;
    }

    private static boolean isCased(int cp) {
        return Character.isUpperCase(cp) || Character.isLowerCase(cp) || Character.isTitleCase(cp);
    }

    /** Case_Ignorable as far as a token can hold it (tokens have no punctuation). */
    private static boolean isCaseIgnorable(int cp) {
        int t = Character.getType(cp);
        return t == Character.NON_SPACING_MARK || t == Character.ENCLOSING_MARK || t == Character.FORMAT
                || t == Character.MODIFIER_LETTER || t == Character.MODIFIER_SYMBOL;
    }

    /** The text with every URL replaced by one space (returns the text itself when it has none). */
    static String withoutUrls(String text) {
        int n = text.length();
        StringBuilder out = null;
        int copied = 0;
        int i = 0;
        while (i < n) {
            int prefix = urlPrefix(text, i);
            if (prefix == 0) {
                i++;
                continue;
            }
            int j = i + prefix;
            while (j < n) {
                int c = text.codePointAt(j);
                if (isWhiteSpace(c)) {
                    break;
                }
                j += Character.charCount(c);
            }
            if (out == null) {
                out = new StringBuilder(n);
            }
            out.append(text, copied, i).append(' ');
            copied = j;
            i = j;
        }
        if (out == null) {
            return text;
        }
        return out.append(text, copied, n).toString();
    }

    /** Length of the URL prefix starting at i (http://, https://, www.), or 0. */
    private static int urlPrefix(String s, int i) {
        char c = s.charAt(i);
        if (c == 'h') {
            if (s.startsWith("http://", i)) {
                return 7;
            }
            if (s.startsWith("https://", i)) {
                return 8;
            }
        } else if (c == 'w' && s.startsWith("www.", i)) {
            return 4;
        }
        return 0;
    }

    static boolean isLetterDigitOrUnderscore(int cp) {
        return cp >= 0 && (cp == '_' || Character.isLetter(cp) || Character.getType(cp) == Character.DECIMAL_DIGIT_NUMBER);
    }

    /** What a hashtag's run is made of: letters, combining marks, decimal digits, '_'. */
    static boolean isRunChar(int cp) {
        return isLetterDigitOrUnderscore(cp) || isMark(cp);
    }

    static boolean isMark(int cp) {
        int t = Character.getType(cp);
        return t == Character.NON_SPACING_MARK || t == Character.ENCLOSING_MARK || t == Character.COMBINING_SPACING_MARK;
    }

    /** Unicode's White_Space property (Java's isWhitespace leaves out the no-break spaces). */
    static boolean isWhiteSpace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F
                || cp == 0x205F || cp == 0x3000;
    }
}
