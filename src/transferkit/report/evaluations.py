"""The evaluation sections of report.html, one per eval_<name>.json: headline metrics with intervals, confusion
heatmap, per-class bars, reliability diagram and the worst misclassified examples; for multi-label runs per-label
scores and thresholds and the most wrong label sets; for regression runs the training-mean baseline and the
largest errors; for generative runs the before/after scores table and example answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transferkit.report import media, plots
from transferkit.report.markup import Raw, esc, image, interval, note, number, pairs, section, table, tag

HEADLINE = ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "log_loss", "ece")
MULTILABEL_HEADLINE = ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "micro_precision", "micro_recall")
REGRESSION_HEADLINE = ("mae", "rmse", "r2", "mean_error")
WORST_COLUMNS = {  # optional numeric columns of the worst-examples table, by the key rows carry
    "confidence": "confidence",
    "p_true": "p(true)",
    "wrong_labels": "wrong labels",
    "abs_error": "|error|",
}
MAX_WORST = 20  # rows of the worst-examples table
MAX_TEXT = 600  # characters of a text example shown


def evaluation(stem: str, metrics: dict[str, Any], bases: list[Path]) -> Raw:
    """One eval file's section; `bases` are the folders relative example paths are looked up in."""
    heading = f"Evaluation: {stem}"
    facts = pairs([("data", metrics.get("data", stem)), ("examples", number(metrics.get("n")))])
    if metrics.get("task") == "generation":
        return section(f"eval-{stem}", heading, facts, *_generation(metrics))
    if metrics.get("task") == "multilabel":
        return section(f"eval-{stem}", heading, facts, *_multilabel(metrics, bases))
    if metrics.get("task") == "regression":
        baseline = metrics.get("mean_baseline") or {}
        label = f"training mean ({number(baseline.get('prediction'))})" if baseline else "training mean"
        parts = [_headline(metrics, REGRESSION_HEADLINE, baseline, label), tag("h3", "Largest errors")]
        return section(f"eval-{stem}", heading, facts, *parts, worst_examples(metrics.get("worst_examples"), bases))
    return section(f"eval-{stem}", heading, facts, *_classification(metrics, bases))


def _classification(metrics: dict[str, Any], bases: list[Path]) -> list[Any]:
    baseline = metrics.get("majority_baseline") or {}
    label = f"majority class ({baseline['label']})" if "label" in baseline else "majority class"
    parts: list[Any] = [_headline(metrics, HEADLINE, baseline, label)]
    labels = metrics.get("labels") or list(metrics.get("per_class") or {})
    figures = [
        image(plots.confusion_heatmap(metrics["confusion_matrix"], labels), "confusion matrix")
        if metrics.get("confusion_matrix")
        else note("No confusion matrix in this evaluation."),
        image(plots.reliability_diagram(metrics["calibration"], metrics.get("ece")), "reliability diagram")
        if metrics.get("calibration")
        else note("No calibration bins (the evaluation had no probabilities)."),
    ]
    parts.append(Raw('<div class="row">' + "".join(esc(f) for f in figures) + "</div>"))
    per_class = metrics.get("per_class") or {}
    if per_class:
        parts += [tag("h3", "Per class"), image(plots.per_class_bars(per_class), "per-class precision, recall, F1")]
        keys = ("precision", "recall", "f1", "support")
        parts.append(
            table(["class", *keys], ([name, *(number(row.get(k)) for k in keys)] for name, row in per_class.items()))
        )
    parts += [tag("h3", "Worst misclassified examples"), worst_examples(metrics.get("worst_examples"), bases)]
    return parts


def _multilabel(metrics: dict[str, Any], bases: list[Path]) -> list[Any]:
    parts: list[Any] = [_headline(metrics, MULTILABEL_HEADLINE)]
    per_label = metrics.get("per_label") or {}
    if per_label:
        source = metrics.get("threshold_source")
        parts += [tag("h3", "Per label"), image(plots.per_class_bars(per_label), "per-label precision, recall, F1")]
        keys = ("precision", "recall", "f1", "support", "predicted", "threshold")
        rows = ([name, *(number(row.get(k)) for k in keys)] for name, row in per_label.items())
        parts.append(table(["label", *keys], rows))
        if source:
            parts.append(
                note(
                    f"Thresholds: {'tuned per label on the validation set' if source == 'validation' else '0.5 (no validation data)'}."
                )
            )
    parts += [tag("h3", "Most wrong label sets"), worst_examples(metrics.get("worst_examples"), bases)]
    return parts


