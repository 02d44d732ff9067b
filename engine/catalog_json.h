/*
 * Internal: catalog records as JSON text, shared by the encoders
 * (catalog_encode.c) and the strict decoders (catalog_decode.c, behind
 * bf_catalog_decode_table / _job in bfill/catalog.h). Not a public
 * interface.
 */
#ifndef BFILL_ENGINE_CATALOG_JSON_H
#define BFILL_ENGINE_CATALOG_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "bfill/catalog.h"

/*
 * The record text of a table / a job. *text is malloc'd, NUL-terminated
 * and owned by the caller (free()). The text is decoded again before it is
 * handed out, so a struct the decoder would refuse (workers 0, a name with
 * a newline, a NaN rate) is never written: BF_EINVAL says which field.
 * BF_ENOMEM when out of memory.
 */
int bf_catalog_encode_table(const bf_table *t, char **text, bf_err *err);
int bf_catalog_encode_job(const bf_job *j, char **text, bf_err *err);

/*
 * The decoders with the reason alone in why's message ("config.workers =
 * 0 is out of range 1..64"), no record name: for callers that name the
 * record themselves. BF_ECORRUPT or BF_ENOMEM.
 */
int bf_catalog_read_table(const char *json, size_t len, bf_table *out, bf_err *why);
int bf_catalog_read_job(const char *json, size_t len, bf_job *out, bf_err *why);

/*
 * The "id" of a record, read leniently so that it works on a record the
 * strict decoders refuse; 0 when there is none. For rebuilding a damaged
 * id counter from the records that use the ids.
 */
int64_t bf_catalog_record_id(const char *json, size_t len);

#endif
