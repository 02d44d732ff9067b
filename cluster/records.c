/*
 * The cluster's records in etcd (docs/cluster.md): regions and stores as
 * kvproto's metapb messages, region keys memcomparable-encoded as TiKV
 * keeps them, the meta record as JSON; and the region helpers of the
 * public header. Pure encoding: no etcd calls here.
 * Depends on: codec (memcomparable bytes), protobuf-c (metapb), cJSON.
 */
#include "cluster/cluster_impl.h"
#include "bfill/codec.h"
#include "proto/metapb.pb-c.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the public region helpers ---- */

bool bf_region_contains(const bf_region *r, const void *k, size_t klen)
{
	return cluster_key_cmp(k, klen, r->start, r->start_len) >= 0 &&
	       (r->end_len == 0 || cluster_key_cmp(k, klen, r->end, r->end_len) < 0);
}

const bf_region_peer *bf_region_leader(const bf_region *r)
{
	for (int i = 0; i < r->npeers && i < BF_CLUSTER_MAX_REPLICAS; i++)
		if (r->peers[i].store_id == r->leader_store)
			return &r->peers[i];
	return NULL;
}

size_t bf_region_encode_key(uint8_t *out, const void *k, size_t klen)
{
	/* codec's group encoding is TiKV's encode_bytes (ascending). */
	return bf_codec_put_bytes(out, k, klen);
}

/* ---- regions in the cache ---- */

static int creg_set_keys(creg *r, const void *start, size_t start_len, const void *end,
			 size_t end_len)
{
	/* One byte more than needed, so that two empty keys still allocate. */
	r->keys = malloc(start_len + end_len + 1);
	if (!r->keys)
		return BF_ENOMEM;
	if (start_len)
		memcpy(r->keys, start, start_len);
	if (end_len)
		memcpy(r->keys + start_len, end, end_len);
	r->start_len = start_len;
	r->end_len = end_len;
	return 0;
}

int creg_from_region(creg *r, const bf_region *src)
{
	memset(r, 0, sizeof(*r));
	r->id = src->id;
	r->conf_ver = src->conf_ver;
	r->version = src->version;
	r->npeers = src->npeers;
	memcpy(r->peers, src->peers, sizeof(r->peers));
	r->leader_store = src->leader_store;
	return creg_set_keys(r, src->start, src->start_len, src->end, src->end_len);
}

void creg_to_region(const creg *r, bf_region *out)
{
	out->id = r->id;
	memcpy(out->start, creg_start(r), r->start_len);
	out->start_len = r->start_len;
	memcpy(out->end, creg_end(r), r->end_len);
	out->end_len = r->end_len;
	out->conf_ver = r->conf_ver;
	out->version = r->version;
	out->npeers = r->npeers;
	memcpy(out->peers, r->peers, sizeof(out->peers));
	out->leader_store = r->leader_store;
}

int creg_copy(creg *dst, const creg *src)
{
	*dst = *src;
	return creg_set_keys(dst, creg_start(src), src->start_len, creg_end(src), src->end_len);
}

void creg_free(creg *r)
{
	if (!r)
		return;
	free(r->keys);
	r->keys = NULL;
}

/* ---- names and keys ---- */

int cluster_name_check(const char *name, bf_err *err)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n >= BF_CLUSTER_NAME_MAX)
		return bf_errf(err, BF_EINVAL, "a cluster name takes 1 to %d characters, got %zu",
			       BF_CLUSTER_NAME_MAX - 1, n);
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-')) {
			char shown[BF_CLUSTER_NAME_MAX * 4 + 8];
			return bf_errf(err, BF_EINVAL,
				       "cluster name '%s' may hold only letters, digits, '.', '_' and '-'",
				       bf_printable(name, n, shown, sizeof(shown)));
		}
	}
	return 0;
}

void cluster_root(char *out, const char *name)
{
	snprintf(out, CLUSTER_ROOT_MAX, "%s%s/", CLUSTER_PREFIX, name);
}

