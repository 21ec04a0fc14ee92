/* table.c: aligned text tables for ombractl (see table.h).
 *
 * Failure: allocation failures are recorded in t->err and reported once by
 * table_print(); a half-built table is never printed. */
#include "table.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define TABLE_MAX_COLS 32
#define TABLE_GAP "  "

void table_init(struct table *t, size_t ncols, const char *const *headers,
		uint32_t right_mask)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	t->headers = headers;
	t->right_mask = right_mask;
	if (ncols == 0 || ncols > TABLE_MAX_COLS) {
		t->err = OMBRA_EINTERNAL;
	}
}

static void table_push(struct table *t, char *owned)
{
	if (owned == NULL) {
		t->err = OMBRA_ENOMEM;
		return;
	}
	if (t->n_cells == t->cap) {
		size_t cap = t->cap == 0 ? 64 : t->cap * 2;
		char **cells = realloc(t->cells, cap * sizeof(*cells));

		if (cells == NULL) {
			free(owned);
			t->err = OMBRA_ENOMEM;
			return;
		}
		t->cells = cells;
		t->cap = cap;
	}
	t->cells[t->n_cells++] = owned;
}

void table_cell(struct table *t, const char *text)
{
	if (t->err != 0) {
		return;
	}
	table_push(t, strdup(text != NULL ? text : "-"));
}

void table_cellf(struct table *t, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	if (t->err != 0) {
		return;
	}
	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	table_push(t, n < 0 ? NULL : s);
}

size_t table_rows(const struct table *t)
{
	return t->ncols == 0 ? 0 : t->n_cells / t->ncols;
}

static bool table_right(const struct table *t, size_t c)
{
	return (t->right_mask & (UINT32_C(1) << c)) != 0;
}

/* Print one row; nothing after the last non-empty cell, so no line ends
 * in blanks. */
static void table_print_row(const struct table *t, const char *const *row,
			    const size_t *width, FILE *out)
{
	size_t end = t->ncols;
	size_t c;

	while (end > 0 && row[end - 1][0] == '\0' && !table_right(t, end - 1)) {
		end--;
	}
	for (c = 0; c < end; c++) {
		int w = (int)width[c];

		if (c > 0) {
			fputs(TABLE_GAP, out);
		}
		if (table_right(t, c)) {
			fprintf(out, "%*s", w, row[c]);
		} else if (c + 1 == end) {
			fputs(row[c], out);
		} else {
			fprintf(out, "%-*s", w, row[c]);
		}
	}
	fputc('\n', out);
}

int table_print(const struct table *t, FILE *out)
{
	size_t width[TABLE_MAX_COLS];
	size_t r, c;

	if (t->err != 0) {
		return t->err;
	}
	if (t->n_cells % t->ncols != 0) {
		return OMBRA_EINTERNAL;
	}
	for (c = 0; c < t->ncols; c++) {
		width[c] = strlen(t->headers[c]);
	}
	for (r = 0; r < t->n_cells; r++) {
		size_t len = strlen(t->cells[r]);

		c = r % t->ncols;
		if (len > width[c]) {
			width[c] = len;
		}
	}
	table_print_row(t, t->headers, width, out);
	for (r = 0; r < t->n_cells; r += t->ncols) {
		table_print_row(t, (const char *const *)&t->cells[r], width,
				out);
	}
	return 0;
}

void table_close(struct table *t)
{
	size_t i;

	for (i = 0; i < t->n_cells; i++) {
		free(t->cells[i]);
	}
	free(t->cells);
	t->cells = NULL;
	t->n_cells = 0;
	t->cap = 0;
}
