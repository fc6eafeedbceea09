"""Every relative link in the docs points to an existing file, and the README stays short."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README_LIMIT = 12_800  # bytes
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def doc_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "RESULTS.md", ROOT / "BENCHMARKS.md", ROOT / "SCIENCE.md"]
    return [f for f in files if f.exists()] + sorted((ROOT / "docs").rglob("*.md"))


def relative_links(path: Path) -> list[str]:
    """Link targets outside code fences and inline code, without http(s)/mailto and anchor-only links."""
    links, fenced = [], False
    for line in path.read_text().splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if fenced:
            continue
        line = re.sub(r"`[^`]*`", "", line)
        for match in LINK.finditer(line):
            target = match.group(1) or match.group(2)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
                continue
            links.append(target)
    return links


def test_relative_links_resolve():
    broken = []
    for path in doc_files():
        for target in relative_links(path):
            file_part = target.split("#", 1)[0].split("?", 1)[0]
            if not (path.parent / file_part).exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken, "broken relative links:\n" + "\n".join(broken)


def test_link_checker_sees_links(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("[a](x.md) [b](https://e.org) [c](#top) `[d](no.md)`\n```\n[e](no.md)\n```\n![f](img.png)\n")
    assert relative_links(page) == ["x.md", "img.png"]


def test_readme_is_short():
    size = (ROOT / "README.md").stat().st_size
    assert size <= README_LIMIT, f"README.md is {size} bytes; keep it ≤ {README_LIMIT} and move detail to docs/"
