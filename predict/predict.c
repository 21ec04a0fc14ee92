/* predict.c: predictor_create(), the one constructor that picks a
 * predictor by name (predict.h), with each predictor's default
 * parameters, and the "none" predictor (observes, never predicts: the
 * baseline).
 *
 * Fails only by returning NULL with a message in errmsg: unknown name,
 * block_size not 512 or 4096, a predictor's own refusal (bad parameters,
 * an LSTM model that does not load: lstm.h) or out of memory. */
#include "predict/predict.h"

#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "predict/adaptive.h"
#include "predict/amp.h"
#include "predict/lstm.h"
#include "predict/mithril.h"
#include "predict/obl.h"
#include "predict/pred_internal.h"

static size_t none_access(struct predictor *p, const struct predict_access *a,
			  struct predict_candidate *out, size_t cap)
{
	(void)p;
	(void)a;
	(void)out;
	(void)cap;
	return 0;
}

static void none_destroy(struct predictor *p)
{
	free(p);
}

static size_t none_memory(const struct predictor *p)
{
	return sizeof(*p);
}

static const struct predictor_ops none_ops = {
    .name = "none",
    .access = none_access,
    .destroy = none_destroy,
    .memory = none_memory,
};

static struct predictor *none_create(const struct predict_config *cfg,
				     char *errmsg)
{
	struct predictor *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		ombra_errmsg_printf(errmsg, "none: out of memory");
		return NULL;
	}
	p->ops = &none_ops;
	p->cfg = *cfg;
	return p;
}

struct predictor *predictor_none_create(const struct predict_config *cfg,
					char *errmsg)
{
	return none_create(cfg, errmsg);
}

struct predictor *predictor_lstm_create(const struct predict_config *cfg,
					const char *model_path, char *errmsg)
{
	return lstm_predictor_create(cfg, model_path, errmsg);
}

struct predictor *predictor_create(const char *name,
				   const struct predict_config *cfg,
				   const char *model_path, char *errmsg)
{
	if (name == NULL || cfg == NULL) {
		ombra_errmsg_printf(errmsg, "predictor_create: no name or cfg");
		return NULL;
	}
	if (cfg->block_size != 512 && cfg->block_size != 4096) {
		ombra_errmsg_printf(errmsg,
				    "predictor %s: block_size %u is not 512 "
				    "or 4096",
				    name, cfg->block_size);
		return NULL;
	}
	if (strcmp(name, "none") == 0)
		return none_create(cfg, errmsg);
	if (strcmp(name, "obl") == 0)
		return obl_predictor_create(cfg, errmsg);
	if (strcmp(name, "amp") == 0)
		return amp_predictor_create(cfg, NULL, errmsg);
	if (strcmp(name, "mithril") == 0)
		return mithril_predictor_create(cfg, NULL, errmsg);
	if (strcmp(name, "lstm") == 0)
		return predictor_lstm_create(cfg, model_path, errmsg);
	if (strcmp(name, "adaptive") == 0)
		return adaptive_predictor_create(cfg, model_path, errmsg);
	ombra_errmsg_printf(errmsg,
			    "unknown predictor '%s' (none, obl, amp, mithril, "
			    "lstm, adaptive)",
			    name);
	return NULL;
}
