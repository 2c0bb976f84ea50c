/*
 * cli_health: tessera health [ADDR], one grpc.health.v1.Health/Check of
 * the hub, or of whatever daemon ADDR names (a spoke serves it too), with
 * the CLI's TLS flags: cheap enough for a container's HEALTHCHECK. It
 * prints the serving status and exits 0 only for SERVING. A service the
 * server does not know, which Check answers NOT_FOUND, prints
 * SERVICE_UNKNOWN, as Watch would say it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_json.h"
#include "cli_print.h"
#include "cli_rpc.h"
#include "grpc/health/v1/health.pb-c.h"
#include "health.h"

/* "SERVING"; "UNKNOWN" for a value the proto does not name. */
static const char *cli_health_name(Grpc__Health__V1__HealthCheckResponse__ServingStatus st)
{
	const ProtobufCEnumValue *v;

	v = protobuf_c_enum_descriptor_get_value(
		&grpc__health__v1__health_check_response__serving_status__descriptor, (int)st);
	return v != NULL ? v->name : "UNKNOWN";
}

static int cli_health_show(const struct cli *c, const char *status, struct tsr_err *err)
{
	struct json j;

	if (!c->json) {
		printf("%s\n", status);
		return 0;
	}
	json_init(&j);
	json_object_begin(&j);
	json_key(&j, "status");
	json_string(&j, status);
	json_object_end(&j);
	return cli_json_print(&j, err);
}

const struct option cli_health_options[] = {
	CLI_GLOBAL_OPTIONS,
	{ "service", required_argument, NULL, 's' },
	{ NULL, 0, NULL, 0 },
};

int cli_health(struct cli *c, int argc, char **argv)
{
	Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse *r = NULL;
	Grpc__Health__V1__HealthCheckResponse__ServingStatus st;
	struct cli_hub h = { 0 };
	struct tsr_err err;
	uint8_t *buf = NULL;
	size_t len;
	int opt, rc = CLI_EXIT_FAIL;

	while ((opt = cli_getopt(c, argc, argv, CLI_NO_SHORTS, cli_health_options)) != -1) {
		/* The server refuses longer names; say so before connecting. */
		if (opt != 's' || strlen(optarg) > HEALTH_SERVICE_MAX)
			return cli_usage("health");
		req.service = optarg;
	}
	if (argc - optind > 1 || (argc - optind == 1 && argv[optind][0] == '\0'))
		return cli_usage("health");
	if (argc - optind == 1)
		c->hub = argv[optind];
	if (cli_hub_open(c, &h, &err) != 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (cli_hub_call(&h, HEALTH_CHECK_METHOD, &req.base, &buf, &len, &err) != 0) {
		if (err.code != GRPC_STATUS_NOT_FOUND) {
			rc = cli_fail(&err);
			goto out;
		}
		st = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
	} else {
		r = grpc__health__v1__health_check_response__unpack(NULL, len, buf);
		if (r == NULL) {
			tsr_err_set(&err, GRPC_STATUS_INTERNAL,
				    "%s answered a malformed health status", c->hub);
			rc = cli_fail(&err);
			goto out;
		}
		st = r->status;
	}
	if (cli_health_show(c, cli_health_name(st), &err) != 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (st == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING)
		rc = CLI_EXIT_OK;
out:
	if (r != NULL)
		grpc__health__v1__health_check_response__free_unpacked(r, NULL);
	free(buf);
	cli_hub_close(&h);
	return rc;
}
