/*
 * Internal: the store's own catalog, made when a store is opened (see
 * bf_store_catalog). Not a public interface.
 */
#ifndef BFILL_ENGINE_CATALOG_STORE_H
#define BFILL_ENGINE_CATALOG_STORE_H

#include "bfill/catalog.h"

/* st is borrowed; *out is freed with bf_catalog_destroy before st closes. */
int bf_catalog_store_create(bf_store *st, bf_catalog **out, bf_err *err);

#endif
