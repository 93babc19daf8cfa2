"""Code written the way users write it, type-checked with mypy --strict (nox -s typecheck)."""
