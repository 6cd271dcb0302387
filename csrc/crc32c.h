/* CRC-32C (Castagnoli): SSE4.2 instruction when the CPU has it, a table otherwise. */
#ifndef OPENRAFT_FAST_CRC32C_H
#define OPENRAFT_FAST_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/* Pick the implementation (call once, before any other call; idempotent). */
void crc32c_init(void);
/* crc32c of data continued from `crc` (0 to start). */
uint32_t crc32c_extend(uint32_t crc, const void *data, size_t n);
/* The software (table) version, always available: for tests. */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t n);
/* 1 when the hardware version is in use. */
int crc32c_hw_available(void);

#endif
