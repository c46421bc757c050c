# The two set-up commands of the README are `make demo` and `make test`.
# Both install what they need first (.ci/setup is idempotent).
PYTHON ?= python3
PYTEST_ARGS ?=

.PHONY: setup test test-kernels kernel-table demo bench lint

setup:
	bash .ci/setup

# CI (`.ci/run` -> `make test`): the whole suite on the first kernel (6.1), and the runtime and
# hotplug core of the kernel-parametrised VM tests (runtime, bind, MSI-X, built wheels, kernel
# features, one hotplug) on 6.12, 7.2 and 5.10 as well. Tests marked kernel_primary (the
# runtime error paths, the two-device hotplug) run on the first kernel only there, and the
# kernel bridges (e1000e over TAP, marked kernel_primary("6.1", "6.12")) on 6.1 and 6.12 only
# (--kernel-matrix=core), to keep `make test` under an hour; the NVMe block bridge runs through
# `udriver supervise` on 6.1 (test_nvme_bridge.py) and, hot-plugged under its systemd unit, on
# 6.1 and 6.12 (test_nvme_system.py). `make test-kernels` runs them all on all four. Cost: docs/kernels.md "Cost in CI".
TEST_KERNELS ?= 6.1,6.12,7.2,5.10

test: setup
	$(PYTHON) -m pytest -q --kernels=$(TEST_KERNELS) --kernel-matrix=core $(PYTEST_ARGS)

# The VM tests that carry issue 12's claim (one build of each driver on every kernel), on all
# four guest kernels 5.10, 6.1, 6.12 and 7.2 (docs/kernels.md). The wheels' sha256 is printed
# once at the start. Pick other kernels with KERNELS=5.10,7.2.
KERNELS ?= all
KERNEL_TESTS = tests/vm/test_edu.py tests/vm/test_msix_reset.py tests/vm/test_runtime_errors.py \
	tests/vm/test_bind.py tests/vm/test_built_wheels.py tests/vm/test_kernel_features.py \
	tests/vm/test_hotplug.py tests/vm/test_nvme_bridge.py tests/vm/test_e1000e_bridge.py \
	tests/vm/test_nvme_bridge_faults.py tests/vm/test_e1000e_faults.py

test-kernels: setup
	$(PYTHON) -m pytest -q --kernels=$(KERNELS) $(KERNEL_TESTS) $(PYTEST_ARGS)

# Regenerate the kernel x feature table in docs/kernels.md (boots each kernel once).
kernel-table: setup
	$(PYTHON) -m udriver_vm.capabilities --write docs/kernels.md

demo: setup
	$(PYTHON) examples/demo.py

bench: setup
	$(PYTHON) bench/run.py $(BENCH)

lint:
	$(PYTHON) -m ruff check toolkit tests repo-server vm bench
	$(PYTHON) -m mypy toolkit/udriver
	cd vm && $(PYTHON) -m mypy udriver_vm
