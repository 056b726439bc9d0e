/*
 * crash_writer DATA_DIR ACCOUNT_ID SEED: appends messages to the account's
 * INBOX until killed, for tests/e2e/test_crash.py. For each message it
 * prints, flushed,
 *
 *   BEGIN <sha256>       before the first byte goes to the store
 *   ACK <uid> <sha256>   once store_writer_commit() returned success
 *
 * Every message differs (the seed and a counter are in it); sizes vary from
 * a few hundred bytes to a few hundred KiB and the bytes go to the writer in
 * pieces of varying size, so that a SIGKILL can land anywhere.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/buf.h"
#include "store/store.h"

static uint64_t rng_state;

static uint64_t
rng(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static void
make_message(struct buf *b, unsigned long long seed, unsigned long n)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789 ";
	size_t size, i, col = 0;

	buf_reset(b);
	buf_printf(b, "From: writer@crash.test\r\nTo: demo@example.test\r\n"
	    "Subject: crash %llu %lu\r\nMessage-ID: <%llu.%lu@crash.test>\r\n\r\n",
	    seed, n, seed, n);
	/* Mostly small, sometimes large. */
	size = rng() % 8 == 0 ? rng() % (300 * 1024) : rng() % 4096;
	for (i = 0; i < size; i++) {
		if (col == 76) {
			buf_puts(b, "\r\n");
			col = 0;
		} else {
			buf_putc(b, alphabet[rng() % (sizeof(alphabet) - 1)]);
			col++;
		}
	}
	buf_puts(b, "\r\n");
}

static void
sha256_hex(const void *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen, i;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (i = 0; i < mdlen; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 0xf];
	}
	out[2 * mdlen] = '\0';
}

int
main(int argc, char **argv)
{
	struct store_account *acct;
	struct store_quota quota = { 0, 0 };
	struct store_target t;
	struct store_writer *w;
	struct store *store;
	struct buf msg = BUF_INIT;
	const char *error;
	char hex[65];
	unsigned long long seed;
	unsigned long n;
	size_t off, piece;

	if (argc != 4) {
		fprintf(stderr, "usage: crash_writer DATA_DIR ACCOUNT_ID SEED\n");
		return 2;
	}
	seed = strtoull(argv[3], NULL, 10);
	rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
	if (store_open(argv[1], &store, &error) < 0 ||
	    store_account_open(store, strtoll(argv[2], NULL, 10), &quota, &acct, &error) < 0) {
		fprintf(stderr, "crash_writer: %s\n", error);
		return 1;
	}
	for (n = 0;; n++) {
		make_message(&msg, seed, n);
		sha256_hex(msg.data, msg.len, hex);
		printf("BEGIN %s\n", hex);
		fflush(stdout);
		if (store_writer_new(store, &w, &error) < 0) {
			fprintf(stderr, "crash_writer: %s\n", error);
			return 1;
		}
		for (off = 0; off < msg.len; off += piece) {
			piece = 1 + rng() % 16384;
			if (piece > msg.len - off)
				piece = msg.len - off;
			if (store_writer_write(w, msg.data + off, piece, &error) < 0) {
				fprintf(stderr, "crash_writer: %s\n", error);
				return 1;
			}
		}
		memset(&t, 0, sizeof(t));
		t.acct = acct;
		t.mailbox_name = "INBOX";
		if (store_writer_commit(w, &t, 1, &error) != 1) {
			fprintf(stderr, "crash_writer: commit failed: %s\n",
			    t.error != STORE_OK ? "target refused" : error);
			return 1;
		}
		store_writer_free(&w);
		printf("ACK %u %s\n", t.uid, hex);
		fflush(stdout);
	}
}
