/* test_lstm.c: the LSTM weights file and the C forward pass (lstm_model.h).
 *
 * - The shipped model (predict/models/lstm-default.olm) gives PyTorch's
 *   probabilities, recorded at training time in lstm-default.oltv, on all
 *   1,000 recorded input windows: max abs error below 1e-4 (no PyTorch
 *   needed here).
 * - A hand-built one-unit model gives the LSTM equations' values computed
 *   in double precision here.
 * - Truncated, oversized, wrong-magic, wrong-version, bad-dimension and
 *   corrupted (CRC) files, and a missing file, are refused with a message
 *   that says which; lstm_predictor_create() passes the message on.
 * Fails (cmocka) on the first disagreement; needs $OMBRA_SRCDIR (set by
 * `make check`) or the current directory at the source root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/err.h"
#include "predict/lstm.h"
#include "predict/lstm_model.h"

#define MODEL_REL "predict/models/lstm-default.olm"
#define VECTORS_REL "predict/models/lstm-default.oltv"

static char *src_path(const char *rel)
{
	const char *src = getenv("OMBRA_SRCDIR");
	static char buf[8][4096];
	static int next;
	char *b = buf[next++ % 8];

	snprintf(b, sizeof(buf[0]), "%s/%s", src ? src : ".", rel);
	return b;
}

/* Whole file into memory (malloc'd); fails the test when unreadable. */
static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long n;

	if (f == NULL)
		fail_msg("cannot open %s (set OMBRA_SRCDIR)", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static uint32_t rd32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void wr32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void wrf(unsigned char *p, float f)
{
	uint32_t v;

	memcpy(&v, &f, sizeof(v));
	wr32(p, v);
}

static void test_matches_pytorch(void **state)
{
	char err[OMBRA_ERRMSG_LEN];
	struct lstm_model *m;
	size_t len;
	(void)state;

	if (lstm_model_load(src_path(MODEL_REL), &m, err) != 0)
		fail_msg("%s", err);
	unsigned char *v = slurp(src_path(VECTORS_REL), &len);
	assert_true(len >= 24);
	assert_memory_equal(v, "OMBRALTV", 8);
	assert_int_equal(rd32(v + 8), 1);
	uint32_t count = rd32(v + 12), n = rd32(v + 16), voc = rd32(v + 20);
	assert_int_equal(count, 1000);
	assert_int_equal(n, m->seq_len);
	assert_int_equal(voc, m->vocab);
	size_t rec = 4 * ((size_t)n + voc);
	assert_int_equal(len, 24 + count * rec + 4);
	assert_int_equal(lstm_crc32(v, len - 4), rd32(v + len - 4));

	float *probs = calloc(voc, sizeof(float));
	float *work = calloc(lstm_model_work_floats(m), sizeof(float));
	uint32_t *tok = calloc(n, sizeof(uint32_t));
	double worst = 0.0;
	assert_non_null(probs);
	assert_non_null(work);
	assert_non_null(tok);
	for (uint32_t i = 0; i < count; i++) {
		const unsigned char *r = v + 24 + i * rec;
		double sum = 0.0;

		for (uint32_t t = 0; t < n; t++) {
			tok[t] = rd32(r + 4 * t);
			assert_true(tok[t] < voc);
		}
		lstm_model_forward(m, tok, n, probs, work);
		for (uint32_t c = 0; c < voc; c++) {
			uint32_t bits = rd32(r + 4 * n + 4 * c);
			float want;
			double d;

			memcpy(&want, &bits, sizeof(want));
			d = fabs((double)probs[c] - (double)want);
			if (d > worst)
				worst = d;
			sum += probs[c];
		}
		assert_true(fabs(sum - 1.0) < 1e-4);
	}
	printf("max abs error over %u vectors x %u classes: %.3g\n", count, voc,
	       worst);
	assert_true(worst < 1e-4);
	free(tok);
	free(work);
	free(probs);
	free(v);
	lstm_model_free(m);
}

/* A model with V = 3, E = 1, H = 1, seq_len 2, built byte by byte. */
static unsigned char *tiny_model(size_t *len)
{
	/* header 40, deltas 2 x 8, floats: emb 3, w_ih 4, w_hh 4, b 8,
	 * w_out 3, b_out 3 = 25, crc 4 */
	static const float fl[25] = {
	    0.5f,  -1.0f, 2.0f,			    /* emb */
	    0.3f,  -0.2f, 0.8f,	 1.1f,		    /* w_ih i f g o */
	    -0.4f, 0.6f,  0.25f, -0.9f,		    /* w_hh */
	    0.1f,  0.0f,  -0.3f, 0.2f,		    /* b_ih */
	    0.05f, 0.4f,  0.0f,	 -0.1f,		    /* b_hh */
	    1.5f,  -2.0f, 0.7f,	 0.0f,	0.3f, -0.2f /* w_out, b_out */
	};
	*len = 40 + 16 + 4 * 25 + 4;
	unsigned char *b = calloc(1, *len);

	assert_non_null(b);
	memcpy(b, "OMBRALSM", 8);
	wr32(b + 8, 1);
	wr32(b + 12, 3);
	wr32(b + 16, 1);
	wr32(b + 20, 1);
	wr32(b + 24, 2);
	wr32(b + 28, 4096);
	wr32(b + 40, 0); /* delta[0] = 0 */
	wr32(b + 48, 16);
	for (int i = 0; i < 25; i++)
		wrf(b + 56 + 4 * i, fl[i]);
	wr32(b + *len - 4, lstm_crc32(b, *len - 4));
	return b;
}

static double sig(double x)
{
	return 1.0 / (1.0 + exp(-x));
}

static void test_tiny_model_equations(void **state)
{
	char err[OMBRA_ERRMSG_LEN];
	struct lstm_model *m;
	size_t len;
	unsigned char *b = tiny_model(&len);
	(void)state;

	if (lstm_model_parse(b, len, "tiny", &m, err) != 0)
		fail_msg("%s", err);
	assert_int_equal(lstm_model_class(m, 0), 0);
	assert_int_equal(lstm_model_class(m, 16), 1);
	assert_int_equal(lstm_model_class(m, 15), 2);
	assert_int_equal(lstm_model_class(m, -16), 2);

	/* Reference in double: tokens 2 then 0. */
	const double emb[3] = {0.5, -1.0, 2.0};
	const double wi[4] = {0.3, -0.2, 0.8, 1.1},
		     wh[4] = {-0.4, 0.6, 0.25, -0.9};
	const double bias[4] = {0.15, 0.4, -0.3, 0.1};
	const double wo[3] = {1.5, -2.0, 0.7}, bo[3] = {0.0, 0.3, -0.2};
	const uint32_t tok[2] = {2, 0};
	double h = 0, c = 0, z[3], sum = 0;
	for (int t = 0; t < 2; t++) {
		double x = emb[tok[t]], g[4];

		for (int k = 0; k < 4; k++)
			g[k] = wi[k] * x + wh[k] * h + bias[k];
		c = sig(g[1]) * c + sig(g[0]) * tanh(g[2]);
		h = sig(g[3]) * tanh(c);
	}
	for (int k = 0; k < 3; k++)
		sum += (z[k] = exp(wo[k] * h + bo[k]));

	float probs[3], work[6];
	lstm_model_forward(m, tok, 2, probs, work);
	for (int k = 0; k < 3; k++)
		assert_true(fabs(probs[k] - z[k] / sum) < 1e-6);
	lstm_model_free(m);
	free(b);
}

/* Expect parse to refuse buf[0..len) with a message containing want. */
static void refused(const unsigned char *buf, size_t len, const char *want)
{
	char err[OMBRA_ERRMSG_LEN] = "";
	struct lstm_model *m = (struct lstm_model *)1;

	assert_int_equal(lstm_model_parse(buf, len, "bad.olm", &m, err), -1);
	assert_null(m);
	if (strstr(err, want) == NULL || strstr(err, "bad.olm") == NULL)
		fail_msg("message '%s' lacks '%s'", err, want);
}

static void test_bad_files(void **state)
{
	size_t len;
	unsigned char *b = slurp(src_path(MODEL_REL), &len);
	unsigned char *c = malloc(len + 4);
	(void)state;

	assert_non_null(c);
	refused(b, 0, "truncated");
	refused(b, 39, "truncated");
	refused(b, 40, "truncated");
	refused(b, len / 2, "truncated");
	refused(b, len - 1, "truncated");
	memcpy(c, b, len);
	memset(c + len, 0, 4);
	refused(c, len + 4, "oversized");

	memcpy(c, b, len);
	c[0] = 'X';
	refused(c, len, "bad magic");
	memcpy(c, b, len);
	wr32(c + 8, 2);
	refused(c, len, "version 2 not supported");
	memcpy(c, b, len);
	wr32(c + 20, 100000); /* hidden */
	refused(c, len, "out of range");
	memcpy(c, b, len);
	wr32(c + 28, 1000); /* block_bytes */
	refused(c, len, "out of range");
	memcpy(c, b, len);
	c[len / 2] ^= 0x40; /* one weight bit */
	refused(c, len, "checksum");

	/* The untouched bytes still load. */
	char err[OMBRA_ERRMSG_LEN];
	struct lstm_model *m;
	assert_int_equal(lstm_model_parse(b, len, "good", &m, err), 0);
	lstm_model_free(m);
	free(c);
	free(b);
}

static void test_bad_path_and_create(void **state)
{
	char err[OMBRA_ERRMSG_LEN] = "";
	struct lstm_model *m;
	struct predict_config cfg = {.block_size = 4096, .max_candidates = 4};
	size_t len;
	unsigned char *b = slurp(src_path(MODEL_REL), &len);
	char tmp[] = "/tmp/test_lstm_XXXXXX";
	int fd = mkstemp(tmp);
	(void)state;

	assert_int_equal(lstm_model_load("/nonexistent/x.olm", &m, err), -1);
	assert_non_null(strstr(err, "cannot open"));

	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, len - 100), (ssize_t)(len - 100));
	close(fd);
	err[0] = '\0';
	assert_null(lstm_predictor_create(&cfg, tmp, err));
	if (strstr(err, "lstm") != err || strstr(err, "truncated") == NULL ||
	    strstr(err, tmp) == NULL)
		fail_msg("create message: %s", err);
	unlink(tmp);

	cfg.block_size = 1000;
	assert_null(lstm_predictor_create(&cfg, NULL, err));
	assert_non_null(strstr(err, "block_size"));
	free(b);
}

