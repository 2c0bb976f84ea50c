/*
 * A floor of the perf benchmark (perf_bench.sh): the least a one-shot
 * client on gRPC core does, with nothing of Tessera's. Linked as the
 * tessera CLI is (gRPC's static archives where found, no PIE), so that
 * hyperfine timing it beside the CLI shows what the CLI adds to the
 * library it is built on.
 *
 *   grpc-floor HOST:PORT    grpc_init, a plaintext channel, one
 *                           grpc.health.v1.Health/Check, and _exit
 *                           without gRPC's shutdown, as the CLI ends
 *
 * Prints nothing on success; exit 0 if the call returned OK, else 1 with
 * a line on stderr.
 */
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define GRPC_FLOOR_DEADLINE_S 10

static gpr_timespec deadline(void)
{
	return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
			    gpr_time_from_seconds(GRPC_FLOOR_DEADLINE_S, GPR_TIMESPAN));
}

/* One Health/Check on ch; 0 if it returned OK. */
static int check(grpc_channel *ch, grpc_completion_queue *cq)
{
	grpc_metadata_array initial, trailing;
	grpc_byte_buffer *req = grpc_raw_byte_buffer_create(NULL, 0), *resp = NULL;
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	grpc_call *call;
	grpc_event ev;
	grpc_op ops[6];
	int rc = 1;

	grpc_metadata_array_init(&initial);
	grpc_metadata_array_init(&trailing);
	call = grpc_channel_create_call(
		ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
		grpc_slice_from_static_string("/grpc.health.v1.Health/Check"), NULL, deadline(),
		NULL);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = req;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &resp;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;
	if (grpc_call_start_batch(call, ops, 6, call, NULL) != GRPC_CALL_OK) {
		fprintf(stderr, "grpc-floor: grpc_call_start_batch failed\n");
		goto out;
	}
	ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (ev.type != GRPC_OP_COMPLETE || !ev.success || status != GRPC_STATUS_OK) {
		fprintf(stderr, "grpc-floor: Health/Check ended with status %d\n", (int)status);
		goto out;
	}
	rc = 0;
out:
	grpc_call_unref(call);
	grpc_byte_buffer_destroy(req);
	if (resp != NULL)
		grpc_byte_buffer_destroy(resp);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&initial);
	grpc_metadata_array_destroy(&trailing);
	return rc;
}

int main(int argc, char **argv)
{
	grpc_channel_credentials *creds;
	grpc_completion_queue *cq;
	grpc_channel *ch;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: grpc-floor HOST:PORT\n");
		return 2;
	}
	grpc_init();
	creds = grpc_insecure_credentials_create();
	ch = grpc_channel_create(argv[1], creds, NULL);
	cq = grpc_completion_queue_create_for_next(NULL);
	rc = check(ch, cq);
	grpc_channel_destroy(ch);
	grpc_channel_credentials_release(creds);
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	_exit(rc);
}
