# The two commands a newcomer needs:  make all   and   make test.
# Every target sets up .venv (and TeX Live) first when it is missing or stale.
CANDIDATE ?= XX
PYTHON    := .venv/bin/python
ZIP       := homeexam_candidate$(CANDIDATE).zip
QUICK     ?=
LONG_SEEDS ?= 1
ARGS      := $(if $(QUICK),--quick,)

.PHONY: help setup all test problem1 problem2 problem3 problem2-seeds problem2-grey problem2-battery problem3-weak problem3-noaugment problem3-long side-runs report zip benchmark clean

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

problem2-seeds: setup  ## Problem 2 again with seeds 1 and 2 (the report's 2g reads them)
	for seed in 1 2; do \
	  $(PYTHON) src/problem2_traffic.py --seed $$seed --out runs/problem2-seed$$seed \
	    --fixed-data-dir runs/problem2-seed$$seed/trigger-removed && \
	  cp runs/problem2-seed$$seed/results/problem2.json doc/results/problem2_seed$$seed.json || exit 1; \
	done

problem2-grey: setup  ## Problem 2 with the mean-colour fill instead of the inpainting (2g's comparison)
	$(PYTHON) src/problem2_traffic.py --fill grey --out runs/problem2-grey --fixed-data-dir runs/problem2-grey/trigger-removed
	cp runs/problem2-grey/results/problem2.json doc/results/problem2_grey.json

problem2-battery: setup  ## Problem 2 with other planted triggers (5 cases, seed 0): a check, not in the report
	$(PYTHON) scripts/check_real_photos.py --seeds 0 --scratch runs/battery --json runs/battery/battery.json

problem3-weak: setup  ## Problem 3 from a weaker source model (2,000 SVHN crops), 3 seeds (3d's side runs)
	$(PYTHON) src/problem3_adda.py --svhn-train-crops 2000 --seeds 3 --mse-seeds 0 --out runs/problem3-weak
	cp runs/problem3-weak/results/problem3.json doc/results/problem3_weak.json

problem3-noaugment: setup  ## Problem 3 without the affine jitter, 3 seeds (3d's side runs)
	$(PYTHON) src/problem3_adda.py --no-augment --seeds 3 --mse-seeds 0 --out runs/problem3-noaugment
	cp runs/problem3-noaugment/results/problem3.json doc/results/problem3_noaugment.json

problem3-long: setup  ## Problem 3 at the paper's 10,000 ADDA iterations, LONG_SEEDS seeds (3d's side runs)
	$(PYTHON) src/problem3_adda.py --adapt-iterations 10000 --monitor-every 500 --seeds $(LONG_SEEDS) --mse-seeds 0 --out runs/problem3-long
	cp runs/problem3-long/results/problem3.json doc/results/problem3_long.json

side-runs: problem2-seeds problem2-grey problem3-weak problem3-noaugment problem3-long  ## every side run the report reads

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