def _headline(
    metrics: dict[str, Any], keys: tuple[str, ...], baseline: dict[str, Any] | None = None, label: str = ""
) -> Raw:
    intervals = metrics.get("ci95") or {}
    rows = [
        (key.replace("_", " "), number(metrics[key]), interval(intervals.get(key)))
        + ((number((baseline or {}).get(key)),) if baseline is not None else ())
        for key in keys
        if isinstance(metrics.get(key), (int, float))
    ]
    return table(["metric", "model", "95% CI", *([label] if baseline is not None else [])], rows, "headline")


def worst_examples(rows: Any, bases: list[Path]) -> Raw:
    """The misclassified examples the model was most sure about, worst first, with their images or audio."""
    if rows is None:
        return note("This evaluation file lists no examples (written by an older transferkit).")
    if not rows:
        return note("No misclassified examples.")
    extra = [key for key in WORST_COLUMNS if any(key in row for row in rows)]
    body = []
    for i, row in enumerate(rows[:MAX_WORST], 1):
        cells = (
            str(i),
            _example_cell(row, bases),
            esc(_shown_label(row.get("label", ""))),
            esc(_shown_label(row.get("predicted", ""))),
            *(esc(number(row.get(key), 3)) for key in extra),
        )
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    headers = ("#", "input", "true", "predicted", *(WORST_COLUMNS[key] for key in extra))
    head = "".join(f"<th>{h}</th>" for h in headers)
    more = note(f"{len(rows) - MAX_WORST} more not shown.") if len(rows) > MAX_WORST else ""
    return Raw(f'<table class="worst"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{more}')


def _shown_label(value: Any) -> str:
    """A label as shown: numbers to 4 significant digits, an empty label set as (none)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value) if value != "" else "(none)"


def _example_cell(row: dict[str, Any], bases: list[Path]) -> str:
    text = str(row.get("input", ""))
    modality = row.get("modality", "text")
    if modality not in ("image", "audio"):
        shown = text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + " ..."
        return f'<span class="text">{esc(shown)}</span>'
    path = media.find_file(text, bases)
    caption = f'<div class="path">{esc(text)}</div>'
    if path is None and text.startswith("<"):  # an in-memory example, described ("<image 40x40>"), not a file
        return caption
    if path is None:
        return caption + '<div class="note">(file not found)</div>'
    if modality == "image":
        uri = media.thumbnail_uri(path)
        return (image(uri, text, "thumb") if uri else '<div class="note">(not a readable image)</div>') + caption
    uri = media.audio_uri(path)
    if uri is None:
        return (
            caption
            + f'<div class="note">(not embedded: over {media.MAX_AUDIO_BYTES // 1_000_000} MB or not a known audio format)</div>'
        )
    return f'<audio controls preload="metadata" src="{esc(uri)}"></audio>' + caption


def _generation(metrics: dict[str, Any]) -> list[Any]:
    models = metrics.get("models") or {}
    columns = list(
        dict.fromkeys(k for row in models.values() for k in row if k != "predictions" and not k.endswith("_ci95"))
    )
    rows = []
    for name, row in models.items():
        cells = [number(row.get(c)) + (f" {interval(row[c + '_ci95'])}" if c + "_ci95" in row else "") for c in columns]
        rows.append([name, *cells])
    parts: list[Any] = [
        tag("h3", "Scores"),
        table(["model", *columns], rows, "headline") if rows else note("No scores."),
    ]
    examples = [e for e in metrics.get("examples") or [] if isinstance(e, dict)]
    if examples:
        keys = list(dict.fromkeys(k for e in examples for k in e))
        parts += [
            tag("h3", "Examples"),
            table(keys, ([str(e.get(k, ""))[:MAX_TEXT] for k in keys] for e in examples), "examples"),
        ]
    return parts
