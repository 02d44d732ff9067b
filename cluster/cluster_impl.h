/*
 * Internal to cluster/: the records in etcd (records.c), the region cache
 * (cache.c) and the handle they share (cluster.c, admin.c).
 */
#ifndef BFILL_CLUSTER_IMPL_H
#define BFILL_CLUSTER_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "bfill/cluster.h"
#include "util/util.h"

#define CLUSTER_PREFIX "/bfill/cluster/"
/* "<root>" is CLUSTER_PREFIX + name + "/"; the longest record key is
 * "<root>leader/<20 digits>". */
#define CLUSTER_ROOT_MAX (sizeof(CLUSTER_PREFIX) + BF_CLUSTER_NAME_MAX + 1)
#define CLUSTER_KEY_MAX (CLUSTER_ROOT_MAX + 32)

/* Peer ids are derived: the peer of region r on store s is r * 1000 + s
 * (store ids stay below BF_CLUSTER_MAX_STORES), unique without an id
 * allocator and readable in `bfill cluster show`. */
#define CLUSTER_PEER_ID(region_id, store_id) ((region_id) * 1000 + (store_id))

#define CLUSTER_STR_(x) #x
#define CLUSTER_STR(x) CLUSTER_STR_(x)

/* Byte order of raw keys, a prefix before what extends it. */
static inline int cluster_key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;

	return c ? c : (alen > blen) - (alen < blen);
}

/* ---- records (records.c) ---- */

/* A region as the cache keeps it: bf_region's values, its keys on the
 * heap (start then end in one malloc'd buffer, owned). */
typedef struct creg {
	uint64_t id;
	uint8_t *keys;
	size_t start_len, end_len;
	uint64_t conf_ver, version;
	int npeers;
	bf_region_peer peers[BF_CLUSTER_MAX_REPLICAS];
	uint64_t leader_store;
	int64_t mod_revision; /* of its etcd record; 0 when learned from a store */
} creg;

static inline const uint8_t *creg_start(const creg *r) { return r->keys; }
static inline const uint8_t *creg_end(const creg *r) { return r->keys + r->start_len; }

/* Fills r from a bf_region (keys copied). BF_ENOMEM. */
int creg_from_region(creg *r, const bf_region *src);
void creg_to_region(const creg *r, bf_region *out);
/* A copy of src with its own keys. BF_ENOMEM. */
int creg_copy(creg *dst, const creg *src);
void creg_free(creg *r);

/* True when cluster name is usable in a key: 1..BF_CLUSTER_NAME_MAX-1 of
 * [A-Za-z0-9._-]; otherwise BF_EINVAL in err. */
int cluster_name_check(const char *name, bf_err *err);
/* "<root>" for name into out (CLUSTER_ROOT_MAX). */
void cluster_root(char *out, const char *name);
/* "<root><kind>/<id>": stores in decimal, regions and leaders in 20
 * digits so that they list in id order. */
void cluster_key(char *out, const char *root, const char *kind, uint64_t id);

/* metapb.Region bytes for r (keys memcomparable-encoded, an empty key left
 * empty: unbounded); *out is malloc'd. */
int region_record_pack(const creg *r, uint8_t **out, size_t *len, bf_err *err);
/* The inverse; r's keys are malloc'd. BF_ECORRUPT naming key when the
 * bytes are not a region or its keys do not decode. */
int region_record_unpack(const void *buf, size_t len, const char *key, creg *r, bf_err *err);
int store_record_pack(const bf_cluster_store *s, uint8_t **out, size_t *len, bf_err *err);
int store_record_unpack(const void *buf, size_t len, const char *key, bf_cluster_store *s,
			bf_err *err);
/* The meta record: {"uuid": "...", "replicas": K}; *out is malloc'd. */
int meta_record_make(const char *uuid, int replicas, char **out, bf_err *err);
int meta_record_parse(const void *buf, size_t len, const char *key,
		      char uuid[BF_UUID_LEN + 1], int *replicas, bf_err *err);

/* ---- the cache (cache.c) ---- */

/* One immutable version of the cache, published with RCU. */
typedef struct snap {
	int64_t revision;         /* etcd revision it was loaded at */
	creg *regions;            /* sorted by start key, no two overlapping */
	size_t nregions;
	size_t *by_id;            /* positions in regions, in region id order */
	bf_cluster_store *stores; /* in id order */
	size_t nstores;
} snap;

/* A snapshot of the regions and stores given (moved in: the arrays and
 * the regions' keys become the snapshot's). Overlapping regions keep the
 * newer epoch. BF_ENOMEM (what was given is freed). */
int snap_new(int64_t revision, creg *regions, size_t nregions, bf_cluster_store *stores,
	     size_t nstores, snap **out);
void snap_free(snap *s);
/* Position of the region holding key, or -1. */
long snap_locate(const snap *s, const void *k, size_t klen);
/* Position of the first region that holds key or starts after it
 * (s->nregions when none). */
long snap_first_from(const snap *s, const void *k, size_t klen);
/* Position of region id, or -1. */
long snap_find_id(const snap *s, uint64_t id);
/* Position of store id in s->stores, or -1. */
long snap_find_store(const snap *s, uint64_t id);
/* A new snapshot: s with the learned regions in (see
 * bf_cluster_learn_regions); NULL when nothing changes or on ENOMEM. */
snap *snap_learn_regions(const snap *s, const bf_region *r, size_t n);
/* A new snapshot with region id's leader set; NULL when nothing changes. */
snap *snap_learn_leader(const snap *s, uint64_t region_id, uint64_t store_id);

/* Sets up what cache_read_lock needs, once per process. */
int cache_setup(bf_err *err);
/* Enters an RCU read-side section, registering the calling thread with
 * RCU the first time (and unregistering it when the thread exits). Pass
 * what it returns to cache_read_unlock. */
bool cache_read_lock(void);
void cache_read_unlock(bool temporary);
/* Returns once every read-side section that began before it has ended. */
void cache_synchronize(void);

/* ---- the handle ---- */

struct bf_cluster {
	bf_etcd *etcd; /* borrowed */
	char name[BF_CLUSTER_NAME_MAX];
	char root[CLUSTER_ROOT_MAX];
	char uuid[BF_UUID_LEN + 1];
	int replicas;
	snap *cur;              /* RCU-protected; replaced under write_mu */
	pthread_mutex_t write_mu;
	/* The watch thread. */
	bool watching;
	pthread_t watcher;
	atomic_bool stop;
};

/* Loads every record; *out is the new snapshot. uuid/replicas may be NULL. */
int cluster_load(bf_etcd *etcd, const char *root, snap **out, char uuid[BF_UUID_LEN + 1],
		 int *replicas, bf_err *err);
/* Publishes next (owned) in place of the current snapshot, unless
 * only_newer and next is older; the old one is freed once no reader can
 * see it. */
void cluster_publish(bf_cluster *c, snap *next, bool only_newer);
/* A copy of region id from the cache (creg_free it). BF_ENOTFOUND. */
int cluster_cached_region(bf_cluster *c, uint64_t id, creg *out, bf_err *err);
/* The highest region id in the cache (0 when none). */
uint64_t cluster_max_region_id(bf_cluster *c);

#endif
