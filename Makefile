# Two commands do all the set-up: `make run` and `make test`.
# A local virtual environment gets torch==2.13.0 (the CPU build on this disk;
# pyproject.toml accepts a range) and initcheck with every extra, editable; where
# an optional framework has no wheel for the platform, the others still install.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test bench calibrate versions readme clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py initcheck/_kernels.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[all,dev]' || { \
	  $(BIN)/python -m pip install -q -e '.[torch,tensorflow,jax,flax,transformers,plot,dev]' && \
	  for extra in tf-keras paddle mlx equinox haiku; do \
	    $(BIN)/python -m pip install -q -e ".[$$extra]" || \
	      echo "initcheck: no $$extra wheel for this platform; its rows are left out"; \
	  done; }
	touch $(STAMP)

# The default checks: xavier and kaiming, normal and uniform, a dense
# 784 -> 256 layer and a 64 -> 128 3x3 conv, on every installed framework.
# (configs/default.toml)
run: install
	$(BIN)/initcheck suite configs/default.toml

# Two test processes (the suite is CPU-bound and CI has two cores); a process
# that runs out of tests takes some of the other's.
test: install
	$(BIN)/python -m pytest -q -n 2 --dist worksteal

bench: install
	$(BIN)/python benchmarks/bench.py

# Every framework and scheme over 20 seeds at N = 10^7: correct initializers must pass.
calibrate: install
	$(BIN)/python -m pytest -q --calibration -m calibration
	$(BIN)/python benchmarks/false_alarms.py

# The CI suite on two JAX and two Keras 3 releases, each in a fresh virtual
# environment (noxfile.py), and what changed between them (benchmarks/results/versions).
versions: install
	$(BIN)/nox -s versions

# The README's sample outputs, from real runs (scripts/readme_outputs.py).
readme: install
	$(BIN)/python scripts/readme_outputs.py

clean:
	rm -rf $(VENV) build *.egg-info initcheck/*.so
