/*
 * RFC 5322 address lists (section 3.4, with the obsolete syntax of 4.4):
 * display names, quoted strings, comments, angle addresses, source routes
 * and groups, read leniently and without recursion, in the shape IMAP's
 * ENVELOPE wants (RFC 3501 section 7.4.2).
 */
#ifndef PETREL_MAIL_ADDRESS_H
#define PETREL_MAIL_ADDRESS_H

#include <stddef.h>

/* At most this many entries are kept from one list (groups count two). */
#define MAIL_ADDRESS_MAX 10000

/* What stands in for a part the address lacks ("joe", "<>"), as Dovecot
 * writes them: a NIL host would mean a group. */
#define MAIL_ADDRESS_NO_MAILBOX "MISSING_MAILBOX"
#define MAIL_ADDRESS_NO_HOST "MISSING_DOMAIN"

/*
 * One address, or a group marker: a group starts with an entry whose host
 * is NULL and mailbox is the group's name, and ends with an entry whose
 * mailbox and host are both NULL. Strings are allocated; name and route are
 * NULL when absent. RFC 2047 encoded-words are left as they are.
 */
struct mail_address {
	char *name;     /* display name, quotes and escapes removed */
	char *route;    /* obsolete source route, "@a,@b" */
	char *mailbox;  /* local part */
	char *host;     /* domain */
};

/* Parses s[0..len); returns the number of entries in *list_r (caller frees
 * with mail_address_free; *list_r is NULL when there are none). Entries past
 * MAIL_ADDRESS_MAX are dropped; *truncated_r (if not NULL) tells. */
size_t mail_address_parse(const char *s, size_t len, struct mail_address **list_r,
    int *truncated_r);
void mail_address_free(struct mail_address **list, size_t n);

#endif
