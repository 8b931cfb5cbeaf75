package io.github.tweetstream.flink.tokenizer;

import org.apache.flink.table.annotation.ArgumentHint;
import org.apache.flink.table.annotation.ArgumentTrait;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.ProcessTableFunction;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;

/**
 * {@code tokenize_posts(posts => TABLE t, stopwords => '...')}: the hashtags
 * and words of every post of a table with the columns {@code text} and
 * {@code minute_ms}, one row (kind, token, minute_ms) each ({@link Tokenizer}
 * holds the rules). A process table function, not a lateral join: the planner
 * can share its output among every count (a lateral join is planned once per
 * query that reads it).
 *
 * <p>The input may be an updating table (a deduplication's output is one, for
 * the planner, though keeping the first copy of each post only ever inserts):
 * only inserted rows are tokenized.
 */
@FunctionHint(output = @DataTypeHint(value = "ROW<kind STRING NOT NULL, token STRING NOT NULL, minute_ms BIGINT NOT NULL>",
        bridgedTo = RowData.class))
public class TokenizePosts extends ProcessTableFunction<RowData> {

    private static final StringData HASHTAG = StringData.fromString(Tokenizer.HASHTAG);
    private static final StringData WORD = StringData.fromString(Tokenizer.WORD);

    private transient String stopwordList;
    private transient Tokenizer tokenizer;

    public void eval(@ArgumentHint({ArgumentTrait.ROW_SEMANTIC_TABLE, ArgumentTrait.SUPPORT_UPDATES}) Row posts, String stopwords) {
        if (tokenizer == null || (stopwords != stopwordList && !stopwords.equals(stopwordList))) {
            tokenizer = new Tokenizer(Tokenizer.parseStopwords(stopwords));
            stopwordList = stopwords;
        }
        if (posts.getKind() != RowKind.INSERT) {
            return;
        }
        String text = posts.getFieldAs("text");
        Long minute = posts.getFieldAs("minute_ms");
        if (minute == null) {
            return;
        }
        long minuteMs = minute;
        tokenizer.tokenize(text, (kind, token) -> collect(GenericRowData.of(
                kind == Tokenizer.HASHTAG ? HASHTAG : WORD, StringData.fromString(token), minuteMs)));
    }
}
