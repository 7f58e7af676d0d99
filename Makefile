# Convenience wrapper around CMake, so a fresh clone needs only `make`.
#   make                 build the libraries, demo, tests and bench (Release)
#   make test            build and run every test
#   make demo            build an index on generated data and query it
#   make install         install (PREFIX=/usr/local by default)
#   make SANITIZE=address|undefined|thread test   sanitizer build, own folder
#   make test CTEST_ARGS="-R unit"               pass arguments to ctest
#   make test-arm64      cross-build for arm64 and run the kernel and recall
#                        tests under qemu (gcc-aarch64-linux-gnu, qemu-user)
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

.PHONY: all test demo install clean configure test-arm64

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

clean:
	rm -rf build build-address build-undefined build-thread build-arm64
