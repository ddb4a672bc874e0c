"""Run reports: report.html for one run (html.py, with figures from plots.py) and a side-by-side table of runs
(compare.py). matplotlib loads only when a figure is drawn."""

from transferkit.report.compare import compare_runs, format_compare_table
from transferkit.report.html import build_report

__all__ = ["build_report", "compare_runs", "format_compare_table"]
