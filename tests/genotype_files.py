"""Shared by the genotype tests of several layers: a genotype.json written from a dict must fail to load."""
import json

import pytest

from nnunet_iac.cells.genotype import Genotype, GenotypeError


def assert_load_refused(tmp_path, data: dict, message: str) -> None:
    """Loading ``data`` as a file raises a GenotypeError matching ``message`` that names the file."""
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps(data))
    with pytest.raises(GenotypeError, match=message) as info:
        Genotype.load(path)
    assert str(path) in str(info.value)
