#include "http.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>


void http_resp_init(struct http_resp *r)
{
	memset(r, 0, sizeof *r);
	r->status = 500;
	r->content_type = "application/json; charset=utf-8";
	buf_init(&r->headers, HTTP_MAX_HEADERS);
	buf_init(&r->body, HTTP_MAX_RESPONSE);
}

void http_resp_free(struct http_resp *r)
{
	if (r == NULL)
		return;
	buf_free(&r->headers);
	buf_free(&r->body);
}

void http_resp_reset(struct http_resp *r)
{
	r->status = 500;
	r->content_type = "application/json; charset=utf-8";
	buf_reset(&r->headers);
	buf_reset(&r->body);
}

static bool is_token_char(char c)
{
	return isalnum((unsigned char)c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

enum verr http_resp_header(struct http_resp *r, const char *name, const char *value)
{
	const char *p;
	size_t mark = r->headers.len;
	enum verr e;

	if (name[0] == '\0')
		return VERR_INVALID;
	for (p = name; *p != '\0'; p++)
		if (!is_token_char(*p))
			return VERR_INVALID;
	for (p = value; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n')
			return VERR_INVALID;
	e = buf_printf(&r->headers, "%s: %s\r\n", name, value);
	if (e != VERR_OK)
		buf_truncate(&r->headers, mark);
	return e;
}

enum verr http_resp_set(struct http_resp *r, int status, const char *content_type,
                        const char *body, size_t len)
{
	r->status = status;
	r->content_type = content_type;
	buf_reset(&r->body);
	return buf_append(&r->body, body, len);
}

bool http_content_type_is(const struct http_req *req, const char *mt)
{
	size_t n = strlen(mt);
	const char *ct = req->content_type;

	if (strncasecmp(ct, mt, n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Unknown";
	}
}
