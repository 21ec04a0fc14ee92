/* lstm_model.c: load the LSTM predictor's weights file and run its forward
 * pass (see lstm_model.h for the network and docs/lstm.md for the format).
 *
 * Failure: loading refuses malformed files with a message (magic, version,
 * dimensions, size, CRC) and fails on out of memory; nothing else fails. */
#include "predict/lstm_model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

/* Fixed header: magic[8] then 8 u32 fields. */
#define HEADER_BYTES (8 + 8 * 4)
/* Largest file read: far above any model within the limits we ship. */
#define MAX_FILE_BYTES ((size_t)256 << 20)

uint32_t lstm_crc32(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
	}
	return crc ^ 0xffffffffu;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static int64_t le64s(const unsigned char *p)
{
	uint64_t v = (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
	int64_t s;

	memcpy(&s, &v, sizeof(s));
	return s;
}

/* Copy n little-endian float32 values from *pp into dst; advance *pp. */
static void read_floats(float *dst, size_t n, const unsigned char **pp)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t v = le32(*pp + 4 * i);

		memcpy(&dst[i], &v, sizeof(float));
	}
	*pp += 4 * n;
}

void lstm_model_free(struct lstm_model *m)
{
	if (m == NULL)
		return;
	free(m->deltas);
	free(m->emb);
	free(m->xproj);
	free(m->w_hh_t);
	free(m->w_out_t);
	free(m->sorted);
	free(m);
}

/* Insertion sort of the class ids by delta (V is small; no qsort_r). */
static void sort_classes(uint32_t *ids, size_t n, const int64_t *deltas)
{
	for (size_t i = 1; i < n; i++) {
		uint32_t v = ids[i];
		size_t j = i;

		while (j > 0 && deltas[ids[j - 1]] > deltas[v]) {
			ids[j] = ids[j - 1];
			j--;
		}
		ids[j] = v;
	}
}

uint32_t lstm_model_class(const struct lstm_model *m, int64_t delta)
{
	size_t lo = 0, hi = m->vocab - 1;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int64_t d = m->deltas[m->sorted[mid]];

		if (d == delta)
			return m->sorted[mid];
		if (d < delta)
			lo = mid + 1;
		else
			hi = mid;
	}
	return m->vocab - 1;
}

/* xproj[v] = W_ih emb[v] + b_ih + b_hh: the input half of every gate,
 * which depends only on the token. */
static void precompute_inputs(struct lstm_model *m)
{
	size_t g4 = 4 * (size_t)m->hidden, e = m->embed;

	for (size_t v = 0; v < m->vocab; v++) {
		const float *x = m->emb + v * e;
		float *out = m->xproj + v * g4;

		for (size_t r = 0; r < g4; r++) {
			const float *w = m->w_ih + r * e;
			float s = 0.0f;

			for (size_t k = 0; k < e; k++)
				s += w[k] * x[k];
			out[r] = s + m->b_ih[r] + m->b_hh[r];
		}
	}
}

/* dst[c][r] = src[r][c]; src has rows x cols. */
static void transpose(float *dst, const float *src, size_t rows, size_t cols)
{
	for (size_t r = 0; r < rows; r++)
		for (size_t c = 0; c < cols; c++)
			dst[c * rows + r] = src[r * cols + c];
}

