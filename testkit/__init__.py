"""Test and benchmark helpers that are not shipped with unionhub (pyproject does not list them).

Importable from the repository root: ``python -m pytest`` puts it on ``sys.path``, and the
scripts in ``bench/`` insert it themselves.
"""
