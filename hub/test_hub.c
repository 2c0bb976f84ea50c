/*
 * test_hub: unit tests for the hub's pure parts: watch cursors and stream
 * positions, page tokens, the configuration file, spawn placement, a
 * spoke's state from its channel and its last poll, status names, and
 * the CLI's JSON escaping and config file.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>

#include "auth.h"
#include "b64url.h"
#include "cli_config.h"
#include "cli_json.h"
#include "cursor.h"
#include "hub_config.h"
#include "page_token.h"
#include "placement.h"
#include "spokes.h"
#include "status_name.h"

/* base64url of text, for handcrafted tokens; the caller frees it. */
static char *wrap(const char *text)
{
	struct tsr_err err;
	char *out = NULL;

	ck_assert_int_eq(b64url_encode((const uint8_t *)text, strlen(text), &out, &err), 0);
	return out;
}

static int decode_text(const char *text, size_t *n)
{
	struct cursor_entry e[4];
	struct tsr_err err;
	char *tok = wrap(text);
	int rc = cursor_decode(tok, e, 4, n, &err);

	if (rc != 0)
		ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	free(tok);
	return rc;
}

START_TEST(test_stream_pos)
{
	struct stream_pos a, b;
	char text[STREAM_POS_TEXT_MAX + 1];
	struct tsr_err err;

	ck_assert_int_eq(stream_pos_parse("1700000000000-0", &a, &err), 0);
	ck_assert_uint_eq(a.ms, 1700000000000ULL);
	ck_assert_uint_eq(a.seq, 0);
	ck_assert_int_eq(stream_pos_parse("18446744073709551615-18446744073709551615", &b, &err),
			 0);
	stream_pos_format(&b, text, sizeof(text));
	ck_assert_str_eq(text, "18446744073709551615-18446744073709551615");
	ck_assert_int_lt(stream_pos_cmp(&a, &b), 0);
	ck_assert_int_eq(stream_pos_parse("1700000000000-1", &b, &err), 0);
	ck_assert_int_lt(stream_pos_cmp(&a, &b), 0);
	ck_assert_int_eq(stream_pos_cmp(&b, &b), 0);
	ck_assert_int_eq(stream_pos_parse("0-0", &a, &err), 0);

	ck_assert_int_ne(stream_pos_parse("", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("12", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("-1", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("1-", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("01-1", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("1-01", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("+1-1", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("1-1-1", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("1 -1", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("18446744073709551616-0", &a, &err), 0);
	ck_assert_int_ne(stream_pos_parse("99999999999999999999-0", &a, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_cursor_round_trip)
{
	struct cursor_entry in[3], out[CURSOR_ENTRIES_MAX];
	struct tsr_err err;
	char *tok = NULL;
	size_t n = 99;

	memset(in, 0, sizeof(in));
	strcpy(in[0].spoke, "alpha");
	in[0].pos = (struct stream_pos){ 1700000000000ULL, 3 };
	strcpy(in[1].spoke, "beta_2-x");
	in[1].pos = (struct stream_pos){ 0, 0 };
	strcpy(in[2].spoke, "g");
	in[2].pos = (struct stream_pos){ UINT64_MAX, UINT64_MAX };
	ck_assert_int_eq(cursor_encode(in, 3, &tok, &err), 0);
	/* Opaque but URL- and shell-safe: no padding, no '+' or '/'. */
	ck_assert_ptr_null(strpbrk(tok, "+/=; "));
	ck_assert_int_eq(cursor_decode(tok, out, CURSOR_ENTRIES_MAX, &n, &err), 0);
	ck_assert_uint_eq(n, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_str_eq(out[i].spoke, in[i].spoke);
		ck_assert_int_eq(stream_pos_cmp(&out[i].pos, &in[i].pos), 0);
	}
	free(tok);

	ck_assert_int_eq(cursor_encode(in, 0, &tok, &err), 0);
	ck_assert_str_eq(tok, "");
	ck_assert_int_eq(cursor_decode(tok, out, CURSOR_ENTRIES_MAX, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	free(tok);
}
END_TEST

START_TEST(test_cursor_rejects)
{
	struct cursor_entry e[4];
	struct tsr_err err;
	size_t n;
	char nul[] = { 'a', '=', '1', '-', '1', '\0', 'x' };
	char *tok;

	ck_assert_int_eq(decode_text("a=1-1;b=2-2", &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_ne(decode_text("a=1-1;", &n), 0);
	ck_assert_int_ne(decode_text(";a=1-1", &n), 0);
	ck_assert_int_ne(decode_text("a=1-1;;b=2-2", &n), 0);
	ck_assert_int_ne(decode_text("a", &n), 0);
	ck_assert_int_ne(decode_text("a=", &n), 0);
	ck_assert_int_ne(decode_text("=1-1", &n), 0);
	ck_assert_int_ne(decode_text("a=1", &n), 0);
	ck_assert_int_ne(decode_text("a=1-1=2", &n), 0);
	ck_assert_int_ne(decode_text("a b=1-1", &n), 0);
	ck_assert_int_ne(decode_text("a.b=1-1", &n), 0);
	ck_assert_int_ne(decode_text("a=1-1;a=2-2", &n), 0);
	ck_assert_int_ne(decode_text("a=1-1;b=1-1;c=1-1;d=1-1;e=1-1", &n), 0);
	/* A spoke id one character too long. */
	ck_assert_int_ne(decode_text("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
				     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1-1", &n), 0);

	/* Not base64url at all, padded, or with non-canonical trailing bits. */
	ck_assert_int_ne(cursor_decode("!!!", e, 4, &n, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_ne(cursor_decode("YT0xLTE=", e, 4, &n, &err), 0);
	ck_assert_int_ne(cursor_decode("YT0xLTF", e, 4, &n, &err), 0);
	ck_assert_int_ne(cursor_decode("YT0xLTE/", e, 4, &n, &err), 0);
	ck_assert_int_eq(cursor_decode("YT0xLTE", e, 4, &n, &err), 0);	/* "a=1-1" */

	ck_assert_int_eq(b64url_encode((const uint8_t *)nul, sizeof(nul), &tok, &err), 0);
	ck_assert_int_ne(cursor_decode(tok, e, 4, &n, &err), 0);
	free(tok);
}
END_TEST

START_TEST(test_cursor_too_long)
{
	struct cursor_entry e[4];
	struct tsr_err err;
	size_t n, len = CURSOR_TEXT_MAX * 2;
	char *tok = malloc(len + 1);

	memset(tok, 'A', len);
	tok[len] = '\0';
	ck_assert_int_ne(cursor_decode(tok, e, 4, &n, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	free(tok);
}
END_TEST

START_TEST(test_page_token)
{
	struct page_token in, out;
	struct tsr_err err;
	char *tok = NULL, *bad;

	memset(&in, 0, sizeof(in));
	in.index = 17;
	strcpy(in.spoke, "spoke-b");
	strcpy(in.token, "c3Bva2UgdG9rZW4:42|x");
	ck_assert_int_eq(page_token_encode(&in, &tok, &err), 0);
	ck_assert_int_eq(page_token_decode(tok, &out, &err), 0);
	ck_assert_uint_eq(out.index, 17);
	ck_assert_str_eq(out.spoke, "spoke-b");
	ck_assert_str_eq(out.token, in.token);
	free(tok);

	in.index = 0;
	in.token[0] = '\0';
	ck_assert_int_eq(page_token_encode(&in, &tok, &err), 0);
	ck_assert_int_eq(page_token_decode(tok, &out, &err), 0);
	ck_assert_uint_eq(out.index, 0);
	ck_assert_str_eq(out.token, "");
	free(tok);

	static const char *const rejects[] = {
		"", "0", "0:a", ":a:", "x:a:", "01:a:", "256:a:", "1000:a:", "-1:a:",
		"0::", "0:a b:", "0:a.b:", "0:a:tok en", "0:a:tab\there",
	};
	for (size_t i = 0; i < sizeof(rejects) / sizeof(rejects[0]); i++) {
		bad = wrap(rejects[i]);
		ck_assert_msg(page_token_decode(bad, &out, &err) != 0, "accepted \"%s\"",
			      rejects[i]);
		ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
		free(bad);
	}
	ck_assert_int_ne(page_token_decode("not base64!", &out, &err), 0);
	ck_assert(page_token_spoke_token_ok(""));
	ck_assert(!page_token_spoke_token_ok("a\x7f"));
}
END_TEST

/* Writes text to a fresh temporary file; path receives its name. */
static void write_config(char *path, size_t len, const char *text)
{
	int fd;

	snprintf(path, len, "/tmp/tessera-hub-test-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Copies fmt into out with every "@K" replaced by pub. */
static void subst(const char *fmt, const char *pub, char *out, size_t outlen)
{
	size_t len = 0, plen = strlen(pub);

	for (const char *p = fmt; *p != '\0'; p++) {
		if (p[0] == '@' && p[1] == 'K') {
			ck_assert_uint_lt(len + plen, outlen);
			memcpy(out + len, pub, plen);
			len += plen;
			p++;
		} else {
			ck_assert_uint_lt(len + 1, outlen);
			out[len++] = *p;
		}
	}
	out[len] = '\0';
}

/* The lines that make a config explicit about plaintext and no tokens. */
#define PLAIN "plaintext yes\nspoke-plaintext yes\nauth none\n"
/* A token line: the hash of "0123456789abcdef". */
#define TOKEN_LINE(name) "token " name \
	" blake2b256:" TOKEN_HEX "\n"
#define TOKEN_HEX "c783baf5fb1427e7d924c9fe93ee161169324bb139d9cd8d8b9602c412ec6cda"

/* Loads a config made of fmt (with @K for a public key); 0 or -1 with err. */
static int load(const char *fmt, struct hub_config *cfg, struct tsr_err *err, char *path,
		size_t pathlen)
{
	char pub[SIGN_PUBKEY_TEXT_MAX + 16], text[4096];
	struct sign_key key;
	int rc;

	ck_assert_int_eq(sign_keygen(&key, err), 0);
	ck_assert_int_eq(sign_pubkey_format(&key.pub, pub, sizeof(pub)), 0);
	subst(fmt, pub, text, sizeof(text));
	write_config(path, pathlen, text);
	rc = hub_config_load(path, cfg, err);
	unlink(path);
	return rc;
}

START_TEST(test_config_ok)
{
	struct hub_config cfg;
	struct tsr_err err;
	char path[64];

	ck_assert_int_eq(load("# hub\n"
			      "listen 0.0.0.0:7100\n"
			      "key /etc/tessera/hub.key\n"
			      "\n"
			      "spoke a 127.0.0.1:7001 @K zone=eu-1 gpu=yes\n"
			      "  spoke b_2 unix:/run/b.sock @K\n"
			      "relay-timeout-ms 2500\n"
			      "plaintext yes\n"
			      "spoke-plaintext yes\n"
			      "auth none\n", &cfg, &err, path, sizeof(path)), 0);
	ck_assert_str_eq(cfg.listen, "0.0.0.0:7100");
	ck_assert_str_eq(cfg.key_path, "/etc/tessera/hub.key");
	ck_assert_int_eq(cfg.relay_timeout_ms, 2500);
	ck_assert_uint_eq(cfg.nspokes, 2);
	ck_assert_str_eq(cfg.spokes[0].id, "a");
	ck_assert_str_eq(cfg.spokes[0].address, "127.0.0.1:7001");
	ck_assert_uint_eq(cfg.spokes[0].nlabels, 2);
	ck_assert_str_eq(cfg.spokes[0].labels[0].key, "zone");
	ck_assert_str_eq(cfg.spokes[0].labels[0].value, "eu-1");
	ck_assert_str_eq(cfg.spokes[0].labels[1].key, "gpu");
	ck_assert_str_eq(cfg.spokes[1].id, "b_2");
	ck_assert_uint_eq(cfg.spokes[1].nlabels, 0);
	ck_assert_uint_eq(strlen(cfg.spokes[1].pub.id), SIGN_KEY_ID_LEN);
	hub_config_free(&cfg);

	ck_assert(cfg.tls.plaintext && cfg.spoke_tls.plaintext && cfg.auth_none);
	hub_config_free(&cfg);

	ck_assert_int_eq(load("key k\nspoke a h:1 @K\n" PLAIN, &cfg, &err, path, sizeof(path)),
			 0);
	ck_assert_str_eq(cfg.listen, HUB_LISTEN_DEFAULT);
	ck_assert_int_eq(cfg.relay_timeout_ms, HUB_RELAY_TIMEOUT_DEFAULT_MS);
	hub_config_free(&cfg);
}
END_TEST

/* The config must fail with a message naming line and containing what. */
static void config_fails(const char *fmt, int line, const char *what)
{
	struct hub_config cfg;
	struct tsr_err err;
	char path[64], where[96];

	ck_assert_msg(load(fmt, &cfg, &err, path, sizeof(path)) != 0, "accepted: %s", fmt);
	hub_config_free(&cfg);
	if (line > 0) {
		snprintf(where, sizeof(where), "%s:%d: ", path, line);
		ck_assert_msg(strncmp(err.msg, where, strlen(where)) == 0,
			      "\"%s\" does not start with \"%s\"", err.msg, where);
	}
	ck_assert_msg(strstr(err.msg, what) != NULL, "\"%s\" lacks \"%s\"", err.msg, what);
}

START_TEST(test_config_rejects)
{
	config_fails("key k\nspoke a.b h:1 @K\n", 2, "spoke id");
	config_fails("key k\nspoke a h:1\n", 2, "expected");
	config_fails("key k\nspoke a h:1 ed25519:AAAA\n", 2, "spoke a: public key");
	config_fails("key k\nspoke a h:1 rsa:@K\n", 2, "spoke a: public key");
	config_fails("key k\nspoke a h:1 @K\nspoke a h:2 @K\n", 3, "spoke a given twice");
	config_fails("key k\nspoke a h:1 @K zone\n", 2, "not key=value");
	config_fails("key k\nspoke a h:1 @K zone=\n", 2, "label zone needs a value");
	config_fails("key k\nspoke a h:1 @K z.x=1\n", 2, "label key");
	config_fails("key k\nspoke a h:1 @K z=1 z=2\n", 2, "label z given twice");
	config_fails("key k\nspoke a h:1 @K\nrelay-timeout-ms 10\n", 3, "relay-timeout-ms");
	config_fails("key k\nspoke a h:1 @K\nrelay-timeout-ms 5s\n", 3, "relay-timeout-ms");
	config_fails("key k\nspoke a h:1 @K\nrelay-timeout-ms -1000\n", 3, "relay-timeout-ms");
	config_fails("key k\nspoke a h:1 @K\nlisten\n", 3, "listen");
	config_fails("key k\nlisten a:1\nlisten b:2\n", 3, "listen given twice");
	config_fails("key k\nkey j\n", 2, "key given twice");
	config_fails("key k\nspokes a h:1 @K\n", 2, "unknown keyword");
	config_fails("spoke a h:1 @K\n", 0, "no \"key PATH\" line");
	config_fails("key k\n", 0, "no \"spoke");
}
END_TEST

START_TEST(test_config_tls)
{
	struct hub_config cfg;
	struct tsr_err err;
	char path[64];

	ck_assert_int_eq(load("key k\nspoke a h:1 @K\n"
			      "tls-cert /c.pem\ntls-key /k.pem\ntls-client-ca /ca.pem\n"
			      "spoke-tls-ca /sca.pem\nspoke-tls-cert /sc.pem\n"
			      "spoke-tls-key /sk.pem\nspoke-tls-name spoke.test\n"
			      TOKEN_LINE("alice") TOKEN_LINE("bob"),
			      &cfg, &err, path, sizeof(path)), 0);
	ck_assert(!cfg.tls.plaintext && !cfg.spoke_tls.plaintext && !cfg.auth_none);
	ck_assert_str_eq(cfg.tls.cert, "/c.pem");
	ck_assert_str_eq(cfg.tls.key, "/k.pem");
	ck_assert_str_eq(cfg.tls.client_ca, "/ca.pem");
	ck_assert_str_eq(cfg.spoke_tls.ca, "/sca.pem");
	ck_assert_str_eq(cfg.spoke_tls.cert, "/sc.pem");
	ck_assert_str_eq(cfg.spoke_tls.key, "/sk.pem");
	ck_assert_str_eq(cfg.spoke_tls.name, "spoke.test");
	ck_assert_uint_eq(cfg.ntokens, 2);
	ck_assert_str_eq(cfg.tokens[1].name, "bob");
	hub_config_free(&cfg);

	/* Silence is not consent: each hop and the API must say how. */
	config_fails("key k\nspoke a h:1 @K\nspoke-plaintext yes\nauth none\n", 0,
		     "no TLS configured");
	config_fails("key k\nspoke a h:1 @K\nplaintext yes\nauth none\n", 0,
		     "no TLS to spokes configured");
	config_fails("key k\nspoke a h:1 @K\nplaintext yes\nspoke-plaintext yes\n", 0,
		     "no \"token NAME HASH\" line");
	config_fails("key k\nspoke a h:1 @K\n" PLAIN "tls-cert /c\ntls-key /k\n", 0,
		     "contradicts");
	config_fails("key k\nspoke a h:1 @K\n" PLAIN "spoke-tls-ca /ca\n", 0, "contradicts");
	config_fails("key k\nspoke a h:1 @K\n" PLAIN TOKEN_LINE("a"), 0, "contradicts");
	config_fails("key k\nspoke a h:1 @K\nspoke-plaintext yes\nauth none\ntls-cert /c\n", 0,
		     "both tls-cert and tls-key");
	config_fails("key k\nspoke a h:1 @K\nplaintext yes\nauth none\n"
		     "spoke-tls-ca /ca\nspoke-tls-cert /c\n", 0, "go together");
	config_fails("key k\nplaintext no\n", 2, "plaintext yes");
	config_fails("key k\nspoke-plaintext 1\n", 2, "spoke-plaintext yes");
	config_fails("key k\ntls-cert /a\ntls-cert /b\n", 3, "tls-cert given twice");
	config_fails("key k\ntls-key\n", 2, "exactly one value");
	config_fails("key k\nauth basic\n", 2, "auth none");
	config_fails("key k\ntoken a sha256:00\n", 2, "token a: a token hash");
	config_fails("key k\ntoken a blake2b256:" TOKEN_HEX "00\n", 2, "token hash");
	config_fails("key k\ntoken a.b blake2b256:" TOKEN_HEX "\n", 2, "token name");
	config_fails("key k\n" TOKEN_LINE("a") TOKEN_LINE("a"), 3, "token a given twice");
}
END_TEST

START_TEST(test_token)
{
	struct token_hash h, set[3], parsed;
	char text[TOKEN_HASH_TEXT_MAX], fresh[TOKEN_NEW_TEXT_MAX];
	struct tsr_err err;

	ck_assert_int_eq(token_hash("0123456789abcdef", 16, &h, &err), 0);
	token_hash_format(&h, text);
	ck_assert_str_eq(text, "blake2b256:" TOKEN_HEX);
	ck_assert_int_eq(token_hash_parse(text, &parsed, &err), 0);
	ck_assert_mem_eq(parsed.h, h.h, sizeof(h.h));
	ck_assert_int_ne(token_hash("short", 5, &h, &err), 0);
	ck_assert_int_ne(token_hash("0123456789 abcdef", 17, &h, &err), 0);
	ck_assert_int_ne(token_hash_parse("blake2b256:xyz", &parsed, &err), 0);
	ck_assert_int_ne(token_hash_parse(TOKEN_HEX, &parsed, &err), 0);

	/* A match anywhere in the set counts; no match is no match. */
	ck_assert_int_eq(token_hash("first-token-0001", 16, &set[0], &err), 0);
	ck_assert_int_eq(token_hash("0123456789abcdef", 16, &set[1], &err), 0);
	ck_assert_int_eq(token_hash("third-token-0003", 16, &set[2], &err), 0);
	ck_assert_int_eq(token_hash("0123456789abcdef", 16, &h, &err), 0);
	ck_assert(token_match(set, 3, &h));
	ck_assert(!token_match(set, 1, &h));
	ck_assert(!token_match(set, 0, &h));

	token_new(fresh);
	ck_assert_uint_eq(strlen(fresh), 2 * TOKEN_NEW_BYTES);
	ck_assert_int_eq(token_hash(fresh, strlen(fresh), &h, &err), 0);
}
END_TEST

START_TEST(test_auth_check)
{
	struct hub_config cfg;
	struct auth a;
	struct tsr_err err;
	char path[64];

	ck_assert_int_eq(load("key k\nspoke a h:1 @K\nplaintext yes\nspoke-plaintext yes\n"
			      TOKEN_LINE("alice"), &cfg, &err, path, sizeof(path)), 0);
	auth_set(&a, &cfg);
	hub_config_free(&cfg);
	ck_assert_int_eq(auth_check(&a, "Bearer 0123456789abcdef", &err), 0);
	ck_assert_int_eq(auth_check(&a, "bearer 0123456789abcdef", &err), 0);
	ck_assert_int_ne(auth_check(&a, NULL, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAUTHENTICATED);
	ck_assert_int_ne(auth_check(&a, "Bearer 0123456789abcdeF", &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAUTHENTICATED);
	/* The message never repeats what the caller sent. */
	ck_assert_ptr_null(strstr(err.msg, "0123456789"));
	ck_assert_int_ne(auth_check(&a, "Basic 0123456789abcdef", &err), 0);
	ck_assert_int_ne(auth_check(&a, "0123456789abcdef", &err), 0);
	ck_assert_int_ne(auth_check(&a, "Bearer ", &err), 0);

	ck_assert_int_eq(load("key k\nspoke a h:1 @K\n" PLAIN, &cfg, &err, path, sizeof(path)),
			 0);
	auth_set(&a, &cfg);
	hub_config_free(&cfg);
	ck_assert_int_eq(auth_check(&a, NULL, &err), 0);
}
END_TEST

START_TEST(test_config_spoke_limits)
{
	char pub[SIGN_PUBKEY_TEXT_MAX + 16], path[64], line[512];
	struct hub_config cfg;
	struct sign_key key;
	struct tsr_err err;
	size_t cap = 80 * (HUB_SPOKES_MAX + 2), len = 0;
	char *text = malloc(cap);

	ck_assert_int_eq(sign_keygen(&key, &err), 0);
	ck_assert_int_eq(sign_pubkey_format(&key.pub, pub, sizeof(pub)), 0);
	len += (size_t)snprintf(text + len, cap - len, "key k\n");
	for (int i = 0; i <= HUB_SPOKES_MAX; i++) {
		snprintf(line, sizeof(line), "spoke s%d h:%d %s\n", i, i, pub);
		ck_assert_uint_lt(len + strlen(line), cap);
		memcpy(text + len, line, strlen(line) + 1);
		len += strlen(line);
	}
	write_config(path, sizeof(path), text);
	ck_assert_int_ne(hub_config_load(path, &cfg, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "more than 256 spokes"));
	hub_config_free(&cfg);
	unlink(path);
	free(text);
}
END_TEST

/* Runs build on a fresh writer and returns what it wrote (malloc'd). */
static char *json_of(void (*build)(struct json *j, const void *arg), const void *arg)
{
	struct tsr_err err;
	struct json j;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	json_init(&j);
	build(&j, arg);
	ck_assert_int_eq(json_flush(&j, f, &err), 0);
	json_free(&j);
	fclose(f);
	return buf;
}

static void build_string(struct json *j, const void *arg)
{
	json_string(j, arg);
}

static void build_doc(struct json *j, const void *arg)
{
	(void)arg;
	json_object_begin(j);
	json_key(j, "a");
	json_int(j, -5);
	json_key(j, "list");
	json_array_begin(j);
	json_bool(j, true);
	json_bool(j, false);
	json_object_begin(j);
	json_object_end(j);
	json_array_begin(j);
	json_array_end(j);
	json_array_end(j);
	json_key(j, "big");
	json_int(j, INT64_MAX);
	json_object_end(j);
}

static void expect_json(const char *in, const char *want)
{
	char *got = json_of(build_string, in);

	ck_assert_msg(strcmp(got, want) == 0, "escaped %s as %s, not %s", in, got, want);
	free(got);
}

START_TEST(test_json_escaping)
{
	char *doc;

	expect_json("plain", "\"plain\"");
	expect_json("", "\"\"");
	expect_json("q\"b\\s/", "\"q\\\"b\\\\s/\"");
	expect_json("a\nb\tc\rd", "\"a\\nb\\tc\\rd\"");
	expect_json("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
	expect_json("caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x98\x80",
		    "\"caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x98\x80\"");
	/* Invalid UTF-8: stray continuation, truncated, overlong, surrogate, too big. */
	expect_json("a\x80z", "\"a\\ufffdz\"");
	expect_json("a\xc3", "\"a\\ufffd\"");
	expect_json("\xc0\xaf", "\"\\ufffd\\ufffd\"");
	expect_json("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"");
	expect_json("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
	expect_json("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	expect_json("\xff", "\"\\ufffd\"");

	doc = json_of(build_doc, NULL);
	ck_assert_str_eq(doc, "{\"a\":-5,\"list\":[true,false,{},[]],\"big\":9223372036854775807}");
	free(doc);
}
END_TEST

START_TEST(test_json_limits)
{
	struct tsr_err err;
	struct json j;

	json_init(&j);
	for (int i = 0; i < JSON_DEPTH_MAX + 1; i++)
		json_array_begin(&j);
	ck_assert_int_ne(json_flush(&j, stdout, &err), 0);
	json_free(&j);

	json_init(&j);
	json_object_end(&j);
	ck_assert_int_ne(json_flush(&j, stdout, &err), 0);
	json_free(&j);
}
END_TEST

/* A registry of n spokes with the given labels ("k=v" or ""), all connected. */
struct fleet {
	struct hub_spoke_conf conf[4];
	struct spoke v[4];
	struct spokes s;
};

static void fleet_init(struct fleet *f, size_t n, const char *const *labels)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(labels[i], '=');

		snprintf(f->conf[i].id, sizeof(f->conf[i].id), "spoke-%zu", i);
		if (eq != NULL) {
			snprintf(f->conf[i].labels[0].key, sizeof(f->conf[i].labels[0].key), "%.*s",
				 (int)(eq - labels[i]), labels[i]);
			snprintf(f->conf[i].labels[0].value, sizeof(f->conf[i].labels[0].value),
				 "%s", eq + 1);
			f->conf[i].nlabels = 1;
		}
		f->v[i].index = i;
		f->v[i].conf = &f->conf[i];
		f->v[i].health = SPOKE_CONNECTED;
	}
	f->s.v = f->v;
	f->s.n = n;
}

static void fleet_load(struct fleet *f, size_t i, int32_t running, int32_t max)
{
	f->v[i].load_known = true;
	f->v[i].running = running;
	f->v[i].max = max;
	f->v[i].load_at_ms = 1000;
}

/* The index placement chooses, or -1 with err.code in *code. */
static int fleet_place(struct fleet *f, const char *request_id,
		       const struct placement_label *labels, size_t n, int *code)
{
	struct placement p = { .request_id = request_id, .labels = labels, .nlabels = n,
			       .now_ms = 2000 };
	struct spoke *sp;
	struct tsr_err err;

	if (placement_choose(&f->s, &p, &sp, &err) != 0) {
		*code = err.code;
		return -1;
	}
	return (int)sp->index;
}

START_TEST(test_placement_least_loaded)
{
	static const char *const none[] = { "", "", "" };
	struct fleet f;
	int code;

	fleet_init(&f, 3, none);
	fleet_load(&f, 0, 3, 8);
	fleet_load(&f, 1, 1, 8);
	fleet_load(&f, 2, 1, 8);
	/* Ties go round robin, and each placement counts until the next poll. */
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 1);
	ck_assert_int_eq(f.v[1].running, 2);
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 2);
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 1);
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 2);
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 0);

	/* Unknown or stale load sorts after every known one, even a busy one. */
	fleet_init(&f, 3, none);
	fleet_load(&f, 1, 7, 8);
	fleet_load(&f, 2, 0, 8);
	f.v[2].load_at_ms = 2000 - PLACEMENT_LOAD_STALE_MS - 1;
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 1);
	/* Now at its max; the two unknown ones take turns. */
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 2);
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 0);

	/* A spoke at its max is skipped; when every one is: RESOURCE_EXHAUSTED. */
	fleet_init(&f, 2, none);
	fleet_load(&f, 0, 8, 8);
	fleet_load(&f, 1, 3, 4);
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 1);
	ck_assert_int_eq(f.v[1].running, 4);
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), -1);
	ck_assert_int_eq(code, GRPC_STATUS_RESOURCE_EXHAUSTED);

	/* Connected before connecting, whatever the load; never unreachable. */
	fleet_init(&f, 3, none);
	fleet_load(&f, 0, 0, 8);
	fleet_load(&f, 1, 6, 8);
	fleet_load(&f, 2, 0, 8);
	f.v[0].health = SPOKE_CONNECTING;
	f.v[2].health = SPOKE_UNREACHABLE;
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 1);
	f.v[1].health = SPOKE_UNREACHABLE;
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), 0);
	f.v[0].health = SPOKE_UNREACHABLE;
	ck_assert_int_eq(fleet_place(&f, "", NULL, 0, &code), -1);
	ck_assert_int_eq(code, GRPC_STATUS_UNAVAILABLE);
}
END_TEST

START_TEST(test_placement_refused)
{
	static const char *const none[] = { "", "", "" };
	const struct tsr_err why = { GRPC_STATUS_PERMISSION_DENIED, "command from an untrusted key" };
	struct fleet f;
	int code;
	struct spoke *sp;
	struct tsr_err err;
	struct placement p = { .request_id = "", .now_ms = 2000 };

	/* A refused spoke is passed over, however empty it is. */
	fleet_init(&f, 3, none);
	fleet_load(&f, 0, 0, 8);
	fleet_load(&f, 1, 5, 8);
	fleet_load(&f, 2, 6, 8);
	spokes_poll_result(&f.v[0], &why, true);
	f.v[0].health = SPOKE_REFUSED;
	for (int i = 0; i < 4; i++)
		ck_assert_int_ne(fleet_place(&f, "", NULL, 0, &code), 0);

	/* Only refused and unreachable ones left: UNAVAILABLE, saying why. */
	f.v[1].health = SPOKE_UNREACHABLE;
	f.v[2].health = SPOKE_UNREACHABLE;
	ck_assert_int_ne(placement_choose(&f.s, &p, &sp, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_UNAVAILABLE);
	ck_assert_ptr_nonnull(strstr(err.msg, "spoke spoke-0 is refused: PERMISSION_DENIED: "
					      "command from an untrusted key"));

	/* A request id still maps to its spoke, whatever its state. */
	f.v[1].health = SPOKE_REFUSED;
	f.v[2].health = SPOKE_REFUSED;
	ck_assert_int_ge(fleet_place(&f, "deploy-42", NULL, 0, &code), 0);
}
END_TEST

START_TEST(test_placement_labels)
{
	static const char *const zones[] = { "zone=us", "zone=eu", "zone=eu", "" };
	const struct placement_label eu = { "zone", "eu" }, ap = { "zone", "ap" };
	struct fleet f;
	int code, first;

	fleet_init(&f, 4, zones);
	for (int i = 0; i < 6; i++) {
		int got = fleet_place(&f, "", &eu, 1, &code);

		ck_assert(got == 1 || got == 2);
	}
	ck_assert_int_eq(fleet_place(&f, "", &ap, 1, &code), -1);
	ck_assert_int_eq(code, GRPC_STATUS_FAILED_PRECONDITION);
	f.v[1].health = SPOKE_UNREACHABLE;
	f.v[2].health = SPOKE_UNREACHABLE;
	ck_assert_int_eq(fleet_place(&f, "", &eu, 1, &code), -1);
	ck_assert_int_eq(code, GRPC_STATUS_UNAVAILABLE);

	/* A request id picks the same matching spoke every time, whatever its health. */
	first = fleet_place(&f, "deploy-42", &eu, 1, &code);
	ck_assert(first == 1 || first == 2);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(fleet_place(&f, "deploy-42", &eu, 1, &code), first);
	ck_assert_int_eq(fleet_place(&f, "deploy-42", &ap, 1, &code), -1);
	ck_assert_int_eq(code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_int_ge(fleet_place(&f, "deploy-42", NULL, 0, &code), 0);
}
END_TEST

START_TEST(test_placement_check_labels)
{
	struct placement_label l[HUB_LABELS_MAX + 1];
	char keys[HUB_LABELS_MAX + 1][8], long_value[HUB_LABEL_VALUE_MAX + 2];
	struct tsr_err err;

	for (size_t i = 0; i <= HUB_LABELS_MAX; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%zu", i);
		l[i].key = keys[i];
		l[i].value = "v";
	}
	ck_assert_int_eq(placement_check_labels(l, HUB_LABELS_MAX, &err), 0);
	ck_assert_int_ne(placement_check_labels(l, HUB_LABELS_MAX + 1, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_INVALID_ARGUMENT);
	memset(long_value, 'x', sizeof(long_value) - 1);
	long_value[sizeof(long_value) - 1] = '\0';
	l[1].value = long_value;
	ck_assert_int_ne(placement_check_labels(l, 2, &err), 0);
	long_value[HUB_LABEL_VALUE_MAX] = '\0';
	ck_assert_int_eq(placement_check_labels(l, 2, &err), 0);
	l[1].value = "";
	ck_assert_int_ne(placement_check_labels(l, 2, &err), 0);
	l[1].value = "a b";
	ck_assert_int_ne(placement_check_labels(l, 2, &err), 0);
	l[1].value = "v";
	l[1].key = "k0";
	ck_assert_int_ne(placement_check_labels(l, 2, &err), 0);
	l[1].key = "bad key";
	ck_assert_int_ne(placement_check_labels(l, 2, &err), 0);
}
END_TEST

START_TEST(test_spoke_state)
{
	struct hub_spoke_conf conf;
	struct spoke sp;
	struct spokes all = { .v = &sp, .n = 1 };
	struct tsr_err why = { GRPC_STATUS_INTERNAL,
			       "reply from spoke spoke-2 does not verify against its key" };

	/* A refusal shows only while the channel is up: down is down. */
	ck_assert_int_eq(spokes_health_of(GRPC_CHANNEL_READY, false), SPOKE_CONNECTED);
	ck_assert_int_eq(spokes_health_of(GRPC_CHANNEL_READY, true), SPOKE_REFUSED);
	ck_assert_int_eq(spokes_health_of(GRPC_CHANNEL_TRANSIENT_FAILURE, true),
			 SPOKE_UNREACHABLE);
	ck_assert_int_eq(spokes_health_of(GRPC_CHANNEL_SHUTDOWN, false), SPOKE_UNREACHABLE);
	ck_assert_int_eq(spokes_health_of(GRPC_CHANNEL_CONNECTING, true), SPOKE_CONNECTING);
	ck_assert_int_eq(spokes_health_of(GRPC_CHANNEL_IDLE, false), SPOKE_CONNECTING);
	ck_assert_str_eq(spokes_health_name(SPOKE_REFUSED), "refused");
	ck_assert_str_eq(spokes_health_name(SPOKE_CONNECTED), "connected");

	memset(&conf, 0, sizeof(conf));
	memset(&sp, 0, sizeof(sp));
	sp.conf = &conf;
	sp.health = SPOKE_CONNECTED;
	ck_assert(spokes_any_connected(&all));

	/* A refusal keeps its error, named, until a poll succeeds. */
	spokes_poll_result(&sp, &why, true);
	ck_assert(sp.refused);
	sp.health = SPOKE_REFUSED;
	ck_assert_str_eq(spokes_reason(&sp),
			 "INTERNAL: reply from spoke spoke-2 does not verify against its key");
	ck_assert(!spokes_any_connected(&all));
	spokes_poll_result(&sp, NULL, false);
	ck_assert(!sp.refused);
	ck_assert_str_eq(sp.reason, "");

	/* Other failures are no refusal; their reason shows only while not connected. */
	why.code = GRPC_STATUS_DEADLINE_EXCEEDED;
	snprintf(why.msg, sizeof(why.msg), "spoke spoke-2 did not answer within 2000 ms");
	spokes_poll_result(&sp, &why, false);
	ck_assert(!sp.refused);
	sp.health = SPOKE_CONNECTED;
	ck_assert_str_eq(spokes_reason(&sp), "");
	sp.health = SPOKE_UNREACHABLE;
	ck_assert_str_eq(spokes_reason(&sp),
			 "DEADLINE_EXCEEDED: spoke spoke-2 did not answer within 2000 ms");

	/* The longest message still fits, cut rather than overflowing. */
	memset(why.msg, 'x', sizeof(why.msg) - 1);
	why.msg[sizeof(why.msg) - 1] = '\0';
	why.code = GRPC_STATUS_UNAUTHENTICATED;
	spokes_poll_result(&sp, &why, true);
	ck_assert_uint_lt(strlen(sp.reason), sizeof(sp.reason));
	ck_assert_uint_eq(strlen(sp.reason), strlen("UNAUTHENTICATED: ") + sizeof(why.msg) - 1);
}
END_TEST

START_TEST(test_status_name)
{
	ck_assert_str_eq(status_name(GRPC_STATUS_OK), "OK");
	ck_assert_str_eq(status_name(GRPC_STATUS_PERMISSION_DENIED), "PERMISSION_DENIED");
	ck_assert_str_eq(status_name(GRPC_STATUS_UNAUTHENTICATED), "UNAUTHENTICATED");
	ck_assert_str_eq(status_name((grpc_status_code)17), "UNKNOWN");
	ck_assert_str_eq(status_name((grpc_status_code)-1), "UNKNOWN");
}
END_TEST

/* Loads text as a CLI config file; the error, if any, in err. */
static int cli_config_text(const char *text, struct cli_config *cf, struct tsr_err *err)
{
	char path[64];
	int rc;

	write_config(path, sizeof(path), text);
	rc = cli_config_load(cf, path, true, err);
	unlink(path);
	return rc;
}

START_TEST(test_cli_config_lines)
{
	struct cli_config cf = { 0 };
	struct tsr_err err;

	ck_assert_int_eq(cli_config_text("# defaults\nhub 10.0.0.1:7000\n"
					 "token-file /t\ntls-ca /ca\ntls-cert /c\ntls-key /k\n"
					 "tls-name hub.internal\n", &cf, &err), 0);
	ck_assert_str_eq(cf.hub, "10.0.0.1:7000");
	ck_assert_str_eq(cf.token_file, "/t");
	ck_assert_str_eq(cf.tls_ca, "/ca");
	ck_assert_str_eq(cf.tls_cert, "/c");
	ck_assert_str_eq(cf.tls_key, "/k");
	ck_assert_str_eq(cf.tls_name, "hub.internal");
	cli_config_free(&cf);

	/* Each error names the file and the line. */
	ck_assert_int_ne(cli_config_text("hub a:1\n\ntoken x\n", &cf, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, ":3: unknown keyword \"token\""));
	cli_config_free(&cf);
	ck_assert_int_ne(cli_config_text("tls-ca /a /b\n", &cf, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, ":1: tls-ca takes one value"));
	cli_config_free(&cf);
	ck_assert_int_ne(cli_config_text("hub a:1\nhub b:2\n", &cf, &err), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, ":2: hub given twice"));
	cli_config_free(&cf);

	/* The default file may be absent; a named one may not. */
	ck_assert_int_eq(cli_config_load(&cf, "/nonexistent/cli.conf", false, &err), 0);
	ck_assert_ptr_null(cf.hub);
	ck_assert_int_ne(cli_config_load(&cf, "/nonexistent/cli.conf", true, &err), 0);
	ck_assert_int_eq(err.code, GRPC_STATUS_NOT_FOUND);
}
END_TEST

START_TEST(test_cli_config_precedence)
{
	struct cli_config cf = { 0 };
	struct cli c = { 0 };
	struct tsr_err err;

	ck_assert_int_eq(cli_config_text("hub file:1\ntoken-file /file-token\n"
					 "tls-ca /file-ca\ntls-key /file-key\n"
					 "tls-name file.internal\n", &cf, &err), 0);
	/* What the environment (or a flag) gave stays; the file fills the rest. */
	c.hub = "env:1";
	c.tls_ca = "/env-ca";
	cli_config_apply(&cf, &c);
	ck_assert_str_eq(c.hub, "env:1");
	ck_assert_str_eq(c.tls_ca, "/env-ca");
	ck_assert_str_eq(c.token_file, "/file-token");
	ck_assert_str_eq(c.tls_key, "/file-key");
	ck_assert_str_eq(c.tls_name, "file.internal");
	ck_assert_ptr_null(c.tls_cert);
	memset(&c, 0, sizeof(c));
	c.tls_name = "env.internal";
	cli_config_apply(&cf, &c);
	ck_assert_str_eq(c.tls_name, "env.internal");

	/* A token from the environment also beats the file's token-file. */
	memset(&c, 0, sizeof(c));
	c.token = "secret";
	cli_config_apply(&cf, &c);
	ck_assert_ptr_null(c.token_file);
	ck_assert_str_eq(c.hub, "file:1");
	cli_config_free(&cf);
}
END_TEST

START_TEST(test_cli_config_path)
{
	struct tsr_err err;
	char path[CLI_CONFIG_PATH_MAX];
	bool must_exist;

	ck_assert_int_eq(setenv("HOME", "/home/u", 1), 0);
	ck_assert_int_eq(unsetenv("TESSERA_CONFIG"), 0);
	ck_assert_int_eq(cli_config_path(path, sizeof(path), &must_exist, &err), 0);
	ck_assert_str_eq(path, "/home/u/.config/tessera/cli.conf");
	ck_assert(!must_exist);
	ck_assert_int_eq(setenv("TESSERA_CONFIG", "/etc/tessera/cli.conf", 1), 0);
	ck_assert_int_eq(cli_config_path(path, sizeof(path), &must_exist, &err), 0);
	ck_assert_str_eq(path, "/etc/tessera/cli.conf");
	ck_assert(must_exist);
	ck_assert_int_ne(cli_config_path(path, 8, &must_exist, &err), 0);
}
END_TEST

static Suite *hub_suite(void)
{
	Suite *s = suite_create("hub");
	TCase *tc;

	tc = tcase_create("cursor");
	tcase_add_test(tc, test_stream_pos);
	tcase_add_test(tc, test_cursor_round_trip);
	tcase_add_test(tc, test_cursor_rejects);
	tcase_add_test(tc, test_cursor_too_long);
	suite_add_tcase(s, tc);

	tc = tcase_create("page_token");
	tcase_add_test(tc, test_page_token);
	suite_add_tcase(s, tc);

	tc = tcase_create("config");
	tcase_add_test(tc, test_config_ok);
	tcase_add_test(tc, test_config_rejects);
	tcase_add_test(tc, test_config_spoke_limits);
	tcase_add_test(tc, test_config_tls);
	suite_add_tcase(s, tc);

	tc = tcase_create("cli_config");
	tcase_add_test(tc, test_cli_config_lines);
	tcase_add_test(tc, test_cli_config_precedence);
	tcase_add_test(tc, test_cli_config_path);
	suite_add_tcase(s, tc);

	tc = tcase_create("placement");
	tcase_add_test(tc, test_placement_least_loaded);
	tcase_add_test(tc, test_placement_labels);
	tcase_add_test(tc, test_placement_check_labels);
	tcase_add_test(tc, test_placement_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("spokes");
	tcase_add_test(tc, test_spoke_state);
	tcase_add_test(tc, test_status_name);
	suite_add_tcase(s, tc);

	tc = tcase_create("auth");
	tcase_add_test(tc, test_token);
	tcase_add_test(tc, test_auth_check);
	suite_add_tcase(s, tc);

	tc = tcase_create("json");
	tcase_add_test(tc, test_json_escaping);
	tcase_add_test(tc, test_json_limits);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (sodium_init() < 0)
		return 1;
	sr = srunner_create(hub_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
