# Convenience wrapper around CMake, so a fresh clone needs only `make`.
#   make                 build the libraries, demo, tests and bench (Release)
#   make test            build and run every test
#   make demo            build an index on generated data and query it
#   make install         install (PREFIX=/usr/local by default)
#   make SANITIZE=address|undefined|thread test   sanitizer build, own folder
#   make test CTEST_ARGS="-R unit"               pass arguments to ctest
#   make test-arm64      cross-build for arm64 and run the kernel and recall
#                        tests under qemu (gcc-aarch64-linux-gnu, qemu-user)
#   make test-s390x      cross-build for s390x, a big-endian machine, and run
#                        the file-format tests under qemu (they read files
#                        written on x86; gcc-s390x-linux-gnu, qemu-user)
#   make fuzz            build the loader's libFuzzer target (clang) and run
#                        it on tests/fuzz/corpus for FUZZ_SECONDS (default
#                        600); new finds go to build-fuzz/new, and
#                        `make fuzz-merge` adds the ones that add coverage
PREFIX   ?= /usr/local
SANITIZE ?=
BUILD_TYPE ?= Release
ifeq ($(SANITIZE),)
BUILD ?= build
BENCH ?= ON
else
BUILD ?= build-$(SANITIZE)
BUILD_TYPE = RelWithDebInfo
# a sanitizer build is for the tests; benchmarks are timed, not checked
BENCH ?= OFF
endif
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?=

.PHONY: all test demo install clean configure test-arm64 test-s390x fuzz fuzz-merge

all: configure
	cmake --build $(BUILD) -j $(JOBS)

configure:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DCMAKE_INSTALL_PREFIX=$(PREFIX) -DSW_SANITIZE=$(SANITIZE) \
	  -DSW_BUILD_BENCH=$(BENCH) >/dev/null

test: all
	cd $(BUILD) && ctest --output-on-failure $(CTEST_ARGS)

demo: all
	./$(BUILD)/sw_demo

install: all
	cmake --install $(BUILD)

test-arm64:
	cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
	  -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build-arm64 -j $(JOBS) --target sw_tests
	qemu-aarch64 -L /usr/aarch64-linux-gnu build-arm64/tests/sw_tests simd
	qemu-aarch64 -L /usr/aarch64-linux-gnu build-arm64/tests/sw_tests recall_generated
	qemu-aarch64 -L /usr/aarch64-linux-gnu build-arm64/tests/sw_tests recall_bigann

S390X_TESTS ?= golden mmap_ persist_ corrupt crc32c inspect_
test-s390x:
	cmake -S . -B build-s390x -DCMAKE_TOOLCHAIN_FILE=cmake/s390x-linux-gnu.cmake \
	  -DCMAKE_BUILD_TYPE=Release -DSW_BUILD_BENCH=OFF >/dev/null
	cmake --build build-s390x -j $(JOBS) --target sw_tests
	for t in $(S390X_TESTS); do \
	  qemu-s390x -L /usr/s390x-linux-gnu build-s390x/tests/sw_tests $$t || exit 1; done

FUZZ_SECONDS ?= 600
FUZZ_CC ?= clang
build-fuzz/fuzz_load: tests/fuzz/fuzz_load.c src/*.c src/*.h src/simd/*.c src/simd/*.h include/smallworld.h
	mkdir -p build-fuzz/new
	$(FUZZ_CC) -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  -DSW_BUILDING_LIBRARY -Iinclude -Isrc tests/fuzz/fuzz_load.c src/*.c src/simd/*.c \
	  -lm -pthread -o $@

fuzz: build-fuzz/fuzz_load
	./build-fuzz/fuzz_load -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048 \
	  build-fuzz/new tests/fuzz/corpus

fuzz-merge: build-fuzz/fuzz_load
	./build-fuzz/fuzz_load -merge=1 tests/fuzz/corpus build-fuzz/new

clean:
	rm -rf build build-address build-undefined build-thread build-arm64 build-s390x build-fuzz
