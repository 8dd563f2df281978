"""Check each demo-page speech label against the column header its file really sits under.

Most speech labels come from papers' demo pages: a file is "real" because it sits in a
table column such as "Ground Truth" or "Audio Prompt", and synthetic because it sits under
a system's name. Those manifests were written by reading the pages' tables, and a table
cell that spans several rows (``rowspan``, as in a prompt shown once beside three
generated clips) shifts every later cell of those rows one column to the left for a reader
that ignores the span: a system's output is then read as the prompt. This script parses
each page at the manifest's commit with row and column spans laid out on a grid, finds the
header of the column that holds each labelled file, and writes one row per file:

- ``ok``: a real label under a recording-like header (ground truth, reference, prompt,
  source, target, original...), or a synthetic label under any other header;
- ``real_under_system``: a real label under a header that names no recording;
- ``synthetic_under_recording``: a synthetic label under a recording-like header;
- ``real_under_resynthesis``: a real label under a header that says the clip was
  re-synthesised (vocoded, reconstructed, codec, analysis-synthesis);
- ``not_in_table``: the file is not in a page's table (pages built by scripts, lists, file
  names).

Each row also gets ``path_hint`` where the words of its path contradict its label (a
synthetic label on ``.../x_gt.wav``, a real one on ``.../generated/...``); the summary
lists those that no table confirms.

The flags are leads for a person to read, not verdicts: headers are free text.

    python scripts/audit_speech_labels.py --mirrors /work/.mirror --out var/label-audit.tsv \\
        ../shared/corpus/extra-audio-manifest.tsv data/manifests/speech-*.tsv
"""

from __future__ import annotations

import argparse
import csv
import posixpath
import re
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

PAGE_SUFFIXES = (".html", ".htm", ".md", ".markdown")
MEDIA_ATTRS = ("src", "href", "data-src")
RECORDING_HEADER = re.compile(
    r"\b(gt|g\.t\.|ground[\s_-]*truth|groundtruth|truth|reference|ref|prompts?|original|"
    r"source|target|recordings?|recorded|human|natural|real|raw|input|emb\s*ref)\b", re.I)
# Words in a file's path (folder or file name) that say what it is, for the files no table
# places: a synthetic label on a path that says "gt", or a real label on one that says
# "generated", is a lead too.
RECORDING_PATH = re.compile(
    r"(?i)(?<![a-z])(gt|ground[_ -]?truth|groundtruth|ref|reference|orig|original|real|prompt|"
    r"source|src|target|tgt|raw|human|natural|recordings?|bonafide|genuine)(?![a-z])")
SYNTHETIC_PATH = re.compile(
    r"(?i)(?<![a-z])(gen|generated|synth|synthesized|syn|tts|vocoded?|vocoder|recon|"
    r"reconstructed|resynth\w*|pred|predicted|output|converted|conv|fake|spoof|cloned?|vc|"
    r"hifigan|melgan|wavenet|waveglow|ours|proposed|baseline)(?![a-z])")
RESYNTHESIS_HEADER = re.compile(
    r"vocod|re-?synth|reconstruct|codec|copy[\s-]*synth|ana(lysis)?[\s-]*syn|"
    r"\bresyn|\brecon\b", re.I)


@dataclass
class Cell:
    """One table cell: its text and the media paths it links, with its spans."""
    text: str = ""
    media: list[str] = field(default_factory=list)
    rowspan: int = 1
    colspan: int = 1


class _TableParser(HTMLParser):
    """Collects every ``<table>`` of a page as rows of `Cell` (nested tables kept apart)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[Cell]]] = []
        self._stack: list[list[list[Cell]]] = []
        self._cell: list[Cell | None] = []
        self._in_player = 0  # the fallback text inside <audio> names nothing

    @staticmethod
    def _span(value: str | None) -> int:
        try:
            return max(1, min(int(value or 1), 64))
        except ValueError:
            return 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("audio", "video"):
            self._in_player += 1
        if tag == "table":
            self._stack.append([])
            self._cell.append(None)
        elif not self._stack:
            return
        elif tag == "tr":
            self._stack[-1].append([])
        elif tag in ("td", "th"):
            if not self._stack[-1]:
                self._stack[-1].append([])
            cell = Cell(rowspan=self._span(a.get("rowspan")), colspan=self._span(a.get("colspan")))
            self._stack[-1][-1].append(cell)
            self._cell[-1] = cell
        elif self._cell and self._cell[-1] is not None:
            for name in MEDIA_ATTRS:
                value = a.get(name)
                if value and tag in ("audio", "source", "a", "embed", "video"):
                    self._cell[-1].media.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("audio", "video"):
            self._in_player = max(0, self._in_player - 1)
        if not self._stack:
            return
        if tag == "table":
            self.tables.append(self._stack.pop())
            self._cell.pop()
        elif tag in ("td", "th"):
            self._cell[-1] = None

    def handle_data(self, data: str) -> None:
        if self._cell and self._cell[-1] is not None and not self._in_player:
            self._cell[-1].text += data


def html_tables(page: str) -> list[list[list[Cell]]]:
    """The page's HTML tables as rows of cells."""
    parser = _TableParser()
    parser.feed(page)
    parser.close()
    return parser.tables


