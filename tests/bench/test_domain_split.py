"""nnunet-iac domain-split (issue 36): one labelled dataset into a source and a target nnU-Net dataset by a case
table's column, files linked, a fixed target test set, and reruns that reuse or refuse."""
import json

import pytest

from nnunet_iac.benchmark.datasets import DatasetError
from nnunet_iac.benchmark.domain_split import SPLIT_FILE, split_by_domain
from nnunet_iac.tools.cli import main as cli


def _raw(tmp_path, cases=10):
    folder = tmp_path / "Dataset950_Cells"
    for part in ("imagesTr", "labelsTr"):
        (folder / part).mkdir(parents=True)
    for i in range(cases):
        (folder / "imagesTr" / f"c{i:02d}_0000.png").write_bytes(b"image")
        (folder / "labelsTr" / f"c{i:02d}.png").write_bytes(b"label")
    (folder / "dataset.json").write_text(json.dumps({"channel_names": {"0": "microscopy"}, "file_ending": ".png",
                                                     "labels": {"background": 0, "nucleus": 1},
                                                     "numTraining": cases}))
    table = tmp_path / "domains.tsv"
    rows = ["case\tdomain\toriginal_was_colour"] + [f"c{i:02d}\t{'bright' if i % 3 == 0 else 'dark'}\t{i % 2}"
                                                     for i in range(cases)]
    table.write_text("\n".join(rows) + "\n")
    return folder, table


def test_the_split_links_every_case_into_source_or_target_and_holds_a_target_test_set_out(tmp_path):
    raw, table = _raw(tmp_path, cases=12)  # bright: c00, c03, c06, c09
    source, target = split_by_domain(raw, table, tmp_path / "out", "dark", "bright", target_test=2, seed=3)
    assert source.name == "Dataset903_Cells_dark" and target.name == "Dataset904_Cells_bright"
    source_cases = sorted(p.name for p in (source / "labelsTr").iterdir())
    train, test = (sorted(p.name for p in (target / part).iterdir()) for part in ("labelsTr", "labelsTs"))
    assert len(source_cases) == 8 and len(train) == 2 and len(test) == 2
    assert sorted(train + test) == ["c00.png", "c03.png", "c06.png", "c09.png"]
    assert all((target / "imagesTs" / name.replace(".png", "_0000.png")).is_symlink() for name in test)
    assert (target / "imagesTs" / test[0].replace(".png", "_0000.png")).resolve().parent == raw / "imagesTr"
    assert json.loads((target / "dataset.json").read_text())["numTraining"] == 2
    assert json.loads((source / "dataset.json").read_text())["numTraining"] == 8
    record = json.loads((target / SPLIT_FILE).read_text())
    assert record["test"] == [t.removesuffix(".png") for t in test] and record["seed"] == 3
    # the same call again reuses the folders; another seed is refused instead of mixing two splits
    assert split_by_domain(raw, table, tmp_path / "out", "dark", "bright", target_test=2, seed=3) == (source, target)
    with pytest.raises(DatasetError, match="does not hold this split"):
        split_by_domain(raw, table, tmp_path / "out", "dark", "bright", target_test=2, seed=4)
    assert sorted(p.name for p in (target / "labelsTs").iterdir()) == test  # nothing was touched


@pytest.mark.parametrize("change, message", [
    ({"column": "site"}, "needs a 'case' column and a 'site' column"),
    ({"target_value": "green"}, "No case of .* has domain = 'green'"),
    ({"target_test": 3}, "Cannot hold out 3 of the 4 target cases"),
    ({"source_id": 904}, "both 904"),
])
def test_bad_splits_are_refused_with_the_fix(tmp_path, change, message):
    raw, table = _raw(tmp_path, cases=12)
    arguments = {"column": "domain", "source_value": "dark", "target_value": "bright", "target_test": 2,
                 **change}
    with pytest.raises(DatasetError, match=message):
        split_by_domain(raw, table, tmp_path / "out", **arguments)


def test_a_case_missing_from_the_table_is_refused(tmp_path):
    raw, table = _raw(tmp_path)
    table.write_text("\n".join(table.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(DatasetError, match="1 case.* not in"):
        split_by_domain(raw, table, tmp_path / "out", "dark", "bright", target_test=1)


def test_the_command_splits_by_another_column_and_names_its_values(tmp_path, capsys):
    raw, table = _raw(tmp_path)
    code = cli(["domain-split", str(raw), "--domains", str(table), "--column", "original_was_colour", "--source", "0",
                "--target", "1", "--target-test", "2", "--out", str(tmp_path / "out")])
    assert code == 0
    assert (tmp_path / "out" / "Dataset904_Cells_original_was_colour1" / "labelsTs").is_dir()
    assert "test set in imagesTs/labelsTs" in capsys.readouterr().out
