/*
 * CRC-32C (Castagnoli), the checksum of sort-engine run blocks. Uses the
 * SSE4.2 instruction when the CPU has it, a table otherwise.
 */
#ifndef BFILL_CRC32C_H
#define BFILL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) over n bytes. */
uint32_t bf_crc32c(uint32_t crc, const void *p, size_t n);

#endif