_PIPE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


def pipe_tables(page: str) -> list[list[list[Cell]]]:
    """Markdown pipe tables (a header line, a ``|---|`` line, rows) as rows of cells."""
    lines = page.splitlines()
    tables: list[list[list[Cell]]] = []
    i = 0
    while i + 1 < len(lines):
        if "|" in lines[i] and _PIPE_SEPARATOR.match(lines[i + 1]):
            rows = [lines[i]]
            j = i + 2
            while j < len(lines) and "|" in lines[j] and lines[j].strip():
                rows.append(lines[j])
                j += 1
            table = []
            for line in rows:
                parts = line.strip().strip("|").split("|")
                cells = []
                for part in parts:
                    inner = html_tables(f"<table><tr><td>{part}</td></tr></table>")
                    cell = inner[0][0][0] if inner and inner[0] and inner[0][0] else Cell()
                    cell.media += re.findall(r"\]\(([^)\s]+)", part)  # [label](file.wav)
                    cells.append(cell)
                table.append(cells)
            tables.append(table)
            i = j
        else:
            i += 1
    return tables


def grid(table: list[list[Cell]]) -> list[list[Cell | None]]:
    """Lay the rows out with their spans: a cell spanning n rows fills its column in each."""
    out: list[list[Cell | None]] = []
    pending: dict[tuple[int, int], Cell] = {}
    for r, row in enumerate(table):
        line: list[Cell | None] = []
        cells = iter(row)
        c = 0
        while True:
            if (r, c) in pending:
                line.append(pending.pop((r, c)))
                c += 1
                continue
            cell = next(cells, None)
            if cell is None:
                break
            for dc in range(cell.colspan):
                line.append(cell)
                for dr in range(1, cell.rowspan):
                    pending[(r + dr, c + dc)] = cell
            c += cell.colspan
        # cells spanning into this row past its last own cell
        while (r, c) in pending:
            line.append(pending.pop((r, c)))
            c += 1
        out.append(line)
    return out


def _clean(text: str) -> str:
    return " ".join(text.split())


def header_of(layout: list[list[Cell | None]], r: int, c: int) -> str:
    """What names the cell at (r, c): its own text when it labels its clip itself (``GT
    (1571)`` above the player); else column c of the nearest earlier row that is a header
    row, i.e. has at least two distinct cells with text and no media, followed by the row's
    first cell when that is a caption (tables that name the systems or "Ground Truth" in
    their first column): ``"VS-TTS"``, ``"Sample 1 / row: Ground truth"``."""
    own = layout[r][c] if c < len(layout[r]) else None
    if own is not None and _clean(own.text):
        return "cell: " + _clean(own.text)
    column = ""
    for rr in range(r - 1, -1, -1):
        row = layout[rr]
        labels = {id(x) for x in row if x is not None and _clean(x.text) and not x.media}
        above = row[c] if c < len(row) else None
        if len(labels) >= 2 and above is not None and not above.media and _clean(above.text):
            column = _clean(above.text)
            break
    first = layout[r][0] if layout[r] else None
    if (c > 0 and first is not None and not first.media
            and re.search(r"[^\W\d_]", first.text)):  # a caption, not a row number
        return f"{column} / row: {_clean(first.text)}" if column else f"row: {_clean(first.text)}"
    return column


def _resolve(page_path: str, link: str) -> str:
    path = unquote(urlsplit(link).path)
    if path.startswith("/"):
        return posixpath.normpath(path.lstrip("/"))
    return posixpath.normpath(posixpath.join(posixpath.dirname(page_path), path))


def placements(page_path: str, page: str) -> dict[str, list[tuple[str, str]]]:
    """Every media path the page's tables link, resolved in the repository, with the
    header of each place it appears: as laid out with the spans, and as a reader that
    ignores every span (each row's cells side by side) would see it."""
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    tables = html_tables(page) + (pipe_tables(page) if page_path.endswith((".md", ".markdown"))
                                  else [])
    for table in tables:
        layout = grid(table)
        flat: list[list[Cell | None]] = [list(row) for row in table]
        for r, row in enumerate(layout):
            seen: set[int] = set()
            for c, cell in enumerate(row):
                if cell is None or not cell.media or id(cell) in seen:
                    continue
                seen.add(id(cell))
                naive_c = next(i for i, x in enumerate(flat[r]) if x is cell) \
                    if any(x is cell for x in flat[r]) else c
                for link in cell.media:
                    found[_resolve(page_path, link)].append(
                        (header_of(layout, r, c), header_of(flat, r, naive_c)))
    return found


