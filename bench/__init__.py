"""The benchmark of the message bus core: `python -m bench`, or `nox -s bench`.

See bench/README.md for what is measured and how to read the figures.
"""
