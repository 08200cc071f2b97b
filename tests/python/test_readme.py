"""The README's Python example, run as written (from a directory beside ../shared), printing what it says."""

import contextlib
import io
import os
import re

from conftest import SHARED, SOURCE, shared


def test_readme_python_example(tmp_path):
    shared("datasets/scifact")
    readme = (SOURCE / "README.md").read_text()
    section = readme[readme.index("## Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    expected = re.search(r"print\(\{name: .*\)  # (\{.*\})", code).group(1)
    work = tmp_path / "work"
    work.mkdir()
    os.symlink(SHARED, tmp_path / "shared")
    out = io.StringIO()
    cwd = os.getcwd()
    try:
        os.chdir(work)
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4, lines  # three hits, then the metrics
    assert lines[-1] == expected
    assert (work / "bm25.trec").stat().st_size > 0
