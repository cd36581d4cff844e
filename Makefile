# The two set-up commands of the README, and a few conveniences around CMake.
#   make demo   run the whole pipeline on the sample data and print the per-team table
#   make test   the format check, bootstrap, build (warnings as errors), run every test, the
#               Helm chart checks and the container image test, then the same suite under
#               ASan+UBSan (without the fault matrix, label `fault`, which the release run
#               has) and the bounded fuzz runs (20 s per target)
#   make image  build the container image offline (buildah; docs/KUBERNETES.md)
BUILD     ?= build
ASAN      ?= build-asan
FUZZ      ?= build-fuzz
JOBS      ?= $(shell nproc)
CTEST_ARGS ?= --output-on-failure
# Bounds, in seconds, of the chart checks, the image build and the image test.
CHART_CHECK_TIMEOUT ?= 600
IMAGE_BUILD_TIMEOUT ?= 1200
IMAGE_TEST_TIMEOUT  ?= 300

.PHONY: all bootstrap build demo test test-release test-asan fuzz format format-check clean \
	image image-test chart-check

all: build

bootstrap:
	scripts/bootstrap

build: bootstrap
	cmake -S . -B $(BUILD) -DGW_WERROR=ON >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	scripts/demo $(BUILD)

test: format-check test-release chart-check image-test test-asan fuzz

test-release: build
	cd $(BUILD) && ctest $(CTEST_ARGS)

test-asan: bootstrap
	cmake -S . -B $(ASAN) -DGW_WERROR=ON -DGW_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build $(ASAN) -j $(JOBS)
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest $(CTEST_ARGS) -LE fault

fuzz: bootstrap
	@if [ -d fuzz ]; then \
	  CC=clang cmake -S . -B $(FUZZ) -DGW_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null && \
	  cmake --build $(FUZZ) -j $(JOBS) --target fuzzers && FUZZ_SECONDS=$${FUZZ_SECONDS:-20} scripts/fuzz-run $(FUZZ); \
	fi

# The container image (docker/Dockerfile), built once per make run; the base tarball is cached
# in $(BUILD)/image/ and the package layers in buildah's storage.
image:
	@start=$$(date +%s); \
	GW_BUILD_DIR=$(BUILD) timeout $(IMAGE_BUILD_TIMEOUT) scripts/image >/dev/null || \
	  { echo "image: scripts/image failed or ran over $(IMAGE_BUILD_TIMEOUT) s" >&2; exit 1; }; \
	echo "image: $$(( $$(date +%s) - start )) s"

# The daemons from the image, as its non-root user on a read-only root, against the local
# redis-server and goodwill-devkafka (tests/system/image_pipeline.py; not a ctest: needs root).
image-test: build image
	GW_BUILD_DIR=$(BUILD) timeout $(IMAGE_TEST_TIMEOUT) /usr/bin/python3 tests/system/image_pipeline.py

# The Helm chart, the alert rules and the dashboard, offline (scripts/chart-check).
chart-check: build
	GW_BUILD_DIR=$(BUILD) timeout $(CHART_CHECK_TIMEOUT) scripts/chart-check

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check: bootstrap
	scripts/format-check

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ)
