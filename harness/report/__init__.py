"""Reports of scenario runs: live progress and a summary in the terminal, JSON, JUnit XML for CI,
and a self-contained HTML page with a timeline of faults against what the system did."""

from harness.report.html import write_html
from harness.report.json_report import write_json
from harness.report.junit import write_junit
from harness.report.terminal import Progress, print_summary, summary_table

__all__ = ["Progress", "print_summary", "summary_table", "write_html", "write_json", "write_junit"]
