/* cli_rpc: blocking unary calls to the hub over the common loop. */
#include "cli_rpc.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb.h"

struct cli_unary { /* filled in by cli_unary_done */
	volatile bool done;
	grpc_status_code code;
	char details[TSR_ERR_MSG_MAX];
	uint8_t *resp; /* owned until handed to the caller */
	size_t len;
};

/* "Bearer TOKEN" from --token or --token-file, checked as the hub would. */
static int cli_hub_token(const struct cli *c, struct cli_hub *h, struct tsr_err *err)
{
	size_t slen = strlen(TOKEN_SCHEME);
	char *token = h->auth + slen;
	char line[TOKEN_MAX + 2]; /* a token and its newline */
	const char *src = c->token;
	struct token_hash ignored;
	FILE *f = NULL;
	int rc = -1;

	if (c->token == NULL && c->token_file == NULL)
		return 0;
	if (src == NULL) {
		f = fopen(c->token_file, "re");
		if (f == NULL) {
			tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "cannot read %s",
				    c->token_file);
			goto out;
		}
		if (cli_read_secret(f, "token", line, sizeof(line), err) != 0)
			goto out;
		src = line;
	}
	memcpy(h->auth, TOKEN_SCHEME, slen);
	if (snprintf(token, sizeof(h->auth) - slen, "%s", src) >= (int)(sizeof(h->auth) - slen)) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
			    "the token is longer than %d characters", TOKEN_MAX);
		goto out;
	}
	if (sodium_init() < 0) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "libsodium failed to initialise");
		goto out;
	}
	if (token_hash(token, strlen(token), &ignored, err) != 0)
		goto out;
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	sodium_memzero(line, sizeof(line));
	if (rc != 0)
		sodium_memzero(h->auth, sizeof(h->auth));
	return rc;
}

int cli_hub_open(const struct cli *c, struct cli_hub *h, struct tsr_err *err)
{
	const struct rpc_channel_tls tls = {
		.ca = c->tls_ca, .cert = c->tls_cert, .key = c->tls_key, .name = c->tls_name
	};
	int rc = -1;

	memset(h, 0, sizeof(*h));
	h->timeout_ms = c->timeout_ms;
	if (c->tls_ca == NULL &&
	    (c->tls_cert != NULL || c->tls_key != NULL || c->tls_name != NULL)) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
			    "--tls-cert, --tls-key and --tls-name need --tls-ca (TLS to the hub)");
		goto out;
	}
	if (cli_hub_token(c, h, err) != 0 || rpc_loop_new(&h->loop, err) != 0 ||
	    rpc_channel_new(c->hub, CLI_MAX_MESSAGE, c->tls_ca != NULL ? &tls : NULL, &h->ch,
			    err) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		cli_hub_close(h);
	return rc;
}

void cli_hub_close(struct cli_hub *h)
{
	rpc_channel_free(h->ch);
	rpc_loop_free(h->loop);
	h->ch = NULL;
	h->loop = NULL;
	sodium_memzero(h->auth, sizeof(h->auth));
}

void cli_hub_metadata(const struct cli_hub *h, struct rpc_client_opts *opts)
{
	if (h->auth[0] == '\0')
		return;
	opts->md_keys[0] = TOKEN_HEADER;
	opts->md_values[0] = h->auth;
	opts->md_keys[1] = NULL;
}

static void cli_unary_done(void *arg, grpc_status_code code, const char *details,
			   const uint8_t *resp, size_t len)
{
	struct cli_unary *u = arg;

	u->code = code;
	snprintf(u->details, sizeof(u->details), "%s", details);
	if (code == GRPC_STATUS_OK) {
		u->resp = malloc(len > 0 ? len : 1);
		if (u->resp == NULL) {
			u->code = GRPC_STATUS_RESOURCE_EXHAUSTED;
			snprintf(u->details, sizeof(u->details), "out of memory");
		} else {
			memcpy(u->resp, resp, len);
			u->len = len;
		}
	}
	u->done = true;
}

int cli_hub_call(struct cli_hub *h, const char *method, const ProtobufCMessage *req, uint8_t **resp,
		 size_t *len, struct tsr_err *err)
{
	struct rpc_client_opts opts;
	struct cli_unary u;
	uint8_t *buf = NULL;
	size_t buflen;
	int rc = -1;

	memset(&u, 0, sizeof(u));
	memset(&opts, 0, sizeof(opts));
	opts.timeout_ms = h->timeout_ms;
	cli_hub_metadata(h, &opts);
	if (pb_pack(req, &buf, &buflen, err) != 0 ||
	    rpc_client_unary(h->loop, h->ch, method, buf, buflen, &opts, cli_unary_done, &u, NULL,
			     err) != 0)
		goto out;
	/* Only the call's end stops this loop: no signal handler calls
	 * rpc_loop_stop() around unary calls, and the deadline bounds it. */
	rpc_loop_run(h->loop, &u.done);
	if (u.code != GRPC_STATUS_OK) {
		tsr_err_set(err, u.code, "%s", u.details);
		goto out;
	}
	*resp = u.resp;
	*len = u.len;
	u.resp = NULL;
	rc = 0;
out:
	free(u.resp);
	free(buf);
	return rc;
}

int cli_hub_fetch(struct cli_hub *h, const char *method, const ProtobufCMessage *req,
		  const ProtobufCMessageDescriptor *desc, const char *what, ProtobufCMessage **out,
		  struct tsr_err *err)
{
	uint8_t *buf = NULL;
	size_t len;
	int rc = -1;

	if (cli_hub_call(h, method, req, &buf, &len, err) != 0)
		goto out;
	*out = protobuf_c_message_unpack(desc, NULL, len, buf);
	if (*out == NULL) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "the hub answered a malformed %s", what);
		goto out;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}
