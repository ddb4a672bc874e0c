"""Duplicate, near-duplicate and train/val/test overlap checks, on the fingerprints of data/hashes.py."""

from __future__ import annotations

from typing import Any

from transferkit.data.examples import ExampleSet
from transferkit.data.hashes import (
    AUDIO_TOLERANCE,
    Fingerprints,
    close_signature_pairs,
    hamming_pairs,
    jaccard_pairs,
    shingles,
)

SHOWN = 3  # example groups listed per problem
JACCARD = 0.8  # word-pair Jaccard at or above which two texts are near copies
PAIRWISE_TEXTS = 20_000  # texts per split above which only the normalised-text comparison runs
JACCARD_BUDGET = 4_000_000  # candidate pairs (about 3 s) above which the shingle search is skipped
PAIRWISE_PAIRS = 100_000_000  # image (or same-length clip) pairs above which only identical hashes count
NEAR_BITS = 10  # of the 128 dHash + aHash bits: a resized or re-encoded copy differs in a few, other images in ~60
MIN_CORRELATION = 0.98  # of 16 x 16 grey thumbnails, to confirm a hash match: copies of photos reach 0.998+


def short(examples: ExampleSet, index: int, width: int = 60) -> str:
    """An input as a short line: the text's start, a file's name, or `image #n` for in-memory data."""
    item = examples.inputs[index]
    if examples.modality == "text":
        text = " ".join(item[: width * 8].split())  # the start is all that shows (a text may be 10 MB)
        return text if len(text) <= width else text[: width - 1] + "…"
    if examples.modality == "vector":
        values = [f"{float(v):.3g}" for v in list(item)[:4]]
        return "[" + ", ".join(values) + (", …]" if len(item) > 4 else "]")
    if isinstance(item, str) or hasattr(item, "__fspath__"):
        return str(item) if len(str(item)) <= width else "…" + str(item)[-(width - 1) :]
    if isinstance(item, dict) and item.get("path"):
        return str(item["path"])
    return f"{examples.modality} #{index + 1}"


def label_of(examples: ExampleSet, index: int) -> Any:
    return None if examples.labels is None else examples.labels[index]


def _group(keys: list[Any]) -> list[list[int]]:
    """Indices with equal keys (None skipped), groups of two or more, in order of first appearance."""
    by_key: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        if key is not None:
            by_key.setdefault(key, []).append(i)
    return [group for group in by_key.values() if len(group) > 1]


def _components(nodes: list[int], edges: list[tuple[int, int]]) -> list[list[int]]:
    """Connected components (union-find) with two or more nodes, each sorted."""
    parent = {n: n for n in nodes}

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for a, b in edges:
        parent[root(a)] = root(b)
    members: dict[int, list[int]] = {}
    for n in nodes:
        members.setdefault(root(n), []).append(n)
    return sorted((sorted(m) for m in members.values() if len(m) > 1), key=lambda m: m[0])


def _near_pairs(a: Fingerprints, rows_a: list[int], b: Fingerprints | None, rows_b: list[int]) -> list | None:
    """Near pairs (shingles, perceptual bits or audio signatures) between rows_a of a and rows_b of b (b=None:
    within a), as indices of a and b. None when the search would be too large and was skipped."""
    other = a if b is None else b
    if a.texts is not None:
        if max(len(rows_a), len(rows_b)) > PAIRWISE_TEXTS:
            return None
        sets_a = [shingles(a.texts[i]) for i in rows_a]
        sets_b = None if b is None else [shingles(other.texts[j]) for j in rows_b]
        found = jaccard_pairs(sets_a, sets_b, JACCARD, budget=JACCARD_BUDGET)
    elif a.bits is not None:
        if len(rows_a) * len(rows_b) > PAIRWISE_PAIRS:
            return None
        found = hamming_pairs(a.bits[rows_a], None if b is None else other.bits[rows_b], NEAR_BITS)
    elif a.signatures is not None:
        return _audio_pairs(a, rows_a, b, rows_b)
    else:
        return []
    return None if found is None else _confirmed(a, other, [(rows_a[i], rows_b[j]) for i, j in found])


