# logitd — the two commands: `make demo` and `make test`. Both install what is missing first.

SWIFT      ?= swift
PYTHON     ?= python3
BUILD_DIR  := .build/release
LOGITD     := $(BUILD_DIR)/logitd
CONFIG     := Config/logitd.toml
ENDPOINT   := tcp://127.0.0.1:5555
# A plain release build: the decoding kernels pick the widest instructions the CPU has at run time
# (Sources/CLogitKernels), so the binary is as fast here as anywhere and runs on any x86-64.
SWIFT_BUILD := $(SWIFT) build -c release
# Run apt-get through sudo when not root (CI and these machines run as root).
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build test test-swift test-python test-fuzz fuzz demo bench bench-kernels calibration-plot clean

all: build

# libzmq3-dev and, on x86-64, qemu-user (through apt), and the Python packages (through pip), each
# only when missing: the client needs pyzmq and numpy only; llguidance (the grammar engine behind
# logitd.constraints), tokenizers (the tests build their tokenizer) and jsonschema serve the
# structured-output tests and example; wheel lets the tests pip-install the client offline;
# prometheus-client parses the metrics endpoint in its test.
PYTHON_PACKAGES := pyzmq numpy pytest llguidance tokenizers jsonschema wheel prometheus-client
deps:
	@if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists libzmq; then \
		echo "installing libzmq3-dev"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq libzmq3-dev pkg-config >/dev/null; \
	fi
	@if [ "$$(uname -m)" = x86_64 ] && ! command -v qemu-x86_64 >/dev/null 2>&1; then \
		echo "installing qemu-user (the tests run the daemon on emulated older CPUs)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq qemu-user >/dev/null; \
	fi
	@if ! $(PYTHON) -c "import zmq, numpy, pytest, llguidance, tokenizers, jsonschema, wheel, prometheus_client" 2>/dev/null; then \
		echo "installing $(PYTHON_PACKAGES)"; \
		$(PYTHON) -m pip install -q $(PYTHON_PACKAGES) 2>/dev/null \
		|| $(PYTHON) -m pip install -q --break-system-packages $(PYTHON_PACKAGES); \
	fi

# One release build serves the daemon, the demo and both test suites.
build: deps
	$(SWIFT_BUILD) --build-tests

test: build test-swift test-python test-fuzz

# The whole suite on the widest kernel variant this CPU runs, then the decoding tests again on every
# lower one (LOGITD_KERNELS), so each variant passes the same tests.
test-swift:
	LOGITD_BIN=$(CURDIR)/$(LOGITD) $(SWIFT) test -c release --skip-build
	@for variant in $$($(LOGITD) kernels --supported | tail -n +2); do \
		echo "decoding tests with LOGITD_KERNELS=$$variant"; \
		LOGITD_KERNELS=$$variant $(SWIFT) test -c release --skip-build --filter DecodingTests || exit 1; \
	done

test-python:
	LOGITD_BIN=$(CURDIR)/$(LOGITD) $(PYTHON) -m pytest -q Clients/python/tests

# Coverage-guided fuzzing of the request path (Sources/logitd-fuzz): a libFuzzer build with
# AddressSanitizer in its own build folder (sanitizer flags for this build only), started from the
# seed corpus in Tests/Fuzz/corpus (python3 Tests/Fuzz/make_corpus.py writes it). `make fuzz` runs
# FUZZ_SECONDS (300); `make test` runs a minute after replaying the corpus and the regressions (the
# inputs of crashes found, kept in Tests/Fuzz/regressions) through the plain build. Crashes are
# written to .build-fuzz/crash-*.
FUZZ_SECONDS ?= 300
FUZZ_BUILD := $(SWIFT) build -c debug --scratch-path .build-fuzz --product logitd-fuzz \
	-Xswiftc -sanitize=fuzzer,address -Xswiftc -DLOGITD_FUZZ -Xcc -fsanitize=fuzzer-no-link,address
fuzz: deps
	$(FUZZ_BUILD)
	@mkdir -p .build-fuzz/corpus
	.build-fuzz/debug/logitd-fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -artifact_prefix=.build-fuzz/ \
		.build-fuzz/corpus Tests/Fuzz/corpus Tests/Fuzz/regressions

test-fuzz: build
	$(BUILD_DIR)/logitd-fuzz Tests/Fuzz/corpus | tee .build/fuzz-replay.txt
	@grep -q ", 0 refused" .build/fuzz-replay.txt || { echo "a seed of Tests/Fuzz/corpus is refused: the corpus no longer reaches the decoders"; exit 1; }
	$(BUILD_DIR)/logitd-fuzz Tests/Fuzz/regressions
	$(MAKE) fuzz FUZZ_SECONDS=60

# Starts the daemon with the documented default config, runs the translation demo against it
# (softmax explainer, a few sentences with every strategy, the test-set evaluation), stops it.
DEMO := $(BUILD_DIR)/translate-demo --endpoint $(ENDPOINT)
demo: build
	@$(LOGITD) serve --config $(CONFIG) --log-level warning & daemon=$$!; \
	$(DEMO) --softmax \
		"the black cat sleeps" "the man walks near the bank of the city" \
		"the trees rest near the bank of the river" \
	&& echo && $(DEMO) --evaluate \
	&& echo && $(DEMO) --calibration \
	&& echo && echo "The same model process in Python (Demos/Translation/translate_demo.py):" \
	&& $(PYTHON) Demos/Translation/translate_demo.py "the black cat sleeps"; status=$$?; \
	kill -TERM $$daemon; wait $$daemon; \
	exit $$status

# The calibration section's reliability diagram, docs/calibration.png (matplotlib installed when missing).
calibration-plot: build
	@$(PYTHON) -c "import matplotlib" 2>/dev/null || $(PYTHON) -m pip install -q matplotlib \
		|| $(PYTHON) -m pip install -q --break-system-packages matplotlib
	@$(LOGITD) serve --config $(CONFIG) --log-level warning & daemon=$$!; \
	$(DEMO) --calibration --json | $(PYTHON) Demos/Translation/plot_calibration.py docs/calibration.png; status=$$?; \
	kill -TERM $$daemon; wait $$daemon; \
	exit $$status

# Kernel timings, each beside a plain pass over the same row in the same run (see README).
bench-kernels: build
	$(BUILD_DIR)/logitd-bench kernels

# Every benchmark, as JSON lines, a markdown report and plots under docs/bench/ (matplotlib is
# installed when missing). The end-to-end part takes several minutes.
bench: build
	@$(PYTHON) -c "import matplotlib" 2>/dev/null || $(PYTHON) -m pip install -q matplotlib \
		|| $(PYTHON) -m pip install -q --break-system-packages matplotlib
	$(BUILD_DIR)/logitd-bench kernels --json > docs/bench/kernels.jsonl
	$(BUILD_DIR)/logitd-bench e2e --json > docs/bench/e2e.jsonl
	$(PYTHON) docs/bench/render.py docs/bench

clean:
	rm -rf .build
