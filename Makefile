# Two entry points for a fresh machine: `make demo` (the main job on the
# bundled data) and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lab venv clean

$(BIN)/poncho-replay: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[postgres,notebook,dask,replay,dev]'
	touch $@

venv: $(BIN)/poncho-replay

demo: venv
	$(BIN)/poncho-replay demo

test: venv
	$(BIN)/python -m pytest -q

# JupyterLab on the worked notebooks (the `notebook` extra installs it).
lab: venv
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
