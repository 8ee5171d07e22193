"""The selection split (nnunet_iac.nnunet.selection_split): best epochs chosen on cases never trained on or
reported, the same cases for every trainer."""
import pytest

from nnunet_iac.nnunet.selection_split import SelectionSplitError, SelectionSplitMixin, selection_split


def test_a_fifth_of_the_training_cases_is_held_out_the_same_way_for_any_order():
    keys = [f"case_{i:03d}" for i in range(50)]
    fit, selection = selection_split(keys)
    assert len(selection) == 10 and len(fit) == 40
    assert sorted(fit + selection) == keys and not set(fit) & set(selection)
    assert selection_split(list(reversed(keys))) == (fit, selection)
    assert selection_split(keys, seed=1)[1] != selection


def test_tiny_folds_keep_a_case_on_each_side_and_a_single_case_is_refused():
    assert selection_split(["a", "b"]) == (["b"], ["a"]) or selection_split(["a", "b"]) == (["a"], ["b"])
    fit, selection = selection_split(["a", "b", "c"])
    assert len(selection) == 1 and len(fit) == 2
    with pytest.raises(SelectionSplitError, match="at least 2 training cases"):
        selection_split(["only"])


def test_the_mixin_divides_the_trainers_own_split_and_ignores_its_validation_cases():
    class Trainer:
        logged = []

        def do_split(self):
            return [f"t{i}" for i in range(10)], ["v0", "v1"]

        def print_to_log_file(self, text):
            self.logged.append(text)

    class WithSelection(SelectionSplitMixin, Trainer):
        pass

    fit, selection = WithSelection().do_split()
    assert sorted(fit + selection) == [f"t{i}" for i in range(10)] and len(selection) == 2
    assert "held out to choose the best epoch" in WithSelection.logged[0]
