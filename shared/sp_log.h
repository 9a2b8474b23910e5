/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sp_log.h - the one log module of each program (probe, aggregator,
 * launcher). Every line is tagged with the process role. Library code in
 * shared/ (ring, control channel) never logs; it returns -errno.
 */
#ifndef SP_LOG_H
#define SP_LOG_H

#include <stdarg.h>

#define SP_LOG_WARN	0
#define SP_LOG_INFO	1
#define SP_LOG_DEBUG	2

/* role: "probe", "aggregator", "splitprof"; level: SP_LOG_* (max shown). */
void log_init(const char *role, int level);
int log_level(void);

/* log_warn appends ": strerror(errno)"; log_warnx does not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

#endif /* SP_LOG_H */
