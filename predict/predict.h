/* predict.h: the one interface of every access predictor in Ombra
 * (DESIGN.md "Prediction and prefetch").  Used online by the proxy's
 * prefetch engine and offline by the trace simulator (tools/ombra-sim).
 *
 * A predictor observes accesses one at a time, in trace (arrival) order,
 * and after each returns predicted future accesses as block ranges with a
 * probability and a horizon.  Predictors are pure state machines: no I/O,
 * no threads, no clocks (time comes in the access), deterministic for a
 * given input, bounded memory (each documents its bound).  One predictor
 * object serves any number of volumes (state is keyed by volume id).
 *
 * Units: offsets and lengths in bytes; blocks of cfg.block_size bytes
 * (512 or 4096), numbered from the start of the volume; time in
 * microseconds; horizon in accesses (how many accesses ahead the predicted
 * one is expected; 0 = unknown).
 *
 * Errors: constructors return NULL on bad configuration or out of memory
 * and write a message into errmsg (OMBRA_ERRMSG_LEN bytes); access never
 * fails (on allocation failure a predictor predicts nothing). */
#ifndef OMBRA_PREDICT_H
#define OMBRA_PREDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum predict_op {
	PREDICT_READ = 0,
	PREDICT_WRITE = 1,
};

struct predict_access {
	uint64_t volume_id;
	uint64_t offset; /* bytes */
	uint64_t length; /* bytes, > 0 */
	enum predict_op op;
	uint64_t time_us;
};

struct predict_candidate {
	uint64_t volume_id;
	uint64_t first_block; /* in cfg.block_size units */
	uint32_t n_blocks;    /* >= 1 */
	float probability;    /* 0..1: chance the range is read soon */
	uint32_t horizon;     /* accesses ahead; 0 = unknown */
};

struct predict_config {
	uint32_t block_size;   /* 512 or 4096 */
	size_t max_candidates; /* per access, cap of what access() returns */
	size_t memory_bytes; /* metadata budget; 0 = the predictor's default */
};

struct predictor;

/* Operations every predictor implements (a vtable, as in the kernel's
 * *_operations structs). */
struct predictor_ops {
	const char *name; /* "obl", "amp", "mithril", "lstm", "adaptive" */
	/* Observe a and write up to cap candidates to out; returns how many.
	 * out may be NULL when cap is 0 (observe only). */
	size_t (*access)(struct predictor *p, const struct predict_access *a,
			 struct predict_candidate *out, size_t cap);
	/* Free everything (p itself included). */
	void (*destroy)(struct predictor *p);
	/* Optional (NULL = unknown): bytes of memory p holds now, for
	 * checking the cfg.memory_bytes budget and for metrics. */
	size_t (*memory)(const struct predictor *p);
};

/* Common header: every predictor struct starts with this. */
struct predictor {
	const struct predictor_ops *ops;
	struct predict_config cfg;
};

/* Convenience wrappers. */
static inline size_t predictor_access(struct predictor *p,
				      const struct predict_access *a,
				      struct predict_candidate *out, size_t cap)
{
	return p->ops->access(p, a, out, cap);
}

static inline void predictor_destroy(struct predictor *p)
{
	if (p != NULL)
		p->ops->destroy(p);
}

/* Bytes p holds (0 when the predictor does not report it). */
static inline size_t predictor_memory(const struct predictor *p)
{
	return p->ops->memory != NULL ? p->ops->memory(p) : 0;
}

static inline const char *predictor_name(const struct predictor *p)
{
	return p->ops->name;
}

/* Create a predictor by name ("none", "obl", "amp", "mithril", "lstm",
 * "adaptive"); cfg copied.  model_path: weights file for "lstm" (NULL =
 * the shipped default), ignored otherwise.  NULL + errmsg on an unknown
 * name, bad cfg or missing model. */
struct predictor *predictor_create(const char *name,
				   const struct predict_config *cfg,
				   const char *model_path, char *errmsg);

#endif
