# The README's two quick-start commands are `make quickstart` and `make test`; .ci/run runs `make test`.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
# torch is installed first and pinned: 2.13.0 is the CPU build on our machines. Anything that satisfies
# setup.cfg's range (e.g. a CUDA build installed beforehand) is kept as it is.
TORCH ?= torch==2.13.0
RIGA := bundles/lexu_riga/configs
RIGA_CPU := $(RIGA)/cpu_small.json
HECKTOR := bundles/lexu_hecktor/configs
HECKTOR_CPU := $(HECKTOR)/cpu_small.json
PYTEST_ARGS ?= -n 2 --dist loadfile --durations=15
DOCS_PYTEST_ARGS ?= -n 2 --dist load --durations=10

.PHONY: install quickstart quickstart-riga hecktor-cv test test-docs lint format bundles zoo-check report

install:
	$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH)"
	$(PIP) install -e ".[test]"

# the main job: lexu_hecktor (3D PET/CT) on the embedded synthetic data, CPU-sized: train fold 0, evaluate, infer
quickstart: install
	$(PYTHON) -m monai.bundle run --config_file "['$(HECKTOR)/train.json','$(HECKTOR_CPU)']"
	$(PYTHON) -m monai.bundle run --config_file "['$(HECKTOR)/train.json','$(HECKTOR)/evaluate.json','$(HECKTOR_CPU)']"
	$(PYTHON) -m monai.bundle run --config_file "['$(HECKTOR)/inference.json','$(HECKTOR_CPU)']"

quickstart-riga: install
	$(PYTHON) -m monai.bundle run --config_file "['$(RIGA)/train.json','$(RIGA_CPU)']"
	$(PYTHON) -m monai.bundle run --config_file "['$(RIGA)/train.json','$(RIGA)/evaluate.json','$(RIGA_CPU)']"

# lexu_hecktor 3-fold cross-validation, CPU-sized: train and evaluate folds 0, 1, 2 -> eval/metrics_folds_summary.md
hecktor-cv: install
	for fold in 0 1 2; do \
		$(PYTHON) -m monai.bundle run --config_file "['$(HECKTOR)/train.json','$(HECKTOR_CPU)']" --fold $$fold && \
		$(PYTHON) -m monai.bundle run --config_file "['$(HECKTOR)/train.json','$(HECKTOR)/evaluate.json','$(HECKTOR_CPU)']" \
			--fold $$fold || exit 1; \
	done

# the CPU-sized reproduction end to end (resumable: finished runs are skipped) and one report of every method:
# LEXU/LE seeds 27-29, DE seeds 27-28, beta sweep 0/3/10 x seeds 27-28, the calibrated-ensemble bundle's MC-dropout
# baseline (seed 27), per-head/member/sample-map evaluations clean and distorted, Jungo Table 1 (seed 27), and
# Table 2's HECKTOR half (LEXU, LE, DE; 3-fold CV) in our 3D recipe and in the paper's 2D slice protocol
# -> benchmarks/results/report/report.html (+ .md). Many hours on 2 CPU cores (add --extra MCD CE for the calibrated
# ensemble itself: 3 folds x base + 7 members, about 8 LEXU runs more).
report: install
	$(PYTHON) benchmarks/reproduce_tables.py --seeds 27 28 29 --de-seeds 27 28 --betas 0 3 10 --beta-seeds 27 28 \
		--analyses --extra MCD
	$(PYTHON) benchmarks/hecktor_table2.py --protocol 3d
	$(PYTHON) benchmarks/hecktor_table2.py --protocol slices
	$(PYTHON) -m monai_lexu.report --work benchmarks/work --out benchmarks/results/report

# regenerate the family bundles from bundles/_base/<dataset>/ + bundles/<name>/family.json (commit the result)
bundles:
	$(PYTHON) -m monai_lexu.families write

test: install
	$(PYTHON) -m pytest $(PYTEST_ARGS) -m "not docs"

# every bundle's docs/README.md command blocks, in order, CPU-sized (tests/doc_commands.py); the README's own blocks
# run in `make test` (tests/test_readme_commands.py). Not in .ci/run yet: the seven took 40 min on 2 cores under a
# load of about 12 (not measured idle), more than .ci/run's 30-minute budget leaves; run it before changing the docs.
test-docs: install
	$(PYTHON) -m pytest $(DOCS_PYTEST_ARGS) -m docs

# the model zoo's CI checks on every bundle as packed with trained weights (bundles/<name>/models/model.pt when it
# fits, else one CPU-recipe training iteration) and on the bundle folder: files, version, official metadata schema,
# requirement pins resolving together (asks PyPI; cached by pin set), JSON/text format, large_files.yml, bundle_root
# from a zoo layout, train/infer properties, verify_net_in_out, ckpt_export. Work files in build/zoo-check.
zoo-check: install
	$(PYTHON) -m monai_lexu.zoo_check build $(ZOO_CHECK_ARGS) bundles/*

lint:
	$(PYTHON) -m ruff check monai_lexu data_prep tests benchmarks
	$(PYTHON) -m black --check monai_lexu data_prep tests benchmarks
	$(PYTHON) -m isort --check-only monai_lexu data_prep tests benchmarks

format:
	$(PYTHON) -m isort monai_lexu data_prep tests benchmarks
	$(PYTHON) -m black monai_lexu data_prep tests benchmarks

# MONAI Label (docs: README "Use with MONAI Label"). label-env builds .venv-label: torch 2.13.0 (CPU) first, the
# pinned runtime of monailabel 0.8.5 (numpy<2, pydicom<2.5, jsonschema<4), monailabel itself without its
# dependencies (no sam2 build, no CUDA torchvision), then this package without its dependencies (no highdicom>=0.28).
# test-label runs, inside it, the tests against a real MONAI Label server plus the package tests that matter there.
LABEL_VENV ?= .venv-label
LABEL_PY := $(LABEL_VENV)/bin/python
LABEL_TESTS ?= tests/label tests/test_share.py tests/test_zoo_check.py tests/metrics/test_estimated_dice.py \
	tests/datasets/hecktor/test_hecktor_dicom.py tests/datasets/hecktor/test_hecktor_dicom_bad_inputs.py

.PHONY: label-env test-label

label-env: $(LABEL_VENV)/.label-env-done

$(LABEL_VENV)/.label-env-done: requirements-label.txt setup.cfg
	rm -rf $(LABEL_VENV)
	python3 -m venv $(LABEL_VENV)
	$(LABEL_PY) -m pip install "$(TORCH)"
	$(LABEL_PY) -m pip install -r requirements-label.txt
	$(LABEL_PY) -m pip install --no-deps monailabel==0.8.5
	$(LABEL_PY) -m pip install --no-deps -e .
	$(LABEL_PY) -c "import monai_lexu.label.server"
	touch $@

test-label: label-env
	$(LABEL_PY) -m pytest -q -n 0 -p no:cacheprovider $(LABEL_TESTS)
