"""The documentation as a reader meets it: the README short, with the quick start's two
commands and links that lead somewhere; the docs/ site built by MkDocs in strict mode (a
broken link, a missing anchor or a page left out of the navigation fails)."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
from helpers.servers import REPO

README = (REPO / "README.md").read_text()


def _slug(heading: str) -> str:
    """Python-Markdown's toc slug, as MkDocs makes anchors."""
    text = re.sub(r"[^\w\s-]", "", heading.strip().lower())
    return re.sub(r"[\s-]+", "-", text).strip("-")


def test_readme_is_short():
    assert len(README.splitlines()) <= 200


def test_quick_start_is_make_serve_and_make_test():
    block = README.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make serve", "make test"]


def test_readme_links_lead_somewhere():
    for target in re.findall(r"\]\(([^)]+)\)", README):
        if target.startswith("http"):
            continue
        path, _, anchor = target.partition("#")
        doc = REPO / path
        assert doc.exists(), target
        if anchor:
            headings = re.findall(r"^#+ (.+)$", doc.read_text(), re.MULTILINE)
            assert anchor in {_slug(h) for h in headings}, target


def test_docs_build_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                          str(tmp_path / "site")], cwd=REPO, capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    for page in ("architecture", "guarantees", "protocol", "operations", "metrics",
                 "benchmarks"):
        assert (tmp_path / "site" / page / "index.html").exists(), page
