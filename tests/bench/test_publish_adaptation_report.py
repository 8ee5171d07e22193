"""scripts/publish_adaptation_report.py: a run's report copied under dated names with its provenance and links
to the per-set files it covers; existing copies are never replaced without --force."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "adaptation.md").write_text("# Adapting S to T\n\nRun on 2026-12-07, device cpu.\n\n## 10 target case(s)\n")
    (run / "adaptation.json").write_text(json.dumps({
        "benchmark": {"cpu_count": 2, "device": "cpu"},
        "shots": {"5": {"support_sets": [{"fold": 0}, {"fold": 1}]}, "10": {"support_sets": [{"fold": 3}]}}}))
    (run / "adaptation_forest.png").write_bytes(b"forest")
    (run / "adaptation_curve.png").write_bytes(b"curve")
    return run


def test_the_report_is_copied_with_its_provenance_and_links_to_every_set(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    from publish_adaptation_report import main

    run = _run(tmp_path)
    docs = tmp_path / "docs"
    assert main([str(run), str(docs), "--label", "10shots", "--command", "nnunet-iac benchmark S --target T",
                 "--code", "sets 0-3 at abc1234", "--date", "2026-12-08"]) == 0
    assert sorted(p.name for p in docs.iterdir()) == [
        "adaptation_2026-12-08_10shots.json", "adaptation_2026-12-08_10shots.md",
        "adaptation_curve_2026-12-08_10shots.png", "adaptation_forest_2026-12-08_10shots.png"]
    lines = (docs / "adaptation_2026-12-08_10shots.md").read_text().splitlines()
    assert lines[:3] == ["# Adapting S to T", "", "<!-- copied from the run's adaptation.md -->"]
    assert lines[3].startswith("Command: `nnunet-iac benchmark S --target T`. Code: sets 0-3 at abc1234")
    assert "Machine: 2 CPU cores, device cpu" in lines[3]
    assert lines[3].endswith("[fold_0.json](fold_0.json), [fold_1.json](fold_1.json), [fold_3.json](fold_3.json).")
    assert lines[4:] == ["", "Run on 2026-12-07, device cpu.", "", "## 10 target case(s)"]
    assert (docs / "adaptation_forest_2026-12-08_10shots.png").read_bytes() == b"forest"
    assert json.loads((docs / "adaptation_2026-12-08_10shots.json").read_text())["shots"]["10"]


def test_existing_copies_are_kept_without_force_and_a_run_without_a_report_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    from publish_adaptation_report import main

    run = _run(tmp_path)
    docs = tmp_path / "docs"
    args = [str(run), str(docs), "--label", "5shots", "--command", "c", "--code", "x", "--date", "2026-12-07"]
    main(args)
    (docs / "adaptation_curve_2026-12-07_5shots.png").write_bytes(b"published earlier")
    with pytest.raises(SystemExit) as refused:
        main(args)
    assert refused.value.code == 2 and "--force" in capsys.readouterr().err
    assert (docs / "adaptation_curve_2026-12-07_5shots.png").read_bytes() == b"published earlier"
    main(args + ["--force"])
    assert (docs / "adaptation_curve_2026-12-07_5shots.png").read_bytes() == b"curve"
    (run / "adaptation_curve.png").unlink()
    with pytest.raises(SystemExit):
        main(args + ["--force"])
    assert "has no adaptation_curve.png" in capsys.readouterr().err
