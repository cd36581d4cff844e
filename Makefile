# The two set-up commands of the README, and a few conveniences around CMake.
#   make demo   run the whole pipeline on the sample data and print the per-team table
#   make test   bootstrap, build (warnings as errors), run every test, then the same suite
#               under ASan+UBSan, the bounded fuzz runs and the format check
BUILD     ?= build
ASAN      ?= build-asan
FUZZ      ?= build-fuzz
JOBS      ?= $(shell nproc)
CTEST_ARGS ?= --output-on-failure

.PHONY: all bootstrap build demo test test-release test-asan fuzz format format-check clean

all: build

bootstrap:
	scripts/bootstrap

build: bootstrap
	cmake -S . -B $(BUILD) -DGW_WERROR=ON >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	scripts/demo $(BUILD)

test: format-check test-release test-asan fuzz

test-release: build
	cd $(BUILD) && ctest $(CTEST_ARGS)

test-asan: bootstrap
	cmake -S . -B $(ASAN) -DGW_WERROR=ON -DGW_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build $(ASAN) -j $(JOBS)
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest $(CTEST_ARGS)

fuzz: bootstrap
	@if [ -d fuzz ]; then \
	  CC=clang cmake -S . -B $(FUZZ) -DGW_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null && \
	  cmake --build $(FUZZ) -j $(JOBS) --target fuzzers && scripts/fuzz-run $(FUZZ); \
	fi

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check: bootstrap
	scripts/format-check

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ)
