/* error: filling a struct tsr_err. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

int tsr_err_set(struct tsr_err *err, grpc_status_code code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

void tsr_err_clear(struct tsr_err *err)
{
	err->code = GRPC_STATUS_OK;
	err->msg[0] = '\0';
}
