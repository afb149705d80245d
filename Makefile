# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
DEMO_DIR ?= demo_output

.PHONY: install demo test bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch first, pinned, so that the package's unpinned "torch>=2.1" finds it installed
# (an unpinned install would fetch several GB of CUDA wheels). Override TORCH_SPEC for a GPU build.
$(VENV)/.installed: $(PY) pyproject.toml
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/medimg oct synth $(DEMO_DIR)/sample.tif --shape 120,128,160 --seed 7
	$(VENV)/bin/medimg oct extract $(DEMO_DIR)/sample.tif -o $(DEMO_DIR)/sample_oct
	$(VENV)/bin/medimg oct evaluate --pred-mask $(DEMO_DIR)/sample_oct/glands.tif --true-mask $(DEMO_DIR)/sample_glands.tif \
		--pred-pores $(DEMO_DIR)/sample_oct/pores.csv --true-pores $(DEMO_DIR)/sample_pores.csv
	@echo "Pore map: $(DEMO_DIR)/sample_oct/fingerprint.png" >&2

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/oct_stages.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
