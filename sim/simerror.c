#include "simerror.h"

#include <stdarg.h>
#include <stdio.h>

enum verr simerror_invalid(struct simerror *err, int code, const char *fmt, ...)
{
	va_list ap;

	err->status = 400;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	return VERR_INVALID;
}
