/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Face detection and blurring through the C API with a real plugin
 * (VACCEL_PLUGINS=onnx and its models). Prints "faces: N".
 *
 * Usage: faces IMAGE
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s IMAGE\n", argv[0]);
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	static unsigned char img[4 << 20];
	size_t len = fread(img, 1, sizeof(img), f);
	fclose(f);

	struct vaccel_session s;
	EXPECT(vaccel_session_init(&s, 0), VACCEL_OK);

	unsigned char text[64];
	EXPECT(vaccel_image_detection(&s, img, text, len, sizeof(text)),
	       VACCEL_OK);
	CHECK(strncmp((char *)text, "detected ", 9) == 0);

	/* Too small first: the size needed comes back with VACCEL_ERANGE. */
	unsigned char small[16];
	size_t need = 0, n = 0;
	uint32_t faces = 0, faces2 = 0;
	EXPECT(vaccel_image_blur_faces(&s, img, len, small, sizeof(small),
				       &need, &faces),
	       VACCEL_ERANGE);
	CHECK(need > sizeof(small));
	unsigned char *jpeg = malloc(need);
	CHECK(jpeg != NULL);
	if (jpeg) {
		EXPECT(vaccel_image_blur_faces(&s, img, len, jpeg, need, &n,
					       &faces2),
		       VACCEL_OK);
		CHECK(n > 2 && n <= need && jpeg[0] == 0xff && jpeg[1] == 0xd8);
		CHECK(faces2 == faces);
		free(jpeg);
	}
	EXPECT(vaccel_session_release(&s), VACCEL_OK);
	printf("%s\nfaces: %u\n", text, (unsigned)faces);
	return report("faces");
}
