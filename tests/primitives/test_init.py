"""The package imports its modules plainly: every exported name resolves, and an import error
in a module is raised, never hidden behind an ``except ImportError`` (issue 12 item 7)."""

import subprocess
import sys

import pytest


def test_exports_and_unknown_names():
    import bootsep.primitives as p

    for name in p.__all__:
        assert getattr(p, name) is not None
    assert p.PitchContinuity.__module__ == "bootsep.primitives.pitch"
    with pytest.raises(AttributeError):
        p.NoSuchSeparator  # noqa: B018


def test_a_broken_module_is_an_import_error(tmp_path):
    # a copy of the package whose pitch module fails to import: the package must say so
    code = ("import shutil, sys, bootsep.primitives as p, pathlib; "
            f"dst = pathlib.Path({str(tmp_path)!r}) / 'bootsep'; "
            "shutil.copytree(pathlib.Path(p.__file__).parents[1], dst); "
            "(dst / 'primitives' / 'pitch.py').write_text('import no_such_module_xyz\\n'); "
            "[sys.modules.pop(k) for k in list(sys.modules) if k.startswith('bootsep')]; "
            f"sys.path.insert(0, {str(tmp_path)!r}); "
            "import bootsep.primitives")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0 and "No module named 'no_such_module_xyz'" in out.stderr
