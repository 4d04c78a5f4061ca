# Thin wrapper over meson/ninja: deps, build, demo, test. Every target
# installs what it needs first (deploy/install-deps.sh is idempotent).
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 30
FUZZ_CAMPAIGN_SECONDS ?= 600

.PHONY: deps build demo tour test test-asan fuzz-build fuzz fuzz-campaign bench clean

deps:
	bash deploy/install-deps.sh

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) --buildtype=debugoptimized

build: deps $(BUILD)/build.ninja
	meson setup --reconfigure $(BUILD) >/dev/null
	ninja -C $(BUILD)

# The main job: a 16-node swarm of real plorad daemons on the shared fixtures.
demo: build
	bash deploy/demo.sh $(BUILD)

# The offline tools (keygen, sign, verify, vote, quorum, gate, merge, verify-log,
# graph, sim) one after the other on the shared fixtures.
tour: build
	bash deploy/tour.sh $(BUILD)

# Unit (cmocka), integration (real processes) and fuzz-corpus replay tests.
test: build
	meson test -C $(BUILD) --print-errorlogs --num-processes 2
	python3 tests/summarize.py $(BUILD)

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
# PLORA_SANITIZED=1 lets the longest sweeps (cli_sim's Byzantine seeds,
# audit_crash's kills) run fewer repetitions of the same code paths.
# malloc_context_size=5 (default 30): allocation stacks of 5 frames in a
# report, ~20% less time in malloc-heavy tests (plora sim).
test-asan: deps
	[ -f $(ASAN_BUILD)/build.ninja ] || CC=clang meson setup $(ASAN_BUILD) --buildtype=debug \
	    -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C $(ASAN_BUILD)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:malloc_context_size=5 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    PLORA_SANITIZED=1 meson test -C $(ASAN_BUILD) --print-errorlogs --num-processes 2 --timeout-multiplier 4
	python3 tests/summarize.py $(ASAN_BUILD)

# The libFuzzer targets (clang, ASan+UBSan) in $(FUZZ_BUILD).
fuzz-build: deps
	[ -f $(FUZZ_BUILD)/build.ninja ] || CC=clang meson setup $(FUZZ_BUILD) --buildtype=debugoptimized \
	    -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C $(FUZZ_BUILD) fuzzers

# Each libFuzzer target for FUZZ_SECONDS on its corpus.
fuzz: fuzz-build
	bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The long campaign (docs/fuzzing.md): each target FUZZ_CAMPAIGN_SECONDS at
# nice 19, scratch corpora, logs and artifacts kept in fuzz-campaign-<UTC time>/.
fuzz-campaign: fuzz-build
	bash tests/fuzz/campaign.sh $(FUZZ_CAMPAIGN_SECONDS) $(FUZZ_BUILD)

bench: build
	bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
