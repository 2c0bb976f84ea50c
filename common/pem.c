/* pem: bounded whole-file reads of PEM material, wiped on free. */
#include "pem.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pem_read(const char *path, const char *what, char **out, size_t *len, struct tsr_err *err)
{
	char *buf = NULL;
	size_t n = 0;
	ssize_t r;
	int fd, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION, "%s %s: %s", what, path,
			    strerror(errno));
		goto out;
	}
	/* One byte more than the limit tells a too-large file from a full one. */
	buf = malloc(PEM_FILE_MAX + 2);
	if (buf == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	while (n <= PEM_FILE_MAX) {
		r = read(fd, buf + n, PEM_FILE_MAX + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION, "%s %s: %s", what, path,
				    strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > PEM_FILE_MAX) {
		tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION, "%s %s: larger than %d bytes",
			    what, path, PEM_FILE_MAX);
		goto out;
	}
	buf[n] = '\0';
	if (n == 0 || strstr(buf, "-----BEGIN ") == NULL) {
		tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION, "%s %s: not a PEM file", what,
			    path);
		goto out;
	}
	*out = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	pem_free(buf, PEM_FILE_MAX + 2);
	if (fd >= 0)
		close(fd);
	return rc;
}

void pem_free(char *buf, size_t len)
{
	if (buf == NULL)
		return;
	sodium_memzero(buf, len);
	free(buf);
}
