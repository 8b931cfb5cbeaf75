"""How a pipeline script is cut into the statements sent to Flink's SQL gateway."""

from __future__ import annotations

import re

import pytest

from stack import pipeline


def test_cuts_at_semicolons_outside_strings_names_and_comments():
    sql = (
        "SET 'a' = 'x;y';\n"
        "-- a comment; with a semicolon\n"
        "CREATE TABLE `t;1` (c STRING) WITH ('k' = 'v;w');\n"
        "/* block; comment */ SELECT 'it''s; fine' FROM `t;1`;\n"
    )
    assert pipeline.statements(sql) == [
        "SET 'a' = 'x;y'",
        "-- a comment; with a semicolon\nCREATE TABLE `t;1` (c STRING) WITH ('k' = 'v;w')",
        "/* block; comment */ SELECT 'it''s; fine' FROM `t;1`",
    ]


def test_a_statement_set_is_one_statement():
    sql = (
        "SET 'x' = '1';\n"
        "EXECUTE STATEMENT SET\nBEGIN\n  INSERT INTO a SELECT 1;\n  -- end; not yet\n"
        "  INSERT INTO b SELECT 2;\nEND;\n"
    )
    assert pipeline.statements(sql) == [
        "SET 'x' = '1'",
        "EXECUTE STATEMENT SET\nBEGIN\n  INSERT INTO a SELECT 1;\n  -- end; not yet\n  INSERT INTO b SELECT 2;\nEND",
    ]


def test_a_last_statement_without_semicolon_and_trailing_comments():
    assert pipeline.statements("SELECT 1;\nSELECT 2\n") == ["SELECT 1", "SELECT 2"]
    assert pipeline.statements("SELECT 1;\n-- the end;\n\n") == ["SELECT 1"]


@pytest.mark.parametrize("script", list(pipeline.scripts().values()), ids=lambda s: s.path.name)
def test_every_script_cuts_into_complete_statements(script):
    parts = pipeline.statements(pipeline.render(script))
    code = [pipeline._code(p) for p in parts]
    kinds = [re.match(r"\w+(\s+\w+)?", c).group(0).upper() for c in code]
    assert set(kinds) <= {
        "SET",
        "CREATE TEMPORARY",
        "CREATE TABLE",
        "CREATE VIEW",
        "EXECUTE STATEMENT",
        "INSERT INTO",
        "CREATE FUNCTION",
    }, kinds
    # the job is the last statement: one statement set holding every INSERT
    assert kinds[-1] == "EXECUTE STATEMENT" and code[-1].endswith("END")
    assert code[-1].count("INSERT INTO") == len(pipeline.SERVING_TABLES)
    assert all(not c.endswith(";") for c in code[:-1])


def test_a_shell_gets_the_scripts_tables_not_its_job():
    sql = pipeline.Target().render(pipeline.latest())
    declared = pipeline.declarations(sql)
    text = "\n".join(declared)
    for table in (*pipeline.SERVING_TABLES, "tweets"):
        assert re.search(rf"CREATE TABLE {table} \(", text), table
    assert "CREATE TEMPORARY FUNCTION tokens" in text and "CREATE TEMPORARY VIEW unique_posts" in text
    assert "SET 'table.local-time-zone' = 'UTC'" in text
    # nothing that starts a job, names it after the pipeline or sets its checkpoints
    assert not re.search(r"INSERT|EXECUTE STATEMENT SET|pipeline\.name|checkpointing|parallelism", text)
    assert declared[-1] == "ALTER TABLE tweets SET ('properties.group.id' = 'tweetstream-sql-shell')"
