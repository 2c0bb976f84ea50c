/*
 * tls_conf: the configuration lines with which a daemon chooses how it
 * serves, shared by tessera-hub and tessera-spoke:
 *
 *	tls-cert PATH		certificate chain (PEM) the server presents
 *	tls-key PATH		its private key (PEM)
 *	tls-client-ca PATH	CA bundle: clients must present a certificate
 *				it signed (mutual TLS)
 *	plaintext yes		serve without TLS, on purpose
 *
 * A daemon must say one or the other: a forgotten TLS line must not
 * quietly leave it serving in clear text.
 */
#ifndef TSR_TLS_CONF_H
#define TSR_TLS_CONF_H

#include <stdbool.h>

#include "error.h"

#define TLS_CONF_PATH_MAX 4096

struct tls_conf {
	char cert[TLS_CONF_PATH_MAX]; /* "" when not given */
	char key[TLS_CONF_PATH_MAX];
	char client_ca[TLS_CONF_PATH_MAX];
	bool plaintext;
};

/* True if keyword is one of the lines above. */
bool tls_conf_keyword(const char *keyword);
/* One line whose keyword tls_conf_keyword() accepted. */
int tls_conf_line(struct tls_conf *tc, int argc, char **argv, struct tsr_err *err);
/* Once the file is read: exactly one of TLS (cert and key) or plaintext. */
int tls_conf_check(const struct tls_conf *tc, const char *path, struct tsr_err *err);

#endif
