/*
 * Fault seams: a small table of armed names with hit counters.
 */
#include "bfill/fault.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEAMS 16

typedef struct seam {
	char name[48];
	long nth;
	long hits;
} seam;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static seam seams[MAX_SEAMS];
static int nseams;
static atomic_int armed_any; /* fast path: nothing armed, no lock taken */
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static void arm_locked(const char *name, long nth)
{
	for (int i = 0; i < nseams; i++) {
		if (!strcmp(seams[i].name, name)) {
			seams[i].nth = nth;
			seams[i].hits = 0;
			return;
		}
	}
	if (nseams == MAX_SEAMS)
		return;
	snprintf(seams[nseams].name, sizeof(seams[nseams].name), "%s", name);
	seams[nseams].nth = nth < 1 ? 1 : nth;
	seams[nseams].hits = 0;
	nseams++;
	atomic_store(&armed_any, 1);
}

static void load_env(void)
{
	const char *env = getenv("BFILL_FAULT");
	char buf[512], *save = NULL;

	if (!env || !*env)
		return;
	snprintf(buf, sizeof(buf), "%s", env);
	pthread_mutex_lock(&mu);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *at = strchr(tok, '@');
		long nth = 1;
		if (at) {
			*at = '\0';
			nth = strtol(at + 1, NULL, 10);
		}
		arm_locked(tok, nth);
	}
	pthread_mutex_unlock(&mu);
}

void bf_fault_arm(const char *name, long nth)
{
	pthread_once(&env_once, load_env);
	pthread_mutex_lock(&mu);
	arm_locked(name, nth);
	pthread_mutex_unlock(&mu);
}

void bf_fault_reset(void)
{
	pthread_once(&env_once, load_env);
	pthread_mutex_lock(&mu);
	nseams = 0;
	atomic_store(&armed_any, 0);
	pthread_mutex_unlock(&mu);
}

bool bf_fault_hit(const char *name)
{
	bool fail = false;

	pthread_once(&env_once, load_env);
	if (!atomic_load(&armed_any))
		return false;
	pthread_mutex_lock(&mu);
	for (int i = 0; i < nseams; i++) {
		if (!strcmp(seams[i].name, name)) {
			fail = ++seams[i].hits >= seams[i].nth;
			break;
		}
	}
	pthread_mutex_unlock(&mu);
	return fail;
}
