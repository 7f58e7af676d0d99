# Cross-compiling for arm64 Linux with the Debian/Ubuntu cross toolchain
# (gcc-aarch64-linux-gnu), e.g.
#   cmake -S . -B build-arm -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#   QEMU_LD_PREFIX=/usr/aarch64-linux-gnu qemu-aarch64 build-arm/tests/sw_tests
# (with binfmt_misc registered, the binaries also run directly).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# ctest runs the test executables through the emulator when one is set.
find_program(SW_QEMU_AARCH64 qemu-aarch64)
if(SW_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${SW_QEMU_AARCH64} -L /usr/aarch64-linux-gnu)
endif()
