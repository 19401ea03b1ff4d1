"""Help-desk report: figures from the tracker store and the tickets, as HTML.

`python -m tuanjian.tools.report --from YYYY-MM-DD --to YYYY-MM-DD` writes
var/report.html; `python -m tuanjian.tools.report.demo` plays sample conversations
through a running assistant first, so that the report has something to show.
"""
from tuanjian.tools.report.report import Period, Report, build_report, group_questions, period_from_args

__all__ = ["Period", "Report", "build_report", "group_questions", "period_from_args"]
