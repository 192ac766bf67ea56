#include "hook.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "log.h"

#define SIMHOOK_MAX_FORM (256 * 1024)

void simhook_res_init(struct simhook_res *r)
{
	memset(r, 0, sizeof *r);
	buf_init(&r->url, SIMHOOK_MAX_URL);
	buf_init(&r->body, SIMHOOK_MAX_BODY);
}

void simhook_res_free(struct simhook_res *r)
{
	if (r == NULL)
		return;
	buf_free(&r->url);
	buf_free(&r->body);
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct buf *b = ctx;
	size_t n = size * nmemb;

	if (buf_append(b, p, n) != VERR_OK)
		return 0; /* over SIMHOOK_MAX_BODY: curl stops with a write error */
	return n;
}

static enum verr encode(const struct form *params, struct buf *out)
{
	size_t i;
	enum verr e;

	for (i = 0; params != NULL && i < params->n; i++)
		if ((e = form_append(out, params->params[i].key, params->params[i].value)) != VERR_OK)
			return e;
	return VERR_OK;
}

enum verr simhook_send(const struct simcfg *cfg, const char *url, const char *method,
                       const struct form *params, const char *token, struct simhook_res *res)
{
	struct buf body;
	CURL *h = NULL;
	struct curl_slist *hdrs = NULL, *tmp;
	char line[256];
	const char *hash, *ct = NULL;
	size_t base_len;
	bool get;
	enum verr e = VERR_INVALID;
	CURLcode rc;

	buf_init(&body, SIMHOOK_MAX_FORM);
	buf_reset(&res->url);
	buf_reset(&res->body);
	res->status = 0;
	res->connect_failed = false;
	res->error[0] = '\0';
	res->signature[0] = '\0';
	res->content_type[0] = '\0';
	get = strcmp(method, "GET") == 0;
	if (!get && strcmp(method, "POST") != 0) {
		str_copy(res->error, sizeof res->error, "unsupported method");
		goto out;
	}
	hash = strchr(url, '#');
	base_len = hash != NULL ? (size_t)(hash - url) : strlen(url);
	if ((e = buf_append(&res->url, url, base_len)) != VERR_OK ||
	    (e = encode(params, &body)) != VERR_OK) {
		str_copy(res->error, sizeof res->error, "request too large");
		goto out;
	}
	if (get && body.len > 0) {
		const char *sep = strchr(res->url.data, '?') == NULL ? "?" : "&";

		if ((e = buf_puts(&res->url, sep)) != VERR_OK ||
		    (e = buf_append(&res->url, body.data, body.len)) != VERR_OK) {
			str_copy(res->error, sizeof res->error, "url too long");
			goto out;
		}
	}
	e = sig_compute(cfg->auth_token, buf_str(&res->url), get ? NULL : params, res->signature,
	                sizeof res->signature);
	if (e != VERR_OK) {
		str_copy(res->error, sizeof res->error, "could not sign the request");
		goto out;
	}

	e = VERR_NOMEM;
	h = curl_easy_init();
	if (h == NULL)
		goto out;
	snprintf(line, sizeof line, "X-Twilio-Signature: %s", res->signature);
	if ((tmp = curl_slist_append(hdrs, line)) == NULL)
		goto out;
	hdrs = tmp;
	if (token != NULL) {
		snprintf(line, sizeof line, "I-Twilio-Idempotency-Token: %s", token);
		if ((tmp = curl_slist_append(hdrs, line)) == NULL)
			goto out;
		hdrs = tmp;
	}
	if ((tmp = curl_slist_append(hdrs, "Accept: */*")) == NULL)
		goto out;
	hdrs = tmp;
	if ((tmp = curl_slist_append(hdrs, "Expect:")) == NULL)
		goto out;
	hdrs = tmp;
	if (!get) {
		tmp = curl_slist_append(hdrs, "Content-Type: application/x-www-form-urlencoded; charset=utf-8");
		if (tmp == NULL)
			goto out;
		hdrs = tmp;
	}
	curl_easy_setopt(h, CURLOPT_URL, buf_str(&res->url));
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (cfg->ca_file[0] != '\0')
		curl_easy_setopt(h, CURLOPT_CAINFO, cfg->ca_file);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)SIMHOOK_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)SIMHOOK_CONNECT_MS);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "TwilioProxy/1.1");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &res->body);
	if (get) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)body.len);
		curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, buf_str(&body));
	}
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->status);
	if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
		str_copy(res->content_type, sizeof res->content_type, ct);
	switch (rc) {
	case CURLE_OK:
		e = VERR_OK;
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		res->connect_failed = true;
		e = VERR_UPSTREAM_DOWN;
		break;
	case CURLE_OPERATION_TIMEDOUT:
		e = VERR_TIMEOUT;
		break;
	case CURLE_WRITE_ERROR:
		e = VERR_TOOBIG;
		break;
	default:
		e = VERR_IO;
		break;
	}
	if (rc != CURLE_OK)
		snprintf(res->error, sizeof res->error, "%s", curl_easy_strerror(rc));
out:
	curl_slist_free_all(hdrs);
	if (h != NULL)
		curl_easy_cleanup(h);
	buf_free(&body);
	return e;
}
