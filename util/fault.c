/*
 * Fault seams: a small table of armed names with hit counters.
 */
#include "bfill/fault.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SEAMS 16

typedef struct seam {
	char name[48];
	long first, last; /* failing hits; last < 0 = no end */
	long pause_ms;    /* > 0: a pause seam */
	long hits;
} seam;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static seam seams[MAX_SEAMS];
static int nseams;
static atomic_int armed_any; /* fast path: nothing armed, no lock taken */
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static void arm_locked(const char *name, long first, long last, long pause_ms)
{
	seam *sm = NULL;
	for (int i = 0; i < nseams; i++)
		if (!strcmp(seams[i].name, name))
			sm = &seams[i];
	if (!sm) {
		if (nseams == MAX_SEAMS)
			return;
		sm = &seams[nseams++];
		snprintf(sm->name, sizeof(sm->name), "%s", name);
	}
	sm->first = first < 1 ? 1 : first;
	sm->last = last;
	sm->pause_ms = pause_ms;
	sm->hits = 0;
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
		char *at = strchr(tok, '@'), *tilde = strchr(tok, '~');
		long first = 1, last = -1, pause = 0;
		if (tilde) {
			*tilde = '\0';
			pause = strtol(tilde + 1, NULL, 10);
		} else if (at) {
			char *dash;
			*at = '\0';
			first = strtol(at + 1, &dash, 10);
			if (*dash == '-')
				last = strtol(dash + 1, NULL, 10);
		}
		arm_locked(tok, first, last, pause);
	}
	pthread_mutex_unlock(&mu);
}

void bf_fault_arm(const char *name, long nth)
{
	bf_fault_arm_range(name, nth, -1);
}

void bf_fault_arm_range(const char *name, long first, long last)
{
	pthread_once(&env_once, load_env);
	pthread_mutex_lock(&mu);
	arm_locked(name, first, last, 0);
	pthread_mutex_unlock(&mu);
}

void bf_fault_arm_pause(const char *name, long ms)
{
	pthread_once(&env_once, load_env);
	pthread_mutex_lock(&mu);
	arm_locked(name, 1, -1, ms);
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

/* Counts a hit; returns the seam's pause, or 1/0 for fail/pass. */
static long hit(const char *name, bool pause)
{
	long r = 0;

	pthread_once(&env_once, load_env);
	if (!atomic_load(&armed_any))
		return 0;
	pthread_mutex_lock(&mu);
	for (int i = 0; i < nseams; i++) {
		seam *sm = &seams[i];
		if (strcmp(sm->name, name) || (sm->pause_ms > 0) != pause)
			continue;
		sm->hits++;
		if (pause)
			r = sm->pause_ms;
		else
			r = sm->hits >= sm->first && (sm->last < 0 || sm->hits <= sm->last);
		break;
	}
	pthread_mutex_unlock(&mu);
	return r;
}

bool bf_fault_hit(const char *name)
{
	return hit(name, false) != 0;
}

void bf_fault_pause(const char *name)
{
	long ms = hit(name, true);
	if (ms > 0) {
		struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
}
