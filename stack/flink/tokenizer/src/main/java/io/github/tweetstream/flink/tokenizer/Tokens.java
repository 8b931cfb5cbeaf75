package io.github.tweetstream.flink.tokenizer;

import java.util.ArrayList;
import java.util.List;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.data.ArrayData;
import org.apache.flink.table.data.GenericArrayData;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code tokens(text, stopwords)}: the hashtags and words of one post, as an
 * array of (kind, token) rows ({@link Tokenizer} holds the rules). A scalar
 * function, computed once per post in the view every count reads; each count
 * then unnests the array. (A process table function would do the same in one
 * node, but Flink 2.2 then puts the whole job's mini-batches in event-time
 * mode, where, without a watermark, they close only when full or at a
 * checkpoint: counts would wait for checkpoints.)
 */
@FunctionHint(output = @DataTypeHint(value = "ARRAY<ROW<kind STRING NOT NULL, token STRING NOT NULL> NOT NULL>",
        bridgedTo = ArrayData.class))
public class Tokens extends ScalarFunction {

    private static final StringData HASHTAG = StringData.fromString(Tokenizer.HASHTAG);
    private static final StringData WORD = StringData.fromString(Tokenizer.WORD);

    private transient String stopwordList;
    private transient Tokenizer tokenizer;

    public ArrayData eval(String text, String stopwords) {
        if (tokenizer == null || (stopwords != stopwordList && !stopwords.equals(stopwordList))) {
            tokenizer = new Tokenizer(Tokenizer.parseStopwords(stopwords));
            stopwordList = stopwords;
        }
        List<GenericRowData> rows = new ArrayList<>();
        if (text != null) {
            tokenizer.tokenize(text, (kind, token) -> rows.add(GenericRowData.of(
                    kind == Tokenizer.HASHTAG ? HASHTAG : WORD, StringData.fromString(token))));
        }
        return new GenericArrayData(rows.toArray());
    }

    /** Not deterministic for the planner, so that it computes the array once and does not copy the call into every projection that reads it. */
    @Override
    public boolean isDeterministic() {
        return false;
    }
}
