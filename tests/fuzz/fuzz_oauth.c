/*
 * libFuzzer target: what a hostile OAuth2 endpoint sends.  The input is
 * an HTTP response; it goes through http.c's parser (as read so far and
 * after the close), then its body through the token, device-code and
 * token-store parsers of oauth.c.  Aborts when the two parses disagree
 * or a body is longer than the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smarthost.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_response	 r, done;
	struct oauth_token	 t;
	struct oauth_device	 d;
	struct account		 a;
	struct error		 e;
	int			 open_rc, closed_rc;

	if (size > HTTP_RESPONSE_MAX)
		size = HTTP_RESPONSE_MAX;
	open_rc = http_parse((const char *)data, size, 0, &r, &e);
	closed_rc = http_parse((const char *)data, size, 1, &done, &e);
	/* Complete before the close: the close changes nothing. */
	if (open_rc == 0 && (closed_rc != 0 || r.status != done.status ||
	    r.len != done.len || memcmp(r.body, done.body, r.len) != 0))
		abort();
	if (open_rc == 0)
		http_response_free(&r);
	if (closed_rc != 0)
		return 0;
	if (done.len > size || done.body[done.len] != '\0')
		abort();
	(void)oauth_token_parse(&done, &t, &e);
	oauth_token_free(&t);
	if (oauth_device_parse(&done, &d, &e) == 0)
		oauth_device_free(&d);
	memset(&a, 0, sizeof(a));
	a.oauth_client_id = (char *)"c1";
	a.user = (char *)"u@x";
	if (oauth_store_parse(done.body, done.len, &a, &t, &e) == 0)
		oauth_token_free(&t);
	http_response_free(&done);
	return 0;
}
