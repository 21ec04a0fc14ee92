/* table.h: aligned text tables for ombractl's human output.
 *
 * Cells are appended left to right, top to bottom; a row ends after every
 * ncols cells.  Errors are sticky (like ferror()): cell appends never fail
 * visibly, table_print() reports the first one and prints nothing then.
 * Widths are counted in bytes, so cells are expected to be ASCII. */
#ifndef OMBRA_CLI_TABLE_H
#define OMBRA_CLI_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct table {
	size_t ncols;
	const char *const *headers; /* ncols strings, not owned */
	uint32_t right_mask;	    /* bit i set: right-align column i */
	char **cells;		    /* n_cells owned strings */
	size_t n_cells;
	size_t cap;
	int err; /* first OMBRA_E* hit, 0 if none */
};

/* headers: ncols (1..32) static strings, kept by pointer.  right_mask: bit
 * i right-aligns column i (numbers).  Nothing is allocated yet. */
void table_init(struct table *t, size_t ncols, const char *const *headers,
		uint32_t right_mask);

/* Append one cell (copied; NULL prints as "-"). */
void table_cell(struct table *t, const char *text);

/* Append one printf-formatted cell. */
void table_cellf(struct table *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Number of complete rows so far. */
size_t table_rows(const struct table *t);

/* Print the header and rows, columns separated by two spaces and the last
 * one not padded.  Returns 0, the sticky error (OMBRA_ENOMEM), or
 * OMBRA_EINTERNAL if the last row is incomplete; nothing is printed then. */
int table_print(const struct table *t, FILE *out);

/* Free the cells; t may be reused after table_init(). */
void table_close(struct table *t);

#endif