void cluster_key(char *out, const char *root, const char *kind, uint64_t id)
{
	if (!strcmp(kind, "store"))
		snprintf(out, CLUSTER_KEY_MAX, "%sstore/%" PRIu64, root, id);
	else
		snprintf(out, CLUSTER_KEY_MAX, "%s%s/%020" PRIu64, root, kind, id);
}

/* ---- metapb records ---- */

static int packed(const ProtobufCMessage *m, uint8_t **out, size_t *len, bf_err *err)
{
	size_t n = protobuf_c_message_get_packed_size(m);

	*out = malloc(n ? n : 1);
	if (!*out)
		return bf_errf(err, BF_ENOMEM, "out of memory encoding a cluster record");
	*len = protobuf_c_message_pack(m, *out);
	return 0;
}

int region_record_pack(const creg *r, uint8_t **out, size_t *len, bf_err *err)
{
	Metapb__Region m = METAPB__REGION__INIT;
	Metapb__RegionEpoch epoch = METAPB__REGION_EPOCH__INIT;
	Metapb__Peer peers[BF_CLUSTER_MAX_REPLICAS], *pp[BF_CLUSTER_MAX_REPLICAS];
	uint8_t *keys = malloc(bf_codec_bytes_len(r->start_len) + bf_codec_bytes_len(r->end_len));
	int rc;

	if (!keys)
		return bf_errf(err, BF_ENOMEM, "out of memory encoding region %" PRIu64, r->id);
	m.id = r->id;
	/* An empty key stays empty: unbounded, not the encoding of "". */
	m.start_key.data = keys;
	m.start_key.len = r->start_len ? bf_region_encode_key(keys, creg_start(r), r->start_len) : 0;
	m.end_key.data = keys + m.start_key.len;
	m.end_key.len = r->end_len ? bf_region_encode_key(m.end_key.data, creg_end(r), r->end_len) : 0;
	epoch.conf_ver = r->conf_ver;
	epoch.version = r->version;
	m.region_epoch = &epoch;
	for (int i = 0; i < r->npeers; i++) {
		metapb__peer__init(&peers[i]);
		peers[i].id = r->peers[i].id;
		peers[i].store_id = r->peers[i].store_id;
		pp[i] = &peers[i];
	}
	m.n_peers = (size_t)r->npeers;
	m.peers = pp;
	rc = packed(&m.base, out, len, err);
	free(keys);
	return rc;
}

/* Decodes an encoded region boundary into out (BF_CLUSTER_KEY_MAX). */
static int decode_key(const ProtobufCBinaryData *b, uint8_t *out, size_t *outlen)
{
	uint8_t *tmp;
	size_t used = 0;
	int rc;

	*outlen = 0;
	if (b->len == 0)
		return 0;
	if (b->len > bf_codec_bytes_len(BF_CLUSTER_KEY_MAX))
		return BF_ERANGE;
	tmp = malloc(b->len);
	if (!tmp)
		return BF_ENOMEM;
	rc = bf_codec_get_bytes(b->data, b->len, tmp, outlen, &used);
	if (rc == 0 && used != b->len)
		rc = BF_ECORRUPT; /* trailing bytes */
	if (rc == 0 && *outlen > BF_CLUSTER_KEY_MAX)
		rc = BF_ERANGE;
	if (rc == 0)
		memcpy(out, tmp, *outlen);
	free(tmp);
	return rc;
}

int bf_region_from_pb(const struct Metapb__Region *m, bf_region *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	*why = NULL;
	if (m->id == 0)
		*why = "region id 0";
	else if (!m->region_epoch)
		*why = "no region epoch";
	else if (m->n_peers < 1 || m->n_peers > BF_CLUSTER_MAX_REPLICAS)
		*why = "no peers, or more than " CLUSTER_STR(BF_CLUSTER_MAX_REPLICAS);
	else if (decode_key(&m->start_key, out->start, &out->start_len) ||
		 decode_key(&m->end_key, out->end, &out->end_len))
		*why = "a key that is not memcomparable-encoded, or longer than "
		       CLUSTER_STR(BF_CLUSTER_KEY_MAX) " bytes";
	else if (out->end_len &&
		 cluster_key_cmp(out->start, out->start_len, out->end, out->end_len) >= 0)
		*why = "its start key is not below its end key";
	if (*why)
		return BF_ECORRUPT;
	out->id = m->id;
	out->conf_ver = m->region_epoch->conf_ver;
	out->version = m->region_epoch->version;
	out->npeers = (int)m->n_peers;
	for (size_t i = 0; i < m->n_peers; i++) {
		out->peers[i].id = m->peers[i]->id;
		out->peers[i].store_id = m->peers[i]->store_id;
	}
	return 0;
}

