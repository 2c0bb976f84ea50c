/* tool_util: public key files for the test-only tools. */
#include "tool_util.h"

#include <stdio.h>
#include <string.h>

int tool_read_pub(const char *path, struct sign_pubkey *pub, struct tsr_err *err)
{
	char line[SIGN_PUBKEY_TEXT_MAX + 2];
	FILE *f = fopen(path, "r");
	int rc = -1;

	if (f == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "cannot open %s", path);
	if (fgets(line, sizeof(line), f) == NULL) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "%s is empty", path);
		goto out;
	}
	line[strcspn(line, "\n")] = '\0';
	rc = sign_pubkey_parse(line, pub, err);
out:
	fclose(f);
	return rc;
}
