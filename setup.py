"""Build of losslens's one optional C extension; everything else is in pyproject.toml.

``losslens._fused`` (src/losslens/_fused.c) fuses the per-batch passes over a probability
matrix (issue #22). It is optional: where it cannot be compiled (no C compiler), the install
goes on and losslens computes the same figures, bit for bit, with numpy.
"""

import sys

from setuptools import Extension, setup

# Never contract a product and a sum into one FMA rounding: the sums must equal numpy's bit for bit.
FLAGS = [] if sys.platform == "win32" else ["-O2", "-ffp-contract=off", "-fvisibility=hidden"]

setup(ext_modules=[Extension("losslens._fused", ["src/losslens/_fused.c"], extra_compile_args=FLAGS, optional=True)])
