/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Classify an image file and print the top label, e.g.
 *
 *     classification tags: 60.547% malamute, malemute, Alaskan malamute
 *
 * Usage: classify IMAGE [ITERATIONS]
 * The plugin comes from VACCEL_PLUGINS (e.g. noop, or an ONNX plugin .so).
 */
#include <stdio.h>
#include <stdlib.h>

#include <vaccel.h>

static int read_file(const char *path, unsigned char **data, size_t *size)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t cap = 1 << 16, len = 0;
	unsigned char *buf = malloc(cap);
	while (buf) {
		len += fread(buf + len, 1, cap - len, f);
		if (len < cap)
			break;
		unsigned char *bigger = realloc(buf, cap * 2);
		if (!bigger) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = bigger;
		cap *= 2;
	}
	int err = ferror(f) || !buf;
	fclose(f);
	if (err) {
		free(buf);
		return -1;
	}
	*data = buf;
	*size = len;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s IMAGE [ITERATIONS]\n", argv[0]);
		return 2;
	}
	int iterations = argc == 3 ? atoi(argv[2]) : 1;
	unsigned char *image;
	size_t image_size;
	if (read_file(argv[1], &image, &image_size) != 0) {
		perror(argv[1]);
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

	struct vaccel_prof_region region = VACCEL_PROF_REGION_INIT("classify");
	char text[512], imgname[256];
	for (int i = 0; i < iterations; i++) {
		vaccel_prof_region_start(&region);
		ret = vaccel_image_classification(
			&sess, image, (unsigned char *)text,
			(unsigned char *)imgname, image_size, sizeof(text),
			sizeof(imgname));
		vaccel_prof_region_stop(&region);
		if (ret != VACCEL_OK) {
			fprintf(stderr, "classification failed (%d): %s\n", ret,
				vaccel_last_error_message());
			break;
		}
		if (i == 0)
			printf("%s\n", text);
	}
	vaccel_prof_region_print(&region);

	vaccel_session_release(&sess);
	free(image);
	return ret == VACCEL_OK ? 0 : 1;
}
