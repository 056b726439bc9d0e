/*
 * SRS (see queue_srs.h). The hash is base32 so that a server that changes
 * the case of the local part does not break it.
 */
#include "queue/queue_srs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "core/buf.h"
#include "core/xmalloc.h"

#define SRS_KEY_SIZE 32
#define SRS_HASH_LEN 6
#define SRS_MAX_AGE_DAYS 21

struct queue_srs {
	unsigned char key[SRS_KEY_SIZE];
	char *domain;
};

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

int
queue_srs_open(const char *data_dir, const char *domain, struct queue_srs **srs_r,
    char **error_r)
{
	struct queue_srs *srs = xcalloc(1, sizeof(*srs));
	char *path = xasprintf("%s/srs.key", data_dir), *tmp = xasprintf("%s.tmp", path);
	int fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		if (read(fd, srs->key, SRS_KEY_SIZE) == SRS_KEY_SIZE)
			rc = 0;
		else
			*error_r = xasprintf("%s: expected %d bytes", path, SRS_KEY_SIZE);
		close(fd);
	} else if (errno != ENOENT) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
	} else if (RAND_bytes(srs->key, SRS_KEY_SIZE) != 1) {
		*error_r = xstrdup("no random bytes for the SRS key");
	} else {
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, srs->key, SRS_KEY_SIZE) != SRS_KEY_SIZE || fsync(fd) < 0 ||
		    close(fd) < 0 || rename(tmp, path) < 0) {
			*error_r = xasprintf("%s: cannot write: %s", path, strerror(errno));
			unlink(tmp);
		} else {
			rc = 0;
		}
	}
	free(path);
	free(tmp);
	if (rc < 0) {
		OPENSSL_cleanse(srs->key, sizeof(srs->key));
		free(srs);
		return -1;
	}
	srs->domain = xstrdup(domain);
	*srs_r = srs;
	return 0;
}

void
queue_srs_free(struct queue_srs **srsp)
{
	struct queue_srs *srs = *srsp;

	if (srs == NULL)
		return;
	OPENSSL_cleanse(srs->key, sizeof(srs->key));
	free(srs->domain);
	free(srs);
	*srsp = NULL;
}

const char *
queue_srs_domain(const struct queue_srs *srs)
{
	return srs->domain;
}

/* HMAC over "tt=domain=local", lower-cased; SRS_HASH_LEN base32 chars. */
static void
srs_hash(const struct queue_srs *srs, const char *tt, const char *domain,
    const char *local, char out[SRS_HASH_LEN + 1])
{
	struct buf in = BUF_INIT;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t i;
	uint64_t bits = 0;

	buf_printf(&in, "%s=%s=%s", tt, domain, local);
	for (i = 0; i < in.len; i++)
		if (in.data[i] >= 'A' && in.data[i] <= 'Z')
			in.data[i] = (char)(in.data[i] + 32);
	HMAC(EVP_sha256(), srs->key, SRS_KEY_SIZE, (unsigned char *)in.data, in.len, mac, &maclen);
	buf_free(&in);
	for (i = 0; i < 5; i++)
		bits = bits << 8 | mac[i];
	for (i = 0; i < SRS_HASH_LEN; i++)
		out[i] = b32[(bits >> (35 - 5 * i)) & 31];
	out[SRS_HASH_LEN] = '\0';
}

static void
srs_day(int64_t now, char tt[3])
{
	unsigned day = (unsigned)((now / 86400) % 1024);

	tt[0] = b32[day >> 5];
	tt[1] = b32[day & 31];
	tt[2] = '\0';
}

char *
queue_srs_forward(const struct queue_srs *srs, const char *sender, int64_t now)
{
	const char *at = strrchr(sender, '@');
	char tt[3], hash[SRS_HASH_LEN + 1], *local, *res;

	if (*sender == '\0' || at == NULL || at == sender || at[1] == '\0')
		return xstrdup(sender);
	if (strcasecmp(at + 1, srs->domain) == 0)
		return xstrdup(sender);     /* ours already */
	local = xstrndup(sender, (size_t)(at - sender));
	srs_day(now, tt);
	srs_hash(srs, tt, at + 1, local, hash);
	res = xasprintf("SRS0=%s=%s=%s=%s@%s", hash, tt, at + 1, local, srs->domain);
	free(local);
	return res;
}

static int
b32_value(char c)
{
	const char *p;

	if (c >= 'A' && c <= 'Z')
		c = (char)(c + 32);
	p = c != '\0' ? strchr(b32, c) : NULL;
	return p != NULL ? (int)(p - b32) : -1;
}

int
queue_srs_reverse(const struct queue_srs *srs, const char *address, int64_t now,
    char **orig_r)
{
	const char *at = strrchr(address, '@');
	char *copy, *hash, *tt, *domain, *local, *p, want[SRS_HASH_LEN + 1];
	int hi, lo, age, rc = -1;
	unsigned today;

	if (at == NULL || strcasecmp(at + 1, srs->domain) != 0 ||
	    strncasecmp(address, "SRS0=", 5) != 0)
		return 0;
	copy = xstrndup(address + 5, (size_t)(at - address - 5));
	hash = copy;
	if ((p = strchr(hash, '=')) == NULL)
		goto out;
	*p++ = '\0';
	tt = p;
	if ((p = strchr(tt, '=')) == NULL)
		goto out;
	*p++ = '\0';
	domain = p;
	if ((p = strchr(domain, '=')) == NULL)
		goto out;
	*p++ = '\0';
	local = p;
	if (strlen(tt) != 2 || *domain == '\0' || *local == '\0' ||
	    strlen(hash) != SRS_HASH_LEN)
		goto out;
	hi = b32_value(tt[0]);
	lo = b32_value(tt[1]);
	if (hi < 0 || lo < 0)
		goto out;
	today = (unsigned)((now / 86400) % 1024);
	age = (int)((today + 1024 - (unsigned)(hi * 32 + lo)) % 1024);
	if (age > SRS_MAX_AGE_DAYS)
		goto out;
	srs_hash(srs, tt, domain, local, want);
	if (strcasecmp(want, hash) != 0)
		goto out;
	*orig_r = xasprintf("%s@%s", local, domain);
	rc = 1;
out:
	free(copy);
	return rc;
}
