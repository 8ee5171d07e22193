"""Which decoder levels get a cell (``nnUNet_IAC_levels``, issue 18): all of them, or the ones listed.

A cell costs most at the highest resolution, where prediction spends its time on the cells' many small layers
(issue 18: ``nnUNetv2_predict`` with cells took 1.22-1.66x the base's time). Leaving that level out, or
implanting at a few levels only, trades accuracy for speed; the choice is recorded in the genotype's cell
options, so the retrain and ``nnUNetv2_predict`` build the cells where the search had them.

Levels are decoder stages: 0 is the lowest resolution (nnU-Net's ``decoder.stages[0]``), negative numbers count
from the highest (-1 is the full-resolution level), as Python indexes a list. ``all`` (the default) is every
level; ``0,1`` or ``-2,-3`` a subset; the text is kept as given and resolved against the network it is
implanted into.
"""
from __future__ import annotations

ALL = "all"


class LevelsError(ValueError):
    """A levels value that names no level, a level twice, or a level the network does not have."""


def parse_levels(text: str) -> tuple[int, ...] | None:
    """The levels ``text`` lists (as written, possibly negative), None for ``all``."""
    if not isinstance(text, str):
        raise LevelsError(f"levels {text!r} must be text: 'all' or comma-separated decoder levels such as '0,1'.")
    if text.strip().lower() == ALL:
        return None
    try:
        levels = tuple(int(item) for item in text.split(","))
    except ValueError:
        raise LevelsError(f"levels {text!r} is neither 'all' nor comma-separated whole numbers (decoder levels: 0 "
                          f"is the lowest resolution, -1 the highest), e.g. '0,1' or '-2,-3'.") from None
    return levels


def resolve_levels(text: str, num_levels: int) -> tuple[int, ...]:
    """The decoder stages (0 .. num_levels - 1, ascending) that ``text`` selects in a decoder of ``num_levels``."""
    levels = parse_levels(text)
    if levels is None:
        return tuple(range(num_levels))
    outside = [level for level in levels if not -num_levels <= level < num_levels]
    if outside:
        raise LevelsError(f"levels {text!r} names {', '.join(map(str, outside))}, but this decoder has {num_levels} "
                          f"levels (0 .. {num_levels - 1}, or -1 .. -{num_levels} from the highest resolution).")
    stages = [level % num_levels for level in levels]
    if len(set(stages)) != len(stages):
        raise LevelsError(f"levels {text!r} names a level twice (in {num_levels} levels, -1 is {num_levels - 1}).")
    return tuple(sorted(stages))
