# The two set-up commands of the README are `make demo` and `make test`.
# Both install what they need first (.ci/setup is idempotent).
PYTHON ?= python3
PYTEST_ARGS ?=

.PHONY: setup test demo bench lint

setup:
	bash .ci/setup

test: setup
	$(PYTHON) -m pytest -q $(PYTEST_ARGS)

demo: setup
	$(PYTHON) examples/demo.py

bench: setup
	$(PYTHON) bench/run.py $(BENCH)

lint:
	$(PYTHON) -m ruff check toolkit tests
	$(PYTHON) -m mypy toolkit/udriver
