/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Written against the public upstream vAccel C API only (no vaccel-rs
 * additions): it must compile unchanged against upstream's headers and
 * against these. It classifies an image file a number of times, in the
 * style of upstream's examples.
 *
 * Usage: upstream_classify IMAGE ITERATIONS
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <vaccel.h>

static int read_image(const char *path, char **data, size_t *size)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 1;
	if (fseek(f, 0, SEEK_END) != 0) {
		fclose(f);
		return 1;
	}
	long n = ftell(f);
	rewind(f);
	if (n <= 0) {
		fclose(f);
		return 1;
	}
	*data = malloc((size_t)n);
	if (!*data) {
		fclose(f);
		return 1;
	}
	*size = fread(*data, 1, (size_t)n, f);
	fclose(f);
	return *size == (size_t)n ? 0 : 1;
}

int main(int argc, char *argv[])
{
	int ret;
	char *image;
	size_t image_size;
	char out_text[512], out_imagename[512];
	struct vaccel_session sess;

	if (argc != 3) {
		fprintf(stderr, "Usage: %s filename #iterations\n", argv[0]);
		return 0;
	}

	ret = vaccel_session_init(&sess, 0);
	if (ret != VACCEL_OK) {
		fprintf(stderr, "Could not initialize session\n");
		return 1;
	}
	printf("Initialized session with id: %" PRId64 "\n", sess.id);

	ret = read_image(argv[1], &image, &image_size);
	if (ret)
		goto close_session;

	for (int i = 0; i < atoi(argv[2]); ++i) {
		ret = vaccel_image_classification(
			&sess, image, (unsigned char *)out_text,
			(unsigned char *)out_imagename, image_size,
			sizeof(out_text), sizeof(out_imagename));
		if (ret) {
			fprintf(stderr, "Could not run op: %d\n", ret);
			goto free_image;
		}
		if (i == 0)
			printf("%s\n", out_text);
	}

free_image:
	free(image);
close_session:
	if (vaccel_session_release(&sess) != VACCEL_OK) {
		fprintf(stderr, "Could not clear session\n");
		return 1;
	}
	return ret;
}