def classify(label: str, headers: list[str]) -> str:
    """Compare a file's label with the headers of the columns that hold it."""
    if not headers:
        return "not_in_table"
    is_real = label.startswith("real")
    recording = [h for h in headers if RECORDING_HEADER.search(h)]
    if is_real and any(RESYNTHESIS_HEADER.search(h) for h in headers):
        return "real_under_resynthesis"
    if is_real and not recording:
        return "real_under_system"
    if not is_real and recording and len(recording) == len(headers):
        return "synthetic_under_recording"
    return "ok"


def path_hint(label: str, path: str) -> str:
    """What the path's own words say when they contradict the label (and only then)."""
    says_real = RECORDING_PATH.search(path)
    says_synthetic = SYNTHETIC_PATH.search(path)
    if label.startswith("real") and says_synthetic and not says_real:
        return f"path says synthetic ({says_synthetic.group(0)})"
    if not label.startswith("real") and says_real and not says_synthetic:
        return f"path says recording ({says_real.group(0)})"
    return ""


def _git_dirs(mirrors: Path) -> dict[str, Path]:
    out = {}
    for d in sorted(mirrors.iterdir()):
        if "+" not in d.name:
            continue
        g = d / "repo"
        if (g / ".git").is_dir():
            g = g / ".git"
        out[d.name.replace("+", "/", 1)] = g if g.is_dir() else d
    return out


def _pages(git_dir: Path, commit: str) -> dict[str, str]:
    names = subprocess.run(["git", f"--git-dir={git_dir}", "ls-tree", "-r", "--name-only",
                            commit], capture_output=True, text=True, check=False).stdout.split("\n")
    pages = {}
    for name in names:
        if name.lower().endswith(PAGE_SUFFIXES) and "node_modules/" not in name:
            blob = subprocess.run(["git", f"--git-dir={git_dir}", "show", f"{commit}:{name}"],
                                  capture_output=True, check=False).stdout
            if len(blob) < 5_000_000:
                pages[name] = blob.decode("utf-8", "replace")
    return pages


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("manifests", type=Path, nargs="+")
    ap.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    rows: list[dict[str, str]] = []
    for manifest in args.manifests:
        with manifest.open(newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                rows.append({**row, "manifest": str(manifest)})
    git_dirs = _git_dirs(args.mirrors)
    by_source: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_source[(row["source_repo"], row["commit"])].append(row)
    out_rows = []
    for (repo, commit), group in sorted(by_source.items()):
        git_dir = git_dirs.get(repo)
        pages = _pages(git_dir, commit) if git_dir is not None else {}
        where: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        for page_path, page in pages.items():
            if "<audio" not in page and ".wav" not in page and ".mp3" not in page:
                continue
            for media, headers in placements(page_path, page).items():
                where[media] += [(page_path, laid_out, naive) for laid_out, naive in headers]
        for row in group:
            hits = where.get(posixpath.normpath(row["path_in_repo"]), [])
            status = classify(row["label"], [h for _, h, _ in hits]) if git_dir else "no_mirror"
            moved = any(h != n for _, h, n in hits)
            out_rows.append({
                "status": status, "span_shift": "yes" if moved else "",
                "manifest": row["manifest"], "file": row["file"],
                "label": row["label"], "source_repo": repo,
                "page": ";".join(sorted({p for p, _, _ in hits})),
                "headers": " | ".join(dict.fromkeys(h for _, h, _ in hits)),
                "headers_ignoring_spans": " | ".join(dict.fromkeys(n for _, _, n in hits)),
                "path_hint": path_hint(row["label"], row["path_in_repo"]),
                "evidence": row.get("evidence", "")})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(out_rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(out_rows)
    counts = Counter((r["status"], r["label"].startswith("real")) for r in out_rows)
    for (status, real), n in sorted(counts.items()):
        print(f"{status:28s} {'real' if real else 'synthetic':9s} {n}")
    by_span = Counter((r["source_repo"], r["label"].startswith("real"))
                      for r in out_rows if r["span_shift"])
    for (repo, real), n in sorted(by_span.items()):
        print(f"header moved by a span: {repo} {'real' if real else 'synthetic'} {n}")
    by_path = Counter((r["source_repo"], r["path_hint"]) for r in out_rows
                      if r["path_hint"] and r["status"] != "ok")
    for (repo, hint), n in sorted(by_path.items()):
        print(f"{hint}, no table says otherwise: {repo} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
