"""The run-level sections of report.html, each from transferkit.json: summary, learning curves, data checks,
configuration and the manifest itself. Missing pieces give a short note, never an error."""

from __future__ import annotations

import json
from typing import Any

from transferkit.report import plots
from transferkit.report.markup import Raw, details, esc, image, note, number, pairs, section, table, tag

MAX_EXAMPLES_PER_PROBLEM = 3  # a data-check problem lists its first few offending rows


def summary(manifest: dict[str, Any]) -> Raw:
    backbone = manifest.get("backbone") or {}
    parameters = manifest.get("parameters") or {}
    data = manifest.get("data") or {}
    labels = manifest.get("labels") or []
    rows = [
        ("task", manifest.get("task", "classification")),
        ("modality", manifest.get("modality")),
        ("backbone", backbone.get("name") if isinstance(backbone, dict) else backbone),
        ("base model", manifest.get("base_model")),
        ("strategy", manifest.get("strategy")),
        (
            "classes",
            f"{len(labels)}: {', '.join(map(str, labels[:20]))}{' ...' if len(labels) > 20 else ''}"
            if labels
            else None,
        ),
        ("target", _target(manifest.get("target"))),
        ("thresholds", _thresholds(labels, manifest.get("thresholds"), manifest.get("threshold_source"))),
        ("trainable parameters", _parameters(parameters)),
        ("training rows", number(data.get("train_rows", data.get("examples")))),
        (
            "validation",
            f"{number(data['val_rows'])} rows ({data.get('val_source')})" if data.get("val_rows") else "none",
        ),
        ("seed", manifest.get("seed")),
        (
            "wall time",
            f"{manifest['wall_time_s']:.1f} s" if isinstance(manifest.get("wall_time_s"), (int, float)) else None,
        ),
        ("created", manifest.get("created")),
        ("command", manifest.get("command")),
        ("transferkit", (manifest.get("packages") or {}).get("transferkit")),
    ]
    shown = [(k, v) for k, v in rows if v not in (None, "", "-")]
    validation = (manifest.get("metrics") or {}).get("validation")
    parts = [pairs(shown)]
    if isinstance(validation, dict) and validation:
        parts += [tag("h3", "Validation at the best epoch"), pairs((k, number(v)) for k, v in validation.items())]
    if isinstance(manifest.get("auto"), dict):
        parts += _auto_decision(manifest["auto"])
    return section("summary", "Run", *parts)


def _auto_decision(auto: dict[str, Any]) -> list[Raw]:
    """strategy="auto": each candidate's pilot measurements, what trained and its score, and the reasons."""
    ran = {r.get("strategy"): r for r in auto.get("runs") or []}
    rows = [
        (
            p.get("strategy"),
            number(p.get("estimate_s"), 2),
            number(p.get("budget_mb"), 1),
            number(ran[p.get("strategy")].get("seconds"), 2) if p.get("strategy") in ran else "not run",
            number(ran[p.get("strategy")].get("val_score")) if p.get("strategy") in ran else "",
            number(ran[p.get("strategy")].get("val_log_loss")) if p.get("strategy") in ran else "",
        )
        for p in auto.get("pilots") or []
    ]
    reasons = Raw("".join(f"<li>{esc(reason)}</li>" for reason in auto.get("reasons") or []))
    return [
        tag("h3", f"Strategy chosen by auto: {auto.get('chosen')}"),
        table(("candidate", "estimated s", "peak MB", "trained s", "validation score", "validation log loss"), rows),
        tag("ul", reasons),
    ]


def _target(target: Any) -> str | None:
    """A regression run's training-target scale and loss."""
    if not isinstance(target, dict) or "mean" not in target:
        return None
    return f"mean {number(target['mean'])}, std {number(target.get('std'))}; {target.get('loss', 'mse')} loss"


def _thresholds(labels: list[Any], thresholds: Any, source: Any) -> str | None:
    """A multi-label run's decision threshold per label and where they came from."""
    if not isinstance(thresholds, list) or len(thresholds) != len(labels):
        return None
    shown = ", ".join(f"{label}: {t:.2f}" for label, t in list(zip(labels, thresholds))[:20])
    return f"{shown} ({'tuned on validation' if source == 'validation' else 'default 0.5'})"


