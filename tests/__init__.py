"""attnstep's tests: a package, so that `from tests.conftest import …` names one module under `pytest` and `python -m pytest` alike."""
