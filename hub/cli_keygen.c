/*
 * cli_keygen: tessera keygen PATH. Writes a new Ed25519 secret key to
 * PATH (mode 0600, never over an existing file) and its public key to
 * PATH.pub, and prints the public key text and key id for configuration.
 */
#include <stdio.h>

#include "cli.h"
#include "cli_json.h"
#include "sign.h"

int cli_keygen(struct cli *c, int argc, char **argv)
{
	char pub[SIGN_PUBKEY_TEXT_MAX + 16];
	struct sign_key key;
	struct tsr_err err;
	struct json j;
	int rc = CLI_EXIT_FAIL;

	if (cli_getopt(c, argc, argv, CLI_NO_SHORTS, cli_global_options) != -1 ||
	    argc - optind != 1)
		return cli_usage("keygen");
	json_init(&j);
	if (sign_init(&err) != 0 || sign_keygen(&key, &err) != 0 ||
	    sign_key_save(&key, argv[optind], &err) != 0)
		goto out;
	if (sign_pubkey_format(&key.pub, pub, sizeof(pub)) != 0) {
		tsr_err_set(&err, GRPC_STATUS_INTERNAL, "cannot format the public key");
		goto out;
	}
	if (!c->json) {
		printf("%s\nkey id: %s\n", pub, key.pub.id);
	} else {
		json_object_begin(&j);
		json_key(&j, "path");
		json_string(&j, argv[optind]);
		json_key(&j, "publicKey");
		json_string(&j, pub);
		json_key(&j, "keyId");
		json_string(&j, key.pub.id);
		json_object_end(&j);
		if (json_flush(&j, stdout, &err) != 0)
			goto out;
		putchar('\n');
	}
	rc = CLI_EXIT_OK;
out:
	if (rc != CLI_EXIT_OK)
		cli_fail(&err);
	sign_key_wipe(&key);
	json_free(&j);
	return rc;
}
