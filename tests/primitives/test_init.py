"""The package resolves its names lazily and does no work at import."""

import subprocess
import sys

import pytest


def test_import_is_lazy():
    code = ("import sys, bootsep.primitives as p; "
            "assert 'bootsep.primitives.repet' not in sys.modules; "
            "assert 'sklearn' not in sys.modules; "
            "p.Repet; assert 'bootsep.primitives.repet' in sys.modules; "
            "assert 'sklearn' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_exports_and_unknown_names():
    import bootsep.primitives as p

    for name in p.__all__:
        assert getattr(p, name) is not None
    with pytest.raises(AttributeError):
        p.NoSuchSeparator  # noqa: B018
    assert "Repet" in dir(p)
