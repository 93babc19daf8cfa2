"""Code that mypy --strict must refuse: see scripts/check_must_fail.py."""