/* Check the header and the total size; fill the dimensions of m. */
static int parse_header(const unsigned char *p, size_t len, const char *name,
			struct lstm_model *m, size_t *floats, char *errmsg)
{
	if (len < HEADER_BYTES) {
		ombra_errmsg_printf(errmsg,
				    "%s: truncated LSTM model: %zu bytes, the "
				    "header alone is %d",
				    name, len, HEADER_BYTES);
		return -1;
	}
	if (memcmp(p, LSTM_MODEL_MAGIC, 8) != 0) {
		ombra_errmsg_printf(errmsg,
				    "%s: not an LSTM model file (bad magic; "
				    "expected \"%s\", written by "
				    "tools/train-prefetch-model)",
				    name, LSTM_MODEL_MAGIC);
		return -1;
	}
	uint32_t version = le32(p + 8);
	if (version != LSTM_MODEL_VERSION) {
		ombra_errmsg_printf(errmsg,
				    "%s: LSTM model version %u not supported "
				    "(this build reads version %d); retrain "
				    "with tools/train-prefetch-model",
				    name, version, LSTM_MODEL_VERSION);
		return -1;
	}
	m->vocab = le32(p + 12);
	m->embed = le32(p + 16);
	m->hidden = le32(p + 20);
	m->seq_len = le32(p + 24);
	m->block_bytes = le32(p + 28);
	if (m->vocab < 2 || m->vocab > LSTM_MAX_VOCAB || m->embed < 1 ||
	    m->embed > LSTM_MAX_DIM || m->hidden < 1 ||
	    m->hidden > LSTM_MAX_DIM || m->seq_len < 1 ||
	    m->seq_len > LSTM_MAX_SEQ_LEN ||
	    (m->block_bytes != 512 && m->block_bytes != 4096) ||
	    le32(p + 32) != 0) {
		ombra_errmsg_printf(errmsg,
				    "%s: LSTM model dimensions out of range "
				    "(vocab %u, embed %u, hidden %u, seq_len "
				    "%u, block_bytes %u, flags %u)",
				    name, m->vocab, m->embed, m->hidden,
				    m->seq_len, m->block_bytes, le32(p + 32));
		return -1;
	}
	size_t v = m->vocab, e = m->embed, h = m->hidden;
	*floats = v * e + 4 * h * e + 4 * h * h + 8 * h + v * h + v;
	size_t want = HEADER_BYTES + 8 * (v - 1) + 4 * *floats + 4;
	if (len != want) {
		ombra_errmsg_printf(errmsg,
				    "%s: %s LSTM model: %zu bytes, the header "
				    "(vocab %u, embed %u, hidden %u) needs "
				    "%zu",
				    name,
				    len < want ? "truncated" : "oversized", len,
				    m->vocab, m->embed, m->hidden, want);
		return -1;
	}
	uint32_t crc = le32(p + len - 4);
	if (lstm_crc32(p, len - 4) != crc) {
		ombra_errmsg_printf(errmsg,
				    "%s: LSTM model checksum mismatch "
				    "(corrupt file)",
				    name);
		return -1;
	}
	return 0;
}

int lstm_model_parse(const void *buf, size_t len, const char *name,
		     struct lstm_model **out, char *errmsg)
{
	const unsigned char *p = buf;
	struct lstm_model *m = calloc(1, sizeof(*m));
	size_t floats;

	*out = NULL;
	if (m == NULL)
		goto err_nomem;
	if (parse_header(p, len, name, m, &floats, errmsg) != 0)
		goto err;
	size_t v = m->vocab, e = m->embed, h = m->hidden;
	m->deltas = calloc(v, sizeof(int64_t));
	m->emb = malloc(floats * sizeof(float));
	m->xproj = malloc(v * 4 * h * sizeof(float));
	m->sorted = calloc(v, sizeof(uint32_t));
	m->w_hh_t = malloc(4 * h * h * sizeof(float));
	m->w_out_t = malloc(v * h * sizeof(float));
	if (m->deltas == NULL || m->emb == NULL || m->xproj == NULL ||
	    m->sorted == NULL || m->w_hh_t == NULL || m->w_out_t == NULL)
		goto err_nomem;

	p += HEADER_BYTES;
	for (size_t i = 0; i + 1 < v; i++) {
		m->deltas[i] = le64s(p);
		m->sorted[i] = (uint32_t)i;
		p += 8;
	}
	/* All the float tensors live in one allocation, in file order. */
	read_floats(m->emb, floats, &p);
	m->w_ih = m->emb + v * e;
	m->w_hh = m->w_ih + 4 * h * e;
	m->b_ih = m->w_hh + 4 * h * h;
	m->b_hh = m->b_ih + 4 * h;
	m->w_out = m->b_hh + 4 * h;
	m->b_out = m->w_out + v * h;
	sort_classes(m->sorted, v - 1, m->deltas);
	for (size_t i = 1; i + 1 < v; i++) {
		if (m->deltas[m->sorted[i]] == m->deltas[m->sorted[i - 1]]) {
			ombra_errmsg_printf(errmsg,
					    "%s: LSTM model vocabulary lists "
					    "delta %lld twice",
					    name,
					    (long long)m->deltas[m->sorted[i]]);
			goto err;
		}
	}
	precompute_inputs(m);
	transpose(m->w_hh_t, m->w_hh, 4 * h, h);
	transpose(m->w_out_t, m->w_out, v, h);
	*out = m;
	return 0;

err_nomem:
	ombra_errmsg_printf(errmsg, "%s: out of memory loading LSTM model",
			    name);
err:
	lstm_model_free(m);
	return -1;
}

