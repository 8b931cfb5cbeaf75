"""The reference's top-k helpers: the all-time words table's rules, and what a test can
check of such a table from two snapshots."""

from collections import Counter

import reference


def test_top_most_used_first_ties_by_code_point():
    counts = Counter({"b": 2, "a": 2, "c": 5, "d": 1, "\uff5a": 1, "\U0001d41a": 1, "z": 0})
    assert reference.top(counts, 3) == {"c": 5, "a": 2, "b": 2}
    assert list(reference.top(counts, 10)) == ["c", "a", "b", "d", "\uff5a", "\U0001d41a"]


def test_a_table_not_full_holds_every_word_exactly():
    before, want = {"a": 3}, {"a": 2, "b": 1}
    assert reference.top_mismatches(before, {"a": 5, "b": 1}, want, k=3) == {}
    assert reference.top_mismatches(before, {"a": 6, "b": 1}, want, k=3) == {"a": (2, 3, 6)}
    assert reference.top_mismatches(before, {"a": 5}, want, k=3) == {"b": (1, None, None)}


def test_a_full_table_checks_what_it_can():
    before = {"a": 9, "b": 4}
    # a gained exactly 1; c entered with at least its gain; b left: not checked
    assert reference.top_mismatches(before, {"a": 10, "c": 7}, {"a": 1, "c": 2}, k=2) == {}
    assert reference.top_mismatches(before, {"a": 12, "c": 7}, {"a": 1, "c": 2}, k=2) == {"a": (1, 9, 12)}
    assert reference.top_mismatches(before, {"a": 10, "c": 1}, {"a": 1, "c": 2}, k=2) == {"c": (2, None, 1)}
