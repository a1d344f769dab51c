"""corral: a production process manager for Python and any other program.

Public surface: the ``corral`` command, ``corral.app`` (the library managed
programs may import) and ``corral.errors`` (error classification).  Everything
else is internal and may change.
"""

__version__ = "0.1.0"
