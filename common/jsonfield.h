#ifndef VOICE_JSONFIELD_H
#define VOICE_JSONFIELD_H

#include <json-c/json.h>

/*
 * String fields of json-c objects, as the spool records (record.c) and the
 * simulator's stored calls (sim/) read and write them. Parse layer: json-c.
 */

/* The string member key of o, borrowed from o (valid while o lives and the
 * member is not replaced); NULL when it is absent or not a string. */
const char *jsonfield_str(struct json_object *o, const char *key);

/* Sets member key of o to the string v (copied), or to null when v is NULL.
 * 0, or -1 when out of memory (json_object_object_add's convention). */
int jsonfield_set_str(struct json_object *o, const char *key, const char *v);

#endif
