/*
 * How the command line shows a job, shared by `status` (the record as it
 * stands) and `add-index --json` (the record a run ended with): its rate
 * and ETA, whether --resume can continue it, and the JSON fields both
 * print.
 */
#ifndef BFILL_CMD_JOB_VIEW_H
#define BFILL_CMD_JOB_VIEW_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "bfill/catalog.h"

/*
 * The job's rate in rows/s: the record's recent rate, or, while that is
 * still 0 (the job measures it over windows of a few seconds, so its
 * first seconds have none), rows_done over the time from start_ms to
 * update_ms. False when neither can be known.
 */
bool cli_job_rate(const bf_job *j, double *rate);
/* Seconds left for a job that runs (alive) and still has rows to scan, at
 * rate; false when that can't be known (not running, no rate, or only
 * the import is left, whose length the record does not tell). */
bool cli_job_eta(const bf_job *j, bool alive, bool rate_known, double rate, double *eta);
/* Whether `add-index --resume` continues the job: failed without being
 * rolled back, paused, or recorded running with no live process (alive). */
bool cli_job_resumable(const bf_job *j, bool alive);
/* Adds the fields status and add-index --json share: table, indexes,
 * state, lock_key, importing, outcome ("resumable" / "rolled_back" for a
 * failed job, else null) and resumable. */
void cli_job_json_add(cJSON *o, const bf_job *j, bool alive);

#endif