static void test_default_path(void **state)
{
	char buf[4096];
	char *old = getenv("OMBRA_LSTM_MODEL");
	(void)state;

	old = old ? strdup(old) : NULL;
	setenv("OMBRA_LSTM_MODEL", "/x/y.olm", 1);
	assert_string_equal(lstm_default_model_path(buf, sizeof(buf)),
			    "/x/y.olm");
	unsetenv("OMBRA_LSTM_MODEL");
	if (getenv("OMBRA_SRCDIR") != NULL)
		assert_string_equal(lstm_default_model_path(buf, sizeof(buf)),
				    src_path(MODEL_REL));
	/* Whatever the source, the default resolves to a loadable model. */
	struct predict_config cfg = {.block_size = 512, .max_candidates = 4};
	char err[OMBRA_ERRMSG_LEN];
	struct predictor *p = lstm_predictor_create(&cfg, NULL, err);
	if (p == NULL)
		fail_msg("%s", err);
	assert_string_equal(predictor_name(p), "lstm");
	predictor_destroy(p);
	if (old != NULL)
		setenv("OMBRA_LSTM_MODEL", old, 1);
	free(old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_matches_pytorch),
	    cmocka_unit_test(test_tiny_model_equations),
	    cmocka_unit_test(test_bad_files),
	    cmocka_unit_test(test_bad_path_and_create),
	    cmocka_unit_test(test_default_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
