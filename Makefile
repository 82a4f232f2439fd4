# The two commands that matter, on a fresh machine of this kind (root, Debian
# bookworm, the pyenv CPythons, PyPI and Debian reachable):
#   make wheels   build the merged wheel into dist/ (cibuildwheel -> merge-wheels -> check-wheel)
#   make test     everything CI runs (.ci/run calls exactly this)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# The dev environment's interpreter: the machine's CPython 3.12.
BASE_PYTHON ?= $(firstword $(wildcard /root/.pyenv/versions/3.12.*/bin/python3.12) python3.12)
VENV := .venv
PY := $(VENV)/bin/python
UV := $(BASE_PYTHON) -m uv
# Recipes (and the tests they run) find the dev env's tools first: uv, cibuildwheel,
# merge-wheels, check-wheel, actionlint. A fresh machine has none of them elsewhere.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
UV_VERSION := 0.13.9
PYTEST_ARGS ?=

.PHONY: dev build image wheels wheels-torch test-torch need-torch bench-fleet lint test-deps test test-fast test-cibuildwheel-fresh lock clean

$(VENV)/.ready: requirements/dev.txt tools/wheelfuse/pyproject.toml
	$(BASE_PYTHON) -m uv --version >/dev/null 2>&1 || $(BASE_PYTHON) -m pip install --quiet uv==$(UV_VERSION)
	$(UV) venv --allow-existing --quiet --python $(BASE_PYTHON) $(VENV)
	$(UV) pip install --quiet --python $(PY) -r requirements/dev.txt
	$(UV) pip install --quiet --python $(PY) --no-deps -e tools/wheelfuse
	touch $@

dev: $(VENV)/.ready

# deep_gemm/_C and the runtime library in place, for the tests.
build: dev
	$(PY) setup.py --quiet build_ext --inplace

# The local build image alone (what plain `cibuildwheel --platform linux` builds in, README):
# installs podman, runc and debootstrap from Debian when missing; rebuilt only when stale.
image: dev
	$(PY) tools/fleet --stages image

# fetch the pinned torch once -> local build image (rebuilt only when stale) ->
# cibuildwheel per CPython -> merge-wheels -> check-wheel; one wheel in dist/.
# FLEET_ARGS="--official-image" uses quay.io/pypa/manylinux_2_28_x86_64 instead.
# TORCH=X builds against torch X instead of requirements/torch.txt's pin: every CPython
# that torch has wheels for and Requires-Python allows, into dist/torch-X/ (+torchX label).
FLEET_ARGS ?=
TORCH ?=
wheels: dev
	$(PY) tools/fleet $(if $(TORCH),--torch $(TORCH)) $(FLEET_ARGS)

# A second torch's fleet, kept out of `make test` (CI's budget): `make wheels-torch TORCH=2.15.0`
# builds dist/torch-2.15.0/; `make test-torch TORCH=2.15.0` installs and CPU-tests that wheel on
# each of its CPythons with that torch (tests/fleet/test_fleet_wheel.py).
wheels-torch test-torch: need-torch
need-torch:
	@test -n "$(TORCH)" || { echo "make $(MAKECMDGOALS): set TORCH=X.Y.Z (e.g. TORCH=2.15.0)" >&2; exit 2; }
wheels-torch: dev
	$(PY) tools/fleet --torch $(TORCH) $(FLEET_ARGS)
test-torch: dev wheels-torch test-deps
	DG_TEST_TORCH=$(TORCH) $(PY) -m pytest $(PYTEST_ARGS) tests/fleet/test_fleet_wheel.py

# Fleet wall time and sizes, 1 CPython against all of them (TORCH=X: for that torch).
bench-fleet: dev
	$(PY) tools/fleet/bench_fleet.py $(if $(TORCH),--torch $(TORCH))

# ruff and mypy as pyproject.toml configures them; tools/wheelfuse has its own (strict) mypy.
lint: dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	cd tools/wheelfuse && $(CURDIR)/$(VENV)/bin/mypy src
	$(VENV)/bin/actionlint .github/workflows/*.yml

# What the tests need beyond the dev env, so a fresh machine skips nothing it could run:
# a MinGW cross compiler (wheelfuse builds real win_amd64 .pyd files) and CPython 3.13t and
# 3.13 built by tools/cpython from Debian's source tarball (once each, then cached), and
# CPython 3.14 / 3.15 from Debian sid's binary packages (tools/cpython/sid_python.py, cached).
test-deps: dev
	command -v x86_64-w64-mingw32-gcc >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc-mingw-w64-x86-64; }
	$(PY) tools/cpython/build_cpython.py --version 3.13 --free-threaded --print-prefix
	$(PY) tools/cpython/build_cpython.py --version 3.13 --print-prefix
	$(PY) tools/cpython/sid_python.py --version 3.14 --print-prefix
	$(PY) tools/cpython/sid_python.py --version 3.15 --print-prefix

# The tests exercise the real artefacts: the in-place _C and the merged wheel in dist/.
# pytest exits 5 when it collected nothing: that is a broken suite, not a pass.
test: lint build wheels test-deps
	rc=0; $(PY) -m pytest $(PYTEST_ARGS) tests || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# The CPU unit tests in seconds, with only the in-place _C: no fleet, wheel, container, venv
# or kernel compile (tests marked slow), no GPU, no CPython builds. (Collected from tests/ as
# `make test` does: some test modules import their directory's conftest.)
test-fast: build
	$(PY) -m pytest -q -m "not slow and not torch_fetch" $(PYTEST_ARGS) tests --ignore=tests/gpu --ignore=tests/cpython

# Plain `cibuildwheel --platform linux` in a fresh clone with no torch cache mounted:
# before-all fetches the pinned build-time torch from PyPI itself (~620 MB; ~3 min here).
# Kept out of `make test`, which runs the same build with the fleet's cached torch.
test-cibuildwheel-fresh: image
	$(PY) -m pytest $(PYTEST_ARGS) -m torch_fetch tests/packaging/test_plain_cibuildwheel.py

lock:
	$(UV) pip compile --python-version 3.12 --no-header --no-annotate requirements/dev.in -o requirements/dev.txt

clean:
	rm -rf build dist wheelhouse deep_gemm/_C.*.so deep_gemm/libdeep_gemm_runtime.so
