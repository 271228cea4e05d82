# The two commands a newcomer needs:  make all   and   make test.
# Every target sets up .venv (and TeX Live) first when it is missing or stale.
CANDIDATE ?= XX
PYTHON    := .venv/bin/python
ZIP       := homeexam_candidate$(CANDIDATE).zip
QUICK     ?=
LONG_SEEDS ?= 3
ARGS      := $(if $(QUICK),--quick,)

.PHONY: help setup all test problem1 problem2 problem3 problem3-real-mnist problem3-real-svhn problem3-long problem3-fullsize report zip benchmark clean

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 22

setup:  ## create .venv from requirements.txt and install TeX Live when missing (idempotent)
	@bash scripts/setup.sh

all: setup  ## everything: problems 1-3, doc/report.pdf and the zip (QUICK=1 for a smoke run)
	@$(if $(filter XX,$(CANDIDATE)),echo "warning: CANDIDATE is not set: the report's front page and the zip name say XX (make all CANDIDATE=17)",true)
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory problem1 problem2 problem3 report zip || exit $$?; \
	echo "make all: finished in $$(( $$(date +%s) - start )) s"

test: setup  ## run the test suite
	$(PYTHON) -m pytest -q tests

problem1: setup  ## numerical checks of the Problem 1 derivations
	$(PYTHON) src/problem1_checks.py $(ARGS)

problem2: setup  ## ResNet-18, backdoor, saliency, occlusion, fix, retrain
	$(PYTHON) src/problem2_traffic.py $(ARGS)

problem3: setup  ## wide LeNet-5 on SVHN, MNIST, ADDA and the MSE variant
	$(PYTHON) src/problem3_adda.py $(ARGS)

problem3-real-mnist: setup  ## Problem 3 with real MNIST as target: MNIST_DIR=folder; the report reads it
	$(if $(MNIST_DIR),,$(error set MNIST_DIR to the folder that holds the real MNIST files))
	$(PYTHON) src/problem3_adda.py --mnist-dir $(MNIST_DIR) --out runs/real-mnist $(ARGS)
	cp runs/real-mnist/results/problem3.json doc/results/problem3_real_mnist.json

problem3-real-svhn: setup  ## Problem 3 on real SVHN and MNIST: SVHN_DIR=, MNIST_DIR=; the report reads it
	$(if $(and $(SVHN_DIR),$(MNIST_DIR)),,$(error set SVHN_DIR and MNIST_DIR to folders with the real files))
	$(PYTHON) src/problem3_adda.py --svhn-dir $(SVHN_DIR) --mnist-dir $(MNIST_DIR) --out runs/real-svhn $(ARGS)
	cp runs/real-svhn/results/problem3.json doc/results/problem3_real_svhn.json
	cp runs/real-svhn/figures/p3_adaptation_curves.pdf doc/figures/p3_real_svhn_curves.pdf

problem3-long: setup  ## LONG_SEEDS (3) seeds at the paper's 10000 ADDA iterations (SVHN_DIR=, MNIST_DIR= optional)
	$(PYTHON) src/problem3_adda.py --seeds $(LONG_SEEDS) --adapt-iterations 10000 --monitor-every 250 --no-mse --out runs/long \
	  $(if $(SVHN_DIR),--svhn-dir $(SVHN_DIR)) $(if $(MNIST_DIR),--mnist-dir $(MNIST_DIR))
	cp runs/long/results/problem3.json doc/results/problem3_long.json
	cp runs/long/figures/p3_adaptation_curves.pdf doc/figures/p3_long_curves.pdf

problem3-fullsize: setup  ## SVHN stand-in at the full SVHN's size (73,257 + 26,032) -> MNIST_DIR's MNIST; the report reads it
	$(if $(MNIST_DIR),,$(error set MNIST_DIR to the folder that holds the real MNIST files))
	test -f runs/fullsize-svhn/test_32x32.mat || \
	  $(PYTHON) src/problem3_adda.py --write-svhn-standin runs/fullsize-svhn --standin-svhn 73257 26032
	$(PYTHON) src/problem3_adda.py --svhn-dir runs/fullsize-svhn --mnist-dir $(MNIST_DIR) --out runs/fullsize $(ARGS)
	cp runs/fullsize/results/problem3.json doc/results/problem3_fullsize_standin.json

report: setup  ## doc/report.pdf from the results that exist
	$(PYTHON) src/report_numbers.py --candidate $(CANDIDATE)
	cd doc && latexmk -pdf -interaction=nonstopmode -halt-on-error -quiet report.tex
	@echo "wrote doc/report.pdf"

zip: setup  ## homeexam_candidate$(CANDIDATE).zip with doc/ and src/ only
	$(PYTHON) src/make_zip.py --candidate $(CANDIDATE)

benchmark: setup  ## per-stage times, throughput and peak memory of problems 2 and 3
	$(PYTHON) scripts/benchmark.py

clean:  ## remove build products of the report (not data, checkpoints or the venv)
	cd doc && latexmk -C report.tex || true
