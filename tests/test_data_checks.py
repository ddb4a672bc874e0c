"""Data checks (transferkit.data.checks and `transferkit check`): planted problems are found, clean data passes."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image

from transferkit.data import ExampleSet, load_examples
from transferkit.data.checks import CheckReport, Problem, check_data, format_check_report
from transferkit.data.hashes import hamming_pairs, jaccard_pairs, normalise_text
from transferkit.errors import ConfigError, DataError, TransferkitError

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split()


def _sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.sample(WORDS, 8)) + f" {seed}-{i}" for i in range(n)]  # all different from each other


def _by_check(report: CheckReport) -> dict[str, Problem]:
    checks = [p.check for p in report.problems]
    assert len(checks) == len(set(checks)), checks
    return {p.check: p for p in report.problems}


@pytest.fixture
def text_csvs(tmp_path):
    texts = _sentences(24, seed=0)
    labels = ["pos", "neg"] * 12
    long_text = "the acting was superb and the plot kept me guessing until the very last scene of the film"
    texts += [
        texts[0],  # 24: exact copy of row 0
        texts[1].upper() + "!!",  # 25: near copy of row 1 (case, punctuation)
        long_text,  # 26
        long_text + " honestly",  # 27: near copy of row 26 (word-pair Jaccard 0.94)
        "rare example one",  # 28, 29: the tiny class
        "rare example two",
        "a positive one",  # 30: label variant "Positive"
        "another positive one",  # 31: label variant "positive "
    ]
    labels += ["pos", "neg", "pos", "pos", "rare", "rare", "Positive", "positive "]
    test_texts = _sentences(6, seed=1) + [" " + texts[5].replace(" ", "  ").title() + ".", texts[7]]
    test_labels = ["pos", "neg"] * 3 + ["neg", "neg"]
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(train, index=False)
    pd.DataFrame({"text": test_texts, "label": test_labels}).to_csv(test, index=False)
    return train, test


def test_text_checks_find_planted_problems(text_csvs):
    train, test = (load_examples(path) for path in text_csvs)
    report = check_data(train, test=test, min_class_size=3)
    found = _by_check(report)
    assert set(found) == {
        "duplicates",
        "near_duplicates",
        "leakage_test",
        "tiny_classes",
        "label_variants",
        "imbalance",
    }
    assert found["imbalance"].count == 2  # "Positive" and "positive " (1 row each) against "pos" (15 rows)

    assert found["duplicates"].count == 1
    assert found["duplicates"].examples[0]["indices"] == [0, 24]
    assert found["duplicates"].severity == "warning"

    near = found["near_duplicates"]
    assert near.count == 2
    assert [e["indices"] for e in near.examples] == [[1, 25], [26, 27]]
    assert near.examples[1]["labels"] == ["pos", "pos"]

    leak = found["leakage_test"]
    assert leak.severity == "warning" and leak.count == 2
    assert [(e["index"], e["train_indices"]) for e in leak.examples] == [(6, [5]), (7, [7])]

    tiny = found["tiny_classes"]
    assert {e["label"] for e in tiny.examples} == {"rare", "Positive", "positive "}
    assert found["label_variants"].examples == [{"label": "Positive", "variants": {"Positive": 1, "positive ": 1}}]

    assert report.summary["rows"] == {"train": 32, "test": 8}
    assert report.summary["classes"] == 5
    assert not report.has_errors
    report.raise_if_errors()  # warnings only: no exception


def test_strict_makes_leakage_an_error(text_csvs):
    train, test = (load_examples(path) for path in text_csvs)
    report = check_data(train, val=test, strict=True)
    leak = _by_check(report)["leakage_val"]
    assert leak.severity == "error" and report.problems[0] is leak  # errors come first
    assert report.has_errors
    with pytest.raises(DataError, match="validation row"):
        report.raise_if_errors()


def test_near_duplicates_off_keeps_exact_and_normalised_matches(text_csvs):
    train, test = (load_examples(path) for path in text_csvs)
    found = _by_check(check_data(train, test=test, near_duplicates=False))
    assert "near_duplicates" not in found and found["duplicates"].count == 1
    assert found["leakage_test"].count == 2  # normalised text still matches across splits


def test_clean_data_reports_ok():
    texts = _sentences(20, seed=3)
    report = check_data(load_examples(texts, ["a", "b"] * 10), load_examples(_sentences(6, seed=4), ["a", "b"] * 3))
    assert report.problems == [] and not report.has_errors
    text = format_check_report(report)
    assert text.endswith("OK: no problems found")
    assert "train 20 rows, val 6 rows, 2 classes" in text
    assert "truncation not checked" in text  # no tokenizer given: said, not silently skipped


def test_imbalance_and_report_text():
    texts = _sentences(32, seed=5)
    report = check_data(load_examples(texts, ["big"] * 30 + ["small"] * 2), min_class_size=2)
    problem = _by_check(report)["imbalance"]
    assert problem.severity == "warning" and "15x" in problem.message
    assert problem.examples == [{"label": "big", "rows": 30}, {"label": "small", "rows": 2}]
    text = format_check_report(report)
    assert "WARNING  imbalance (1)" in text and "'small': 2 rows" in text and text.endswith("1 warning")


def test_truncation_share_with_a_token_counter():
    texts = ["short text"] * 1 + [" ".join(WORDS[: 3 + i]) for i in range(9)]
    report = check_data(
        load_examples(texts, ["a", "b"] * 5),
        max_length=6,
        count_tokens=lambda batch: [len(t.split()) + 2 for t in batch],  # [CLS] ... [SEP]
        min_class_size=1,
    )
    problem = _by_check(report)["truncation"]
    assert problem.count == 7 and report.summary["truncated"] == {"train": 0.7}
    assert problem.severity == "warning" and "70% of training texts" in problem.message
    assert (problem.examples[0]["index"], problem.examples[0]["tokens"]) == (9, 13)  # the longest first
    with pytest.raises(ConfigError, match="one per text"):
        check_data(load_examples(texts, ["a", "b"] * 5), max_length=6, count_tokens=lambda batch: [1])


def test_bad_arguments_are_refused():
    texts = load_examples(_sentences(4, seed=6), ["a", "b"] * 2)
    vectors = load_examples(np.eye(4), [0, 1, 0, 1])
    with pytest.raises(DataError, match="vector inputs but the training data holds text"):
        check_data(texts, test=vectors)
    with pytest.raises(ConfigError, match="min_class_size"):
        check_data(texts, min_class_size=0)


def test_hash_helpers_agree_with_brute_force():
    assert normalise_text("  The  Film, was GREAT!\n") == "the film was great"
    rng = random.Random(0)
    sets = [frozenset(rng.sample(range(12), rng.randint(1, 8))) for _ in range(120)]
    sets = [frozenset(map(str, s)) for s in sets]
    brute = {
        (i, j) for i in range(120) for j in range(i + 1, 120) if len(sets[i] & sets[j]) >= 0.6 * len(sets[i] | sets[j])
    }
    assert set(jaccard_pairs(sets, None, 0.6)) == brute
    across = {
        (i, j) for i in range(60) for j in range(60, 120) if len(sets[i] & sets[j]) >= 0.6 * len(sets[i] | sets[j])
    }
    assert {(i, j + 60) for i, j in jaccard_pairs(sets[:60], sets[60:], 0.6)} == across

    bits = np.random.default_rng(0).integers(0, 2, (50, 16), dtype=np.uint8)
    bits[7] = bits[3]
    bits[9, 2:] = bits[4, 2:]
    distance = (bits[:, None] != bits[None]).sum(-1)
    assert set(hamming_pairs(bits, None, 2)) == {
        (i, j) for i in range(50) for j in range(i + 1, 50) if distance[i, j] <= 2
    }


def _blocky(rng, size: int = 64) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize((size, size), Image.BILINEAR)


def test_images_perceptual_leakage_duplicates_and_bad_files(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for k in range(8):
        paths.append(tmp_path / f"train{k}.png")
        _blocky(rng).save(paths[-1])
    Image.open(paths[2]).save(tmp_path / "copy2.png")  # exact pixel copy in train
    Image.open(paths[5]).resize((40, 40)).save(tmp_path / "test0.jpg", quality=80)  # resized JPEG of train5
    _blocky(rng).save(tmp_path / "test1.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    train_paths = [str(p) for p in paths] + [str(tmp_path / "copy2.png"), str(tmp_path / "broken.png")]
    train = load_examples(train_paths, ["a", "b"] * 5, skip_bad_files=True)
    assert train.modality == "image" and len(train.skipped) == 1
    test = load_examples([str(tmp_path / "test0.jpg"), str(tmp_path / "test1.png")], ["b", "a"])

    report = check_data(train, test=test, min_class_size=1)
    found = _by_check(report)
    assert set(found) == {"duplicates", "leakage_test", "unreadable"}
    assert found["duplicates"].examples[0]["indices"] == [2, 8]
    assert [(e["index"], e["train_indices"]) for e in found["leakage_test"].examples] == [(0, [5])]
    assert found["unreadable"].severity == "warning" and "broken.png" in found["unreadable"].examples[0]["file"]

    unchecked = ExampleSet([str(paths[0]), str(tmp_path / "broken.png")], ["a", "b"], "by hand", "image")
    problem = _by_check(check_data(unchecked, min_class_size=1))["unreadable"]
    assert problem.severity == "error" and problem.examples[0]["index"] == 1


def test_audio_same_samples_as_wav_and_flac_match(tmp_path):
    rng = np.random.default_rng(1)
    clips = [(rng.standard_normal(4000) * 0.2).clip(-1, 1).astype(np.float32) for _ in range(5)]
    for k, clip in enumerate(clips):
        sf.write(tmp_path / f"c{k}.wav", clip, 16000)
    sf.write(tmp_path / "c0.flac", clips[0], 16000)  # libsndfile rounds floats differently for FLAC than WAV
    sf.write(tmp_path / "c3.flac", clips[3], 16000)
    sf.write(tmp_path / "other.flac", (rng.standard_normal(4000) * 0.2).clip(-1, 1).astype(np.float32), 16000)
    train = load_examples([str(tmp_path / f"c{k}.wav") for k in range(5)] + [str(tmp_path / "c3.flac")], list("ababab"))
    test = load_examples([str(tmp_path / "c0.flac"), str(tmp_path / "other.flac")], ["a", "b"])
    assert train.modality == "audio"

    found = _by_check(check_data(train, test=test, min_class_size=1))
    assert set(found) == {"near_duplicates", "leakage_test"}
    assert found["near_duplicates"].examples[0]["indices"] == [3, 5]
    assert [(e["index"], e["train_indices"]) for e in found["leakage_test"].examples] == [(0, [0])]


def test_vectors_duplicate_rows_and_leakage():
    rows = np.random.default_rng(2).normal(size=(10, 4))
    rows[6] = rows[1]
    train = load_examples(rows, [0, 1] * 5)
    found = _by_check(check_data(train, test=load_examples(rows[[3]] + 0.0, [1]), min_class_size=1))
    assert found["duplicates"].examples[0]["indices"] == [1, 6]
    assert found["leakage_test"].examples[0]["train_indices"] == [3]
    report = check_data(train, min_class_size=1)
    json.dumps(report.to_dict())  # labels, counts and summary are plain JSON


def _cli(argv: list[str]):
    """The real `transferkit` parser, calling `check` without main's error handling (errors stay exceptions)."""
    from transferkit.cli import build_parser

    args = build_parser().parse_args(["check", *argv])
    return args.func(args)


