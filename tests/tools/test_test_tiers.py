"""The two test tiers (issue 38): ``pytest -m "not slow"`` is the fast tier, which must leave out the nnU-Net
end-to-end runs (tests/conftest.py marks them slow by rule) and keep the unit tests; the full suite, what CI runs,
is both. Checked by collection only, so these tests cost seconds, not the runs they classify."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFTEST = ROOT / "tests" / "conftest.py"

pytest_plugins = ["pytester"]

#: an ``integration`` test through nnUNetv2_train on the ``workspace`` fixture, and unit tests in the same file
END_TO_END = ("tests/nnunet/test_trainer_variants.py::"
              "test_the_shipped_variant_runs_through_nnunet_and_its_retrain_finds_its_genotype")
UNIT = "tests/nnunet/test_trainer_variants.py::test_the_shipped_variant_searches_a_quarter_of_the_default"
#: marked slow by hand (a fresh interpreter per trainer module, about a minute) next to fast packaging tests
BY_HAND = "tests/tools/test_packaging.py::test_trainer_modules_import_cleanly_on_their_own"
PACKAGING = "tests/tools/test_packaging.py::test_wheel_ships_the_trainers"


def collected(*args: str) -> set[str]:
    """Test ids that ``pytest --collect-only`` selects under the project's own configuration (pyproject.toml,
    tests/conftest.py). A fresh process: collecting inside this one re-imports torch, which refuses that.
    --strict-markers makes an unregistered ``slow`` mark an error, not a silent no-op."""
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "--strict-markers",
                             "-p", "no:cacheprovider", *args], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return {line for line in result.stdout.splitlines() if "::" in line}


def test_the_fast_tier_leaves_out_the_nnunet_run_and_keeps_the_unit_tests_of_the_same_file():
    fast = collected("-m", "not slow", "tests/nnunet/test_trainer_variants.py", "tests/tools/test_packaging.py")
    assert END_TO_END not in fast and BY_HAND not in fast
    assert UNIT in fast and PACKAGING in fast


def test_a_test_of_an_nnunet_fixture_is_slow_without_any_mark(pytester):
    """The rule, not a mark someone must remember: a new test that asks for ``workspace`` (here through a fixture
    of its own) lands in the slow tier unmarked, and so does an ``integration`` test; a plain test stays fast."""
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini("[pytest]\nmarkers =\n    integration: as in pyproject.toml\n    slow: as in pyproject.toml\n")
    pytester.makepyfile(test_new="""
        import pytest

        @pytest.fixture
        def trained(workspace):
            return workspace

        def test_plain():
            pass

        def test_on_the_workspace(workspace):
            pass

        def test_through_a_fixture(trained):
            pass

        @pytest.mark.integration
        def test_marked_integration():
            pass
        """)
    slow = pytester.runpytest("--collect-only", "-q", "-m", "slow", "-p", "no:cacheprovider")
    slow.stdout.fnmatch_lines(["*3/4 tests collected (1 deselected)*"])
    fast = pytester.runpytest("--collect-only", "-q", "-m", "not slow", "-p", "no:cacheprovider")
    fast.stdout.fnmatch_lines(["test_new.py::test_plain", "*1/4 tests collected (3 deselected)*"])
