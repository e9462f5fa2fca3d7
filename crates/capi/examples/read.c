/* Reads frames of a camera with libcamhub and prints what it got: the C example.
 *
 *     cc read.c -I../include -L<dir of libcamhub.so> -lcamhub -o read
 *     ./read rtsp://192.168.1.20/stream1 [frames]
 *
 * Each read returns the NEWEST frame (never a backlog), scaled by camhub to 320 px wide, in BGR. */
#include <stdio.h>
#include <stdlib.h>

#include "camhub.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s CAMERA-URL [frames]\n", argv[0]);
        return 2;
    }
    int frames = argc > 2 ? atoi(argv[2]) : 10;

    camhub_reader *cam = NULL;
    camhub_status s = camhub_open(argv[1], NULL, 10000, &cam);
    if (s != CAMHUB_OK) {
        fprintf(stderr, "cannot open the camera (%d): %s\n", (int)s, camhub_last_error());
        return 1;
    }

    /* Library-owned frames: valid until camhub_frame_free. */
    for (int i = 0; i < frames; i++) {
        camhub_frame *f = NULL;
        s = camhub_read(cam, 320, 0, CAMHUB_FORMAT_BGR, 5000, &f);
        if (s != CAMHUB_OK) {
            fprintf(stderr, "read failed (%d): %s\n", (int)s, camhub_last_error());
            camhub_close(cam);
            return 1;
        }
        /* The test pattern's white patch: a quarter across, seven eighths down. */
        const uint8_t *px = f->data + (size_t)(f->info.height * 7 / 8) * f->info.stride
                            + (size_t)(f->info.width / 4) * 3;
        printf("frame seq=%llu size=%ux%u skipped=%llu time=%llu white=%u,%u,%u\n",
               (unsigned long long)f->info.seq, f->info.width, f->info.height,
               (unsigned long long)f->info.skipped, (unsigned long long)f->info.timestamp_ms,
               px[0], px[1], px[2]);
        camhub_frame_free(f);
    }

    /* The caller's buffer: gray, 160 px wide. */
    size_t len = 160 * 160;
    uint8_t *buf = malloc(len);
    camhub_frame_info info;
    s = camhub_read_into(cam, 160, 0, CAMHUB_FORMAT_GRAY, 5000, buf, len, &info);
    if (s == CAMHUB_OK) {
        printf("gray size=%ux%u bytes=%zu\n", info.width, info.height, info.size);
    } else {
        fprintf(stderr, "read_into failed (%d): %s\n", (int)s, camhub_last_error());
    }
    free(buf);

    camhub_close(cam);
    return s == CAMHUB_OK ? 0 : 1;
}
