import json

import pandas as pd
import pytest

from transferkit.data.examples import load_examples
from transferkit.data.splits import stratified_split
from transferkit.errors import DataError, DataFileError, TransferkitError


def _frame():
    return pd.DataFrame(
        {"sentence": ["good film", "bad film", "great", "awful"], "label": ["pos", "neg", "pos", "neg"]}
    )


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json", ".parquet"])
def test_every_file_format_loads_with_guessed_columns(tmp_path, suffix):
    frame = _frame()
    path = tmp_path / f"data{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".json":
        frame.to_json(path, orient="records")
    else:
        frame.to_parquet(path)
    examples = load_examples(path)
    assert examples.inputs == frame["sentence"].tolist() and examples.labels == frame["label"].tolist()


def test_lists_dataframe_and_hf_dataset():
    import datasets

    assert load_examples(["a", "b"], [1, 0]).labels == [1, 0]
    assert load_examples(_frame()).inputs[0] == "good film"
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    dataset = datasets.Dataset.from_dict({"text": ["x y", "z"], "label": [1, 0]}, features=features)
    examples = load_examples(dataset)
    assert examples.labels == ["pos", "neg"]  # ClassLabel ids become their names


def test_integer_labels_in_csv_stay_integers(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\nhello,1\nworld,0\n")
    assert load_examples(path).labels == [1, 0]


def test_configured_columns_and_misspelled_column(tmp_path):
    frame = pd.DataFrame({"body": ["a", "b"], "stars": [1, 2]})
    assert load_examples(frame, text="body", label="stars").labels == [1, 2]
    with pytest.raises(DataError) as info:
        load_examples(frame, text="bodyy", label="stars")
    assert "'bodyy'" in str(info.value) and "'body'" in str(info.value) and 'Did you mean "body"' in str(info.value)
    with pytest.raises(DataError, match="Cannot tell which column holds the texts.*--text-column"):
        load_examples(pd.DataFrame({"a": ["x"], "label": [1]}))


def test_empty_and_header_only_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataFileError, match="empty"):
        load_examples(empty)
    header = tmp_path / "header.csv"
    header.write_text("text,label\n")
    with pytest.raises(DataFileError, match="no rows"):
        load_examples(header)
    with pytest.raises(DataFileError, match="does not exist"):
        load_examples(tmp_path / "nope.csv")
    (tmp_path / "data.xlsx").write_bytes(b"PK")
    with pytest.raises(DataFileError, match="unknown file type"):
        load_examples(tmp_path / "data.xlsx")


def test_non_utf8_file_names_the_position(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncaf\xe9 ok,1\nfine,0\n".encode("latin-1"))
    with pytest.raises(DataFileError, match=r"not valid UTF-8 .*line 2.*iconv"):
        load_examples(path)


def test_bad_texts_and_labels():
    with pytest.raises(DataError, match=r"empty or whitespace only \(rows 2\)"):
        load_examples(["fine", "  "], [1, 0])
    with pytest.raises(DataError, match="not strings"):
        load_examples(["fine", 3.5], [1, 0])
    with pytest.raises(DataError, match="no label"):
        load_examples(pd.DataFrame({"text": ["a", "b"], "label": ["x", None]}))
    with pytest.raises(DataError, match="mixes types"):
        load_examples(["a", "b"], [1, "one"])
    with pytest.raises(DataError, match="2 inputs but 1 labels"):
        load_examples(["a", "b"], [1])
    with pytest.raises(TransferkitError, match="Labels are missing"):
        load_examples(["a", "b"])


def test_fingerprint_depends_on_content():
    a = load_examples(["x", "y"], [0, 1])
    assert a.fingerprint() == load_examples(["x", "y"], [0, 1]).fingerprint()
    assert a.fingerprint() != load_examples(["x", "y"], [1, 0]).fingerprint()
    json.dumps(a.fingerprint())


def test_stratified_split_keeps_class_shares_and_rare_classes():
    examples = load_examples([f"t{i}" for i in range(42)], ["a"] * 30 + ["b"] * 10 + ["c"] * 2)
    keep, held = stratified_split(examples, 0.2, seed=0)
    assert sorted(keep + held) == list(range(42))
    held_labels = [examples.labels[i] for i in held]
    assert held_labels.count("a") == 6 and held_labels.count("b") == 2 and "c" not in held_labels