int region_record_unpack(const void *buf, size_t len, const char *key, creg *r, bf_err *err)
{
	Metapb__Region *m = metapb__region__unpack(NULL, len, buf);
	bf_region *region = malloc(sizeof(*region));
	const char *why = NULL;
	int rc = BF_ECORRUPT;

	memset(r, 0, sizeof(*r));
	if (!region) {
		rc = BF_ENOMEM;
		why = "out of memory";
	} else if (!m) {
		why = "not a metapb.Region";
	} else if (bf_region_from_pb(m, region, &why) == 0 && creg_from_region(r, region)) {
		rc = BF_ENOMEM;
		why = "out of memory";
	}
	if (why)
		bf_errf(err, rc, "cluster record %s: %s", key, why);
	free(region);
	if (m)
		metapb__region__free_unpacked(m, NULL);
	return why ? rc : 0;
}

int store_record_pack(const bf_cluster_store *s, uint8_t **out, size_t *len, bf_err *err)
{
	Metapb__Store m = METAPB__STORE__INIT;

	m.id = s->id;
	m.address = (char *)(uintptr_t)s->address; /* only read while packing */
	m.state = (Metapb__StoreState)s->state;
	return packed(&m.base, out, len, err);
}

int store_record_unpack(const void *buf, size_t len, const char *key, bf_cluster_store *s,
			bf_err *err)
{
	Metapb__Store *m = metapb__store__unpack(NULL, len, buf);
	const char *why = NULL;

	memset(s, 0, sizeof(*s));
	if (!m)
		why = "not a metapb.Store";
	else if (m->id == 0)
		why = "store id 0";
	else if (!m->address || !*m->address || strlen(m->address) >= BF_CLUSTER_ADDR_MAX)
		why = "no address, or one too long";
	if (!why) {
		s->id = m->id;
		snprintf(s->address, sizeof(s->address), "%s", m->address);
		s->state = (int)m->state;
	}
	if (m)
		metapb__store__free_unpacked(m, NULL);
	return why ? bf_errf(err, BF_ECORRUPT, "cluster record %s: %s", key, why) : 0;
}

/* ---- the meta record ---- */

int meta_record_make(const char *uuid, int replicas, char **out, bf_err *err)
{
	cJSON *o = cJSON_CreateObject();

	*out = NULL;
	if (o && cJSON_AddStringToObject(o, "uuid", uuid) &&
	    cJSON_AddNumberToObject(o, "replicas", replicas))
		*out = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return *out ? 0 : bf_errf(err, BF_ENOMEM, "out of memory encoding the cluster's meta record");
}

int meta_record_parse(const void *buf, size_t len, const char *key,
		      char uuid[BF_UUID_LEN + 1], int *replicas, bf_err *err)
{
	cJSON *o = cJSON_ParseWithLength(buf, len);
	const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "uuid");
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "replicas");
	bool ok = cJSON_IsString(u) && bf_uuid_well_formed(u->valuestring, strlen(u->valuestring)) &&
		  cJSON_IsNumber(k) && k->valuedouble >= 1 &&
		  k->valuedouble <= BF_CLUSTER_MAX_REPLICAS && k->valuedouble == (int)k->valuedouble;

	if (ok) {
		memcpy(uuid, u->valuestring, BF_UUID_LEN + 1);
		*replicas = (int)k->valuedouble;
	}
	cJSON_Delete(o);
	return ok ? 0 : bf_errf(err, BF_ECORRUPT,
				"cluster record %s: not {\"uuid\": UUID, \"replicas\": 1..%d}", key,
				BF_CLUSTER_MAX_REPLICAS);
}
