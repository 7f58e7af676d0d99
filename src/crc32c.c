/*
 * crc32c.c — CRC-32C (Castagnoli), the checksum of every part of a file.
 *
 * Why CRC-32C: it detects every burst error up to 32 bits and every odd
 * number of flipped bits, and x86-64 (SSE 4.2) and arm64 compute it in
 * hardware, which matters because a loader checks every byte of files
 * that can be gigabytes.  On the 716 MB file of a 1M x 128 index, in the
 * page cache (the 2-core EPYC; /tmp/me/crcbench.c, a scratch program, 3
 * runs): the table-driven loop below 1.52-1.53 s, the SSE 4.2 instruction
 * eight bytes at a time 0.074-0.076 s.
 *
 * The x86 instruction is used where the CPU has it, probed once;
 * everything else takes the table, which gives the same value (the tests
 * compare them on random buffers of many lengths and alignments).  arm64
 * has the instruction too (ARMv8.1 on, optional before), but the default
 * arm64 build targets ARMv8.0 and a mapped open leaves the big section
 * unchecked anyway, so it is not used there yet.
 */
#include "internal.h"

#include <string.h>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define SW__CRC_X86 1
#include <nmmintrin.h>
#endif

static uint32_t table[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;
#ifdef SW__CRC_X86
static bool hardware;
#endif

static void init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
        table[i] = c;
    }
#ifdef SW__CRC_X86
    __builtin_cpu_init();
    hardware = __builtin_cpu_supports("sse4.2");
#endif
}

/* The raw (not inverted) register, byte by byte. */
static uint32_t crc_table(uint32_t c, const unsigned char *p, size_t n) {
    while (n--) c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

#ifdef SW__CRC_X86
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t c, const unsigned char *p,
                                                             size_t n) {
    uint64_t c64 = c;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8); /* little-endian load, as the CRC's bit order wants */
        c64 = _mm_crc32_u64(c64, w);
    }
    c = (uint32_t)c64;
    while (n--) c = _mm_crc32_u8(c, *p++);
    return c;
}
#endif

uint32_t sw__crc32c(uint32_t crc, const void *data, size_t n) {
    pthread_once(&once, init);
    const unsigned char *p = data;
    uint32_t c = ~crc;
#ifdef SW__CRC_X86
    if (hardware) return ~crc_sse42(c, p, n);
#endif
    return ~crc_table(c, p, n);
}

uint32_t sw__crc32c_portable(uint32_t crc, const void *data, size_t n) {
    pthread_once(&once, init);
    return ~crc_table(~crc, data, n);
}
