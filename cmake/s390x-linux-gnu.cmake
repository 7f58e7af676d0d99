# Cross-compiling for s390x Linux (gcc-s390x-linux-gnu), the big-endian
# machine the test suite runs on under qemu-s390x: `make test-s390x` reads
# the golden files written on little-endian x86 and round-trips its own.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR s390x)
set(CMAKE_C_COMPILER s390x-linux-gnu-gcc)
set(CMAKE_FIND_ROOT_PATH /usr/s390x-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
find_program(SW_QEMU_S390X qemu-s390x)
if(SW_QEMU_S390X)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${SW_QEMU_S390X} -L /usr/s390x-linux-gnu)
endif()