int lstm_model_load(const char *path, struct lstm_model **out, char *errmsg)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0;
	int rc = -1;

	*out = NULL;
	if (f == NULL) {
		ombra_errmsg_printf(errmsg, "%s: cannot open LSTM model: %s",
				    path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			size_t ncap = cap ? 2 * cap : 256 * 1024;
			unsigned char *nb;

			if (cap >= MAX_FILE_BYTES) {
				ombra_errmsg_printf(errmsg,
						    "%s: larger than %zu "
						    "bytes, not an LSTM model",
						    path, MAX_FILE_BYTES);
				goto out;
			}
			nb = realloc(buf, ncap);
			if (nb == NULL) {
				ombra_errmsg_printf(errmsg, "%s: out of memory",
						    path);
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		ombra_errmsg_printf(errmsg, "%s: read error", path);
		goto out;
	}
	rc = lstm_model_parse(buf, len, path, out, errmsg);
out:
	free(buf);
	fclose(f);
	return rc;
}

size_t lstm_model_work_floats(const struct lstm_model *m)
{
	return 6 * (size_t)m->hidden;
}

static float sigmoidf(float x)
{
	return 1.0f / (1.0f + expf(-x));
}

/* tanh through expf (2 sigmoid(2x) - 1): within 2e-7 of tanh in absolute
 * terms, and several times faster than libm's tanhf. */
static float fast_tanhf(float x)
{
	return 2.0f / (1.0f + expf(-2.0f * x)) - 1.0f;
}

#define LANES 8

/* y[r] += sum over k of wt[k][r] * x[k], for r < rows, k < cols; wt is the
 * transposed matrix (cols rows of `rows` floats).  Rows go in fixed groups
 * of LANES kept in registers, which the compiler vectorises, while each
 * y[r] still sums its terms in the order k = 0, 1, ... as PyTorch's
 * reference does (within float rounding). */
static void matvec_t(float *y, const float *wt, const float *x, size_t rows,
		     size_t cols)
{
	size_t r = 0;

	for (; r + LANES <= rows; r += LANES) {
		float acc[LANES];

		for (size_t j = 0; j < LANES; j++)
			acc[j] = y[r + j];
		for (size_t k = 0; k < cols; k++) {
			const float *w = wt + k * rows + r;
			float xk = x[k];

			for (size_t j = 0; j < LANES; j++)
				acc[j] += w[j] * xk;
		}
		for (size_t j = 0; j < LANES; j++)
			y[r + j] = acc[j];
	}
	for (; r < rows; r++) {
		float acc = y[r];

		for (size_t k = 0; k < cols; k++)
			acc += wt[k * rows + r] * x[k];
		y[r] = acc;
	}
}

void lstm_model_forward(const struct lstm_model *m, const uint32_t *tokens,
			size_t n, float *probs, float *work)
{
	size_t h = m->hidden, g4 = 4 * h, v = m->vocab;
	float *gates = work, *hs = work + g4, *cs = work + g4 + h;

	memset(hs, 0, 2 * h * sizeof(float));
	for (size_t t = 0; t < n; t++) {
		memcpy(gates, m->xproj + (size_t)tokens[t] * g4,
		       g4 * sizeof(float));
		matvec_t(gates, m->w_hh_t, hs, g4, h);
		for (size_t k = 0; k < h; k++) {
			float i = sigmoidf(gates[k]);
			float f = sigmoidf(gates[h + k]);
			float g = fast_tanhf(gates[2 * h + k]);
			float o = sigmoidf(gates[3 * h + k]);

			cs[k] = f * cs[k] + i * g;
			hs[k] = o * fast_tanhf(cs[k]);
		}
	}

	float mx = -INFINITY, sum = 0.0f;
	memcpy(probs, m->b_out, v * sizeof(float));
	matvec_t(probs, m->w_out_t, hs, v, h);
	for (size_t c = 0; c < v; c++)
		if (probs[c] > mx)
			mx = probs[c];
	for (size_t c = 0; c < v; c++) {
		probs[c] = expf(probs[c] - mx);
		sum += probs[c];
	}
	for (size_t c = 0; c < v; c++)
		probs[c] /= sum;
}
