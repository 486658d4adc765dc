"""Build, measure, test, ship and roll back the Sutra AI stack.

The library holds the logic; ``tasks.py`` and ``noxfile.py`` only wire it to the command line.
"""

__version__ = "0.1.0"
