package io.github.tweetstream.flink.tokenizer;

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.util.Base64;

/**
 * The tokenizer outside Flink, so that the tests can hold it to the reference
 * implementation on many generated texts in one JVM start:
 * {@code java -cp <jar> io.github.tweetstream.flink.tokenizer.TokenizeLines <stopwords file>}.
 * Each input line is one text, Base64 of its UTF-8; each output line is
 * Base64 of "kind\ttoken\tkind\ttoken..." for that text. With {@code --assigned}
 * it prints the ranges of code points this JVM's Unicode version assigns
 * ("first last" in hex, one range a line), so that generated text stays
 * within what both implementations' Unicode data know.
 */
public final class TokenizeLines {
    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("--assigned")) {
            printAssignedRanges();
            return;
        }
        String stopwords = args.length > 0
                ? new String(java.nio.file.Files.readAllBytes(java.nio.file.Path.of(args[0])), StandardCharsets.UTF_8)
                : "";
        Tokenizer tokenizer = new Tokenizer(Tokenizer.parseStopwords(stopwords));
        Base64.Decoder dec = Base64.getDecoder();
        Base64.Encoder enc = Base64.getEncoder();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
             BufferedWriter out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                String text = new String(dec.decode(line.trim()), StandardCharsets.UTF_8);
                StringBuilder tokens = new StringBuilder();
                tokenizer.tokenize(text, (kind, token) -> {
                    if (tokens.length() > 0) {
                        tokens.append('\t');
                    }
                    tokens.append(kind).append('\t').append(token);
                });
                out.write(enc.encodeToString(tokens.toString().getBytes(StandardCharsets.UTF_8)));
                out.write('\n');
                out.flush(); // one answer per question: the caller waits for it
            }
        }
    }

    private static void printAssignedRanges() {
        int start = -1;
        for (int cp = 0; cp <= Character.MAX_CODE_POINT + 1; cp++) {
            boolean assigned = cp <= Character.MAX_CODE_POINT && Character.getType(cp) != Character.UNASSIGNED;
            if (assigned && start < 0) {
                start = cp;
            } else if (!assigned && start >= 0) {
                System.out.printf("%x %x%n", start, cp - 1);
                start = -1;
            }
        }
    }
}
