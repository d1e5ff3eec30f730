# fetchfleet: the two commands (make demo, make test) and their helpers. Every target that
# builds first installs the Debian packages it needs (make deps), so a fresh Debian 12
# machine needs nothing else.

BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
# make fuzz: seconds each fuzz target runs.
FUZZ_SECONDS ?= 60
JOBS       ?= $(shell nproc)

# Build and test dependencies (Debian 12 package names).
DEPS := build-essential cmake ninja-build pkg-config git ca-certificates \
        libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
        libcurl4-openssl-dev libabsl-dev nlohmann-json3-dev libhiredis-dev libssl-dev openssl libsqlite3-dev \
        redis-server redis-tools \
        libgtest-dev libgmock-dev clang-format python3 python3-grpcio python3-protobuf \
        prometheus-cpp-dev libcivetweb-dev tmux
# The chart's renderer (Helm's template language) and checker, and the test-docker tools.
CHART_DEPS := golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev \
              python3-yaml
# The benchmark's peers and target.
BENCH_DEPS := nginx-light wrk curl
# The fuzz targets' compiler and libFuzzer.
FUZZ_DEPS := clang-14 libfuzzer-14-dev

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps bench-deps fuzz-deps build demo test test-asan test-tsan test-docker images chart-check chart-deps fuzz fuzz-build bench \
        format format-check clean

all: build

# install-missing installs those of the packages $(1) that are not installed, so
# it is fast when everything is there.
define install-missing
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
endef

deps:
	$(call install-missing,$(DEPS))

bench-deps: deps
	$(call install-missing,$(BENCH_DEPS))

fuzz-deps: deps
	$(call install-missing,$(FUZZ_DEPS))

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# demo: a local fleet (coordinator + 2 workers, no Redis) runs a sample job against a
# local HTTP target.
demo: build
	scripts/demo.sh $(BUILD)/bin

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j 2

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFETCHFLEET_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan/suppressions.txt \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j 2

# test-docker: the images built, the redis and integration tests against a Redis in a
# container, then a job through a fleet of containers (scripts/test-docker.sh). Starts the
# Docker daemon if none answers and stops it after.
test-docker: build chart-check
	scripts/test-docker.sh $(BUILD)

# chart-check: helm/fetchfleet rendered for every ci/*-values.yaml with Helm's template
# language, its values checked against values.schema.json and every object against the
# Kubernetes API schemas, strictly (helm/check.sh); no helm binary or cluster needed.
chart-check: chart-deps
	helm/check.sh $(BUILD)/chart
	mkdir -p $(BUILD)/bin && cp $(BUILD)/chart/helm-render $(BUILD)/bin/helm-render

# Node.js from Debian only where there is none (a machine may bring its own node and npm).
chart-deps:
	$(call install-missing,$(CHART_DEPS))
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm; }

# images: fetchfleet-coordinator, fetchfleet-worker and fetchctl (tag dev), with their sizes.
images:
	scripts/docker-images.sh dev

# ThreadSanitizer over every test, our binaries built with TSan. Debian's gRPC, protobuf and
# Abseil are not instrumented, so races TSan imagines inside them are suppressed by library
# (tests/tsan/suppressions.txt); nothing of ours is.
test-tsan: deps
	cmake -S . -B $(TSAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFETCHFLEET_TSAN=ON
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	TSAN_OPTIONS="halt_on_error=1 history_size=7 suppressions=$(CURDIR)/tests/tsan/suppressions.txt" \
	  ctest --test-dir $(TSAN_BUILD) --output-on-failure -j 2

# fuzz: the libFuzzer targets (fuzz/), built with clang-14, ASan and UBSan in their
# own tree, each run for FUZZ_SECONDS from its seed corpus; fails if one crashes.
fuzz-build: fuzz-deps
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_COMPILER=clang++-14 -DFETCHFLEET_FUZZ=ON
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

fuzz: fuzz-build
	fuzz/run.sh $(FUZZ_BUILD)/bin $(FUZZ_SECONDS)

bench: bench-deps build
	bench/run.sh $(BUILD)/bin

FORMAT_FILES = $(shell git ls-files '*.cc' '*.h')

format:
	clang-format -i $(FORMAT_FILES)

format-check: deps
	clang-format --dry-run -Werror $(FORMAT_FILES)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
