/* Opens and closes a camera again and again, reading a few frames each time: run under valgrind by
 * the tests to show that a reader's resources all go back ("definitely lost: 0 bytes").
 *
 *     ./open_close CAMERA-URL [rounds] */
#include <stdio.h>
#include <stdlib.h>

#include "camhub.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s CAMERA-URL [rounds]\n", argv[0]);
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    for (int round = 0; round < rounds; round++) {
        camhub_reader *cam = NULL;
        camhub_status s = camhub_open(argv[1], NULL, 60000, &cam);
        if (s != CAMHUB_OK) {
            fprintf(stderr, "open (%d): %s\n", (int)s, camhub_last_error());
            return 1;
        }
        for (int i = 0; i < 3; i++) {
            camhub_frame *f = NULL;
            s = camhub_read(cam, 64, 0, CAMHUB_FORMAT_BGR, 60000, &f);
            if (s != CAMHUB_OK) {
                fprintf(stderr, "read (%d): %s\n", (int)s, camhub_last_error());
                camhub_close(cam);
                return 1;
            }
            camhub_frame_free(f);
        }
        camhub_frame *latest = NULL;
        camhub_latest(cam, 32, 0, CAMHUB_FORMAT_GRAY, &latest);
        camhub_frame_free(latest);
        camhub_close(cam);
        printf("round %d ok\n", round);
    }
    /* Errors allocate messages too. */
    camhub_reader *none = NULL;
    if (camhub_open("rtsp://127.0.0.1:1/nothing", NULL, 3000, &none) == CAMHUB_OK) {
        camhub_close(none);
        return 1;
    }
    printf("unreachable: %s\n", camhub_last_error());
    return 0;
}
