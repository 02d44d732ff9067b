/*
 * The catalog of a cluster (DESIGN §5, §9a): catalog records as etcd keys
 * under "<root>catalog/" (root being a cluster's "/bfill/cluster/<name>/"),
 * written in Txns so that records written together land together.
 */
#ifndef BFILL_CATALOG_ETCD_H
#define BFILL_CATALOG_ETCD_H

#include "bfill/catalog.h"
#include "bfill/etcd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* etcd is borrowed and must outlive the catalog; root is copied. *out is
 * freed with bf_catalog_destroy. */
int bf_catalog_etcd_create(bf_etcd *etcd, const char *root, bf_catalog **out, bf_err *err);

#ifdef __cplusplus
}
#endif
#endif
