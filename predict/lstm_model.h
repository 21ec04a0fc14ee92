/* lstm_model.h: the weights file of the LSTM access predictor and its
 * forward pass (embedding, one LSTM layer, linear, softmax) in plain C.
 *
 * The file is written by tools/train-prefetch-model from a PyTorch model
 * (torch.nn.Embedding -> torch.nn.LSTM, 1 layer -> torch.nn.Linear); format
 * "OMBRALSM" version 1, little-endian, documented field by field in that
 * tool and in docs/lstm.md.  The network is the one of Hashemi et al.,
 * "Learning Memory Access Patterns" (ICML 2018): inputs are classes of
 * block-address deltas, the output a softmax over the same classes, the
 * last class meaning "any other delta".  The LSTM cell is PyTorch's:
 *   i = sig(W_ii x + b_ii + W_hi h + b_hi)   f, g (tanh), o likewise
 *   c' = f * c + i * g                       h' = o * tanh(c')
 *
 * Failure: lstm_model_load() refuses a file that is unreadable, shorter or
 * longer than its header says, has a wrong magic, an unknown version,
 * dimensions out of range or a bad CRC, with a message naming the file and
 * the fault.  The forward pass cannot fail. */
#ifndef OMBRA_PREDICT_LSTM_MODEL_H
#define OMBRA_PREDICT_LSTM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define LSTM_MODEL_MAGIC "OMBRALSM"
#define LSTM_MODEL_VERSION 1

/* Limits a model must respect to be loaded. */
#define LSTM_MAX_VOCAB 65536
#define LSTM_MAX_DIM 1024    /* embed and hidden */
#define LSTM_MAX_SEQ_LEN 256 /* input window */

struct lstm_model {
	uint32_t vocab;	      /* classes V; class V-1 = "other delta" */
	uint32_t embed;	      /* E */
	uint32_t hidden;      /* H */
	uint32_t seq_len;     /* window N the model was trained on */
	uint32_t block_bytes; /* unit of the deltas: 512 or 4096 */
	int64_t *deltas;      /* [V-1]: class c's delta, in blocks */
	float *emb;	      /* [V][E] */
	float *w_ih;	      /* [4H][E], gates i, f, g, o */
	float *w_hh;	      /* [4H][H] */
	float *b_ih;	      /* [4H] */
	float *b_hh;	      /* [4H] */
	float *w_out;	      /* [V][H] */
	float *b_out;	      /* [V] */
	float *xproj;	      /* [V][4H]: W_ih emb[v] + b_ih + b_hh, cached */
	float *w_hh_t;	      /* [H][4H]: w_hh transposed, for speed */
	float *w_out_t;	      /* [H][V]: w_out transposed */
	uint32_t *sorted;     /* [V-1]: classes ordered by delta, for lookup */
};

/* Load the weights file at path into a new model (*out, owned by the
 * caller, free with lstm_model_free()).  Returns 0, or -1 with a message in
 * errmsg (OMBRA_ERRMSG_LEN bytes) naming path and the fault. */
int lstm_model_load(const char *path, struct lstm_model **out, char *errmsg);

/* Parse a weights file already in memory (buf, len bytes; not kept).  name
 * is used in messages.  Same results as lstm_model_load(). */
int lstm_model_parse(const void *buf, size_t len, const char *name,
		     struct lstm_model **out, char *errmsg);

void lstm_model_free(struct lstm_model *m);

/* Floats of scratch space lstm_model_forward() needs (6 H). */
size_t lstm_model_work_floats(const struct lstm_model *m);

/* Run the network over tokens[0..n) (classes < V, oldest first; any n >= 1,
 * normally seq_len) from a zero state and write the softmax over the V
 * classes to probs[V].  work: lstm_model_work_floats() floats. */
void lstm_model_forward(const struct lstm_model *m, const uint32_t *tokens,
			size_t n, float *probs, float *work);

/* Class of a delta (in blocks): its vocabulary index, or V-1 ("other"). */
uint32_t lstm_model_class(const struct lstm_model *m, int64_t delta);

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32) of buf[0..len). */
uint32_t lstm_crc32(const void *buf, size_t len);

#endif
