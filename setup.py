"""The one native part of corral: the redaction pre-filter's scan (corral/app/_scan*.c).

Optional: where it cannot be built (no C compiler), corral runs the same pre-filter in Python
(corral/app/_prefilter.py), slower; everything else is in pyproject.toml.
"""

from setuptools import Extension, setup

SOURCES = ["corral/app/_scan.c", "corral/app/_scan_match.c"]

setup(ext_modules=[Extension("corral.app._scan", SOURCES, depends=["corral/app/_scan.h"], include_dirs=["corral/app"],
                             optional=True, extra_compile_args=["-O3", "-std=c99"])])