def _confirmed(a: Fingerprints, b: Fingerprints, pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Image pairs with close perceptual hashes, kept when their thumbnails also correlate: 128 hash bits cannot
    tell apart small images of one style (two handwritten 1s of MNIST); the 256 thumbnail values mostly can."""
    if a.thumbs is None:
        return pairs
    return [(i, j) for i, j in pairs if float(a.thumbs[i] @ b.thumbs[j]) >= MIN_CORRELATION]


def _audio_pairs(a: Fingerprints, rows_a: list[int], b: Fingerprints | None, rows_b: list[int]) -> list | None:
    """Clips of one rate and length whose sample signatures agree (a lossless re-encode of the same clip)."""
    other, pairs, complete = a if b is None else b, [], True
    by_shape: dict[Any, list[int]] = {}
    for j in rows_b:
        by_shape.setdefault(other.shapes[j], []).append(j)
    mine: dict[Any, list[int]] = {}
    for i in rows_a:
        mine.setdefault(a.shapes[i], []).append(i)
    for shape, left in mine.items():
        right = by_shape.get(shape, [])
        if shape is None or not right:
            continue
        if len(left) * len(right) > PAIRWISE_PAIRS:
            complete = False
            continue
        same = None if b is None else other.signatures[right]
        found = close_signature_pairs(a.signatures[left], same, AUDIO_TOLERANCE)
        pairs += [(left[i], (left if b is None else right)[j]) for i, j in found]
    return pairs if complete else None


SKIPPED = {  # modality -> what still counts when the pairwise near-copy search is too large and skipped
    "text": "word-shingle near-copy search skipped (too many candidate pairs): near copies by normalised text only",
    "image": "perceptual-hash distance search skipped (too many images): identical perceptual hashes only",
    "audio": "audio signature search skipped (too many clips of one length): identical decoded samples only",
}


def duplicate_groups(prints: Fingerprints, near: bool) -> tuple[list[list[int]], list[list[int]], bool]:
    """(exact groups, near groups, whether the pairwise search ran in full); a near group holds one row per
    distinct exact input."""
    exact = _group(prints.exact)
    if not near:
        return exact, [], True
    firsts: dict[Any, int] = {}
    for i, key in enumerate(prints.exact):
        if key is not None:
            firsts.setdefault(key, i)
    representatives = sorted(firsts.values())
    edges = [(g[0], j) for g in _group([prints.loose[i] for i in representatives]) for j in g[1:]]
    edges = _confirmed(prints, prints, [(representatives[a], representatives[b]) for a, b in edges])
    found = _near_pairs(prints, representatives, None, representatives)
    return exact, _components(representatives, edges + (found or [])), found is not None


def group_example(examples: ExampleSet, group: list[int], same: bool = False) -> dict[str, Any]:
    """A group of rows: their indices and labels, and the input once (`same`) or each (near copies) shortened."""
    shown = {"input": short(examples, group[0])} if same else {"inputs": [short(examples, i) for i in group[:SHOWN]]}
    return {"indices": group[:10], **shown, "labels": [label_of(examples, i) for i in group[:10]]}


def conflicting(examples: ExampleSet, groups: list[list[int]]) -> int:
    """Groups whose rows carry different labels."""
    if examples.labels is None:
        return 0
    return sum(len({repr(examples.labels[i]) for i in g}) > 1 for g in groups)


def overlap(train_prints: Fingerprints, other_prints: Fingerprints, near: bool) -> tuple[dict[int, list[int]], bool]:
    """(rows of `other` that repeat a training row -> those train rows, whether the pairwise search ran in full).

    Equal normalised keys always count (text: normalised text, images: perceptual hash, else exact); near=True
    adds the pairwise near-copy search."""
    by_key: dict[Any, list[int]] = {}
    for i, key in enumerate(train_prints.loose):
        if key is not None:
            by_key.setdefault(key, []).append(i)
    matches: dict[int, list[int]] = {}
    for i, key in enumerate(other_prints.loose):
        if key is not None and key in by_key:
            if same := [j for _, j in _confirmed(other_prints, train_prints, [(i, j) for j in by_key[key]])]:
                matches[i] = same
    found: list | None = []
    if near:
        readable_other = [i for i, k in enumerate(other_prints.exact) if k is not None]
        readable_train = [i for i, k in enumerate(train_prints.exact) if k is not None]
        found = _near_pairs(other_prints, readable_other, train_prints, readable_train)
        for i, j in found or []:
            if j not in matches.setdefault(i, []):
                matches[i].append(j)
    return dict(sorted(matches.items())), found is not None


def overlap_example(train: ExampleSet, other: ExampleSet, index: int, train_rows: list[int]) -> dict[str, Any]:
    return {
        "index": index,
        "input": short(other, index),
        "label": label_of(other, index),
        "train_indices": sorted(train_rows)[:10],
        "train_labels": [label_of(train, j) for j in sorted(train_rows)[:10]],
    }
