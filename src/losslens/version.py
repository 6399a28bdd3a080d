"""The version of losslens, in the lowest room: every stage may say which losslens wrote it.

It lives apart from ``losslens/__init__.py`` because that module is the top of the map (it
re-exports the Python API); a report or JSON writer importing the package for its version
would point an import from a low stage to the highest one.
"""

__version__ = "0.1.0"
