# Two promises for a fresh clone (see README "Quick start"):
#   make report  -- install losslens into .venv and report on example_data/
#   make test    -- install losslens with its test and dask extras into .venv and run every test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT := out

.PHONY: report test fuzz venv install install-test example-data clean

# The stamp files make the install step re-run when pyproject.toml changes, and only then.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# An editable install compiles nothing, and with PYTHONDONTWRITEBYTECODE set (as on CI and
# sandboxes) every run would compile losslens's modules again: about 0.07 s of each command.
# compileall writes the bytecode a wheel install writes; a changed file is recompiled on import.
# prime() writes the code of the functions @dataclass makes for losslens's classes beside it
# (src/losslens/dataclass_code.py: 20 ms of each command's start-up otherwise).
COMPILE := $(BIN)/python -m compileall -q src && $(BIN)/python -c "from losslens import dataclass_code; dataclass_code.prime()"

# setup.py builds the one C extension (src/losslens/_fused.c; optional: without a C compiler the
# install goes on and losslens runs on numpy alone, with the same figures); a changed C file
# re-runs the install, which compiles it again.
BUILD_INPUTS := pyproject.toml setup.py src/losslens/_fused.c

$(VENV)/.installed: $(BUILD_INPUTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(COMPILE)
	touch $@

# PyTorch and torchmetrics are references of some tests (fp16/bf16 tensors, cross_entropy,
# calibration error). Pinned: an unpinned torch resolves to a CUDA build of several GB, while
# 2.13.0 is the CPU wheel this project's machines carry. Where it cannot be had, those tests skip.
TEST_REFERENCES := "torch==2.13.0" "torchmetrics>=1.0"

$(VENV)/.installed-test: $(BUILD_INPUTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,dask]"
	$(BIN)/python -m pip install --quiet $(TEST_REFERENCES) \
		|| echo "make: torch/torchmetrics not installed here; the tests that need them are skipped" >&2
	$(COMPILE)
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

report: $(VENV)/.installed
	@mkdir -p $(OUT)
	$(BIN)/losslens report example_data/digits_multiclass.parquet --by ink --id id \
		-o $(OUT)/report.html --json $(OUT)/report.json
	@echo "HTML report: $(abspath $(OUT)/report.html)  (JSON: $(OUT)/report.json)"

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

# The reader fuzz tests with 100 000 examples in all (CI runs 750): classifier tables 40 %,
# token files 25 %, list columns and lm-eval samples 17.5 % each. make fuzz FUZZ_EXAMPLES=N for fewer.
FUZZ_EXAMPLES ?= 100000
fuzz: $(VENV)/.installed-test
	LOSSLENS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/test_fuzz.py tests/test_fuzz_lm.py tests/test_fuzz_lm_eval.py -q -p no:cacheprovider --timeout 0 --hypothesis-show-statistics

# Regenerate the bundled example files (needs the test extras for scikit-learn).
example-data: $(VENV)/.installed-test
	$(BIN)/python example_data/make_example_data.py

clean:
	rm -rf $(VENV) $(OUT) build dist src/*.egg-info src/losslens/_fused*.so src/losslens/_fused*.pyd