def _parameters(parameters: dict[str, Any]) -> str | None:
    if "trainable" not in parameters:
        return None
    share = parameters.get("trainable_share")
    return f"{number(parameters['trainable'])} of {number(parameters.get('total'))}" + (
        f" ({share:.2%})" if isinstance(share, (int, float)) else ""
    )


def training_phases(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{phase: {history, best_epoch, ...}}; a generative run records one unnamed phase."""
    training = manifest.get("training") or {}
    if "history" in training:
        return {str(manifest.get("strategy") or "training"): training}
    return {name: phase for name, phase in training.items() if isinstance(phase, dict)}


def learning_curves(manifest: dict[str, Any]) -> Raw:
    parts: list[Any] = []
    for name, phase in training_phases(manifest).items():
        history = [row for row in phase.get("history") or [] if isinstance(row, dict) and "epoch" in row]
        parts.append(tag("h3", f"Phase: {name}"))
        if not history:
            parts.append(note("No per-epoch history was recorded for this phase."))
            continue
        if not any("val_loss" in row for row in history):
            parts.append(note("No validation data in this phase: training loss only."))
        parts.append(image(plots.learning_curves(history, name, phase.get("best_epoch")), f"learning curves: {name}"))
        facts = {"best epoch": phase.get("best_epoch"), "stopped early": phase.get("stopped_early")}
        shown = [f"{k}: {v}" for k, v in facts.items() if v is not None]
        if shown:
            parts.append(note("; ".join(shown)))
        keys = list(dict.fromkeys(key for row in history for key in row))
        parts.append(details("epoch table", table(keys, ([number(row.get(k)) for k in keys] for row in history))))
    if not parts:
        parts.append(note("The manifest records no training history."))
    return section("learning-curves", "Learning curves", *parts)


def _example_text(example: Any) -> str:
    if isinstance(example, dict):
        return "; ".join(f"{k}: {str(v)[:120]}" for k, v in example.items())
    return str(example)[:200]


def data_checks(manifest: dict[str, Any]) -> Raw:
    checks = manifest.get("data_checks")
    if not isinstance(checks, dict):
        return section("data-checks", "Data checks", note("No data-check results in this run's manifest."))
    problems = [p for p in checks.get("problems") or [] if isinstance(p, dict)]
    rows = [
        (
            Raw(f'<span class="severity {esc(p.get("severity", ""))}">{esc(p.get("severity", ""))}</span>'),
            p.get("check", ""),
            number(p.get("count")),
            p.get("message", ""),
            " | ".join(_example_text(e) for e in (p.get("examples") or [])[:MAX_EXAMPLES_PER_PROBLEM]),
        )
        for p in problems
    ]
    parts: list[Any] = [
        table(["severity", "check", "count", "message", "examples"], rows, "checks")
        if rows
        else note("All data checks passed: no problems found.")
    ]
    # CheckReport.to_dict() puts its summary beside "ok" and "problems"; an older layout nests it in "summary"
    nested = checks.get("summary")
    facts = nested if isinstance(nested, dict) else {k: v for k, v in checks.items() if k not in ("ok", "problems")}
    shown = [(k, _value(v)) for k, v in facts.items() if v not in (None, {}, [])]
    if "ok" in checks:
        shown.insert(0, ("passed", "yes" if checks["ok"] else "no: errors found"))
    if shown:
        parts += [tag("h3", "Summary"), pairs(shown)]
    return section("data-checks", "Data checks", *parts)


def _value(value: Any) -> str:
    """A setting as written: 5e-05 and 0.1, not rounded to the metrics' four decimals."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return repr(value) if isinstance(value, float) else number(value)


def configuration(manifest: dict[str, Any]) -> Raw:
    config = manifest.get("config")
    if not isinstance(config, dict) or not config:
        return section("configuration", "Configuration", note("The manifest records no configuration."))
    rows = []
    for name, values in config.items():
        if isinstance(values, dict):
            rows += [(name, key, _value(value)) for key, value in values.items()]
        else:
            rows.append(("", name, _value(values)))
    return section("configuration", "Configuration", table(["section", "option", "value"], rows, "config"))


def manifest_dump(manifest: dict[str, Any]) -> Raw:
    text = json.dumps(manifest, indent=2, default=str)
    return section("manifest", "Manifest (transferkit.json)", details("show the full manifest", tag("pre", text)))
