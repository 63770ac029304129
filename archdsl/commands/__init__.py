"""The click commands of the ``archdsl`` command line, one module per command.

Each module defines one click command and is imported only when that command runs (see
``LAZY_COMMANDS`` in :mod:`archdsl.cli`, which holds the group and the options the commands share).
Commands are thin: they parse options, call the library (``archdsl.pipeline``, ``analysis``,
``report``, ``draw``, ``codegen``, ``builder``, ``runner``) and print. No library module imports
click or this package.
"""
