/*
 * A cluster of bfill-store nodes, laid out in etcd in PD's role (DESIGN §5):
 * stores (id, address, state) and regions (id, start/end key, epoch, peers,
 * leader) are records under "/bfill/cluster/<name>/", written by
 * `bfill cluster init` and changed by `split` and `transfer-leader`.
 *
 * Records: "<root>/meta" (JSON: the cluster's UUID and replica count),
 * "<root>/store/<id>" (metapb.Store), "<root>/region/<id 20 digits>"
 * (metapb.Region, keys memcomparable-encoded as TiKV keeps them) and
 * "<root>/leader/<region id 20 digits>" (the leader's store id, decimal).
 *
 * A bf_cluster handle keeps a region cache, protected with liburcu RCU so
 * that many region jobs read it at once while a refresh replaces it. It is
 * refreshed from etcd on request (after a region error) and by a watch, and
 * keeps serving what it has while etcd is slow or cut off.
 *
 * bf_region keys are raw (decoded) keys; bf_region_encode_key gives the
 * encoded form TiKV's SSTMeta ranges and region records use.
 */
#ifndef BFILL_CLUSTER_H
#define BFILL_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bfill/error.h"
#include "bfill/etcd.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BF_CLUSTER_MAX_REPLICAS 5
#define BF_CLUSTER_MAX_STORES 64
#define BF_CLUSTER_NAME_MAX 64
#define BF_CLUSTER_ADDR_MAX 256
#define BF_CLUSTER_KEY_MAX 4096 /* a region boundary, raw */

typedef struct bf_cluster bf_cluster;

typedef struct bf_cluster_store {
	uint64_t id;
	char address[BF_CLUSTER_ADDR_MAX]; /* "host:port" */
	int state;                         /* metapb.StoreState: 0 up */
} bf_cluster_store;

typedef struct bf_region_peer {
	uint64_t id;
	uint64_t store_id;
} bf_region_peer;

/* A region as plain values; its keys are owned by the struct (copied into
 * start/end, lengths say how much is used). An empty start or end key is
 * unbounded. */
typedef struct bf_region {
	uint64_t id;
	uint8_t start[BF_CLUSTER_KEY_MAX];
	size_t start_len;
	uint8_t end[BF_CLUSTER_KEY_MAX];
	size_t end_len;
	uint64_t conf_ver, version; /* the region epoch */
	int npeers;
	bf_region_peer peers[BF_CLUSTER_MAX_REPLICAS];
	uint64_t leader_store; /* store id of the leader peer */
} bf_region;

/* True when raw key k lies in [r->start, r->end). */
bool bf_region_contains(const bf_region *r, const void *k, size_t klen);
/* The leader's peer, or NULL when the leader is not among the peers. */
const bf_region_peer *bf_region_leader(const bf_region *r);
/* TiKV's memcomparable encoding of a raw key (groups of 8 bytes, each with
 * a marker); out must hold (klen/8+1)*9 bytes. Returns the length. */
size_t bf_region_encode_key(uint8_t *out, const void *k, size_t klen);

struct Metapb__Region; /* proto/metapb.proto, as protobuf-c decodes it */
/*
 * A metapb.Region as region records and stores (EpochNotMatch's current
 * regions) carry it, keys memcomparable-encoded, into *out with raw keys
 * and no leader (leader_store 0). BF_ECORRUPT with *why (static) saying
 * what is wrong: no id or epoch, no peers or too many, a key that does
 * not decode or is too long, a start not below the end.
 */
int bf_region_from_pb(const struct Metapb__Region *m, bf_region *out, const char **why);

/* The initial split is made for sbtest tables with ids from this one (what
 * `bfill gen` gives the first table of a fresh catalog). */
#define BF_CLUSTER_FIRST_TABLE 100
#define BF_CLUSTER_ROWS_DEFAULT 100000

typedef struct bf_cluster_init_opts {
	const char *const *store_addrs; /* nstores "host:port"; ids are 1..nstores */
	int nstores;
	int nregions;                   /* >= 1: split the key space evenly */
	int replicas;                   /* 1..min(nstores, BF_CLUSTER_MAX_REPLICAS) */
	int tables;                     /* tables the split is for; 0 = 1 */
	uint64_t rows;                  /* rows (handles 1..rows) per table; 0 = default */
} bf_cluster_init_opts;

