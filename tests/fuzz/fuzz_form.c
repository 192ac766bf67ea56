/*
 * form_parse on arbitrary bytes; whatever parses must survive form_append
 * and parse back to the same pairs in the same order.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Worst case: every decoded byte becomes "%XX", plus '=' and '&' per pair. */
#define FUZZ_MAX_ENCODED \
	((size_t)FORM_MAX_PARAMS * (3 * ((size_t)FORM_MAX_KEY + FORM_MAX_VALUE) + 2))

static void check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_form: %s\n", what);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct form f = { 0 }, g = { 0 };
	struct buf b;
	char err[FORM_MAX_ERROR];
	size_t i;
	enum verr e;

	e = form_parse((const char *)data, size, &f, err, sizeof err);
	if (e != VERR_OK) {
		check(f.params == NULL && f.n == 0, "failed parse left pairs behind");
		check(e == VERR_INVALID || e == VERR_TOOBIG || e == VERR_NOMEM, "unexpected error");
		check(strlen(err) > 0 && strlen(err) < sizeof err, "no error detail");
		return 0;
	}
	check(f.n <= FORM_MAX_PARAMS, "too many pairs");
	buf_init(&b, FUZZ_MAX_ENCODED);
	for (i = 0; i < f.n; i++) {
		check(strlen(f.params[i].key) <= FORM_MAX_KEY, "key over cap");
		check(strlen(f.params[i].value) <= FORM_MAX_VALUE, "value over cap");
		check(form_append(&b, f.params[i].key, f.params[i].value) == VERR_OK,
		      "re-encoding failed");
	}
	check(form_parse(b.data, b.len, &g, err, sizeof err) == VERR_OK, "re-parse failed");
	check(g.n == f.n, "re-parse changed the pair count");
	for (i = 0; i < f.n; i++) {
		check(strcmp(f.params[i].key, g.params[i].key) == 0, "key changed");
		check(strcmp(f.params[i].value, g.params[i].value) == 0, "value changed");
		check(strcmp(form_get(&f, f.params[i].key), form_get(&g, f.params[i].key)) == 0,
		      "first value changed");
		check(form_count(&f, f.params[i].key) == form_count(&g, f.params[i].key),
		      "repeat count changed");
	}
	form_free(&g);
	form_free(&f);
	buf_free(&b);
	return 0;
}
