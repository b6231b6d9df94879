"""Errors that reach a user as one clear sentence.

Every error keusim raises on bad input derives from :class:`KeusimError`. The CLI
prints ``keusim: error: <message>`` and exits with status 2; library users catch the
class. Messages name the file or field at fault and say what to do.
"""

from __future__ import annotations


class KeusimError(Exception):
    """Base class: a problem with the user's input or environment, not a keusim bug."""


class ManifestError(KeusimError):
    """A system manifest (TOML) is malformed or inconsistent."""


class BuildError(KeusimError):
    """A guest or kernel C file failed to compile or link."""


class ImageError(KeusimError):
    """An ELF image is missing, unreadable, or for the wrong architecture."""


class ArchError(KeusimError):
    """An unknown architecture or profile was named."""


class KernelPanic(KeusimError):
    """The guest kernel panicked: an invariant was violated inside the kernel."""


class MachineError(KeusimError):
    """The emulated machine reached a state it cannot continue from."""
