#!/bin/sh
# Regenerates the test data in this folder with the ffmpeg CLI (Debian 12's FFmpeg 5.1) and python3.
# The outputs are committed; run this only to refresh them: `sh make_testdata.sh` from this folder.
set -eu
q="-loglevel error -y -f lavfi"
# What `ffmpeg -f mpjpeg` serves (boundary "ffmpeg", Content-type + Content-length headers).
ffmpeg $q -i testsrc2=size=320x240:rate=5 -frames:v 3 -q:v 10 -f mpjpeg ffmpeg_mpjpeg.bin
# Single JPEGs for header inspection, one per chroma layout.
ffmpeg $q -i testsrc2=size=320x240 -frames:v 1 -q:v 10 -pix_fmt yuvj420p testsrc2_320x240_420.jpg
ffmpeg $q -i testsrc2=size=320x240 -frames:v 1 -q:v 10 -pix_fmt yuvj422p testsrc2_320x240_422.jpg
ffmpeg $q -i testsrc2=size=320x240 -frames:v 1 -q:v 10 -pix_fmt yuvj444p testsrc2_320x240_444.jpg
# FFmpeg 5.1's MJPEG encoder has no greyscale mode (it writes 4:4:4): cjpeg (Debian
# libjpeg-turbo-progs) encodes ffmpeg's grey PGM instead.
ffmpeg $q -i testsrc2=size=160x120 -frames:v 1 -pix_fmt gray -f image2pipe -c:v pgm - |
    cjpeg -grayscale -quality 75 > testsrc2_160x120_gray.jpg
# An ESP32-CAM CameraWebServer stream (app_httpd.c): each frame is preceded by
# "\r\n--123456789000000000000987654321\r\n" and the headers
# "Content-Type: image/jpeg\r\nContent-Length: %u\r\nX-Timestamp: %d.%06d\r\n\r\n".
# The OV2640 sends 4:2:2 JPEGs; these are 160x120 (QQVGA) frames from testsrc2.
tmp=$(mktemp -d)
ffmpeg $q -i testsrc2=size=160x120:rate=10 -frames:v 3 -q:v 12 -pix_fmt yuvj422p "$tmp/f%d.jpg"
python3 - "$tmp" <<'PY'
import sys
tmp = sys.argv[1]
out = bytearray()
for i in range(1, 4):
    jpeg = open(f"{tmp}/f{i}.jpg", "rb").read()
    out += b"\r\n--123456789000000000000987654321\r\n"
    out += b"Content-Type: image/jpeg\r\nContent-Length: %d\r\nX-Timestamp: %d.%06d\r\n\r\n" % (
        len(jpeg), 1021 + i // 10, (i * 100000) % 1000000)
    out += jpeg
open("esp32cam_stream.bin", "wb").write(out)
PY
rm -r "$tmp"
