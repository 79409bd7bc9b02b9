"""Import a file that is not in a package (a benchmark, hubconf.py), so tests can call its functions in-process."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_script(path: Path) -> ModuleType:
    """Execute ``path`` as a module under a private name and return it.

    Its folder is on ``sys.path`` while it runs, as it is for ``python path``: a benchmark imports its helpers.
    """
    spec = importlib.util.spec_from_file_location(f"script_under_test_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module
