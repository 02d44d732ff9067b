/*
 * The fence token (DESIGN §5, §6 rule 5): what an import lock holder shows
 * the import target with every ingest, so that the target itself can refuse
 * a holder whose lock has passed to someone else.
 *
 * key is the lock's key ("/bfill/lock/<store uuid>/<job>/<index>");
 * revision is the holder's create revision under that key, which grows with
 * every new holder. A target remembers, durably, the highest revision it has
 * ingested under for each key and refuses a lower one (BF_EFENCED).
 * Revision 0 means "not fenced": the in-process lock has no contender
 * outside this process, so its tokens carry 0 and targets accept them.
 * holder is the holder's own key in etcd ("<key>/<lease hex>"), whose
 * create revision `revision` is: a catalog in the same etcd makes a
 * record change conditional on it, fencing the change in etcd itself.
 */
#ifndef BFILL_FENCE_H
#define BFILL_FENCE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BF_FENCE_KEY_MAX 256

typedef struct bf_fence_token {
	char key[BF_FENCE_KEY_MAX];
	int64_t revision;
	char holder[BF_FENCE_KEY_MAX + 24]; /* "" for the in-process lock */
} bf_fence_token;

#ifdef __cplusplus
}
#endif
#endif
