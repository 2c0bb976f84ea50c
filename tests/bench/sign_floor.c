/*
 * A floor of the perf benchmark (perf_bench.sh): what one Ed25519
 * signature and its check cost on this machine, through libsodium as
 * common/sign.c makes and checks every command and reply.
 *
 *   sign-floor N    signs a 256-byte message and verifies the signature,
 *                   N times; prints the p50 and p90 of one pair in µs
 *
 * One line of key=value.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIGN_FLOOR_MSG 256 /* about a relayed command or reply */

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int run(long n)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	unsigned char msg[SIGN_FLOOR_MSG], sig[crypto_sign_BYTES];
	double *lat = calloc((size_t)n, sizeof(*lat)), t;
	int rc = 1;

	if (lat == NULL || sodium_init() < 0 || crypto_sign_keypair(pk, sk) != 0)
		goto out;
	randombytes_buf(msg, sizeof(msg));
	for (long i = 0; i < n; i++) {
		msg[0] = (unsigned char)i;
		t = now_us();
		if (crypto_sign_detached(sig, NULL, msg, sizeof(msg), sk) != 0 ||
		    crypto_sign_verify_detached(sig, msg, sizeof(msg), pk) != 0)
			goto out;
		lat[i] = now_us() - t;
	}
	qsort(lat, (size_t)n, sizeof(*lat), cmp_double);
	printf("p50_us=%.1f p90_us=%.1f\n", lat[(n - 1) / 2], lat[(n - 1) * 9 / 10]);
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "sign-floor: libsodium failed\n");
	sodium_memzero(sk, sizeof(sk));
	free(lat);
	return rc;
}

int main(int argc, char **argv)
{
	long n;

	if (argc == 2 && (n = atol(argv[1])) > 0)
		return run(n);
	fprintf(stderr, "usage: sign-floor N\n");
	return 2;
}
