"""The one native part of corral: the redaction pre-filter's scan (corral/app/_scan.c).

Optional: where it cannot be built (no C compiler), corral runs the same pre-filter in Python
(corral/app/_prefilter.py), slower; everything else is in pyproject.toml.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("corral.app._scan", ["corral/app/_scan.c"], optional=True,
                             extra_compile_args=["-O3", "-std=c99"])])
