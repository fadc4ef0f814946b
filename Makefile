# Two commands: `make run` starts the app, `make test` runs the test suite.
# Both create .venv and install requirements.txt first when needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
# llama-cpp-python compiles llama.cpp here. Not with -march=native: on a CPU with AMX tiles
# that build runs its matrix products on AMX, which segfaulted in this sandbox
# (ggml_backend_amx_mul_mat). AVX2 + FMA, which every x86-64 server of the last decade has, is
# fast on this model and runs on any such machine. Its own stamp: a new pin elsewhere must not
# cost a 6-minute rebuild, and a change of these flags must rebuild a venv built without them.
LLAMA_REQ := $(shell grep '^llama-cpp-python' requirements.txt)
LLAMA_CMAKE_ARGS := $(if $(filter x86_64,$(shell uname -m)),-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON)
LLAMA_STAMP := $(VENV)/.llama-$(shell echo '$(LLAMA_REQ) $(LLAMA_CMAKE_ARGS)' | cksum | cut -d' ' -f1)

.PHONY: setup sysdeps run test bench bench-retrieval bench-results clean

# System packages, installed with apt when missing: a C/C++ toolchain and cmake build
# llama-cpp-python; the browser test drives Debian's Chromium (Playwright's own browser
# download does not work offline).
define apt_ensure
	@missing=""; for t in $(1); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

sysdeps:
	$(call apt_ensure,cmake gcc g++)

$(LLAMA_STAMP):
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# built from source with the flags above; --no-cache-dir: pip's wheel cache ignores CMAKE_ARGS
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet --no-cache-dir --no-deps --force-reinstall "$(LLAMA_REQ)"
	rm -f $(VENV)/.llama-*
	touch $(LLAMA_STAMP)

# llama.cpp's own server (`llama-server --parallel N`: several requests decoded at once; the
# Python llama_cpp.server serves one at a time), for the served-model test. Built from the
# llama.cpp sources the same llama-cpp-python sdist vendors, with the same CPU flags, without
# its web UI, TLS or downloads; about 8 minutes on 2 cores, then kept in the virtualenv.
LLAMA_SERVER := $(BIN)/llama-server
LLAMA_SERVER_BUILD := $(VENV)/build-llama-server

$(LLAMA_SERVER): $(LLAMA_STAMP)
	rm -rf $(LLAMA_SERVER_BUILD) && mkdir -p $(LLAMA_SERVER_BUILD)
	$(BIN)/pip download --quiet --no-deps --no-binary :all: --dest $(LLAMA_SERVER_BUILD) "$(LLAMA_REQ)"
	tar -xzf $(LLAMA_SERVER_BUILD)/llama_cpp_python-*.tar.gz -C $(LLAMA_SERVER_BUILD)
	cmake -S $(LLAMA_SERVER_BUILD)/llama_cpp_python-*/vendor/llama.cpp -B $(LLAMA_SERVER_BUILD)/out \
	  -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF \
	  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
	  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF $(LLAMA_CMAKE_ARGS) >$(LLAMA_SERVER_BUILD)/cmake.log \
	  || { tail -40 $(LLAMA_SERVER_BUILD)/cmake.log; exit 1; }
	cmake --build $(LLAMA_SERVER_BUILD)/out --target llama-server -j$$(nproc) >$(LLAMA_SERVER_BUILD)/build.log \
	  || { tail -40 $(LLAMA_SERVER_BUILD)/build.log; exit 1; }
	cp $(LLAMA_SERVER_BUILD)/out/bin/llama-server $@
	rm -rf $(LLAMA_SERVER_BUILD)

$(STAMP): requirements.txt $(LLAMA_STAMP)
	# torch first and alone: this pin takes the CPU wheel; a looser one pulls CUDA builds
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: sysdeps $(STAMP)

run: setup
	$(BIN)/streamlit run app.py

test: setup $(LLAMA_SERVER)
	$(call apt_ensure,chromium)
	$(BIN)/python -m pytest -q

# engine overheads, ingest into a table of 100k chunks, concurrency against a slow endpoint (~15 min)
bench: setup
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/engine.py --prefill 100000 --questions 0
	$(BIN)/python bench/concurrency.py
	$(BIN)/python bench/question_files.py

# builds the demo knowledge base first (the first time downloads eleven sdists from PyPI)
bench-retrieval: setup
	$(BIN)/python bench/retrieval_quality.py

# a finished run of 10,000 questions read, tested, shown, reported and opened in Chromium (a few minutes)
bench-results: setup
	$(call apt_ensure,chromium)
	$(BIN)/python bench/results_scale.py

clean:
	rm -rf $(VENV) .pytest_cache
