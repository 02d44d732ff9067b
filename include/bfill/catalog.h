/*
 * The catalog: tables (columns, indexes) and jobs, kept as small JSON
 * records under BF_CATALOG_PREFIX in the store. Structs are plain values
 * with fixed-size fields so that callers own them outright; nothing here
 * returns memory the caller must free unless it says so.
 */
#ifndef BFILL_CATALOG_H
#define BFILL_CATALOG_H

#include <stdbool.h>
#include <stdint.h>

#include "bfill/codec.h"
#include "bfill/error.h"
#include "bfill/fence.h"
#include "bfill/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Table, column and index names: at most 64 characters, as in TiDB, of up
 * to 4 bytes of UTF-8 each (TiDB's utf8 is MySQL's utf8mb4), plus the NUL. */
#define BF_NAME_CHARS 64
#define BF_NAME_MAX (BF_NAME_CHARS * 4 + 1)
#define BF_MAX_COLUMNS 64
#define BF_MAX_INDEXES 16
#define BF_MAX_INDEX_COLUMNS 16
#define BF_MAX_JOB_INDEXES 8
/* The hidden handle of a table without an integer primary key, as TiDB
 * names it; no column may take the name. */
#define BF_ROWID_NAME "_tidb_rowid"

typedef enum bf_coltype {
	BF_COL_INT = 0, /* signed integer; width 8 = BIGINT, 4 = INT, ... */
	BF_COL_UINT,    /* unsigned integer of the same widths */
	BF_COL_CHAR,    /* CHAR(len), binary collation */
	BF_COL_VARCHAR, /* VARCHAR(len), binary collation */
	BF_COL_DOUBLE,
	BF_COL_DATETIME, /* DATETIME(len): len = fraction digits, 0..6 */
	BF_COL_DECIMAL,  /* DECIMAL(len, scale) */
} bf_coltype;

typedef struct bf_column {
	char name[BF_NAME_MAX];
	int64_t id;
	bf_coltype type;
	/* bytes for ints (1,2,3,4,8), characters for strings, fraction digits
	 * for DATETIME, precision for DECIMAL; 8 for DOUBLE */
	int len;
	int scale;     /* DECIMAL's digits after the point; 0 otherwise */
	bool not_null;
} bf_column;

typedef enum bf_index_state {
	BF_INDEX_NONE = 0,    /* declared, nothing written */
	BF_INDEX_WRITE_REORG, /* being built; entries are not to be read */
	BF_INDEX_PUBLIC,      /* complete and readable */
} bf_index_state;

typedef struct bf_index {
	char name[BF_NAME_MAX];
	int64_t id;
	int ncols;
	int cols[BF_MAX_INDEX_COLUMNS]; /* positions in bf_table.cols */
	/* A prefix index column's length in characters (`b(10)`); 0 = the
	 * whole value. Only string columns have one. */
	int prefix[BF_MAX_INDEX_COLUMNS];
	bool unique;
	bf_index_state state;
	int64_t job_id; /* the job building it, 0 when public */
} bf_index;

typedef struct bf_table {
	char name[BF_NAME_MAX];
	int64_t id;
	/* Position of the int primary key stored in the key, or -1: the table
	 * has none and rows carry a hidden _tidb_rowid handle instead. */
	int handle_col;
	int ncols;
	bf_column cols[BF_MAX_COLUMNS];
	int nindexes;
	bf_index indexes[BF_MAX_INDEXES];
	int64_t next_index_id;
	uint64_t rows_hint; /* rows as loaded (0 = unknown); for progress only */
} bf_table;

/*
 * Table, column and index names: what TiDB accepts as a quoted identifier,
 * 1..BF_NAME_CHARS characters of valid UTF-8 without a trailing space;
 * and, stricter than TiDB, no control character (tab, newline, DEL,
 * U+0080..U+009F), so that a name always prints on one line. Anything
 * else, quotes and backslashes included, is stored as given.
 */
