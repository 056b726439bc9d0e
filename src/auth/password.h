/*
 * Password hashes. New passwords get Argon2id (libsodium) and the SCRAM-SHA-256
 * keys; hashes imported from Dovecot keep working: {SHA512-CRYPT} and
 * {BLF-CRYPT} through crypt_r, {ARGON2ID} (and {ARGON2I}) through libsodium,
 * {PLAIN}. A successful login with anything but our current Argon2id
 * parameters is rehashed (password_needs_rehash).
 *
 * All of these are slow on purpose: call them off the I/O threads.
 */
#ifndef PETREL_AUTH_PASSWORD_H
#define PETREL_AUTH_PASSWORD_H

#include <stddef.h>
#include <stdint.h>

#include "directory/directory.h"

#define PASSWORD_MAX 1024          /* bytes in a plaintext password */
#define SCRAM_ITERATIONS 4096
#define SCRAM_SALT_SIZE 16

/* Initialises libsodium and makes the hash password_verify_dummy() checks
 * against (one Argon2id hash: call it at start-up, off the I/O threads, so
 * the first unknown user costs no more than any other). Thread-safe; the other
 * functions call what they need themselves. */
void password_init(void);

/* Fills cred with a new Argon2id hash and SCRAM-SHA-256 keys of plain.
 * Returns 0, or -1 with *error_r. */
int password_make_credentials(const char *plain, struct directory_credentials *cred,
    const char **error_r);

/* Checks plain against a stored "{SCHEME}..." hash in constant time for the
 * scheme. Returns 1 match, 0 mismatch, -1 unsupported or malformed hash. */
int password_verify(const char *stored, const char *plain);

/* Burns the time of one Argon2id verification, so that an unknown user costs
 * the same as a wrong password. */
void password_verify_dummy(const char *plain);

/* 1 when the stored hash should be replaced after a successful login. */
int password_needs_rehash(const char *stored);

/* 1 when the scheme of stored is one we can verify. */
int password_scheme_supported(const char *stored);

/* SCRAM-SHA-256 (RFC 5802, 7677): derives StoredKey and ServerKey. */
void scram_derive_keys(const char *plain, const unsigned char *salt, size_t salt_len,
    uint32_t iterations, unsigned char stored_key[SCRAM_KEY_SIZE],
    unsigned char server_key[SCRAM_KEY_SIZE]);

#endif
