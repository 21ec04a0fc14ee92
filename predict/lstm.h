/* lstm.h: the learned access predictor, an LSTM over block-address deltas
 * (Hashemi et al., "Learning Memory Access Patterns", ICML 2018), trained
 * offline by tools/train-prefetch-model (PyTorch) and run here in plain C.
 * docs/lstm.md describes the model, the weights file and how the shipped
 * default model was built.
 *
 * Per volume the predictor keeps the last seq_len deltas (in the model's
 * block unit, 4 KiB for the shipped model) between the start of an access
 * and the end of the one before it, turns them into vocabulary classes,
 * runs the network over that window and returns the top classes as block
 * ranges (the next access's predicted start, as long as the last access)
 * with the softmax probability; horizon 1.
 *
 * Failure: creation fails (NULL + errmsg) on a bad configuration or a
 * missing, truncated or corrupt weights file; access never fails. */
#ifndef OMBRA_PREDICT_LSTM_H
#define OMBRA_PREDICT_LSTM_H

#include "predict/predict.h"

/* Environment variable naming the weights file used when model_path is
 * NULL. */
#define LSTM_MODEL_ENV "OMBRA_LSTM_MODEL"

/* The shipped default model, relative to the source tree. */
#define LSTM_DEFAULT_MODEL_REL "predict/models/lstm-default.olm"

/* Create the LSTM predictor.  cfg is copied (block_size 512 or 4096,
 * max_candidates caps the candidates of an access, at most 8, 0 = only
 * the call's cap; memory_bytes bounds the per-volume state and the
 * prediction memo, 0 = 1 MiB).  model_path: the weights file; NULL = the
 * default model, found as lstm_default_model_path() describes.  Returns NULL
 * and a message in errmsg (OMBRA_ERRMSG_LEN bytes) on bad cfg or when the
 * model cannot be loaded.  Free with predictor_destroy(). */
struct predictor *lstm_predictor_create(const struct predict_config *cfg,
					const char *model_path, char *errmsg);

/* Path of the default model, written into buf (size bytes): $OMBRA_LSTM_MODEL
 * if set, else $OMBRA_SRCDIR/LSTM_DEFAULT_MODEL_REL if OMBRA_SRCDIR is set,
 * else the source tree's file as known at compile time (OMBRA_LSTM_SRCDIR,
 * when the build defines it), else LSTM_DEFAULT_MODEL_REL relative to the
 * working directory.  Returns buf. */
const char *lstm_default_model_path(char *buf, size_t size);

#endif
