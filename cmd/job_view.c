/*
 * Job presentation shared by the subcommands (cmd/job_view.h).
 */
#include "cmd/job_view.h"

bool cli_job_rate(const bf_job *j, double *rate)
{
	if (j->rate > 0) {
		*rate = j->rate;
		return true;
	}
	if (j->rows_done == 0 || j->update_ms <= j->start_ms)
		return false;
	*rate = (double)j->rows_done * 1000.0 / (double)(j->update_ms - j->start_ms);
	return true;
}

bool cli_job_eta(const bf_job *j, bool alive, bool rate_known, double rate, double *eta)
{
	if (j->state != BF_JOB_RUNNING || !alive || !rate_known || rate <= 0 ||
	    j->rows_total <= j->rows_done)
		return false;
	*eta = (double)(j->rows_total - j->rows_done) / rate;
	return true;
}

bool cli_job_resumable(const bf_job *j, bool alive)
{
	switch (j->state) {
	case BF_JOB_FAILED: return !j->rolled_back;
	case BF_JOB_PAUSED: return true;
	case BF_JOB_RUNNING: return !alive;
	default: return false;
	}
}

void cli_job_json_add(cJSON *o, const bf_job *j, bool alive)
{
	cJSON *names;

	cJSON_AddStringToObject(o, "table", j->table);
	names = cJSON_AddArrayToObject(o, "indexes");
	for (int i = 0; i < j->nindexes; i++)
		cJSON_AddItemToArray(names, cJSON_CreateString(j->index_names[i]));
	cJSON_AddStringToObject(o, "state", bf_job_state_name(j->state));
	cJSON_AddStringToObject(o, "lock_key", j->lock_key);
	cJSON_AddBoolToObject(o, "importing", j->importing);
	if (j->state == BF_JOB_FAILED)
		cJSON_AddStringToObject(o, "outcome", j->rolled_back ? "rolled_back" : "resumable");
	else
		cJSON_AddNullToObject(o, "outcome");
	cJSON_AddBoolToObject(o, "resumable", cli_job_resumable(j, alive));
}
