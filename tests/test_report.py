"""report.html and `runs compare` on real tiny runs: a text run, an image run with a thumbnail among its worst
examples, a generative run; every figure a decodable inline PNG, everything from the data escaped."""

from __future__ import annotations

import argparse
import base64
import csv
import html
import io
import json
import math
import re
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import transferkit as tk
from conftest import TINY, toy_sentiment
from transferkit.cli import _write_eval
from transferkit.report import build_report, compare_runs, format_compare_table
from transferkit.report.evaluations import worst_examples

DATA_URI = re.compile(r'src="data:(image/png|audio/wav);base64,([A-Za-z0-9+/=]+)"')
HOSTILE = "<script>alert('x')</script> awful film"  # a test text that must come out as text, not markup
COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220)}


def _evaluate_and_write(model, run_dir: Path, data: Path) -> dict:
    """What `transferkit evaluate` writes: the metrics (worst examples included) as eval_<name>.json."""
    metrics = model.evaluate(data)
    _write_eval(run_dir, str(data), metrics)
    return metrics


def make_text_run(root: Path) -> Path:
    """A tiny-bert run with validation history, evaluated on a test set holding three mislabelled rows."""
    train = toy_sentiment(120, seed=0)
    model = tk.FineTuner(**{**TINY, "epochs": 2, "val_fraction": 0.25}).fit(*train, verbose=False)
    run_dir = model.save(root / "text-run")
    texts, labels = toy_sentiment(40, seed=1)
    texts[1], labels[1] = HOSTILE, "pos"  # labelled against its words: misclassified with confidence
    labels[0], labels[2] = "neg", "pos"
    test = root / "text-test.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(test, index=False)
    _evaluate_and_write(model, run_dir, test)
    return run_dir


