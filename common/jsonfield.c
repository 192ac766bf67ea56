#include "jsonfield.h"

const char *jsonfield_str(struct json_object *o, const char *key)
{
	struct json_object *v; /* borrowed from o */

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int jsonfield_set_str(struct json_object *o, const char *key, const char *v)
{
	return json_object_object_add(o, key, v != NULL ? json_object_new_string(v) : NULL);
}
