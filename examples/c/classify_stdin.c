/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An OpenFaaS-style function: image bytes on stdin, the classification
 * tags on stdout (errors on stderr, exit status 1).
 *
 *     classify_stdin < dog.jpg
 *     classification tags: ...
 */
#include <stdio.h>
#include <stdlib.h>

#include <vaccel.h>

int main(void)
{
	size_t cap = 1 << 16, len = 0;
	unsigned char *image = malloc(cap);
	while (image) {
		len += fread(image + len, 1, cap - len, stdin);
		if (len < cap)
			break;
		unsigned char *bigger = realloc(image, cap * 2);
		if (!bigger) {
			free(image);
			image = NULL;
			break;
		}
		image = bigger;
		cap *= 2;
	}
	if (!image || ferror(stdin)) {
		fprintf(stderr, "cannot read the image from stdin\n");
		free(image);
		return 1;
	}
	if (len == 0) {
		fprintf(stderr, "no image on stdin\n");
		free(image);
		return 1;
	}

	struct vaccel_session sess;
	int ret = vaccel_session_init(&sess, 0);
	if (ret != VACCEL_OK) {
		fprintf(stderr, "cannot create a session (%d): %s\n", ret,
			vaccel_last_error_message());
		free(image);
		return 1;
	}
	char text[1024];
	ret = vaccel_image_classification(&sess, image, (unsigned char *)text,
					  NULL, len, sizeof(text), 0);
	if (ret == VACCEL_OK)
		printf("%s\n", text);
	else
		fprintf(stderr, "classification failed (%d): %s\n", ret,
			vaccel_last_error_message());
	vaccel_session_release(&sess);
	free(image);
	return ret == VACCEL_OK ? 0 : 1;
}
