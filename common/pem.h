/*
 * pem: reading a PEM file (certificate, CA bundle or private key) whole
 * into memory for gRPC's credentials, bounded in size, with errors that
 * name the file. Buffers are wiped when freed since they may hold a key.
 */
#ifndef TSR_PEM_H
#define TSR_PEM_H

#include <stddef.h>

#include "error.h"

/* Larger than any sane chain or CA bundle, small enough to read at once. */
#define PEM_FILE_MAX (256 * 1024)

/* *out is NUL-terminated and malloc'd; free it with pem_free(*out, *len). */
int pem_read(const char *path, const char *what, char **out, size_t *len, struct tsr_err *err);
void pem_free(char *buf, size_t len);

#endif
