"""Few-shot support sets as nnU-Net folds (issue 36): seeded, nested over shot counts, append-only."""
import json

import pytest

from nnunet_iac.benchmark.support_sets import (ALL, SupportSetError, assign_folds, draw, parse_shots, requested,
                                               write_splits)

POOL = [f"case{i:02d}" for i in range(30)]


def test_shot_counts_are_parsed_and_bad_ones_refused():
    assert parse_shots("5, 10,20,ALL,5") == ["5", "10", "20", "all"]
    for text, message in (("", "names no shot count"), ("5,zero", "neither a positive number"), ("0", "neither")):
        with pytest.raises(SupportSetError, match=message):
            parse_shots(text)


def test_draws_are_seeded_nested_over_shots_and_differ_between_seeds():
    five, ten = draw(POOL, "5", 1), draw(POOL, "10", 1)
    assert len(five.cases) == 5 and set(five.cases) <= set(ten.cases) and five == draw(POOL, "5", 1)
    assert draw(POOL, "5", 2).cases != five.cases
    assert draw(POOL, ALL, 7).cases == tuple(POOL) and draw(POOL, ALL, 7).seed == 0
    with pytest.raises(SupportSetError, match="only 30 cases"):
        draw(POOL, "31", 0)


def test_folds_are_append_only_and_written_as_nnunet_splits(tmp_path):
    first = requested(POOL, ["5", ALL], [0, 1])
    assert [(s.shots, s.seed) for s in first] == [("5", 0), ("5", 1), (ALL, 0)]
    folds = assign_folds(tmp_path, first)
    assert sorted(folds.values()) == [0, 1, 2]
    more = assign_folds(tmp_path, requested(POOL, ["10", "5"], [0, 1, 2]))  # later run: other counts and seeds
    assert all(more[s] == folds[s] for s in first if s in more) and len(json.loads(
        (tmp_path / "support_sets.json").read_text())) == 7
    splits = json.loads(write_splits(tmp_path, tmp_path).read_text())
    assert len(splits) == 7 and splits[folds[first[0]]]["train"] == list(first[0].cases)
    assert all(fold["val"] == fold["train"] for fold in splits)
    with pytest.raises(SupportSetError, match="another draw"):
        assign_folds(tmp_path, requested(POOL[:-1], ["5"], [0]))  # the pool changed under a recorded seed