def test_cli_json_and_exit_status(text_csvs, capsys):
    train, test = text_csvs
    assert _cli(["--data", str(train), "--test", str(test), "--json", "--min-class-size", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["rows"] == {"train": 32, "test": 8}
    assert {p["check"]: p["count"] for p in report["problems"]}["leakage_test"] == 2

    assert _cli(["--data", str(train), "--test", str(test), "--strict"]) == 1
    out = capsys.readouterr().out
    assert "ERROR  leakage_test (2)" in out and "1 error" in out

    with pytest.raises(TransferkitError):  # main() prints it and exits 2
        _cli(["--data", str(train.parent / "missing.csv")])


def test_cli_backbone_tokenizer_counts_truncation(tmp_path, capsys):
    long = " ".join(["good film"] * 40)  # well over tiny-bert's 64 tokens
    path = tmp_path / "train.csv"
    pd.DataFrame({"text": _sentences(9, seed=7) + [long], "label": ["a", "b"] * 5}).to_csv(path, index=False)
    assert _cli(["--data", str(path), "--backbone", "tiny-bert", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    truncation = {p["check"]: p for p in report["problems"]}["truncation"]
    assert report["max_length"] == 64 and report["truncated"] == {"train": 0.1}
    assert truncation["count"] == 1 and truncation["examples"][0]["tokens"] > 64


def test_cli_image_folder_reports_left_out_files(tmp_path, capsys):
    rng = np.random.default_rng(3)
    for k in range(6):
        folder = tmp_path / "photos" / ("cat" if k % 2 else "dog")
        folder.mkdir(parents=True, exist_ok=True)
        _blocky(rng).save(folder / f"{k}.png")
    (tmp_path / "photos" / "cat" / "broken.png").write_bytes(b"not a png")
    assert _cli(["--data", str(tmp_path / "photos"), "--min-class-size", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("image data: train 6 rows, 2 classes")
    assert "WARNING  unreadable (1)" in out and "train (left out): " in out and "broken.png" in out


def test_fit_checks_the_data_first_and_strict_checks_stop_before_training(toy_data, capsys):
    import transferkit as tk
    from conftest import TINY

    (x, y), _ = toy_data
    train_x, train_y = x + x[:3], y + y[:3]  # three rows twice
    model = tk.FineTuner(**{**TINY, "epochs": 1}).fit(train_x, train_y, val=x[:6], val_labels=y[:6])
    checks = model.run_info_["data_checks"]
    found = {p["check"]: p for p in checks["problems"]}
    assert found["duplicates"]["count"] >= 3 and found["leakage_val"]["severity"] == "warning"
    assert checks["max_length"] == 64 and checks["truncated"]["train"] == 0.0  # tiny-bert's tokenizer counted
    assert "data check (warning)" in capsys.readouterr().err
    strict = tk.FineTuner(**{**TINY, "epochs": 1, "strict_checks": True})
    with pytest.raises(DataError, match="The data checks found errors"):
        strict.fit(train_x, train_y, val=x[:6], val_labels=y[:6])
    assert not hasattr(strict, "model_")  # stopped before any training