/*
 * Writes a new cluster's records into etcd (one Txn, only if no cluster of
 * that name exists: BF_EEXIST otherwise). The key space of TiDB tables is
 * split into nregions regions: each of `tables` tables (ids from
 * BF_CLUSTER_FIRST_TABLE) gets an equal share, its indexes one region and
 * its rows the others, cut at even handle steps over 1..rows (see
 * docs/cluster.md); region ids are 1..nregions, epochs 1/1; peers are
 * placed round robin over the stores, leaders spread. etcd refuses a Txn
 * of more than --max-txn-ops (128 by default) operations: 1 + nstores +
 * 2 * nregions must fit.
 */
int bf_cluster_init(bf_etcd *etcd, const char *name, const bf_cluster_init_opts *o,
		    bf_err *err);

typedef struct bf_cluster_opts {
	bool watch; /* keep the cache fresh with an etcd watch (a thread) */
} bf_cluster_opts;

/*
 * Loads cluster `name` (stores, regions, leaders) from etcd. etcd is
 * borrowed and must outlive the handle. BF_ENOTFOUND when there is no such
 * cluster. *out is freed with bf_cluster_close, which waits for the watch
 * thread to stop (at most about one etcd call deadline).
 */
int bf_cluster_open(bf_etcd *etcd, const char *name, const bf_cluster_opts *o,
		    bf_cluster **out, bf_err *err);
void bf_cluster_close(bf_cluster *c);

const char *bf_cluster_name(const bf_cluster *c);
/* The cluster's UUID (lock keys and fence keys use it); owned by c. */
const char *bf_cluster_uuid(const bf_cluster *c);
int bf_cluster_replicas(const bf_cluster *c);
/* The etcd client the cluster was opened on (borrowed). */
bf_etcd *bf_cluster_etcd(bf_cluster *c);
/* "/bfill/cluster/<name>/": records of other kinds (catalog, jobs) go
 * under it too. Owned by c. */
const char *bf_cluster_root(const bf_cluster *c);

/*
 * ---- the cache: every call below reads it, none waits on etcd ----
 *
 * Any thread may call these: the cache registers a thread with liburcu on
 * its first read and unregisters it when the thread exits. A thread that
 * registers itself with liburcu (memb flavour) must do so before its
 * first call here; the cache then leaves it alone.
 */

/* The region holding raw key k. BF_ENOTFOUND when no cached region does. */
int bf_cluster_locate(bf_cluster *c, const void *k, size_t klen, bf_region *out, bf_err *err);
/* The region with id `id`. */
int bf_cluster_region(bf_cluster *c, uint64_t id, bf_region *out, bf_err *err);
/* Every cached region overlapping raw [lo, hi) (hi NULL or empty = to
 * the end), in key order. *out is malloc'd, the caller frees it. */
int bf_cluster_regions(bf_cluster *c, const void *lo, size_t lolen, const void *hi, size_t hilen,
		       bf_region **out, size_t *n, bf_err *err);
/* Store id's record. BF_ENOTFOUND when unknown. (Not bf_cluster_store:
 * that names the type.) */
int bf_cluster_store_get(bf_cluster *c, uint64_t id, bf_cluster_store *out, bf_err *err);
/* Every store, in id order; *out is malloc'd, the caller frees it. */
int bf_cluster_stores(bf_cluster *c, bf_cluster_store **out, size_t *n, bf_err *err);

/* ---- learning more ---- */

/* Reloads everything from etcd (bounded by the etcd call deadline); on
 * failure the cache keeps what it had. */
int bf_cluster_refresh(bf_cluster *c, bf_err *err);
/* Puts what a store said into the cache, for regions newer than what is
 * cached (EpochNotMatch's current regions): no etcd call. */
void bf_cluster_learn_regions(bf_cluster *c, const bf_region *r, size_t n);
/* A NotLeader hint: region id's leader is store_id now. */
void bf_cluster_learn_leader(bf_cluster *c, uint64_t region_id, uint64_t store_id);

/* ---- changing the layout in etcd (admin; tests use them to make caches
 * stale) ----
 *
 * Both are etcd Txns fenced on the region record's mod revision as the
 * cache knows it; when it moved (or the cache did not know the region
 * well enough), they refresh and try once more: BF_ESTATE when it moved
 * again. Neither changes the cache: it learns of the change as of any
 * other, by a refresh or the watch. */

/* Splits region id at raw key k (strictly inside it): the left part keeps
 * the id, the right part gets the next unused id (peers on the same
 * stores, the same leader store); both get version + 1, as TiKV does. */
int bf_cluster_split(bf_cluster *c, uint64_t region_id, const void *k, size_t klen, bf_err *err);
/* Makes store_id (a peer of the region) its leader; no epoch change. */
int bf_cluster_transfer_leader(bf_cluster *c, uint64_t region_id, uint64_t store_id, bf_err *err);

#ifdef __cplusplus
}
#endif
#endif
