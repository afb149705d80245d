# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
DEMO_DIR ?= demo_output

.PHONY: install demo demo-oct demo-acne demo-mandible test bench clean

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

# The three main jobs on built-in samples: results on stdout, notes on stderr.
demo: demo-oct demo-acne demo-mandible

demo-oct: install
	$(VENV)/bin/medimg oct synth $(DEMO_DIR)/sample.tif --shape 120,128,160 --seed 7
	$(VENV)/bin/medimg oct extract $(DEMO_DIR)/sample.tif -o $(DEMO_DIR)/sample_oct
	$(VENV)/bin/medimg oct evaluate --pred-mask $(DEMO_DIR)/sample_oct/glands.tif --true-mask $(DEMO_DIR)/sample_glands.tif \
		--pred-pores $(DEMO_DIR)/sample_oct/pores.csv --true-pores $(DEMO_DIR)/sample_pores.csv
	@echo "Pore map: $(DEMO_DIR)/sample_oct/fingerprint.png; all of it: $(DEMO_DIR)/sample_oct/report.html" >&2

# A real face nobody here made (scikit-image's astronaut), then four real ACNE04 photos the shipped
# model never trained on (one per grade; truth in tests/data/acne04_photos/NNEW_test_0.txt), lesions boxed.
demo-acne: install
	$(VENV)/bin/medimg acne grade "$$($(PY) -c 'import skimage.data as d, os; print(os.path.join(d.data_dir, "astronaut.png"))')"
	$(VENV)/bin/medimg acne grade tests/data/acne04_photos/JPEGImages --overlay $(DEMO_DIR)/acne_overlays
	@echo "True grade and count: tests/data/acne04_photos/NNEW_test_0.txt; lesions boxed in $(DEMO_DIR)/acne_overlays/ (report.html there)" >&2

demo-mandible: install
	rm -rf $(DEMO_DIR)/head $(DEMO_DIR)/head_mandible
	$(VENV)/bin/medimg mandible synth $(DEMO_DIR)/head --seed 7 --metal
	$(VENV)/bin/medimg mandible segment $(DEMO_DIR)/head/dicom -o $(DEMO_DIR)/head_mandible
	$(VENV)/bin/medimg mandible evaluate $(DEMO_DIR)/head_mandible/mask.nii.gz $(DEMO_DIR)/head/mandible_mask.nii.gz
	@echo "Mesh: $(DEMO_DIR)/head_mandible/mandible.stl, overlay: $(DEMO_DIR)/head_mandible/overlay.png, page: $(DEMO_DIR)/head_mandible/report.html" >&2

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/oct_stages.py
	$(PY) benchmarks/acne_models.py
	$(PY) benchmarks/mandible_segment.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