bool bf_name_valid(const char *name);

/* Catalog text for a type / state ("bigint", "char(120)", "public"). */
const char *bf_index_state_name(bf_index_state s);
/* Formats a column type into buf; returns buf. */
char *bf_coltype_format(const bf_column *c, char *buf, size_t n);
/* Parses "bigint", "int", "bigint unsigned", "char(120)", "varchar(64)",
 * "double", "datetime", "datetime(3)", "decimal(12,2)" (catalog text, lower
 * case, as bf_coltype_format writes it). */
int bf_coltype_parse(const char *text, bf_column *c);

/* Whether `prefix` characters is a prefix length of column c: a string
 * column, 1 <= prefix <= its length. */
bool bf_index_prefix_fits(const bf_column *c, int prefix);
/* Bytes of the first `chars` characters of the UTF-8 value s[0..n) (all
 * n when it is shorter): what a prefix index keeps of it. Characters are
 * counted by their lead bytes (values are checked as UTF-8 on load). */
size_t bf_index_prefix_bytes(const uint8_t *s, size_t n, int chars);

/* Cuts each string datum of an index's columns to its prefix length
 * (prefix[k] characters; 0 keeps it whole). */
void bf_index_cut_prefix(const int *prefix, bf_datum *cols, int ncols);

/* Column position by name, or -1. */
int bf_table_column(const bf_table *t, const char *name);
/* Index position by name, or -1. */
int bf_table_index(const bf_table *t, const char *name);
/* Index position by id, or -1. */
int bf_table_index_by_id(const bf_table *t, int64_t id);

/*
 * Decodes column `col` of a row: the handle column comes from the key, the
 * others from the row-v2 view (zero-copy for strings). A column missing
 * from the row reads as NULL. BF_ECORRUPT when the stored bytes do not fit
 * the column's type.
 */
int bf_table_decode_column(const bf_table *t, int col, const bf_row_view *rv,
			   int64_t handle, bf_datum *out);

/* The sysbench sbtest schema (DESIGN §3), named name, no id yet. */
void bf_table_sbtest(bf_table *t, const char *name);

/*
 * Where the records live: a bf_catalog is a small key-value space with one
 * implementation per place — the store's own keys (bf_store_catalog, under
 * BF_CATALOG_PREFIX) or etcd under a cluster's prefix. Record keys are
 * written as the store spells them ("mbfill/table/t1"); an implementation
 * maps them onto its own space.
 */
typedef struct bf_catalog bf_catalog;

typedef struct bf_catalog_kv_ops {
	/* *val malloc'd, the caller frees it; BF_ENOTFOUND when absent. */
	int (*get)(void *impl, const char *key, char **val, size_t *vlen, bf_err *err);
	/*
	 * Writes n records in one atomic, durable step; with nfences > 0, only
	 * while every fence token's holder still holds its lock, where the
	 * catalog can tell (an etcd catalog: one Txn comparing each holder
	 * key's create revision; BF_ELOCKLOST when one moved). A catalog that
	 * cannot tell ignores them.
	 */
	int (*put)(void *impl, const char *const *keys, char *const *vals, int n,
		   const bf_fence_token *fences, int nfences, bf_err *err);
	int (*del)(void *impl, const char *key, bf_err *err);
	/* Calls fn for every record with lo <= key < hi, in key order; a
	 * non-zero return from fn stops the walk and is returned. */
	int (*scan)(void *impl, const char *lo, const char *hi,
		    int (*fn)(const char *key, size_t klen, const char *val, size_t vlen, void *arg),
		    void *arg, bf_err *err);
	void (*destroy)(void *impl); /* may be NULL */
} bf_catalog_kv_ops;

/* Wraps an implementation (ops borrowed, impl owned from now on). */
int bf_catalog_create(const bf_catalog_kv_ops *ops, void *impl, bf_catalog **out, bf_err *err);
void bf_catalog_destroy(bf_catalog *c);
/* The store's own catalog; owned by the store (lives until it closes). */
bf_catalog *bf_store_catalog(bf_store *st);

