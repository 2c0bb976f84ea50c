/*
 * test_tls: the serving TLS lines both daemons share (common/tls_conf)
 * and the bounded PEM reads behind gRPC's credentials (common/pem).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "pem.h"
#include "tls_conf.h"

/* Feeds "keyword value" to tc; the line's result. */
static int line(struct tls_conf *tc, const char *keyword, const char *value, struct tsr_err *err)
{
	char *argv[] = { (char *)keyword, (char *)value };

	ck_assert(tls_conf_keyword(keyword));
	return tls_conf_line(tc, value != NULL ? 2 : 1, argv, err);
}

START_TEST(test_conf_modes)
{
	struct tls_conf tc;
	struct tsr_err err;

	memset(&tc, 0, sizeof(tc));
	ck_assert_int_ne(tls_conf_check(&tc, "f", &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "no TLS configured"));

	ck_assert_int_eq(line(&tc, "plaintext", "yes", &err), 0);
	ck_assert_int_eq(tls_conf_check(&tc, "f", &err), 0);
	ck_assert_int_eq(line(&tc, "tls-cert", "/c.pem", &err), 0);
	ck_assert_int_ne(tls_conf_check(&tc, "f", &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "contradicts"));

	memset(&tc, 0, sizeof(tc));
	ck_assert_int_eq(line(&tc, "tls-cert", "/c.pem", &err), 0);
	ck_assert_int_ne(tls_conf_check(&tc, "f", &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "both tls-cert and tls-key"));
	ck_assert_int_eq(line(&tc, "tls-key", "/k.pem", &err), 0);
	ck_assert_int_eq(tls_conf_check(&tc, "f", &err), 0);
	ck_assert_int_eq(line(&tc, "tls-client-ca", "/ca.pem", &err), 0);
	ck_assert_int_eq(tls_conf_check(&tc, "f", &err), 0);
	ck_assert_str_eq(tc.client_ca, "/ca.pem");

	/* A client CA alone would be mutual TLS without a server certificate. */
	memset(&tc, 0, sizeof(tc));
	ck_assert_int_eq(line(&tc, "tls-client-ca", "/ca.pem", &err), 0);
	ck_assert_int_ne(tls_conf_check(&tc, "f", &err), 0);
}
END_TEST

START_TEST(test_conf_rejects)
{
	struct tls_conf tc;
	struct tsr_err err;
	char long_path[TLS_CONF_PATH_MAX + 1];

	memset(&tc, 0, sizeof(tc));
	ck_assert(!tls_conf_keyword("tls"));
	ck_assert(!tls_conf_keyword("spoke-tls-ca"));
	ck_assert_int_ne(line(&tc, "plaintext", "no", &err), 0);
	ck_assert_int_ne(line(&tc, "plaintext", "true", &err), 0);
	ck_assert_int_ne(line(&tc, "tls-cert", NULL, &err), 0);
	ck_assert_int_eq(line(&tc, "tls-cert", "/a", &err), 0);
	ck_assert_int_ne(line(&tc, "tls-cert", "/b", &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "given twice"));
	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	ck_assert_int_ne(line(&tc, "tls-key", long_path, &err), 0);
	ck_assert_str_eq(tc.key, "");
}
END_TEST

/* Writes len bytes of text (repeated) to a fresh temporary file. */
static void write_file(char *path, size_t pathlen, const char *text, size_t len)
{
	size_t n = strlen(text), chunk;
	FILE *f;
	int fd;

	snprintf(path, pathlen, "/tmp/tessera-tls-test-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < len; i += chunk) {
		chunk = len - i < n ? len - i : n;
		ck_assert_uint_eq(fwrite(text, 1, chunk, f), chunk);
	}
	fclose(f);
}

START_TEST(test_pem_read)
{
	static const char pem[] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
	char path[64];
	char *buf;
	size_t len;
	struct tsr_err err;

	write_file(path, sizeof(path), pem, strlen(pem));
	ck_assert_int_eq(pem_read(path, "TLS CA", &buf, &len, &err), 0);
	ck_assert_uint_eq(len, strlen(pem));
	ck_assert_str_eq(buf, pem);
	pem_free(buf, len);
	unlink(path);

	write_file(path, sizeof(path), "not a certificate\n", 18);
	ck_assert_int_ne(pem_read(path, "TLS CA", &buf, &len, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "not a PEM file"));
	ck_assert_ptr_nonnull(strstr(err.msg, path));
	unlink(path);

	write_file(path, sizeof(path), pem, PEM_FILE_MAX + 1);
	ck_assert_int_ne(pem_read(path, "TLS CA", &buf, &len, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "larger than"));
	unlink(path);

	write_file(path, sizeof(path), pem, PEM_FILE_MAX);
	ck_assert_int_eq(pem_read(path, "TLS CA", &buf, &len, &err), 0);
	ck_assert_uint_eq(len, PEM_FILE_MAX);
	pem_free(buf, len);
	unlink(path);

	ck_assert_int_ne(pem_read("/nonexistent/tessera.pem", "TLS key", &buf, &len, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "TLS key /nonexistent/tessera.pem"));
}
END_TEST

int test_suite(SRunner *sr)
{
	check_suite(sr, "tls", CHECK_TESTS(test_conf_modes, test_conf_rejects, test_pem_read));
	return 0;
}
