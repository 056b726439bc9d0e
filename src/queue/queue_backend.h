/*
 * What a queue backend implements. Only src/queue includes this.
 *
 * queue.c checks arguments and hands each call to the backend; the backend
 * does its own locking (its operations may run on several threads at once)
 * and its own durability. Return conventions are those of queue.h.
 */
#ifndef PETREL_QUEUE_QUEUE_BACKEND_H
#define PETREL_QUEUE_QUEUE_BACKEND_H

#include "queue/queue.h"

struct queue_backend;
struct queue_backend_writer;

struct queue_backend_ops {
	const char *name;
	int (*open)(const char *data_dir, struct queue_backend **be_r, char **error_r);
	void (*close)(struct queue_backend *be);
	int (*writer_new)(struct queue_backend *be, struct queue_backend_writer **w_r,
	    const char **error_r);
	int (*writer_write)(struct queue_backend_writer *w, const void *data, size_t len,
	    const char **error_r);
	uint64_t (*writer_size)(const struct queue_backend_writer *w);
	int (*writer_commit)(struct queue_backend_writer *w, struct queue_envelope *env,
	    const char **error_r);
	void (*writer_free)(struct queue_backend_writer *w);
	int (*list)(struct queue_backend *be, struct queue_envelope **list_r,
	    size_t *count_r, const char **error_r);
	int (*get)(struct queue_backend *be, const char *id, struct queue_envelope *env_r,
	    const char **error_r);
	int (*update)(struct queue_backend *be, const struct queue_envelope *env,
	    const char **error_r);
	int (*message_open)(struct queue_backend *be, const char *id, const char **error_r);
	int (*remove)(struct queue_backend *be, const char *id, const char **error_r);
};

/* The spool in DATA/queue/ (queue_spool.c). */
extern const struct queue_backend_ops queue_spool_ops;

/* Envelope files (queue_envelope.c): the text format the spool stores. */
void queue_envelope_format(struct buf *out, const struct queue_envelope *env);
/* 0 parsed, -1 malformed. */
int queue_envelope_parse(const char *text, size_t len, struct queue_envelope *env);
/* 1 when id looks like an id queue_writer_commit makes. */
int queue_id_valid(const char *id);

#endif
