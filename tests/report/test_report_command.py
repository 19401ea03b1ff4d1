"""python -m tuanjian.tools.report end to end on files: the known tracker store and a backend."""
from tuanjian.tools.report.__main__ import main


def test_the_command_writes_the_report(tracker_url, backend_url, tmp_path, capsys):
    out = tmp_path / "out" / "report.html"
    code = main(["--from", "2024-06-10", "--to", "2024-06-16", "--tz", "UTC", "--tracker-db", tracker_url,
                 "--backend-db", backend_url, "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "10 conversations, deflection 40.0%, 3 left after a fallback, fallback 41.2%, 4 tickets, 5 groups" in printed
    html = out.read_text("utf-8")
    assert "4 / 10 个会话的最后一问得到回答，且未转人工" in html and "7 / 17 条消息未识别" in html
    assert "&lt;script&gt;" in html and "<script" not in html
    assert "团费怎么交呀（1）" in html


def test_without_a_tracker_store_it_says_what_to_do(backend_url, tmp_path, capsys):
    code = main(["--tracker-db", f"sqlite:///{tmp_path / 'missing.db'}", "--backend-db", backend_url,
                 "--out", str(tmp_path / "r.html")])
    assert code == 2
    assert "tracker_store" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists() and not (tmp_path / "r.html").exists()


def test_a_backend_without_the_ticket_tables_is_reported(tracker_url, tmp_path, capsys):
    code = main(["--tracker-db", tracker_url, "--backend-db", f"sqlite:///{tmp_path / 'empty.db'}",
                 "--out", str(tmp_path / "r.html")])
    assert code == 2
    assert "python -m tuanjian.backend.demo" in capsys.readouterr().err


def test_bad_dates_are_refused(capsys):
    assert main(["--from", "2024-06-30", "--to", "2024-06-01"]) == 2
    assert "before" in capsys.readouterr().err
