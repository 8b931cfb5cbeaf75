package io.github.tweetstream.flink.tokenizer;

import java.util.ArrayList;
import java.util.List;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.data.GenericArrayData;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code tokens(text, stopwords)}: the hashtags and the words of one post, in
 * text order, as a row of two arrays {@code (hashtags, words)} ({@link
 * Tokenizer} holds the rules). A scalar function, computed once per post in
 * the view every count reads; the all-time and per-minute counts unnest the
 * arrays, and the per-minute words take a post's word array whole (one row per
 * post instead of one per word). (A process table function would do the same in
 * one node, but Flink 2.2 then puts the whole job's mini-batches in event-time
 * mode, where, without a watermark, they close only when full or at a
 * checkpoint: counts would wait for checkpoints.)
 */
@FunctionHint(output = @DataTypeHint(
        value = "ROW<hashtags ARRAY<STRING NOT NULL> NOT NULL, words ARRAY<STRING NOT NULL> NOT NULL> NOT NULL",
        bridgedTo = RowData.class))
public class Tokens extends ScalarFunction {

    private transient String stopwordList;
    private transient Tokenizer tokenizer;

    public RowData eval(String text, String stopwords) {
        if (tokenizer == null || (stopwords != stopwordList && !stopwords.equals(stopwordList))) {
            tokenizer = new Tokenizer(Tokenizer.parseStopwords(stopwords));
            stopwordList = stopwords;
        }
        List<StringData> hashtags = new ArrayList<>(4);
        List<StringData> words = new ArrayList<>(16);
        if (text != null) {
            tokenizer.tokenize(text, (kind, token) ->
                    (kind == Tokenizer.HASHTAG ? hashtags : words).add(StringData.fromString(token)));
        }
        return GenericRowData.of(new GenericArrayData(hashtags.toArray()), new GenericArrayData(words.toArray()));
    }

    /** Not deterministic for the planner, so that it computes the arrays once and does not copy the call into every projection that reads them. */
    @Override
    public boolean isDeterministic() {
        return false;
    }
}
