"""``keusim new``: a ready-to-run project folder for a researcher's own guests.

:func:`new_project` copies ``files/`` (a manifest with two processes and a channel,
their C sources, a README and a notebook that runs and plots the system) into a new
folder, with the folder's name as the system's name. tests/test_new_project.py runs the
result on both architectures and executes its notebook.
"""

from __future__ import annotations

import re
from pathlib import Path

from keusim.errors import KeusimError

FILES = Path(__file__).resolve().parent / "files"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,30}$")   # keusim.manifest's name rule


class ProjectError(KeusimError):
    """`keusim new` cannot create the project folder."""


def new_project(path: str | Path) -> Path:
    """Create a project folder at ``path`` and return its manifest (``system.toml``).

    The folder's last component becomes the system's name, so it must be a short
    identifier (letters, digits, ``_ . -``, at most 31 characters). The folder must not
    exist, or be empty.

    Raises:
        ProjectError: a bad name, or a folder that already has files.
    """
    dest = Path(path)
    name = dest.resolve().name
    if not _NAME.match(name):
        raise ProjectError(f"project name {name!r}: use letters, digits, _ . - (at most 31 "
                           "characters, not starting with a digit), e.g. `keusim new my_ring`")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ProjectError(f"{dest}: already exists and is not an empty folder; choose "
                           "another name or remove it")
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for src in sorted(FILES.iterdir()):
            if src.is_file():
                (dest / src.name).write_text(src.read_text().replace("@NAME@", name))
    except OSError as e:
        raise ProjectError(f"{dest}: cannot write the project ({e.strerror})") from e
    return dest / "system.toml"
