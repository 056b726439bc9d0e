/*
 * MAIL FROM / RCPT TO arguments: the path, then ESMTP parameters. Strict
 * about parameters and about what an address may look like, since the
 * address is where relay tricks hide.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"
#include "proto/smtp/smtp.h"
#include "queue/queue.h"

#define PARAMS_MAX 16

struct smtp_param {
	const char *key;
	size_t keylen;
	const char *value;          /* NULL: no "=" */
	size_t valuelen;
};

static int
key_is(const struct smtp_param *p, const char *name)
{
	return strlen(name) == p->keylen && strncasecmp(p->key, name, p->keylen) == 0;
}

static int
value_is(const struct smtp_param *p, const char *name)
{
	return p->value != NULL && strlen(name) == p->valuelen &&
	    strncasecmp(p->value, name, p->valuelen) == 0;
}

/* Length of one well-formed UTF-8 sequence at s (of at most len bytes),
 * 0 when it is not one. Overlongs, surrogates and code points past U+10FFFF
 * are refused. */
static size_t
utf8_seq(const unsigned char *s, size_t len)
{
	size_t n, i;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Characters allowed in a local part besides letters, digits and UTF-8:
 * atext without "%" and "!" (relay tricks) and without what a shell would
 * interpret. */
static int
local_char(unsigned char c)
{
	return c != '\0' && (isalnum(c) || strchr("#'*+-/=?^_~.", c) != NULL);
}

/* What a shell (a .forward pipe, a careless script) would interpret:
 * refused with a text that says so. */
static int
shell_char(unsigned char c)
{
	return c != '\0' && strchr("|`$&;<>(){}\\", c) != NULL;
}

int
smtp_address_check(const char *addr, size_t len, int smtputf8, const char **reply_r)
{
	const unsigned char *a = (const unsigned char *)addr;
	size_t i, at = len, ats = 0, label = 0, n;

	if (memchr(addr, '\0', len) != NULL) {
		*reply_r = "501 5.5.2 NUL byte in address";
		return -1;
	}
	if (len > 0 && a[0] == '@') {
		*reply_r = memchr(addr, ':', len) != NULL ?
		    "553 5.7.1 Source routes are not accepted" :
		    "553 5.1.3 Empty local part";
		return -1;
	}
	if (len > 0 && a[0] == '"') {
		*reply_r = "553 5.1.3 Quoted local parts are not accepted";
		return -1;
	}
	for (i = 0; i < len; i++) {
		if (a[i] == '@') {
			if (ats++ == 0)
				at = i;
		}
		if (a[i] < 0x20 || a[i] == 0x7f) {
			*reply_r = "553 5.1.3 Control character in address";
			return -1;
		}
		if (a[i] >= 0x80 && !smtputf8) {
			*reply_r = "553 5.6.7 Non-ASCII address needs SMTPUTF8";
			return -1;
		}
	}
	if (ats == 0) {
		*reply_r = "553 5.1.3 Address must be local-part@domain";
		return -1;
	}
	if (ats > 1) {
		*reply_r = "553 5.7.1 Relaying via user@host@host is not allowed";
		return -1;
	}
	if (at == 0) {
		*reply_r = "553 5.1.3 Empty local part";
		return -1;
	}
	if (at > SMTP_LOCAL_MAX) {
		*reply_r = "553 5.1.3 Local part too long (at most 64 octets)";
		return -1;
	}
	if (len - at - 1 > SMTP_DOMAIN_MAX) {
		*reply_r = "553 5.1.3 Domain too long (at most 255 octets)";
		return -1;
	}
	if (len + 2 > SMTP_PATH_MAX) {
		*reply_r = "553 5.1.3 Address too long (at most 254 octets)";
		return -1;
	}
	for (i = 0; i < at; i += n) {
		n = 1;
		if (a[i] == '%') {
			*reply_r = "553 5.7.1 Relaying with the % hack is not allowed";
			return -1;
		}
		if (a[i] == '!') {
			*reply_r = "553 5.7.1 Relaying with ! paths is not allowed";
			return -1;
		}
		if (a[i] >= 0x80) {
			if ((n = utf8_seq(a + i, at - i)) == 0) {
				*reply_r = "553 5.6.7 Invalid UTF-8 in address";
				return -1;
			}
			continue;
		}
		if (shell_char(a[i])) {
			*reply_r = "553 5.1.3 Shell metacharacters are not allowed in addresses";
			return -1;
		}
		if (!local_char(a[i])) {
			*reply_r = "553 5.1.3 Invalid character in local part";
			return -1;
		}
		if (a[i] == '.' && (i == 0 || i + 1 == at || a[i + 1] == '.')) {
			*reply_r = "553 5.1.3 Misplaced dot in local part";
			return -1;
		}
	}
	i = at + 1;
	if (i == len) {
		*reply_r = "553 5.1.3 Empty domain";
		return -1;
	}
	if (a[i] == '[') {
		*reply_r = "553 5.7.1 Address literals are not accepted";
		return -1;
	}
	for (; i <= len; i += n) {
		n = 1;
		if (i == len || a[i] == '.') {
			if (label == 0 || a[i - 1] == '-') {
				*reply_r = "553 5.1.3 Invalid domain";
				return -1;
			}
			label = 0;
			continue;
		}
		if (a[i] >= 0x80) {
			if ((n = utf8_seq(a + i, len - i)) == 0) {
				*reply_r = "553 5.6.7 Invalid UTF-8 in address";
				return -1;
			}
		} else if (!isalnum(a[i]) && !(a[i] == '-' && label > 0)) {
			*reply_r = shell_char(a[i]) ?
			    "553 5.1.3 Shell metacharacters are not allowed in addresses" :
			    "553 5.1.3 Invalid character in domain";
			return -1;
		}
		label += n;
		if (label > 63) {
			*reply_r = "553 5.1.3 Domain label too long";
			return -1;
		}
	}
	return 0;
}

/* Finds the path "<...>" at *p and sets addr and len to what is inside. */
static int
parse_path(const char **p, const char **addr, size_t *len, const char **reply_r)
{
	const char *s = *p, *start;
	int quoted = 0;

	while (*s == ' ')
		s++;
	if (*s != '<') {
		*reply_r = "501 5.5.4 Syntax: address must be in angle brackets";
		return -1;
	}
	start = ++s;
	for (; *s != '\0'; s++) {
		if (quoted && *s == '\\' && s[1] != '\0')
			s++;
		else if (*s == '"')
			quoted = !quoted;
		else if (*s == '>' && !quoted)
			break;
	}
	if (*s != '>') {
		*reply_r = "501 5.5.4 Syntax: missing closing angle bracket";
		return -1;
	}
	*addr = start;
	*len = (size_t)(s - start);
	*p = s + 1;
	return 0;
}

/* Splits "K=V K2" into params; -1 on bad syntax or too many. */
static int
parse_params(const char *s, struct smtp_param *params, size_t *n_r, const char **reply_r)
{
	size_t n = 0;

	if (*s != '\0' && *s != ' ') {
		*reply_r = "501 5.5.4 Syntax: space expected after the address";
		return -1;
	}
	for (;;) {
		const char *k;

		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		if (n == PARAMS_MAX) {
			*reply_r = "501 5.5.4 Too many parameters";
			return -1;
		}
		k = s;
		while (isalnum((unsigned char)*s) || (*s == '-' && s != k))
			s++;
		if (s == k || (*s != '=' && *s != ' ' && *s != '\0')) {
			*reply_r = "501 5.5.4 Syntax error in parameters";
			return -1;
		}
		params[n].key = k;
		params[n].keylen = (size_t)(s - k);
		params[n].value = NULL;
		params[n].valuelen = 0;
		if (*s == '=') {
			const char *v = ++s;

			while (*s != '\0' && *s != ' ') {
				unsigned char c = (unsigned char)*s;

				if (c < 33 || c > 126 || c == '=') {
					*reply_r = "501 5.5.4 Invalid character in a parameter value";
					return -1;
				}
				s++;
			}
			if (s == v) {
				*reply_r = "501 5.5.4 Empty parameter value";
				return -1;
			}
			params[n].value = v;
			params[n].valuelen = (size_t)(s - v);
		}
		n++;
	}
	*n_r = n;
	return 0;
}

static int
duplicate(const struct smtp_param *params, size_t i)
{
	size_t j;

	for (j = 0; j < i; j++)
		if (params[j].keylen == params[i].keylen &&
		    strncasecmp(params[j].key, params[i].key, params[i].keylen) == 0)
			return 1;
	return 0;
}

static int
xtext_valid(const char *v, size_t len)
{
	char *copy = xstrndup(v, len), *dec = queue_xtext_decode(copy);
	int ok = dec != NULL;

	free(dec);
	free(copy);
	return ok;
}

static const char *
expect_keyword(const char *args, const char *kw)
{
	size_t n = strlen(kw);

	if (strncasecmp(args, kw, n) != 0)
		return NULL;
	return args + n;
}

int
smtp_parse_mail(const char *args, unsigned ext, struct smtp_mail *mail, const char **reply_r)
{
	struct smtp_param params[PARAMS_MAX];
	const char *p, *addr;
	size_t i, n, len;

	memset(mail, 0, sizeof(*mail));
	if ((p = expect_keyword(args, "FROM:")) == NULL) {
		*reply_r = "501 5.5.4 Syntax: MAIL FROM:<address>";
		return -1;
	}
	if (parse_path(&p, &addr, &len, reply_r) < 0 || parse_params(p, params, &n, reply_r) < 0)
		return -1;
	if (n > 0 && !(ext & SMTP_EXT_ESMTP)) {
		*reply_r = "555 5.5.4 MAIL parameters need EHLO";
		return -1;
	}
	for (i = 0; i < n; i++) {
		const struct smtp_param *pa = &params[i];

		if (duplicate(params, i)) {
			*reply_r = "501 5.5.4 Duplicate MAIL parameter";
			goto fail;
		}
		if (key_is(pa, "SIZE")) {
			uint64_t v = 0;
			size_t j;

			if (pa->value == NULL || pa->valuelen > 20) {
				*reply_r = "501 5.5.4 Syntax: SIZE=octets";
				goto fail;
			}
			for (j = 0; j < pa->valuelen; j++) {
				if (!isdigit((unsigned char)pa->value[j])) {
					*reply_r = "501 5.5.4 Syntax: SIZE=octets";
					goto fail;
				}
				/* Past what any limit can be: "too big". */
				if (v > UINT64_MAX / 100)
					v = UINT64_MAX;
				else
					v = v * 10 + (uint64_t)(pa->value[j] - '0');
			}
			mail->size = v;
		} else if (key_is(pa, "BODY")) {
			if (value_is(pa, "7BIT"))
				mail->body = SMTP_BODY_7BIT;
			else if (value_is(pa, "8BITMIME"))
				mail->body = SMTP_BODY_8BITMIME;
			else if (value_is(pa, "BINARYMIME"))
				mail->body = SMTP_BODY_BINARYMIME;
			else {
				*reply_r = "501 5.5.4 Syntax: BODY=7BIT|8BITMIME|BINARYMIME";
				goto fail;
			}
			mail->body_given = 1;
		} else if (key_is(pa, "SMTPUTF8")) {
			if (pa->value != NULL) {
				*reply_r = "501 5.5.4 SMTPUTF8 takes no value";
				goto fail;
			}
			mail->smtputf8 = 1;
		} else if (key_is(pa, "RET")) {
			if (value_is(pa, "FULL"))
				mail->ret = SMTP_RET_FULL;
			else if (value_is(pa, "HDRS"))
				mail->ret = SMTP_RET_HDRS;
			else {
				*reply_r = "501 5.5.4 Syntax: RET=FULL|HDRS";
				goto fail;
			}
		} else if (key_is(pa, "ENVID")) {
			if (pa->value == NULL || pa->valuelen > SMTP_ENVID_MAX ||
			    !xtext_valid(pa->value, pa->valuelen)) {
				*reply_r = "501 5.5.4 Syntax: ENVID=xtext (at most 100 characters)";
				goto fail;
			}
			mail->envid = xstrndup(pa->value, pa->valuelen);
		} else if (key_is(pa, "REQUIRETLS")) {
			if (pa->value != NULL) {
				*reply_r = "501 5.5.4 REQUIRETLS takes no value";
				goto fail;
			}
			if (!(ext & SMTP_EXT_REQUIRETLS)) {
				*reply_r = "530 5.7.10 REQUIRETLS needs a TLS session";
				goto fail;
			}
			mail->requiretls = 1;
		} else if (key_is(pa, "AUTH")) {
			/* RFC 4954 5: accepted, and not trusted. */
			if (pa->value == NULL ||
			    (!value_is(pa, "<>") && !xtext_valid(pa->value, pa->valuelen))) {
				*reply_r = "501 5.5.4 Syntax: AUTH=xtext";
				goto fail;
			}
		} else {
			*reply_r = "555 5.5.4 Unsupported MAIL parameter";
			goto fail;
		}
	}
	if (len > 0 && smtp_address_check(addr, len, mail->smtputf8, reply_r) < 0)
		goto fail;
	mail->sender = xstrndup(addr, len);
	return 0;
fail:
	smtp_mail_clear(mail);
	return -1;
}

int
smtp_parse_rcpt(const char *args, unsigned ext, const char *postmaster_domain,
    struct smtp_rcpt *rcpt, const char **reply_r)
{
	struct smtp_param params[PARAMS_MAX];
	const char *p, *addr;
	size_t i, n, len;

	memset(rcpt, 0, sizeof(*rcpt));
	if ((p = expect_keyword(args, "TO:")) == NULL) {
		*reply_r = "501 5.5.4 Syntax: RCPT TO:<address>";
		return -1;
	}
	if (parse_path(&p, &addr, &len, reply_r) < 0 || parse_params(p, params, &n, reply_r) < 0)
		return -1;
	if (n > 0 && !(ext & SMTP_EXT_ESMTP)) {
		*reply_r = "555 5.5.4 RCPT parameters need EHLO";
		return -1;
	}
	for (i = 0; i < n; i++) {
		const struct smtp_param *pa = &params[i];

		if (duplicate(params, i)) {
			*reply_r = "501 5.5.4 Duplicate RCPT parameter";
			goto fail;
		}
		if (key_is(pa, "NOTIFY")) {
			const char *v = pa->value, *end = v + pa->valuelen;

			if (v == NULL)
				goto bad_notify;
			while (v < end) {
				const char *comma = memchr(v, ',', (size_t)(end - v));
				size_t l = (size_t)((comma != NULL ? comma : end) - v);
				unsigned bit;

				if (l == 5 && strncasecmp(v, "NEVER", 5) == 0)
					bit = SMTP_NOTIFY_NEVER;
				else if (l == 7 && strncasecmp(v, "SUCCESS", 7) == 0)
					bit = SMTP_NOTIFY_SUCCESS;
				else if (l == 7 && strncasecmp(v, "FAILURE", 7) == 0)
					bit = SMTP_NOTIFY_FAILURE;
				else if (l == 5 && strncasecmp(v, "DELAY", 5) == 0)
					bit = SMTP_NOTIFY_DELAY;
				else
					goto bad_notify;
				if (rcpt->notify & bit)
					goto bad_notify;
				rcpt->notify |= bit;
				if (comma != NULL && comma + 1 == end)
					goto bad_notify;
				v = comma != NULL ? comma + 1 : end;
			}
			if ((rcpt->notify & SMTP_NOTIFY_NEVER) && rcpt->notify != SMTP_NOTIFY_NEVER)
				goto bad_notify;
		} else if (key_is(pa, "ORCPT")) {
			const char *semi;
			size_t j, tl;

			if (pa->value == NULL || pa->valuelen > SMTP_ORCPT_MAX ||
			    (semi = memchr(pa->value, ';', pa->valuelen)) == NULL)
				goto bad_orcpt;
			tl = (size_t)(semi - pa->value);
			if (tl == 0 || semi + 1 == pa->value + pa->valuelen)
				goto bad_orcpt;
			for (j = 0; j < tl; j++)
				if (!isalnum((unsigned char)pa->value[j]) && pa->value[j] != '-')
					goto bad_orcpt;
			if (!xtext_valid(semi + 1, pa->valuelen - tl - 1))
				goto bad_orcpt;
			rcpt->orcpt = xstrndup(pa->value, pa->valuelen);
		} else {
			*reply_r = "555 5.5.4 Unsupported RCPT parameter";
			goto fail;
		}
	}
	if (len == 0) {
		*reply_r = "553 5.1.3 The null address is not a recipient";
		goto fail;
	}
	if (len == 10 && strncasecmp(addr, "postmaster", 10) == 0) {
		rcpt->address = xasprintf("postmaster@%s", postmaster_domain);
		return 0;
	}
	if (smtp_address_check(addr, len, (ext & SMTP_EXT_SMTPUTF8) != 0, reply_r) < 0)
		goto fail;
	rcpt->address = xstrndup(addr, len);
	return 0;
bad_notify:
	*reply_r = "501 5.5.4 Syntax: NOTIFY=NEVER or SUCCESS,FAILURE,DELAY";
	goto fail;
bad_orcpt:
	*reply_r = "501 5.5.4 Syntax: ORCPT=addr-type;xtext";
fail:
	smtp_rcpt_clear(rcpt);
	return -1;
}

void
smtp_mail_clear(struct smtp_mail *mail)
{
	free(mail->sender);
	free(mail->envid);
	memset(mail, 0, sizeof(*mail));
}

void
smtp_rcpt_clear(struct smtp_rcpt *rcpt)
{
	free(rcpt->address);
	free(rcpt->orcpt);
	memset(rcpt, 0, sizeof(*rcpt));
}
