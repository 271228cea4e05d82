# The two commands a newcomer needs:  make all   and   make test.
# Every target sets up .venv (and TeX Live) first when it is missing or stale.
CANDIDATE ?= XX
PYTHON    := .venv/bin/python
ZIP       := homeexam_candidate$(CANDIDATE).zip
QUICK     ?=
LONG_SEEDS ?= 3
ARGS      := $(if $(QUICK),--quick,)

.PHONY: help setup all test problem1 problem2 problem3 problem2-seeds problem2-battery problem3-robustness problem3-long problem3-plain report zip benchmark clean

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

problem2-seeds: setup  ## Problem 2 on the default data with seeds 0 1 2; the report's 2g reads it
	$(PYTHON) scripts/check_real_photos.py --cases default --seeds 0 1 2 --scratch runs/seeds --json doc/results/problem2_seeds.json

problem2-battery: setup  ## Problem 2 with other planted triggers (5 cases, seed 0); the report's appendix reads it
	$(PYTHON) scripts/check_real_photos.py --seeds 0 --scratch runs/battery --json doc/results/problem2_real_photos.json

problem3-robustness: setup  ## Problem 3's ADDA on weaker and stronger source models (3 variants x 3 seeds); the report's 3d reads it
	$(PYTHON) scripts/check_adda_robustness.py --json doc/results/problem3_robustness.json

problem3-long: setup  ## LONG_SEEDS (3) seeds at the paper's 10000 ADDA iterations; the report's 3d reads it
	$(PYTHON) src/problem3_adda.py --seeds $(LONG_SEEDS) --adapt-iterations 10000 --monitor-every 250 --no-mse --out runs/long
	cp runs/long/results/problem3.json doc/results/problem3_long.json
	cp runs/long/figures/p3_adaptation_curves.pdf doc/figures/p3_long_curves.pdf

problem3-plain: setup  ## Problem 3's ADDA without L2-SP, averaging and two time-scales (annealing kept); the report's 3d reads it
	$(PYTHON) src/problem3_adda.py --anchor-distance 0 --average-horizon 0 --discriminator-lr 2e-4 --no-mse --out runs/plain
	cp runs/plain/results/problem3.json doc/results/problem3_plain.json
	cp runs/plain/figures/p3_adaptation_curves.pdf doc/figures/p3_plain_curves.pdf

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
