/* spawn_check: a spawn's fields, checked once per trust boundary. */
#include "spawn_check.h"

#include <string.h>

#include "protocol.h"
#include "utf8.h"

int spawn_check(const struct spawn_fields *f, struct tsr_err *err)
{
	size_t task_len = strnlen(f->task, TSR_TASK_MAX + 1), bad;

	if (!ids_valid_name(f->type))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "type must be 1-%d characters of [A-Za-z0-9_-]", TSR_NAME_MAX);
	if (task_len > TSR_TASK_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "task is longer than %d bytes", TSR_TASK_MAX);
	/* A proto3 string: clients in most languages refuse a message with anything else. */
	if (!utf8_valid(f->task, task_len, &bad))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "task is not valid UTF-8 (byte 0x%02x at offset %zu)",
				   (unsigned char)f->task[bad], bad);
	if (f->request_id[0] != '\0' && !ids_valid_name(f->request_id))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "request_id must be empty or 1-%d characters of [A-Za-z0-9_-]",
				   TSR_NAME_MAX);
	if (f->timeout_ms > TSR_AGENT_TIMEOUT_MAX_MS)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "timeout_ms must be at most %d (24 h)",
				   TSR_AGENT_TIMEOUT_MAX_MS);
	if (f->nlabels > TSR_LABELS_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "at most %d agent labels",
				   TSR_LABELS_MAX);
	return ids_check_labels(f->labels, f->nlabels, "agent label", err);
}
