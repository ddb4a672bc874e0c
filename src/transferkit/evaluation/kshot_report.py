"""What the k-shot protocol shows: a terminal table, CSV/JSON files and a plot of score against K."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from transferkit.evaluation.kshot import KShotResult


def format_kshot_table(result: KShotResult) -> str:
    """Mean ± std [95% CI] per (K, strategy), then the paired differences on the same draws."""
    lines = [f"{result.metric} on the test set, {result.repeats} draws per K (mean ± std [95% CI over draws])"]
    lines.append(f"{'K':>5}  " + "".join(f"{s:>32}" for s in result.strategies))
    summary = {(row["shots"], row["strategy"]): row for row in result.summary()}
    for k in result.shots:
        cells = []
        for strategy in result.strategies:
            row = summary.get((k, strategy))
            cells.append(
                f"{row['mean']:.3f} ± {row['std']:.3f} [{row['ci95'][0]:.3f}, {row['ci95'][1]:.3f}]" if row else "-"
            )
        lines.append(f"{k:>5}  " + "".join(f"{c:>32}" for c in cells))
    paired = result.paired()
    if paired:
        lines += ["", "paired differences on the same draws (a - b; the interval excludes 0 = a real difference)"]
        for row in paired:
            low, high = row["ci95"]
            verdict = "a better" if low > 0 else "b better" if high < 0 else "no clear difference"
            lines.append(
                f"  K={row['shots']:<4} {row['a']:>6} - {row['b']:<6} {row['mean_diff']:+.3f} ± {row['std_diff']:.3f} "
                f"[{low:+.3f}, {high:+.3f}]  wins {row['a_wins']}:{row['b_wins']}  {verdict}"
            )
    return "\n".join(lines)


def plot_kshot(result: KShotResult, path: Path) -> Path:
    """Score against K (log scale): one line per strategy with its 95% band, every draw as a faint dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    summary = result.summary()
    for strategy in result.strategies:
        rows = [r for r in summary if r["strategy"] == strategy]
        ks = [r["shots"] for r in rows]
        (line,) = ax.plot(ks, [r["mean"] for r in rows], marker="o", label=strategy)
        ax.fill_between(
            ks, [r["ci95"][0] for r in rows], [r["ci95"][1] for r in rows], alpha=0.2, color=line.get_color()
        )
        for k in ks:
            values = result.scores(k, strategy)
            ax.scatter([k] * len(values), values, s=8, alpha=0.35, color=line.get_color())
    ax.set_xscale("log", base=2)
    ax.set_xticks(result.shots, [str(k) for k in result.shots])
    ax.set_xlabel("training examples per class (K)")
    ax.set_ylabel(f"test {result.metric}")
    ax.set_title(f"k-shot protocol: {result.repeats} draws per K")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def save_kshot(result: KShotResult, directory: str | Path) -> dict[str, Path]:
    """kshot.json (everything), kshot_runs.csv, kshot_summary.csv, kshot_paired.csv and kshot.png."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": directory / "kshot.json",
        "runs": directory / "kshot_runs.csv",
        "summary": directory / "kshot_summary.csv",
        "paired": directory / "kshot_paired.csv",
        "plot": directory / "kshot.png",
    }
    paths["json"].write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    pd.DataFrame(result.runs).to_csv(paths["runs"], index=False)
    _with_interval(result.summary()).to_csv(paths["summary"], index=False)
    _with_interval(result.paired()).to_csv(paths["paired"], index=False)
    plot_kshot(result, paths["plot"])
    return paths


def _with_interval(rows: list[dict]) -> pd.DataFrame:
    """`ci95: [low, high]` as two columns, for spreadsheets."""
    flat = [
        {**{k: v for k, v in r.items() if k != "ci95"}, "ci95_low": r["ci95"][0], "ci95_high": r["ci95"][1]}
        for r in rows
    ]
    return pd.DataFrame(flat)
