"""Error classification for apps' own error handling: ``from corral.errors import classify``.

The public name of :mod:`corral.app.errors` (which holds the code, with the rest
of the app library); see there for the rules.
"""

from corral.app.errors import *  # noqa: F403
from corral.app.errors import __all__  # noqa: F401
