# sslkit course. Two commands on a fresh machine:
#   make run   execute the lecture notebooks headless (quick profile) and print the course report
#   make test  everything CI checks: lint, unit tests, notebooks under nbval, exercise checks
# Both create .venv with the pinned versions (constraints.txt) when it is missing or stale.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export SSLKIT_CACHE ?= $(CURDIR)/build/cache

.PHONY: run test lint unit lab exercises clean gpu-check

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test,nbgrader]"
	touch $(STAMP)

run: $(STAMP)
	SSLKIT_PROFILE=$${SSLKIT_PROFILE:-quick} $(PY) -m sslkit.course notebooks --out build

test: $(STAMP) lint
	$(PY) -m sslkit.exercises --check
	SSLKIT_PROFILE=quick SSLKIT_DATASET=shapeworld SSLKIT_PROGRESS=0 $(PY) -m pytest -q \
		--nbval-lax --nbval-current-env tests notebooks solutions

lint: $(STAMP)
	$(PY) -m ruff check .

# The GPU check (CONTRIBUTING.md): every lecture's main training runs at the `full` sizes, each
# capped at GPU_MAX_STEPS steps, timed and probed; build/gpu/results.json and one table. Runs with
# the machine's own Python (torch and torchvision are all it needs); SMOKE=1 runs two steps of
# each on whatever device there is (make test runs the same through tests/test_full_profile.py).
GPU_MAX_STEPS ?= 1000
gpu-check:
	$(PYTHON) -m sslkit.gpu_check --max-steps $(GPU_MAX_STEPS) --out build/gpu $(if $(SMOKE),--smoke)

# JupyterLab rooted at the repository (notebooks/, exercises/, solutions/ and the lectures'
# ../exercises/ links all inside it), as any user (--allow-root only for root), with the git
# filter that keeps an opened lecture clean (tools/nbnormalize.py, CONTRIBUTING.md). LAB_ARGS
# passes more options, e.g. make lab LAB_ARGS="--no-browser --port 8899".
LAB_STAMP := $(VENV)/.lab-installed
$(LAB_STAMP): $(STAMP)
	$(PY) -c "import jupyterlab" 2>/dev/null || \
		$(PY) -m pip install --quiet -c constraints.txt -e ".[lab]"
	touch $(LAB_STAMP)

lab: $(LAB_STAMP)
	-git rev-parse --git-dir >/dev/null 2>&1 && $(PY) tools/nbnormalize.py --install
	$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)" \
		$(if $(filter 0,$(shell id -u)),--allow-root,) $(LAB_ARGS)

clean:
	rm -rf build

exercises: $(STAMP)
	$(PY) -m sslkit.exercises $(if $(CHECK),--check,) $(if $(FORCE),--force,)
