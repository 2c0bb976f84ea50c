/* tls_conf: parsing and checking a daemon's serving TLS lines. */
#include "tls_conf.h"

#include <stdio.h>
#include <string.h>

bool tls_conf_keyword(const char *keyword)
{
	return strcmp(keyword, "tls-cert") == 0 || strcmp(keyword, "tls-key") == 0 ||
	       strcmp(keyword, "tls-client-ca") == 0 || strcmp(keyword, "plaintext") == 0;
}

static int tls_conf_path(char *dst, const char *keyword, const char *value, struct tsr_err *err)
{
	if (dst[0] != '\0')
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s given twice", keyword);
	if (snprintf(dst, TLS_CONF_PATH_MAX, "%s", value) >= TLS_CONF_PATH_MAX) {
		dst[0] = '\0';
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "%s: path longer than %d characters", keyword,
				   TLS_CONF_PATH_MAX - 1);
	}
	return 0;
}

int tls_conf_line(struct tls_conf *tc, int argc, char **argv, struct tsr_err *err)
{
	if (argc != 2)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "\"%s\" takes exactly one value", argv[0]);
	if (strcmp(argv[0], "tls-cert") == 0)
		return tls_conf_path(tc->cert, argv[0], argv[1], err);
	if (strcmp(argv[0], "tls-key") == 0)
		return tls_conf_path(tc->key, argv[0], argv[1], err);
	if (strcmp(argv[0], "tls-client-ca") == 0)
		return tls_conf_path(tc->client_ca, argv[0], argv[1], err);
	/* Only the one spelling: "plaintext no" would read as a request for TLS. */
	if (strcmp(argv[1], "yes") != 0)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "expected \"plaintext yes\"; for TLS give tls-cert and tls-key");
	tc->plaintext = true;
	return 0;
}

int tls_conf_check(const struct tls_conf *tc, const char *path, struct tsr_err *err)
{
	bool any = tc->cert[0] != '\0' || tc->key[0] != '\0' || tc->client_ca[0] != '\0';

	if (tc->plaintext && any)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "%s: \"plaintext yes\" contradicts the tls-* lines", path);
	if (!tc->plaintext && !any)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "%s: no TLS configured: add \"tls-cert PATH\" and "
				   "\"tls-key PATH\", or \"plaintext yes\" to serve without TLS",
				   path);
	if (any && (tc->cert[0] == '\0' || tc->key[0] == '\0'))
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "%s: TLS needs both tls-cert and tls-key", path);
	return 0;
}