/*
 * Records are read with the strict decoders below: BF_ENOTFOUND when the
 * table does not exist (or no table can have that name), BF_ECORRUPT
 * naming the record and the field when its record is damaged. A put
 * refuses (BF_EINVAL, nothing written) a struct the decoder would refuse.
 */
int bf_catalog_get_table(bf_catalog *cat, const char *name, bf_table *out, bf_err *err);
int bf_catalog_put_table(bf_catalog *cat, const bf_table *t, bf_err *err);
/* Deleting a table that does not exist is not an error. */
int bf_catalog_delete_table(bf_catalog *cat, const char *name, bf_err *err);
/*
 * Allocates the next id of a counter ("table", "job"), durably. An id is
 * never handed out twice: job ids skip every id a job record already has
 * (given with --job-id, say), and a damaged counter is rebuilt from the
 * records instead of starting over.
 */
int bf_catalog_next_id(bf_catalog *cat, const char *counter, int64_t *id, bf_err *err);
/* Raises counter to at least id (> 0, else BF_EINVAL), so that an id
 * chosen by the caller is never handed out again; never lowers it. */
int bf_catalog_reserve_id(bf_catalog *cat, const char *counter, int64_t id, bf_err *err);

/* ---- jobs ---- */

typedef enum bf_job_state {
	BF_JOB_QUEUEING = 0,
	BF_JOB_RUNNING,
	BF_JOB_DONE,
	BF_JOB_FAILED,
	BF_JOB_CANCELLED,
	BF_JOB_PAUSED,
} bf_job_state;

const char *bf_job_state_name(bf_job_state s);
int bf_job_state_parse(const char *s, bf_job_state *out);
bool bf_job_state_final(bf_job_state s); /* done or cancelled */

/*
 * Checkpoint (DESIGN §7): the next unprocessed record key, advanced only
 * after the data before it is durable. "flushed" data is in the sort
 * engine named engine_id; "imported" data is in the store.
 */
typedef struct bf_checkpoint {
	bool has_flushed; /* false: nothing durable in the engine yet */
	uint8_t flushed_key[BF_RECORD_KEY_LEN];
	uint64_t flushed_rows;
	bool has_imported;
	uint8_t imported_key[BF_RECORD_KEY_LEN];
	uint64_t imported_rows;
	char engine_id[40];     /* "g<N>": the generation the writers fill */
	/*
	 * The oldest engine generation not yet imported. An import seals the
	 * generation being filled and imports it while the next one fills, so
	 * the flushed data of a job may sit in generations first_gen..N.
	 */
	uint64_t first_gen;
	uint64_t imports;       /* completed import rounds */
} bf_checkpoint;

/* Limits of a job's parameters; a record outside them is damaged. */
#define BF_JOB_WORKERS_MAX 64
#define BF_JOB_MEM_MIN (1ULL << 20)         /* 1 MiB */
#define BF_JOB_MEM_MAX (1ULL << 50)         /* 1 PiB */
#define BF_JOB_LOCK_TTL_MAX 3600            /* seconds */
#define BF_JOB_LOCK_TIMEOUT_MAX 86400       /* seconds */

/* Parameters a resumed job reuses. */
typedef struct bf_job_config {
	int workers;            /* 1..BF_JOB_WORKERS_MAX */
	uint64_t mem_bytes;     /* BF_JOB_MEM_MIN..BF_JOB_MEM_MAX */
	uint64_t import_every; /* 0 = import once at the end */
	char sort_dir[1024];
	char etcd[512];        /* comma-separated endpoints, empty = in-process lock */
	char lock_prefix[128];
	int lock_ttl_s;         /* 1..BF_JOB_LOCK_TTL_MAX */
	int lock_timeout_s;     /* 1..BF_JOB_LOCK_TIMEOUT_MAX */
	int run_compression;    /* bf_compression for sort-engine runs */
	int target_compression; /* bf_compression for import SSTs */
} bf_job_config;

