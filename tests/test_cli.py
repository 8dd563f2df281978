"""The ``antifake`` CLI: JSON Lines contract, exit codes, folder walking, bad input."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from antifake.cli import main
from synth import write_image, write_video

REQUIRED_FIELDS = {"file", "media_type", "verdict", "ai_probability", "generator", "evidence",
                   "error"}


def _scan(*args: str) -> tuple[int, list[dict], str]:
    runner = CliRunner()
    res = runner.invoke(main, ["scan", "--json", "-q", *args])
    lines = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    return res.exit_code, lines, res.stderr


def test_scan_json_lines_contract(tmp_path: Path) -> None:
    img = write_image(tmp_path / "a.png")
    vid = write_video(tmp_path / "b.mp4")
    code, rows, _ = _scan(str(img), str(vid))
    assert code == 0
    assert [r["file"] for r in rows] == [str(img), str(vid)]
    for row in rows:
        assert row.keys() >= REQUIRED_FIELDS
        assert row["error"] is None
        assert row["verdict"] in ("ai_generated", "authentic", "uncertain")
        assert 0.0 <= row["ai_probability"] <= 1.0
        for ev in row["evidence"]:
            assert ev.keys() >= {"detector", "score", "summary"}
        assert "forensic_image" in {ev["detector"] for ev in row["evidence"]}
    assert [r["media_type"] for r in rows] == ["image", "video"]
    assert "temporal" in {ev["detector"] for ev in rows[1]["evidence"]}


def test_no_provenance_is_uncertain_not_authentic(tmp_path: Path) -> None:
    img = write_image(tmp_path / "a.png")
    vid = write_video(tmp_path / "b.mp4")
    code, rows, _ = _scan("--detectors", "c2pa,watermark,metadata", str(img), str(vid))
    assert code == 0
    for row in rows:
        assert row["verdict"] == "uncertain"
        assert row["ai_probability"] == 0.5
        assert row["generator"] is None


def test_png_with_generator_chunk_is_flagged(tmp_path: Path) -> None:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, "
                  "Size: 96x64, Model hash: abc123, Model: sd_xl_base_1.0")
    img = write_image(tmp_path / "gen.png", pnginfo=info)
    code, rows, _ = _scan(str(img))
    assert code == 0
    assert rows[0]["verdict"] == "ai_generated"
    assert rows[0]["generator"]["family"] == "stable_diffusion"


def test_broken_files_give_error_codes_and_nonzero_exit(tmp_path: Path) -> None:
    good = write_image(tmp_path / "good.jpg")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    truncated = tmp_path / "trunc.mp4"
    full = write_video(tmp_path / "full.mp4", frames=24).read_bytes()
    truncated.write_bytes(full[: len(full) // 2])
    text = tmp_path / "notes.mp4"
    text.write_text("just some text, not a video\n" * 10)
    code, rows, stderr = _scan(str(good), str(empty), str(truncated), str(text),
                               str(tmp_path / "missing.png"))
    assert code == 1
    codes = {Path(r["file"]).name: (r["error"] or {}).get("code") for r in rows}
    assert codes == {
        "good.jpg": None,
        "empty.jpg": "empty_file",
        "trunc.mp4": "corrupt_media",
        "notes.mp4": "unsupported_media",
        "missing.png": "not_found",
    }
    for r in rows:
        if r["error"]:
            assert r["verdict"] is None and r["ai_probability"] is None
            assert r["error"]["message"]
    assert "4 of 5" in stderr


def test_folder_is_walked_recursively_and_non_media_skipped(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    write_image(tmp_path / "one.webp")
    write_video(tmp_path / "sub" / "deeper" / "two.mkv", container="matroska")
    # Named like text but is a PNG: sniffed from the bytes, so analysed.
    write_image(tmp_path / "sub" / "looks_like_text.txt", fmt="PNG")
    (tmp_path / "README.md").write_text("not media")
    (tmp_path / ".hidden.png").write_bytes(b"ignored")
    code, rows, stderr = _scan(str(tmp_path))
    assert code == 0
    names = sorted(Path(r["file"]).name for r in rows)
    assert names == ["looks_like_text.txt", "one.webp", "two.mkv"]
    assert "skipped 1 non-media" in stderr

    code, rows, _ = _scan("--no-recursive", str(tmp_path))
    assert [Path(r["file"]).name for r in rows] == ["one.webp"]


def test_limits_from_options(tmp_path: Path) -> None:
    img = write_image(tmp_path / "big.png", width=200, height=200)
    code, rows, _ = _scan("--max-pixels", "1000", str(img))
    assert code == 1
    assert rows[0]["error"]["code"] == "too_large"


def test_bad_options_exit_2(tmp_path: Path) -> None:
    img = write_image(tmp_path / "a.png")
    runner = CliRunner()
    res = runner.invoke(main, ["scan", "--detectors", "nope", str(img)])
    assert res.exit_code == 2
    assert "unknown detector" in res.output
    res = runner.invoke(main, ["scan", "--sampling", "fps=zero", str(img)])
    assert res.exit_code == 2


def test_table_output_and_detectors_list(tmp_path: Path) -> None:
    img = write_image(tmp_path / "a.png")
    runner = CliRunner()
    res = runner.invoke(main, ["scan", "-q", "--detectors", "metadata", str(img)],
                        env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "uncertain" in res.stdout and "a.png" in res.stdout
    res = runner.invoke(main, ["detectors", "--json"])
    names = {d["name"] for d in json.loads(res.stdout)}
    assert {"c2pa", "watermark", "metadata"} <= names


def test_trust_anchors_option_turns_valid_into_trusted() -> None:
    root = Path(__file__).resolve().parent.parent / "examples"
    example = str(root / "c2pa_runway_gen3.jpg")
    _, plain, _ = _scan("--detectors", "c2pa", example)
    _, trusted, _ = _scan("--detectors", "c2pa", "--trust-anchors",
                          str(root / "certs" / "root_ca.pem"), example)
    assert "(valid)" in plain[0]["evidence"][0]["summary"]
    assert "(trusted)" in trusted[0]["evidence"][0]["summary"]
    for row in (plain, trusted):
        assert row[0]["verdict"] == "ai_generated"
        assert row[0]["generator"]["family"] == "runway_gen3"


def test_help_lists_every_command() -> None:
    res = CliRunner().invoke(main, ["--help"])
    assert res.exit_code == 0, res.output
    for name in ("scan", "detectors", "serve", "worker", "keys", "train", "evaluate"):
        assert name in res.output


def test_batch_outputs_have_unique_names_and_are_listed(tmp_path: Path) -> None:
    """Issue 10: real.mp4 and real.png no longer overwrite each other's heatmaps; the JSON
    says which files belong to which result; --report writes a report per file plus an
    index, --csv one line per file (formula-looking names kept as text)."""
    from synth import voice_like, write_audio

    (tmp_path / "in").mkdir()
    vid = write_video(tmp_path / "in" / "real.mp4")
    img = write_image(tmp_path / "in" / "real.png")
    sub = tmp_path / "in" / "sub"
    sub.mkdir()
    img2 = write_image(sub / "real.png", seed=3)
    odd = write_audio(tmp_path / "in" / "=cmd.wav", voice_like(2.0))
    heat, rep, csv_path = tmp_path / "heat", tmp_path / "rep", tmp_path / "out.csv"
    code, rows, _ = _scan("--heatmap", str(heat), "--report", str(rep), "--csv", str(csv_path),
                          str(vid), str(img), str(img2), str(odd))
    assert code == 0
    heatmaps = [r["artifacts"].get("heatmaps", []) for r in rows]
    flat = [p for group in heatmaps for p in group]
    assert len(flat) == len(set(flat)) and all(Path(p).is_file() for p in flat)
    assert heatmaps[0] and heatmaps[1] and heatmaps[2]
    assert Path(heatmaps[0][0]).name == "real.heatmap.png"
    assert Path(heatmaps[1][0]).name == "real.png.heatmap.png"
    assert Path(heatmaps[2][0]).name == "real.png-2.heatmap.png"
    assert rows[0]["artifacts"]["timeline"] and "timeline" in rows[3]["artifacts"]
    reports = [Path(r["artifacts"]["report"][0]) for r in rows]
    assert len({p.name for p in reports}) == 4 and all(p.is_file() for p in reports)
    index = (rep / "index.html").read_text()
    for p in reports:
        assert f'href="{p.name}"' in index
    assert "4 file(s)" in index
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("file,media_type,verdict,ai_probability")
    assert len(lines) == 5
    import csv

    cells = [c for row in csv.reader(lines[1:]) for c in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "@")]
    assert any(c.endswith("=cmd.wav") for c in cells)


def test_report_pdf_needs_report_dir(tmp_path: Path) -> None:
    img = write_image(tmp_path / "a.png")
    res = CliRunner().invoke(main, ["scan", "-q", "--report-pdf", str(img)])
    assert res.exit_code == 2 and "--report" in res.output
