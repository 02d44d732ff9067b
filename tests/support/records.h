/*
 * Sample catalog records for tests: a table and a job with every field set
 * away from its default (64-bit counters past a double's 53 bits, text
 * with quotes, newlines and backslashes), and comparisons that assert
 * field by field through Criterion.
 */
#ifndef BFILL_TEST_RECORDS_H
#define BFILL_TEST_RECORDS_H

#include <stdint.h>

#include "bfill/catalog.h"

/* "orders": sbtest plus a nullable unsigned and a varchar, with three
 * indexes in different states. */
void t_sample_table(bf_table *t);
void t_expect_same_table(const bf_table *a, const bf_table *b);
/* A running job `id` on sbtest1 (table 100) building two indexes, with a
 * flushed checkpoint and no imported one. */
void t_sample_job(bf_job *j, int64_t id);
void t_expect_same_job(const bf_job *a, const bf_job *b);

#endif