def _picture(colour, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour)[None, None, :] + rng.normal(0, 25, (40, 40, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def _image_folder(root: Path, per_class: int, seed: int) -> Path:
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            _picture(colour, seed + i + 100 * len(name)).save(root / name / f"{i}.png")
    return root


def make_image_run(root: Path) -> Path:
    """A tiny-efficientnet run whose test folder files a red picture under blue/: a real worst example."""
    train = _image_folder(root / "image-train", 10, 0)
    model = tk.FineTuner(
        backbone="tiny-efficientnet", strategy="probe", head_epochs=30, probe_lr=1.0, val_fraction=0.0, batch_size=8
    ).fit(train, verbose=False)
    run_dir = model.save(root / "image-run")
    test = _image_folder(root / "image-test", 3, 500)
    _picture(COLOURS["red"], 999).resize((300, 200)).save(test / "blue" / "mislabelled.png")
    _evaluate_and_write(model, run_dir, test)
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report-runs")
    text, image = make_text_run(root), make_image_run(root)
    return {"text": text, "image": image, "root": root}


def _png_uris(page: str) -> list[bytes]:
    return [base64.b64decode(data) for kind, data in DATA_URI.findall(page) if kind == "image/png"]


def _assert_self_contained(page: str) -> None:
    assert not re.search(r'(src|href)\s*=\s*["\']?\s*(https?:)?//', page, re.IGNORECASE)
    assert "Content-Security-Policy" in page and "default-src 'none'" in html.unescape(page)


def test_text_report_has_every_section_and_decodable_plots(runs):
    path = build_report(runs["text"])
    assert path == runs["text"] / "report.html"
    page = path.read_text(encoding="utf-8")
    for anchor in ("summary", "learning-curves", "eval-text-test", "data-checks", "configuration", "manifest"):
        assert f'id="{anchor}"' in page and f'href="#{anchor}"' in page
    for alt in ("learning curves: full", "confusion matrix", "reliability diagram", "per-class precision"):
        assert f'alt="{alt}' in page
    pngs = _png_uris(page)
    assert len(pngs) == 4  # learning curves, confusion, reliability, per-class bars
    for data in pngs:
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG" and image.width > 200 and image.height > 150
            assert len(np.unique(np.asarray(image.convert("L")))) > 10  # a drawn plot, not a blank canvas
    _assert_self_contained(page)
    metrics = json.loads((runs["text"] / "eval_text-test.json").read_text())
    assert f"{metrics['accuracy']:.4f}" in page and f"[{metrics['ci95']['accuracy'][0]:.4f}," in page
    shown = html.unescape(page)
    manifest = json.loads((runs["text"] / "transferkit.json").read_text())
    assert manifest["data_checks"]["rows"]["train"] > 0  # fit ran the data checks before training
    assert "passed" in shown and '"wall_time_s"' in shown  # the data-check summary; the manifest dump


def test_text_report_escapes_the_data_it_shows(runs):
    page = (build_report(runs["text"])).read_text(encoding="utf-8")
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; awful film" in page  # shown in the worst examples
    metrics = json.loads((runs["text"] / "eval_text-test.json").read_text())
    assert metrics["worst_examples"][0]["p_true"] < 0.5
    table = page.split('<table class="worst">', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == len(metrics["worst_examples"]) + 1


def test_image_report_inlines_a_thumbnail_of_the_worst_example(runs):
    metrics = json.loads((runs["image"] / "eval_image-test.json").read_text())
    assert metrics["worst_examples"][0]["input"].endswith("mislabelled.png")
    page = build_report(runs["image"]).read_text(encoding="utf-8")
    thumbs = re.findall(r'<img class="thumb" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert thumbs
    with Image.open(io.BytesIO(base64.b64decode(thumbs[0]))) as image:
        assert image.size == (128, 85)  # the 300 x 200 picture, longest side 128
        red, _, blue = image.convert("RGB").resize((1, 1)).getpixel((0, 0))
        assert red > 150 and blue < 100  # the red picture filed under blue
    assert "mislabelled.png" in page
    _assert_self_contained(page)


def _wav(path: Path, seconds: float) -> Path:
    samples = (np.sin(np.linspace(0, 440 * 2 * math.pi * seconds, int(16000 * seconds))) * 8000).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000)
        out.writeframes(samples.tobytes())
    return path


def test_audio_examples_get_a_player_unless_too_large_and_missing_files_say_so(tmp_path):
    short, long = _wav(tmp_path / "short.wav", 0.5), _wav(tmp_path / "long.wav", 70.0)  # 16 kB and 2.2 MB
    row = {"modality": "audio", "label": "yes", "predicted": "no", "confidence": 0.9, "p_true": 0.1}
    rows = [{**row, "input": "short.wav"}, {**row, "input": str(long)}, {**row, "input": "gone.wav"}]
    in_memory = {**row, "modality": "image", "input": "<image 40x40>"}  # an example passed as a PIL image
    markup = worst_examples([*rows, in_memory], [tmp_path])
    players = re.findall(r'<audio controls preload="metadata" src="data:audio/wav;base64,([A-Za-z0-9+/=]+)"', markup)
    assert [base64.b64decode(p) for p in players] == [short.read_bytes()]
    assert "over 2 MB" in markup and markup.count("(file not found)") == 1  # gone.wav only
    assert "&lt;image 40x40&gt;" in markup
    assert "No misclassified examples." in worst_examples([], [])


def test_data_checks_render_as_a_table_and_missing_pieces_are_tolerated(runs, tmp_path):
    from transferkit.data.checks import check_data
    from transferkit.data.examples import load_examples

    texts, labels = toy_sentiment(60, seed=3)
    texts[5] = texts[7] = "<b>good film</b> really"  # an exact duplicate, with markup that must stay text
    test_texts, test_labels = [texts[10], "awful movie"], [labels[10], "neg"]  # a test row copied from training
    checks = check_data(load_examples(texts, labels), test=load_examples(test_texts, test_labels)).to_dict()
    manifest = json.loads((runs["text"] / "transferkit.json").read_text())
    for phase in manifest["training"].values():  # as a run trained without validation data records it
        phase["history"] = [{k: v for k, v in r.items() if not k.startswith("val_")} for r in phase["history"]]
    bare = tmp_path / "bare-run"
    bare.mkdir()
    (bare / "transferkit.json").write_text(json.dumps({**manifest, "data_checks": checks}))
    page = build_report(bare).read_text(encoding="utf-8")
    assert "No validation data in this phase" in page and "No evaluation yet" in page
    section = page.split('id="data-checks"', 1)[1].split("</section>", 1)[0]
    rows = section.split('<table class="checks">', 1)[1].split("</table>", 1)[0].count("<tr>") - 1
    assert rows == len(checks["problems"]) >= 2
    for problem in checks["problems"]:
        assert html.escape(problem["check"]) in section and html.escape(problem["message"]) in section
    assert "&lt;b&gt;good film&lt;/b&gt;" in section and "<b>good" not in page
    assert "passed" in section and "class_counts" in section  # the summary beside the problems
    assert len(_png_uris(page)) == 1  # the learning curves (train loss) only


def test_generation_report_shows_history_scores_and_examples(tmp_path):
    pairs = [(f"copy: {w}", w) for w in ["cat", "dog", "sun", "sky", "red", "big", "hot", "cup"] * 2]
    model = tk.FineTuner(task="generation", backbone="tiny-llama", batch_size=8, lora_lr=2e-2, epochs=2).fit(
        pairs, val=pairs[:4], verbose=False
    )
    run_dir = model.save(tmp_path / "gen-run")
    data = tmp_path / "pairs.jsonl"
    pd.DataFrame({"prompt": [p for p, _ in pairs[:4]], "response": [r for _, r in pairs[:4]]}).to_json(
        data, orient="records", lines=True
    )
    _write_eval(run_dir, str(data), model.evaluate(data, max_new_tokens=4, log=None))
    page = build_report(run_dir).read_text(encoding="utf-8")
    assert 'id="eval-pairs"' in page and "fine-tuned" in page and "exact_match" in page
    assert "copy: cat" in page and len(_png_uris(page)) == 1  # the learning curves
    _assert_self_contained(page)
    (row,) = compare_runs([run_dir])
    assert row["task"] == "generation" and row["val_metric"] == "val_loss" and "pairs_exact_match" in row


def test_compare_runs_side_by_side(runs, tmp_path):
    (tmp_path / "not-a-run").mkdir()
    rows = compare_runs([runs["text"], runs["image"], tmp_path / "not-a-run"])
    text, image, skipped = rows
    assert (text["run"], text["modality"], text["backbone"], text["strategy"]) == (
        "text-run",
        "text",
        "tiny-bert",
        "full",
    )
    assert (image["modality"], image["backbone"], image["strategy"]) == ("image", "tiny-efficientnet", "probe")
    metrics = json.loads((runs["text"] / "eval_text-test.json").read_text())
    assert text["text-test_accuracy"] == round(metrics["accuracy"], 4)
    assert text["text-test_accuracy_low"] <= text["text-test_accuracy"] <= text["text-test_accuracy_high"]
    assert text["val_metric"] == "val_accuracy" and 0 <= text["val_score"] <= 1
    assert image["val_score"] is None and image["train_rows"] == 20 and text["trainable_params"] > 0
    assert "skipped" in skipped["note"] and "transferkit.json" in skipped["note"]
    table = format_compare_table(rows)
    header, rule, *lines = table.splitlines()
    assert header.split()[:2] == ["run", "task"] and set(rule) <= {"-", " "}
    assert lines[0].startswith("text-run") and lines[1].startswith("image-run")
    assert f"{metrics['accuracy']:.4f} [" in lines[0] and lines[2].endswith(skipped["note"])


def _parser() -> argparse.ArgumentParser:
    """The report subcommands as `transferkit` registers them."""
    from transferkit.cli_report import add_parser

    parser = argparse.ArgumentParser(prog="transferkit")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def _cli(argv: list[str]) -> int:
    """The real `transferkit` parser (so the wiring is tested), calling the command without main's error handling."""
    from transferkit.cli import build_parser

    args = build_parser().parse_args(argv)
    return args.func(args)


def test_cli_report_and_runs_compare(runs, tmp_path, capsys):
    (runs["text"] / "report.html").unlink(missing_ok=True)
    assert _cli(["report", str(runs["text"])]) == 0
    assert capsys.readouterr().out.strip() == str(runs["text"] / "report.html")
    assert (runs["text"] / "report.html").is_file()
    from transferkit.cli_report import write_report  # what `fit` and `evaluate` call after writing a run

    assert write_report(runs["text"]) == runs["text"] / "report.html"
    assert capsys.readouterr().err.strip() == f"wrote report to {runs['text'] / 'report.html'}"
    out_csv = tmp_path / "runs.csv"
    assert _cli(["runs", "compare", str(runs["text"]), str(runs["image"]), "--json", "--csv", str(out_csv)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["run"] for r in rows] == ["text-run", "image-run"]
    with open(out_csv, newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [r["run"] for r in written] == ["text-run", "image-run"] and "text-test_macro_f1" in written[0]
    from transferkit.errors import TransferkitError

    with pytest.raises(TransferkitError, match="None of"):
        _cli(["runs", "compare", str(tmp_path)])


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield name, child
                yield from _subparsers(child)


def test_every_report_flag_has_help_and_commands_have_examples():
    commands = dict(_subparsers(_parser()))
    assert set(commands) == {"report", "runs", "compare"}
    for name, command in commands.items():
        for action in command._actions:
            assert action.help, f"{name}: {action.dest} has no help"
    assert all("transferkit " in command.epilog for command in commands.values())  # each shows an example
