/* SPDX-License-Identifier: BSD-2-Clause */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sp_log.h"

static const char *log_role = "splitprof";
static int log_max = SP_LOG_INFO;

void log_init(const char *role, int level)
{
	log_role = role;
	log_max = level;
}

int log_level(void)
{
	return log_max;
}

/* One write per line so lines from two processes on one stderr don't mix. */
static void log_vemit(const char *tag, int err, const char *fmt, va_list ap)
{
	char line[1024];
	int n;

	n = snprintf(line, sizeof(line), "%s: %s", log_role, tag);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	if (err)
		n += snprintf(line + n, sizeof(line) - (size_t)n, ": %s",
			      strerror(err));
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

#define LOG_BODY(level, tag, err)			\
	do {						\
		va_list ap;				\
		if (log_max < (level))			\
			return;				\
		va_start(ap, fmt);			\
		log_vemit(tag, err, fmt, ap);		\
		va_end(ap);				\
	} while (0)

void log_warn(const char *fmt, ...)
{
	int err = errno;

	LOG_BODY(SP_LOG_WARN, "warning: ", err);
	errno = err;
}

void log_warnx(const char *fmt, ...)
{
	LOG_BODY(SP_LOG_WARN, "warning: ", 0);
}

void log_info(const char *fmt, ...)
{
	LOG_BODY(SP_LOG_INFO, "", 0);
}

void log_debug(const char *fmt, ...)
{
	LOG_BODY(SP_LOG_DEBUG, "debug: ", 0);
}

void fatal(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vemit("fatal: ", err, fmt, ap);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vemit("fatal: ", 0, fmt, ap);
	va_end(ap);
	exit(1);
}