typedef struct bf_job {
	int64_t id;
	char table[BF_NAME_MAX];
	int64_t table_id;
	int nindexes;
	int64_t index_ids[BF_MAX_JOB_INDEXES];
	char index_names[BF_MAX_JOB_INDEXES][BF_NAME_MAX];
	bf_job_state state;
	char phase[32];         /* scan, import, verify, ... */
	char waiting[256];      /* what the job is waiting for, or empty */
	uint64_t rows_done, rows_total;
	double rate;            /* rows/s, recent */
	int64_t start_ms, update_ms, end_ms;
	int64_t pid;            /* process running the job, 0 when none */
	bool importing;         /* an import round is running now */
	/* Failed and rolled back (a duplicate in a unique index): nothing to
	 * resume. A failed job that is not rolled back keeps its entries,
	 * engines and checkpoints for --resume. */
	bool rolled_back;
	uint64_t rows_scanned;  /* rows the current (or last) run scanned */
	/* "<prefix>/<store uuid>/<job>"; each index's lock is this + "/<id>". */
	char lock_key[BF_FENCE_KEY_MAX];
	/* Leases of the import lock sessions of the current (or last) run, by
	 * index position; a resume revokes them rather than wait them out. */
	int64_t lock_leases[BF_MAX_JOB_INDEXES];
	char last_error[BF_ERR_MSG_MAX];
	bf_checkpoint cp;
	bf_job_config cfg;
} bf_job;

/* Writes a table and a job record in one atomic, durable step; neither
 * when either would be refused. */
/* put_table_and_job, conditional on fences (see bf_catalog_kv_ops.put):
 * how the last import makes its indexes public. */
int bf_catalog_put_table_and_job_fenced(bf_catalog *cat, const bf_table *t, const bf_job *job,
					const bf_fence_token *fences, int nfences, bf_err *err);
int bf_catalog_put_table_and_job(bf_catalog *cat, const bf_table *t, const bf_job *job,
				 bf_err *err);
/* As for tables: BF_ENOTFOUND, BF_ECORRUPT (a damaged record, or one whose
 * id is not the one in its key); a put refuses what would not decode. */
int bf_catalog_get_job(bf_catalog *cat, int64_t id, bf_job *out, bf_err *err);
int bf_catalog_put_job(bf_catalog *cat, const bf_job *job, bf_err *err);
/*
 * Calls fn for every job in id order; a non-zero return from fn stops the
 * walk and is returned. A record that can't be decoded goes to damaged
 * (record key and why) and the walk goes on; with damaged NULL it stops
 * the walk with BF_ECORRUPT naming the record.
 */
int bf_catalog_foreach_job(bf_catalog *cat, int (*fn)(const bf_job *job, void *arg),
			   void (*damaged)(const char *record, const char *why, void *arg),
			   void *arg, bf_err *err);

/*
 * Decoders of catalog records (JSON text, not NUL-terminated), strict:
 * every field is type- and range-checked, and BF_ECORRUPT's message names
 * the record (`record`, e.g. its key) and the bad field. For the catalog
 * itself and for fuzzing.
 */
int bf_catalog_decode_table(const char *json, size_t len, const char *record, bf_table *out,
			    bf_err *err);
int bf_catalog_decode_job(const char *json, size_t len, const char *record, bf_job *out,
			  bf_err *err);

/* ---- fence records (the local target's fencing, DESIGN §5) ---- */

/* The highest fence revision ingested under lock key `key`; 0 when none. */
int bf_catalog_get_fence(bf_catalog *cat, const char *key, int64_t *revision, bf_err *err);
/* Records revision for key, durably. */
int bf_catalog_put_fence(bf_catalog *cat, const char *key, int64_t revision, bf_err *err);

#ifdef __cplusplus
}
#endif
#endif
