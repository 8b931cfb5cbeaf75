"""The reference implementation (reference/) is a package of its own: it reads the
stopwords itself, the same as the pipeline, and imports none of the pipeline's code;
the benchmarks use it without importing the tests."""

from __future__ import annotations

import ast
import subprocess
import sys

import reference
from stack import pipeline
from stack.common import REPO


def test_the_reference_reads_the_pipelines_stopwords():
    assert reference.stopwords() == pipeline.stopwords()
    assert reference.STOPWORDS == frozenset(pipeline.stopwords())
    assert len(reference.STOPWORDS) > 100  # the files were found


def test_the_reference_imports_no_project_code():
    code = "import sys, reference; print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in {'stack', 'tests', 'bench', 'producer', 'api'})))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _imported(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
    return names


def test_the_benchmarks_import_nothing_from_the_tests():
    found = {
        f"{path.relative_to(REPO)}: {name}"
        for path in sorted((REPO / "bench").rglob("*.py"))
        for name in _imported(path)
        if name == "tests" or name.startswith("tests.")
    }
    assert not found, "bench/ imports from tests/: " + ", ".join(sorted(found))
