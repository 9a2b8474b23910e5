/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * users.h - uid -> user name for __meta_process_username. The table is
 * read from /etc/passwd once at startup, before the sandbox forbids opens;
 * users added later show up as their uid. NSS (LDAP, sssd) is not asked:
 * that would need sockets and files the sandbox does not allow.
 */
#ifndef AGG_USERS_H
#define AGG_USERS_H

#include <stdint.h>

#define USERS_MAX		65536		/* entries kept */
#define USERS_FILE_MAX		(16u << 20)	/* bytes of passwd read */

struct users;

/* Returns 0 or -errno. A missing file gives an empty table, not an error. */
int users_load(const char *path, struct users **out);
/* Parse passwd text (tests, and users_load). */
int users_parse(const char *text, size_t len, struct users **out);
/* The name for uid, or NULL when unknown. */
const char *users_name(const struct users *u, uint32_t uid);
void users_free(struct users *u);

#endif /* AGG_USERS_H */
